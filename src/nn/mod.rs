//! Layers composed sequentially, lowered to the graph through [`GraphBuilder`].

pub mod augment;
pub use crate::graph::init;
pub use crate::kernels::loss::Loss;

use crate::backend::Act;
use crate::error::{Error, Result};
use crate::graph::init::Init;
use crate::graph::{DropoutKind, Geom2d, Graph, GraphBuilder, LinearOpts, RnnCell, RnnOpts};
use crate::optim::Regularizer;

/// One layer of a [`Sequential`] model.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// y = x·W + b (options: init, bias, own penalties, DropConnect).
    Linear(LinearOpts),
    /// Batch norm over the batch (eps, PyTorch-convention momentum).
    BatchNorm { eps: f32, momentum: f32 },
    /// Layer norm over each sample's features (PyTorch's `LayerNorm(features, eps)`).
    LayerNorm { eps: f32 },
    /// Elementwise activation.
    Act(Act),
    /// Dropout with drop probability p (a first-layer dropout is input dropout).
    Dropout { p: f32, kind: DropoutKind },
    /// 2-D convolution (square kernel k, stride, zero padding) over NCHW images.
    Conv2d {
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        init: Init,
    },
    /// Max pooling (square window k, stride), no padding.
    MaxPool2d { k: usize, stride: usize },
    /// Average pooling (square window k, stride), no padding.
    AvgPool2d { k: usize, stride: usize },
    /// Per-channel batch norm over batch and positions.
    BatchNorm2d { eps: f32, momentum: f32 },
    /// Spatial dropout: whole channels dropped (inverted scaling).
    Dropout2d(f32),
    /// From [C, H, W] images to feature vectors (the data layout is already flat).
    Flatten,
    /// Per-sample augmentation of the input images (training only) and standardization.
    Augment(augment::Augment),
    /// An LSTM or GRU (stack) over a sequence input ([`Sequential::sequence`]); outputs
    /// the hidden state at every step.
    Rnn(RnnOpts),
    /// The last step of a sequence (PyTorch's `output[:, -1]`).
    LastStep,
    /// A table of `vocab` vectors of `dim` values looked up by the input's token ids
    /// (PyTorch's `nn.Embedding`; first layer only). `mask_zero`: id 0 is padding for the
    /// recurrent layers after it (Keras' `mask_zero=True`).
    Embedding {
        vocab: usize,
        dim: usize,
        mask_zero: bool,
        init: Init,
    },
}

/// One line of [`Sequential::summary`].
struct LayerRow {
    module: String,
    shape: String,
    params: usize,
}

/// `1234567` as `1,234,567`.
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Layers applied in order, ending in logits for softmax cross-entropy. Parameter names
/// follow PyTorch's `nn.Sequential` (`0.weight`, `0.bias`, `1.weight` ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Sequential {
    pub in_features: usize,
    /// (C, H, W) when the input is an image.
    pub image: Option<(usize, usize, usize)>,
    /// (T steps, F features per step) when the input is a sequence, each row holding
    /// T·F values step-major (a row-major `[N, T, F]` batch).
    pub sequence: Option<(usize, usize)>,
    pub layers: Vec<Layer>,
    /// The loss the model is trained with (softmax cross-entropy by default); it decides
    /// the task ([`crate::kernels::loss::Loss::task`]).
    pub loss: Loss,
}

impl Sequential {
    /// An empty model over inputs `[batch, in_features]`.
    pub fn new(in_features: usize) -> Self {
        Sequential {
            in_features,
            image: None,
            sequence: None,
            layers: vec![],
            loss: Loss::default(),
        }
    }
    /// A model over NCHW images of `c` channels, `h`×`w` pixels.
    pub fn image(c: usize, h: usize, w: usize) -> Self {
        Sequential {
            // Saturating: an overflowing size is refused by `build` (Geom2d::new) rather
            // than wrapped here.
            in_features: c.saturating_mul(h).saturating_mul(w),
            image: Some((c, h, w)),
            sequence: None,
            layers: vec![],
            loss: Loss::default(),
        }
    }

