//! The graph of ops. A model lowers to a forward graph through [`GraphBuilder`];
//! [`autodiff`] appends the backward nodes from per-op gradient rules; [`plan`](crate::plan) turns the
//! result, plus the clipping and optimizer updates, into a backend [`Program`].
//!
//! Every tensor is 2-D: `[rows, cols]`, where rows is the batch for activations.
//!
//! [`Program`]: crate::backend::Program

pub mod autodiff;
mod builder;
pub mod init;
mod param;
mod rnn;

pub use builder::{GraphBuilder, LinearOpts};
pub use param::{ParamInfo, Segment, StateInfo};
pub use rnn::{RnnCell, RnnOpts};

use crate::kernels::Act;

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// Rows of a tensor: the batch (activations) or a fixed count (parameters, state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    Batch,
    Fixed(usize),
    /// batch · k rows (im2col patches: one row per output pixel of every image).
    BatchTimes(usize),
}

/// Shape `[rows, cols]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub rows: Rows,
    pub cols: usize,
}

impl Shape {
    /// An activation: `[batch, cols]`.
    pub fn batch(cols: usize) -> Self {
        Shape {
            rows: Rows::Batch,
            cols,
        }
    }
    /// A fixed `[rows, cols]` (parameters, state).
    pub fn fixed(rows: usize, cols: usize) -> Self {
        Shape {
            rows: Rows::Fixed(rows),
            cols,
        }
    }
    /// Element count for a given batch size.
    pub fn numel(&self, batch: usize) -> usize {
        self.rows_at(batch) * self.cols
    }
    /// [`Shape::numel`] without wrapping: None when the count overflows usize.
    pub fn checked_numel(&self, batch: usize) -> Option<usize> {
        let rows = match self.rows {
            Rows::Batch => batch,
            Rows::Fixed(r) => r,
            Rows::BatchTimes(k) => batch.checked_mul(k)?,
        };
        rows.checked_mul(self.cols)
    }
    /// The number of rows at batch size `batch`.
    pub fn rows_at(&self, batch: usize) -> usize {
        match self.rows {
            Rows::Batch => batch,
            Rows::Fixed(r) => r,
            Rows::BatchTimes(k) => batch * k,
        }
    }
    fn describe(&self) -> Vec<usize> {
        vec![
            match self.rows {
                Rows::Batch | Rows::BatchTimes(_) => 0,
                Rows::Fixed(r) => r,
            },
            self.cols,
        ]
    }
}

/// The two dropout conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropoutKind {
    /// Training: y = x·mask/(1−p); inference: y = x (PyTorch, Keras).
    Inverted,
    /// Training: y = x·mask; inference: y = (1−p)·x (the original paper).
    Classic,
}

