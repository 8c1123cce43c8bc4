//! Layers composed sequentially, lowered to the graph through [`GraphBuilder`].

pub mod init;

use crate::backend::Act;
use crate::error::Result;
use crate::graph::{DropoutKind, Graph, GraphBuilder, LinearOpts};
use crate::optim::Regularizer;
use init::Init;

/// One layer of a [`Sequential`] model.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// y = x·W + b (options: init, bias, own penalties, DropConnect).
    Linear(LinearOpts),
    /// Batch norm over the batch (eps, PyTorch-convention momentum).
    BatchNorm { eps: f32, momentum: f32 },
    /// Elementwise activation.
    Act(Act),
    /// Dropout with drop probability p (a first-layer dropout is input dropout).
    Dropout { p: f32, kind: DropoutKind },
}

/// Layers applied in order, ending in logits for softmax cross-entropy. Parameter names
/// follow PyTorch's `nn.Sequential` (`0.weight`, `0.bias`, `1.weight` ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Sequential {
    pub in_features: usize,
    pub layers: Vec<Layer>,
}

impl Sequential {
    pub fn new(in_features: usize) -> Self {
        Sequential {
            in_features,
            layers: vec![],
        }
    }
    /// Linear layer with bias and He-normal weights.
    pub fn linear(self, out: usize) -> Self {
        self.linear_with(LinearOpts::new(out))
    }
    /// Linear layer with a chosen initializer.
    pub fn linear_init(self, out: usize, init: Init) -> Self {
        self.linear_with(LinearOpts {
            init,
            ..LinearOpts::new(out)
        })
    }
    /// Linear layer with its own weight penalty (Keras' kernel_regularizer).
    pub fn linear_reg(self, out: usize, kernel: Regularizer) -> Self {
        self.linear_with(LinearOpts {
            kernel_regularizer: Some(kernel),
            ..LinearOpts::new(out)
        })
    }
    /// Linear layer with DropConnect probability p on its weights.
    pub fn linear_dropconnect(self, out: usize, p: f32) -> Self {
        self.linear_with(LinearOpts {
            dropconnect: p,
            ..LinearOpts::new(out)
        })
    }
    /// Linear layer with every option.
    pub fn linear_with(mut self, opts: LinearOpts) -> Self {
        self.layers.push(Layer::Linear(opts));
        self
    }
    /// Batch norm with eps 1e-5 and momentum 0.1 (PyTorch defaults).
    pub fn batch_norm(mut self) -> Self {
        self.layers.push(Layer::BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
        });
        self
    }
    pub fn relu(mut self) -> Self {
        self.layers.push(Layer::Act(Act::Relu));
        self
    }
    pub fn tanh(mut self) -> Self {
        self.layers.push(Layer::Act(Act::Tanh));
        self
    }
    pub fn sigmoid(mut self) -> Self {
        self.layers.push(Layer::Act(Act::Sigmoid));
        self
    }
    /// Inverted dropout: y = x·mask/(1−p) in training, y = x at inference.
    pub fn dropout(mut self, p: f32) -> Self {
        self.layers.push(Layer::Dropout {
            p,
            kind: DropoutKind::Inverted,
        });
        self
    }
    /// Classic dropout: y = x·mask in training, y = (1−p)·x at inference.
    pub fn dropout_classic(mut self, p: f32) -> Self {
        self.layers.push(Layer::Dropout {
            p,
            kind: DropoutKind::Classic,
        });
        self
    }

    /// The benchmark model W-MLP: 784 → 512 → BN → ReLU → Dropout(p) → 512 → BN → ReLU →
    /// Dropout(p) → 10.
    pub fn w_mlp(dropout: f32) -> Self {
        Sequential::new(784)
            .linear(512)
            .batch_norm()
            .relu()
            .dropout(dropout)
            .linear(512)
            .batch_norm()
            .relu()
            .dropout(dropout)
            .linear(10)
    }

    /// Lower to a differentiated graph with a softmax cross-entropy loss.
    pub fn build(&self) -> Result<Graph> {
        let mut b = GraphBuilder::new(self.in_features);
        let mut x = b.input();
        for (i, layer) in self.layers.iter().enumerate() {
            let name = i.to_string();
            x = match *layer {
                Layer::Linear(ref o) => b.linear_with(x, o, &name)?,
                Layer::BatchNorm { eps, momentum } => b.batch_norm(x, eps, momentum, &name)?,
                Layer::Act(a) => b.act(x, a),
                Layer::Dropout { p, kind } => b.dropout_kind(x, p, kind)?,
            };
        }
        b.softmax_cross_entropy(x)
    }
}