    /// A model over sequences of `steps` time steps of `features` values each (batch-first:
    /// a row holds step 0's features, then step 1's, ...).
    pub fn sequence(steps: usize, features: usize) -> Self {
        Sequential {
            in_features: steps.saturating_mul(features),
            image: None,
            sequence: Some((steps, features)),
            layers: vec![],
            loss: Loss::default(),
        }
    }
    /// An LSTM of `hidden` units (PyTorch's `nn.LSTM(F, hidden, batch_first=True)`,
    /// its initialization); outputs every step. Follow it with [`Sequential::last_step`]
    /// for a per-sequence output.
    pub fn lstm(self, hidden: usize) -> Self {
        self.rnn(RnnOpts::new(RnnCell::Lstm, hidden))
    }
    /// A GRU of `hidden` units (PyTorch's `nn.GRU(F, hidden, batch_first=True)`).
    pub fn gru(self, hidden: usize) -> Self {
        self.rnn(RnnOpts::new(RnnCell::Gru, hidden))
    }
    /// A recurrent layer with every option: stacked layers, Keras' `dropout` and
    /// `recurrent_dropout` (variational), PyTorch's between-layer `dropout`, masking.
    pub fn rnn(mut self, opts: RnnOpts) -> Self {
        self.layers.push(Layer::Rnn(opts));
        self
    }
    /// A first layer mapping each input token id (an integer in `[0, vocab)`, stored as
    /// f32) to a learned vector of `dim` values: PyTorch's `nn.Embedding(vocab, dim)`
    /// with its N(0, 1) initialization. Over a [`Sequential::sequence`] of T steps of F
    /// ids, the output is T steps of F·dim values. Ids out of range are refused per batch
    /// with [`Error::TokenId`].
    pub fn embedding(mut self, vocab: usize, dim: usize) -> Self {
        self.layers.push(Layer::Embedding {
            vocab,
            dim,
            mask_zero: false,
            init: Init::Normal {
                mean: 0.0,
                std: 1.0,
            },
        });
        self
    }
    /// [`Sequential::embedding`] with id 0 reserved for padding (Keras'
    /// `Embedding(mask_zero=True)`): the recurrent layers after it treat a step whose ids
    /// are all 0 as padding (the state is carried through it, it adds no gradient), so
    /// sequences of unequal length are padded with 0 after their end.
    pub fn embedding_mask_zero(mut self, vocab: usize, dim: usize) -> Self {
        self = self.embedding(vocab, dim);
        if let Some(Layer::Embedding { mask_zero, .. }) = self.layers.last_mut() {
            *mask_zero = true;
        }
        self
    }
    /// The hidden state at the last step of a sequence (after padded steps, the state of
    /// the last unpadded one).
    pub fn last_step(mut self) -> Self {
        self.layers.push(Layer::LastStep);
        self
    }