/// Operations. Forward ops are created by the builder; `*Bwd`, `BiasGrad` and the
/// transposed matmuls are created by autodiff.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The batch of inputs.
    Input,
    /// The batch of class labels.
    Labels,
    /// A trainable parameter (index into [`Graph::params`]).
    Param(usize),
    /// y = x·W + b, W stored [in, out]. Inputs: x, W, (b).
    Linear,
    /// C = op(A)·op(B).
    MatMul {
        ta: bool,
        tb: bool,
    },
    /// y = f(x).
    Act(Act),
    /// Dropout with probability p; `stream` keys its masks; `group` consecutive elements
    /// share one mask bit (H·W for spatial dropout, 1 otherwise); `period` > 0 shares one
    /// mask across the time steps of a sequence row `[T·period]` (element (n, t, f) draws
    /// as (n, f): the variational input dropout of a recurrent layer).
    Dropout {
        p: f32,
        stream: u32,
        kind: DropoutKind,
        group: usize,
        period: usize,
    },
    /// Batch norm per channel over the batch (and the `spatial` positions of NCHW images).
    /// Inputs: x, gamma_beta. Outputs: y, saved stats.
    BatchNorm {
        eps: f32,
        momentum: f32,
        state: usize,
        spatial: usize,
    },
    /// Layer norm over each row's features (PyTorch's `LayerNorm`). Inputs: x,
    /// gamma_beta. Outputs: y, saved per-row (mean, invstd) `[batch, 2]`.
    LayerNorm {
        eps: f32,
    },
    /// Per-sample augmentation of an NCHW input batch (training) and standardization
    /// (always). Outputs: y, the warped intermediate. `state` holds the spec; `stream` and
    /// `stream + 1` key its draws; `random` is false when only standardization is on.
    Augment {
        c: usize,
        h: usize,
        w: usize,
        state: usize,
        stream: u32,
        random: bool,
    },
    /// NCHW image → patch rows [batch·OH·OW, C·KH·KW].
    Im2Col(Geom2d),
    /// Patch-row gradients → image gradient (the adjoint of Im2Col).
    Col2Im(Geom2d),
    /// `[batch·S rows, C] → [batch, C·S]` (NCHW), `+ bias[c]` when a bias input is given.
    ToNchw {
        spatial: usize,
        channels: usize,
    },
    /// [batch, C·S] → [batch·S rows, C].
    ToNhwc {
        spatial: usize,
        channels: usize,
    },
    /// Max pooling. Output: y, window index of each maximum.
    MaxPool(Geom2d),
    /// Inputs: dy, indices.
    MaxPoolBwd(Geom2d),
    AvgPool(Geom2d),
    AvgPoolBwd(Geom2d),
    /// c = a + b.
    Add,
    /// The same elements under another shape (no kernel: an alias of the input).
    Reshape,
    /// Columns `[start, start + len)` of every row (the last step of a sequence output).
    SliceCols {
        start: usize,
        len: usize,
    },
    /// A table lookup per token id (PyTorch's `nn.Embedding`). Inputs: the ids
    /// `[batch, L]` (the model's input: f32 integers in [0, vocab), checked on the host)
    /// and the table W `[vocab, dim]`. Output: `[batch, L·dim]` (id j of a row becomes
    /// columns `j·dim..(j + 1)·dim`).
    Embedding {
        vocab: usize,
        dim: usize,
    },
    /// The recurrent-dropout mask, step flags and initial state of a recurrent layer.
    /// Inputs: the layer's sequence input `[batch, T·F]` (for the flags) and, when one is
    /// given, the initial state `[batch, S]` (S = 2H, h then c, for the LSTM; H for the
    /// GRU). Output: `aux [batch, 3H + T]` (see [`crate::kernels::rnn::RnnParams`]). `p`
    /// is the recurrent dropout, its mask keyed by `stream`; `mask_value` turns masking
    /// of padded steps on.
    RnnAux {
        steps: usize,
        hidden: usize,
        gates: usize,
        features: usize,
        p: f32,
        stream: u32,
        mask_value: Option<f32>,
    },
    /// An LSTM or GRU layer over T steps (PyTorch's cells). Inputs: the input projection
    /// `xp [batch·T, G·H]` (x·W_ih), W_hh `[H, G·H]`, the biases `[2, G·H]` (b_ih, b_hh),
    /// aux, and the initial state `[batch, S]` when one is given (aux holds its values;
    /// the input is there for the gradient). Outputs: the sequence `hs [batch, T·H]`, the saved gates and states
    /// `[batch, T·5H]` and the masked previous states `hprev [batch, T·H]`.
    Rnn {
        cell: RnnCell,
        steps: usize,
        hidden: usize,
    },
    /// The loss (the weighted mean over the batch, [`crate::kernels::loss`]). Inputs:
    /// outputs (logits or values), label rows. Outputs: the gradient of the outputs (the
    /// seed of the backward pass) and per-row statistics `[batch, 3]`. `weights` is the
    /// state holding the class weights or `pos_weight`, if any.
    Loss {
        loss: crate::kernels::loss::Loss,
        weights: Option<usize>,
    },
    /// db = Σ_rows dy.
    BiasGrad,
    /// dx from y and dy.
    ActBwd(Act),
    /// Batch-norm backward. Inputs: x, dy, gamma_beta, saved. Outputs: dx, dgamma_beta.
    BatchNormBwd {
        spatial: usize,
    },
    /// Layer-norm backward. Inputs: x, dy, gamma_beta, saved. Outputs: dx, dgamma_beta.
    LayerNormBwd,
    /// The adjoint of [`Op::SliceCols`]. Input: dy. Output: dx (zeros outside the slice).
    SliceColsBwd {
        start: usize,
        len: usize,
    },
    /// The gradient of an embedding table. Inputs: the ids, dy `[batch, L·dim]`.
    /// Output: dW `[vocab, dim]`.
    EmbeddingBwd {
        vocab: usize,
        dim: usize,
    },
    /// The backward through time of [`Op::Rnn`]. Inputs: dhs, W_hh, saved, aux. Outputs:
    /// the gradient of xp, of the recurrent pre-activations (the same tensor for the
    /// LSTM), of the biases, the per-step carry `[batch, 2H]` and, when the forward had
    /// an initial state, its gradient `[batch, S]`.
    RnnBwd {
        cell: RnnCell,
        steps: usize,
        hidden: usize,
    },
}

pub use crate::kernels::conv::Geom2d;

/// A node: an op applied to input tensors, producing output tensors.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

/// A tensor: its shape and the node that produces it.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub shape: Shape,
    pub producer: usize,
}