    /// Train with `loss` instead of softmax cross-entropy: e.g. a 1-unit output with
    /// [`Loss::BceWithLogits`] (binary), k units with it (multi-label), or
    /// [`Loss::Mse`] / [`Loss::Mae`] / [`Loss::Huber`] (regression). Checked by `build`.
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }
    /// Conv2d with `out` channels, a k×k kernel, stride and zero padding, He-normal weights.
    pub fn conv2d(mut self, out: usize, k: usize, stride: usize, pad: usize) -> Self {
        self.layers.push(Layer::Conv2d {
            out,
            k,
            stride,
            pad,
            init: Init::HE_NORMAL,
        });
        self
    }
    /// Max pooling over `k`×`k` windows with `stride`, no padding (PyTorch `MaxPool2d`).
    pub fn max_pool(mut self, k: usize, stride: usize) -> Self {
        self.layers.push(Layer::MaxPool2d { k, stride });
        self
    }
    /// Average pooling over `k`×`k` windows with `stride`, no padding (PyTorch `AvgPool2d`).
    pub fn avg_pool(mut self, k: usize, stride: usize) -> Self {
        self.layers.push(Layer::AvgPool2d { k, stride });
        self
    }
    /// BatchNorm2d with eps 1e-5 and momentum 0.1.
    pub fn batch_norm2d(mut self) -> Self {
        self.layers.push(Layer::BatchNorm2d {
            eps: 1e-5,
            momentum: 0.1,
        });
        self
    }
    /// Spatial dropout: whole channels dropped with probability `p` (PyTorch `Dropout2d`).
    pub fn dropout2d(mut self, p: f32) -> Self {
        self.layers.push(Layer::Dropout2d(p));
        self
    }
    /// Augment the input images (must come first; see [`augment::Augment`]).
    pub fn augment(mut self, spec: augment::Augment) -> Self {
        self.layers.push(Layer::Augment(spec));
        self
    }
    /// Flatten `[batch, C, H, W]` images to `[batch, C·H·W]` rows.
    pub fn flatten(mut self) -> Self {
        self.layers.push(Layer::Flatten);
        self
    }

    /// The benchmark model W-LSTM: row-wise sequential MNIST, 28 steps of 28 pixels →
    /// LSTM(28, 128) with Keras' `recurrent_dropout` = `recurrent_dropout` (PyTorch's
    /// initialization) → the last step → Linear 10 (shadeprop's default, He normal).
    pub fn w_lstm(recurrent_dropout: f32) -> Self {
        Sequential::sequence(28, 28)
            .rnn(RnnOpts {
                recurrent_dropout,
                ..RnnOpts::new(RnnCell::Lstm, 128)
            })
            .last_step()
            .linear(10)
    }

    /// The benchmark model W-CNN: Conv 5×5 1→32, ReLU, MaxPool 2 → Conv 5×5 32→64, ReLU,
    /// MaxPool 2 → Flatten (1024) → Linear 512, ReLU, Dropout(p) → Linear 10.
    pub fn w_cnn(dropout: f32) -> Self {
        Sequential::image(1, 28, 28)
            .conv2d(32, 5, 1, 0)
            .relu()
            .max_pool(2, 2)
            .conv2d(64, 5, 1, 0)
            .relu()
            .max_pool(2, 2)
            .flatten()
            .linear(512)
            .relu()
            .dropout(dropout)
            .linear(10)
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
    /// Layer norm with eps 1e-5 (PyTorch's `LayerNorm(features)` defaults: learnable
    /// weight and bias, not decayed), normalizing each sample over its features.
    pub fn layer_norm(mut self) -> Self {
        self.layers.push(Layer::LayerNorm { eps: 1e-5 });
        self
    }
    /// `max(x, 0)`.
    pub fn relu(mut self) -> Self {
        self.layers.push(Layer::Act(Act::Relu));
        self
    }
    /// `tanh(x)`.
    pub fn tanh(mut self) -> Self {
        self.layers.push(Layer::Act(Act::Tanh));
        self
    }
    /// `1 / (1 + e^−x)`.
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

    /// The equivalent PyTorch modules, one per layer at the same index (so the parameter
    /// names agree with `nn.Sequential(*modules).state_dict()`): `Linear(784, 512)`,
    /// `BatchNorm1d(512)`, `ReLU()`, `Dropout(p=0.5)`, `Conv2d(1, 32, kernel_size=5,
    /// stride=1, padding=0)`, `MaxPool2d(kernel_size=2, stride=2)`, `Flatten()`, ... The
    /// augmentation layer, which inference skips, is `Identity()`; classic dropout and
    /// DropConnect have no PyTorch module and are named `Dropout(p=…)` with a comment.
    pub fn torch_modules(&self) -> Vec<String> {
        self.layer_table().into_iter().map(|l| l.module).collect()
    }

    /// A Keras-style summary: one line per layer with its index (the parameter names'
    /// prefix), its PyTorch module, its output shape per sample (`[C, H, W]` or
    /// `[features]`) and its trainable parameter count, then the total — the same total
    /// as the built graph's `param_count`.
    pub fn summary(&self) -> String {
        let rows = self.layer_table();
        let input = match (self.image, self.sequence) {
            (Some((c, h, w)), _) => format!("[{c}, {h}, {w}]"),
            (None, Some((t, f))) => format!("[{t}, {f}]"),
            (None, None) => format!("[{}]", self.in_features),
        };
        let module = |m: &str| m.split("  #").next().unwrap_or(m).to_string();
        // Columns as wide as their widest cell (the table fits 80 columns for the usual
        // modules, as Keras' summary does).
        let mw = rows
            .iter()
            .map(|r| module(&r.module).chars().count())
            .chain([6])
            .max()
            .unwrap_or(6);
        let sw = rows
            .iter()
            .map(|r| r.shape.chars().count())
            .chain([input.chars().count(), 12])
            .max()
            .unwrap_or(12);
        let mut total = 0;
        let mut out = format!(
            "{:<5} {:<mw$} {:<sw$} {:>10}\n",
            "layer", "module", "output shape", "parameters"
        );
        out += &format!("{:<5} {:<mw$} {input:<sw$} {:>10}\n", "", "input", "");
        for (i, r) in rows.iter().enumerate() {
            out += &format!(
                "{i:<5} {:<mw$} {:<sw$} {:>10}\n",
                module(&r.module),
                r.shape,
                group(r.params)
            );
            total += r.params;
        }
        // What a module string cannot say (e.g. Keras' recurrent dropout), under the table.
        for (i, r) in rows.iter().enumerate() {
            if let Some((_, note)) = r.module.split_once("  # ")
                && (r.module.starts_with("LSTM(") || r.module.starts_with("GRU("))
            {
                out += &format!("{i:<5} {note}\n");
            }
        }
        out + &format!(
            "trainable parameters: {}, loss: {}\n",
            group(total),
            self.loss.name()
        )
    }

    /// Each layer's PyTorch module, output shape and trainable parameter count.
    fn layer_table(&self) -> Vec<LayerRow> {
        let mut out = vec![];
        let mut f = self.in_features;
        let mut img = self.image;
        let mut seq = self.sequence;
        for layer in &self.layers {
            let mut params = 0;
            let m = match layer {
                Layer::Linear(o) => {
                    let m = format!(
                        "Linear({f}, {}, bias={})",
                        o.out,
                        if o.bias { "True" } else { "False" }
                    );
                    params = f * o.out + if o.bias { o.out } else { 0 };
                    f = o.out;
                    if o.dropconnect > 0.0 {
                        format!("{m}  # DropConnect p={} in training", o.dropconnect)
                    } else {
                        m
                    }
                }
                Layer::BatchNorm { eps, momentum } => {
                    params = 2 * f;
                    format!("BatchNorm1d({f}, eps={eps}, momentum={momentum})")
                }
                Layer::LayerNorm { eps } => {
                    params = 2 * f;
                    format!("LayerNorm(({f},), eps={eps}, elementwise_affine=True)")
                }
                Layer::Act(Act::Relu) => "ReLU()".into(),
                Layer::Act(Act::Tanh) => "Tanh()".into(),
                Layer::Act(Act::Sigmoid) => "Sigmoid()".into(),
                Layer::Dropout { p, kind } => match kind {
                    DropoutKind::Inverted => format!("Dropout(p={p})"),
                    DropoutKind::Classic => {
                        format!("Dropout(p={p})  # classic: inference scales by {}", 1.0 - p)
                    }
                },
                Layer::Conv2d {
                    out,
                    k,
                    stride,
                    pad,
                    ..
                } => {
                    let (c, h, w) = img.unwrap_or((0, 0, 0));
                    let oh = (h + 2 * pad).saturating_sub(*k) / stride.max(&1) + 1;
                    let ow = (w + 2 * pad).saturating_sub(*k) / stride.max(&1) + 1;
                    img = Some((*out, oh, ow));
                    f = out * oh * ow;
                    params = c * k * k * out + out;
                    format!("Conv2d({c}, {out}, kernel_size={k}, stride={stride}, padding={pad})")
                }
                Layer::MaxPool2d { k, stride } | Layer::AvgPool2d { k, stride } => {
                    let (c, h, w) = img.unwrap_or((0, 0, 0));
                    let (oh, ow) = (
                        h.saturating_sub(*k) / stride.max(&1) + 1,
                        w.saturating_sub(*k) / stride.max(&1) + 1,
                    );
                    img = Some((c, oh, ow));
                    f = c * oh * ow;
                    let kind = if matches!(layer, Layer::MaxPool2d { .. }) {
                        "Max"
                    } else {
                        "Avg"
                    };
                    format!("{kind}Pool2d(kernel_size={k}, stride={stride})")
                }
                Layer::BatchNorm2d { eps, momentum } => {
                    let c = img.map_or(0, |i| i.0);
                    params = 2 * c;
                    format!("BatchNorm2d({c}, eps={eps}, momentum={momentum})")
                }
                Layer::Dropout2d(p) => format!("Dropout2d(p={p})"),
                Layer::Flatten => {
                    img = None;
                    "Flatten()".into()
                }
                Layer::Augment(_) => "Identity()  # augmentation, training only".into(),
                Layer::Rnn(o) => {
                    let (t, fin) = seq.unwrap_or((1, f));
                    let gh = o.cell.gates() * o.hidden;
                    params = (0..o.layers)
                        .map(|l| gh * (if l == 0 { fin } else { o.hidden } + o.hidden) + 2 * gh)
                        .sum();
                    seq = Some((t, o.hidden));
                    f = t * o.hidden;
                    let mut m = format!(
                        "{}({fin}, {}, num_layers={}, batch_first=True, dropout={})",
                        o.cell.torch_name(),
                        o.hidden,
                        o.layers,
                        o.dropout
                    );
                    let mut notes = vec![];
                    if o.input_dropout > 0.0 || o.recurrent_dropout > 0.0 {
                        notes.push(format!(
                            "variational dropout={} recurrent_dropout={} in training",
                            o.input_dropout, o.recurrent_dropout
                        ));
                    }
                    if let Some(v) = o.mask_value {
                        notes.push(format!("steps whose features all equal {v} are padding"));
                    }
                    if !notes.is_empty() {
                        m += &format!("  # {}", notes.join("; "));
                    }
                    m
                }
                Layer::LastStep => {
                    if let Some((_, h)) = seq.take() {
                        f = h;
                    }
                    "LastStep()  # output[0][:, -1]".into()
                }
                Layer::Embedding {
                    vocab,
                    dim,
                    mask_zero,
                    ..
                } => {
                    params = vocab * dim;
                    f *= dim;
                    if let Some((t, fs)) = seq {
                        seq = Some((t, fs * dim));
                    }
                    let m = format!("Embedding({vocab}, {dim})");
                    if *mask_zero {
                        format!("{m}  # id 0 is padding (mask_zero)")
                    } else {
                        m
                    }
                }
            };
            let shape = match (img, seq) {
                (Some((c, h, w)), _) => format!("[{c}, {h}, {w}]"),
                (None, Some((t, h))) => format!("[{t}, {h}]"),
                (None, None) => format!("[{f}]"),
            };
            out.push(LayerRow {
                module: m,
                shape,
                params,
            });
        }
        out
    }

    /// Lower to a differentiated graph ending in the model's loss (softmax cross-entropy
    /// unless [`Sequential::loss`] set another).
    pub fn build(&self) -> Result<Graph> {
        if let Some((t, f)) = self.sequence
            && (t == 0 || f == 0 || t.checked_mul(f).is_none())
        {
            return Err(Error::Hyperparameter {
                name: "sequence",
                value: format!("{t} steps × {f} features"),
                expected: "at least 1 step and 1 feature, T·F within usize",
            });
        }
        let mut b = GraphBuilder::new(self.in_features);
        let mut x = b.input();
        let mut img = self.image;
        let mut seq = self.sequence;
        // The padding mask of the first masked recurrent layer (its input and mask value),
        // carried to the recurrent layers after it as Keras carries a mask.
        let mut mask: Option<(crate::graph::TensorId, f32)> = None;
        // Whether a recurrent layer has applied that mask.
        let mut masked = false;
        let not_seq = |seq: Option<(usize, usize)>, i: usize, what: &str| match seq {
            Some(_) => Err(Error::Graph(format!(
                "layer {i} ({what}) follows a sequence: add last_step() first"
            ))),
            None => Ok(()),
        };
        let need_img = |img: Option<(usize, usize, usize)>, i: usize| {
            img.ok_or_else(|| {
                Error::Graph(format!(
                    "layer {i} needs an image input (Sequential::image, before any flatten)"
                ))
            })
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let name = i.to_string();
            x = match *layer {
                Layer::Linear(ref o) => {
                    not_seq(seq, i, "linear")?;
                    if img.is_some() {
                        return Err(Error::Graph(format!(
                            "layer {i} (linear) follows an image: add flatten() first"
                        )));
                    }
                    b.linear_with(x, o, &name)?
                }
                Layer::BatchNorm { eps, momentum } => {
                    not_seq(seq, i, "batch norm")?;
                    b.batch_norm(x, eps, momentum, &name)?
                }
                Layer::LayerNorm { eps } => {
                    not_seq(seq, i, "layer norm")?;
                    if img.is_some() {
                        return Err(Error::Graph(format!(
                            "layer {i} (layer norm) follows an image: add flatten() first"
                        )));
                    }
                    b.layer_norm(x, eps, &name)?
                }
                Layer::Act(a) => b.act(x, a),
                Layer::Dropout { p, kind } => b.dropout_kind(x, p, kind)?,
                Layer::Conv2d {
                    out,
                    k,
                    stride,
                    pad,
                    init,
                } => {
                    let (c, h, w) = need_img(img, i)?;
                    let geom = Geom2d::new(c, h, w, k, stride, pad)?;
                    img = Some((out, geom.oh, geom.ow));
                    b.conv2d(x, geom, out, init, &name)?
                }
                Layer::MaxPool2d { k, stride } | Layer::AvgPool2d { k, stride } => {
                    let (c, h, w) = need_img(img, i)?;
                    let geom = Geom2d::new(c, h, w, k, stride, 0)?;
                    img = Some((c, geom.oh, geom.ow));
                    if matches!(layer, Layer::MaxPool2d { .. }) {
                        b.max_pool(x, geom)?
                    } else {
                        b.avg_pool(x, geom)?
                    }
                }
                Layer::BatchNorm2d { eps, momentum } => {
                    let (c, h, w) = need_img(img, i)?;
                    b.batch_norm2d(x, c, h * w, eps, momentum, &name)?
                }
                Layer::Dropout2d(p) => {
                    let (_, h, w) = need_img(img, i)?;
                    b.dropout2d(x, p, h * w)?
                }
                Layer::Flatten => {
                    img = None;
                    x
                }
                Layer::Augment(ref spec) => {
                    let chw = need_img(img, i)?;
                    if i != 0 {
                        return Err(Error::Graph(format!(
                            "layer {i} (augment) must be the first layer"
                        )));
                    }
                    spec.add_to(&mut b, x, chw)?
                }
                Layer::Rnn(ref o) => {
                    masked = true;
                    let (t, _) = seq.ok_or_else(|| {
                        Error::Graph(format!(
                            "layer {i} ({}) needs a sequence input (Sequential::sequence)",
                            o.cell.torch_name()
                        ))
                    })?;
                    seq = Some((t, o.hidden));
                    match (mask, o.mask_value) {
                        (Some(_), Some(v)) => {
                            return Err(Error::Graph(format!(
                                "layer {i} ({}) sets mask_value {v}, but an earlier \
                                 layer's mask (a recurrent layer's mask_value or an \
                                 embedding's mask_zero) already applies to it: set \
                                 mask_value on the first recurrent layer only",
                                o.cell.torch_name()
                            )));
                        }
                        (Some((src, v)), None) => {
                            let o = RnnOpts {
                                mask_value: Some(v),
                                ..*o
                            };
                            b.rnn_masked_by(x, t, &o, &name, src)?
                        }
                        (None, v) => {
                            if let Some(v) = v {
                                mask = Some((x, v));
                            }
                            b.rnn(x, t, o, &name)?
                        }
                    }
                }
                Layer::Embedding {
                    vocab,
                    dim,
                    mask_zero,
                    init,
                } => {
                    if i != 0 {
                        return Err(Error::Graph(format!(
                            "layer {i} (embedding) must be the first layer: it reads the \
                             model's input token ids"
                        )));
                    }
                    if img.is_some() {
                        return Err(Error::Graph(
                            "layer 0 (embedding) reads token ids, not an image".into(),
                        ));
                    }
                    if mask_zero {
                        if seq.is_none() {
                            return Err(Error::Graph(
                                "layer 0 (embedding with mask_zero) needs a sequence input \
                                 (Sequential::sequence): the mask marks padded steps"
                                    .into(),
                            ));
                        }
                        mask = Some((x, 0.0));
                    }
                    if let Some((t, f)) = seq {
                        seq = Some((t, f.saturating_mul(dim)));
                    }
                    b.embedding(x, vocab, dim, init, &name)?
                }
                Layer::LastStep => {
                    let (_, h) = seq.take().ok_or_else(|| {
                        Error::Graph(format!("layer {i} (last step) needs a sequence input"))
                    })?;
                    if mask.is_some() && !masked {
                        return Err(Error::Graph(format!(
                            "layer {i} (last step): the padding mask of embedding_mask_zero \
                             applies through a recurrent layer, and none comes before this \
                             layer (the last step would be padding)"
                        )));
                    }
                    mask = None;
                    b.last_step(x, h)?
                }
            };
        }
        if let Some((t, h)) = seq {
            return Err(Error::Graph(format!(
                "the model ends in a sequence [{t}, {h}]: add last_step() (a loss at every \
                 step is not supported)"
            )));
        }
        let mut graph = b.loss(x, self.loss.clone())?;
        crate::graph::autodiff::differentiate(&mut graph)?;
        Ok(graph)
    }
}