/// A whole model: forward nodes, then (after [`autodiff::differentiate`]) backward nodes.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub tensors: Vec<TensorInfo>,
    pub nodes: Vec<Node>,
    pub params: Vec<ParamInfo>,
    pub states: Vec<StateInfo>,
    /// Number of forward nodes; nodes after this index are the backward pass.
    pub n_forward: usize,
    pub input: TensorId,
    pub labels: TensorId,
    /// The loss node's row statistics.
    pub rowstats: Option<TensorId>,
    /// Gradient tensor of each parameter (same order as `params`).
    pub param_grads: Vec<Option<TensorId>>,
}

impl Graph {
    /// Input features.
    pub fn in_features(&self) -> usize {
        self.tensors[self.input].shape.cols
    }
    /// The loss node: its loss and the output tensor it reads.
    pub fn loss_node(&self) -> Option<(&crate::kernels::loss::Loss, TensorId)> {
        self.nodes[..self.n_forward.min(self.nodes.len())]
            .iter()
            .find_map(|n| match &n.op {
                Op::Loss { loss, .. } => Some((loss, n.inputs[0])),
                _ => None,
            })
    }
    /// The model's output units (the loss input's columns); 0 without a loss.
    pub fn outputs(&self) -> usize {
        self.loss_node()
            .map_or(0, |(_, t)| self.tensors[t].shape.cols)
    }
    /// Classes of a softmax cross-entropy head (the logits' columns); 0 for every other
    /// loss.
    pub fn classes(&self) -> usize {
        match self.loss_node() {
            Some((crate::kernels::loss::Loss::CrossEntropy { .. }, t)) => {
                self.tensors[t].shape.cols
            }
            _ => 0,
        }
    }
    /// The task the loss trains for ([`crate::task::Task::Multiclass`] without a loss).
    pub fn task(&self) -> crate::task::Task {
        self.loss_node()
            .map_or(crate::task::Task::Multiclass, |(l, _)| {
                l.task(self.outputs())
            })
    }
    /// Target values per sample: 1 class index for cross-entropy, one per output
    /// otherwise. The label rows the loss reads hold these plus the sample weight and
    /// the gradient factor.
    pub fn targets(&self) -> usize {
        self.loss_node()
            .map_or(1, |(l, _)| l.targets(self.outputs()))
    }
    /// The input columns an embedding reads as token ids ([`GraphBuilder::embedding`]),
    /// each with the vocabulary its ids must fit: `(columns, vocab)` per embedding, the
    /// whole row or the columns of a [`GraphBuilder::columns`] slice of the input. Empty
    /// when no embedding reads the input (its values are then features, any finite value).
    pub fn token_columns(&self) -> Vec<(std::ops::Range<usize>, usize)> {
        self.nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Embedding { vocab, .. } => self.input_columns(n.inputs[0]).map(|c| (c, vocab)),
                _ => None,
            })
            .collect()
    }
    /// The columns of the input that tensor `t` is: all of them for the input itself, or
    /// those of a column slice of it; None for any other tensor.
    pub fn input_columns(&self, t: TensorId) -> Option<std::ops::Range<usize>> {
        if t == self.input {
            return Some(0..self.in_features());
        }
        let n = &self.nodes[self.tensors[t].producer];
        match n.op {
            Op::SliceCols { start, len } if n.inputs[0] == self.input => Some(start..start + len),
            _ => None,
        }
    }
    /// Whether parameter `pid` is an embedding table (stored `[vocab, dim]` as PyTorch
    /// stores it, not transposed as linear weights are).
    pub fn is_embedding_table(&self, pid: usize) -> bool {
        self.nodes.iter().any(|n| {
            matches!(n.op, Op::Embedding { .. })
                && matches!(self.nodes[self.tensors[n.inputs[1]].producer].op, Op::Param(p) if p == pid)
        })
    }
    /// Total trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.shape.numel(0)).sum()
    }
    pub(crate) fn add_node(
        &mut self,
        op: Op,
        inputs: Vec<TensorId>,
        shapes: &[Shape],
    ) -> Vec<TensorId> {
        let nid = self.nodes.len();
        let outputs: Vec<TensorId> = shapes
            .iter()
            .map(|&shape| {
                self.tensors.push(TensorInfo {
                    shape,
                    producer: nid,
                });
                self.tensors.len() - 1
            })
            .collect();
        self.nodes.push(Node {
            op,
            inputs,
            outputs: outputs.clone(),
        });
        outputs
    }
    /// Whether the backward pass has been appended ([`autodiff::differentiate`]).
    pub fn is_differentiated(&self) -> bool {
        self.nodes.len() > self.n_forward || self.param_grads.iter().any(Option::is_some)
    }

    /// The shape of tensor `t`.
    pub fn shape(&self, t: TensorId) -> Shape {
        self.tensors[t].shape
    }
}
