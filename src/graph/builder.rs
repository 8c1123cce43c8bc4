//! The functional graph builder: each method adds forward nodes and returns the output
//! tensor, checking shapes and hyperparameters as it goes.

use super::init::Init;
use super::{DropoutKind, Geom2d, Graph, Op, ParamInfo, Rows, Segment, Shape, StateInfo, TensorId};
use crate::error::{Error, Result};
use crate::kernels::Act;
use crate::kernels::augment::SPEC_LEN;
use crate::kernels::loss::Loss;
use crate::optim::Regularizer;
use crate::rng::stream;

/// Options of a linear layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearOpts {
    pub out: usize,
    pub bias: bool,
    pub init: Init,
    /// Penalty on the weight (overrides the session default).
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the bias (biases have none by default).
    pub bias_regularizer: Option<Regularizer>,
    /// DropConnect probability on the weights (0 = off).
    pub dropconnect: f32,
}

impl LinearOpts {
    /// `out` features, with bias, He-normal weights, no own penalty, no DropConnect.
    pub fn new(out: usize) -> Self {
        LinearOpts {
            out,
            bias: true,
            init: Init::HE_NORMAL,
            kernel_regularizer: None,
            bias_regularizer: None,
            dropconnect: 0.0,
        }
    }
}

/// The functional builder: each method adds a node and returns its output tensor.
pub struct GraphBuilder {
    pub(super) g: Graph,
    pub(super) next_stream: u32,
}

impl GraphBuilder {
    /// Start a graph whose input batch has `features` columns.
    pub fn new(features: usize) -> Self {
        let mut g = Graph::default();
        g.input = g.add_node(Op::Input, vec![], &[Shape::batch(features)])[0];
        g.labels = g.add_node(Op::Labels, vec![], &[Shape::batch(1)])[0];
        GraphBuilder {
            g,
            next_stream: stream::OP_BASE,
        }
    }

    /// The input batch.
    pub fn input(&self) -> TensorId {
        self.g.input
    }

    /// The shape of tensor `t` (rows may be the batch).
    pub fn shape(&self, t: TensorId) -> Shape {
        self.g.shape(t)
    }

    /// A trainable parameter.
    pub fn param(&mut self, info: ParamInfo) -> Result<TensorId> {
        for seg in &info.segments {
            seg.init.validate()?;
        }
        if let Some(r) = &info.regularizer {
            r.validate()?;
        }
        // Checked before any caller allocates per-element data (batch-norm statistics).
        let shape = info.shape;
        let total = shape
            .checked_numel(0)
            .and_then(|n| n.checked_add(self.g.param_count()));
        if total.is_none_or(|t| t >= crate::limits::MAX_PARAMS) {
            let n = shape.checked_numel(0);
            return Err(Error::too_large(
                format!("parameter {}", info.name),
                format!("{:?}", shape.describe()),
                n.and_then(crate::limits::f32_bytes),
                format!(
                    "fewer than {} (2^24) parameters in the model, {} so far",
                    crate::limits::MAX_PARAMS,
                    self.g.param_count()
                ),
            ));
        }
        // The segments cover the tensor exactly (they are what is initialized, saved and
        // loaded), and every name is new (checkpoints and `set_param` look tensors up by it).
        let n = shape.numel(0);
        let covered = info
            .segments
            .iter()
            .try_fold(0usize, |a, seg| a.checked_add(seg.len));
        if covered != Some(n) {
            return Err(Error::Graph(format!(
                "parameter {}: its segments hold {} values, its shape {:?} holds {n}",
                info.name,
                covered.map_or("more than usize".into(), |c| c.to_string()),
                shape.describe()
            )));
        }
        let taken: Vec<&str> = self
            .g
            .params
            .iter()
            .flat_map(|p| {
                std::iter::once(p.name.as_str()).chain(p.segments.iter().map(|s| s.name.as_str()))
            })
            .collect();
        let mut mine: Vec<&str> = vec![];
        for name in
            std::iter::once(info.name.as_str()).chain(info.segments.iter().map(|s| s.name.as_str()))
        {
            // A single-segment parameter's segment carries the parameter's own name.
            let own = name == info.name && mine.contains(&name);
            if taken.contains(&name) || (mine.contains(&name) && !own) {
                return Err(Error::Graph(format!(
                    "the parameter name {name:?} is used twice; give each layer its own name"
                )));
            }
            mine.push(name);
        }
        self.g.params.push(info);
        let pid = self.g.params.len() - 1;
        Ok(self.g.add_node(Op::Param(pid), vec![], &[shape])[0])
    }

    pub(super) fn need_batch(&self, t: TensorId, ctx: &str) -> Result<usize> {
        if t >= self.g.tensors.len() {
            return Err(Error::Graph(format!(
                "{ctx}: tensor {t} is not in this graph (it has {} tensors)",
                self.g.tensors.len()
            )));
        }
        let s = self.g.shape(t);
        match s.rows {
            Rows::Batch => Ok(s.cols),
            Rows::Fixed(_) | Rows::BatchTimes(_) => Err(Error::Shape {
                context: ctx.into(),
                got: s.describe(),
                expected: "a batch of activations [batch, features]".into(),
            }),
        }
    }

    /// y = x·W + b with W [in, out] initialized by `init`, b zeros (when `bias`).
    pub fn linear(
        &mut self,
        x: TensorId,
        out: usize,
        init: Init,
        bias: bool,
        name: &str,
    ) -> Result<TensorId> {
        self.linear_with(
            x,
            &LinearOpts {
                bias,
                init,
                ..LinearOpts::new(out)
            },
            name,
        )
    }

    /// y = x·W' + b with every option: W' = W in general; with DropConnect p > 0,
    /// W' = W ⊙ mask/(1−p) in training (a fresh mask over the weights every step, shared by
    /// the batch) and W' = W at inference. Penalties set here override the session's.
    pub fn linear_with(&mut self, x: TensorId, o: &LinearOpts, name: &str) -> Result<TensorId> {
        let inf = self.need_batch(x, &format!("linear {name} input"))?;
        if o.out == 0 {
            return Err(Error::Hyperparameter {
                name: "linear.out_features",
                value: "0".into(),
                expected: ">= 1",
            });
        }
        let mut wi = ParamInfo::single(
            format!("{name}.weight"),
            Shape::fixed(inf, o.out),
            o.init,
            true,
        );
        wi.regularizer = o.kernel_regularizer;
        let mut w = self.param(wi)?;
        if o.dropconnect > 0.0 {
            w = self.dropout(w, o.dropconnect)?;
        }
        let mut inputs = vec![x, w];
        if o.bias {
            let mut b = ParamInfo::single(
                format!("{name}.bias"),
                Shape::fixed(1, o.out),
                Init::Zeros,
                false,
            );
            b.regularizer = o.bias_regularizer;
            inputs.push(self.param(b)?);
        }
        Ok(self.g.add_node(Op::Linear, inputs, &[Shape::batch(o.out)])[0])
    }

    /// C = op(A)·op(B) for any two tensors (the general building block).
    pub fn matmul(&mut self, a: TensorId, b: TensorId, ta: bool, tb: bool) -> Result<TensorId> {
        let (sa, sb) = (self.g.shape(a), self.g.shape(b));
        let dims = |s: Shape, t: bool| match (s.rows, t) {
            (r, false) => (r, Rows::Fixed(s.cols)),
            (r, true) => (Rows::Fixed(s.cols), r),
        };
        let (m, ka) = dims(sa, ta);
        let (kb, n) = dims(sb, tb);
        let err = || Error::Shape {
            context: "matmul".into(),
            got: [sa.describe(), sb.describe()].concat(),
            expected: "op(A) [M, K] and op(B) [K, N], with the batch only as M".into(),
        };
        let (Rows::Fixed(n), true) = (n, ka == kb) else {
            return Err(err());
        };
        if ka == Rows::Batch {
            return Err(err());
        }
        Ok(self.g.add_node(
            Op::MatMul { ta, tb },
            vec![a, b],
            &[Shape { rows: m, cols: n }],
        )[0])
    }

    /// y = f(x).
    pub fn act(&mut self, x: TensorId, act: Act) -> TensorId {
        let s = self.g.shape(x);
        self.g.add_node(Op::Act(act), vec![x], &[s])[0]
    }

    /// `max(x, 0)`, elementwise.
    pub fn relu(&mut self, x: TensorId) -> TensorId {
        self.act(x, Act::Relu)
    }

    /// Inverted dropout: y = x·m/(1-p) in training, y = x at inference.
    pub fn dropout(&mut self, x: TensorId, p: f32) -> Result<TensorId> {
        self.dropout_kind(x, p, DropoutKind::Inverted)
    }

    /// Dropout of either kind (see [`DropoutKind`]).
    pub fn dropout_kind(&mut self, x: TensorId, p: f32, kind: DropoutKind) -> Result<TensorId> {
        self.dropout_grouped(x, p, kind, 1)
    }

    /// Spatial dropout (Dropout2d): whole channels of an NCHW image (groups of H·W values)
    /// dropped together, inverted scaling.
    pub fn dropout2d(&mut self, x: TensorId, p: f32, hw: usize) -> Result<TensorId> {
        self.dropout_grouped(x, p, DropoutKind::Inverted, hw.max(1))
    }

    fn dropout_grouped(
        &mut self,
        x: TensorId,
        p: f32,
        kind: DropoutKind,
        group: usize,
    ) -> Result<TensorId> {
        self.dropout_draws(x, p, kind, group, 0)
    }

    /// Dropout whose draws are grouped (`group`) or shared across time steps (`period`),
    /// see [`Op::Dropout`].
    pub(super) fn dropout_draws(
        &mut self,
        x: TensorId,
        p: f32,
        kind: DropoutKind,
        group: usize,
        period: usize,
    ) -> Result<TensorId> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Hyperparameter {
                name: "dropout.p",
                value: p.to_string(),
                expected: "0 <= p < 1",
            });
        }
        let s = self.g.shape(x);
        let stream = self.next_stream;
        self.next_stream += 1;
        Ok(self.g.add_node(
            Op::Dropout {
                p,
                stream,
                kind,
                group,
                period,
            },
            vec![x],
            &[s],
        )[0])
    }

    /// A normalization layer's learnable affine `[γ (ones), β (zeros)]` over `c` values,
    /// named `<name>.weight` / `<name>.bias` as PyTorch's, not decayed.
    fn affine(&mut self, c: usize, name: &str) -> Result<TensorId> {
        self.param(ParamInfo {
            name: format!("{name}.weight+bias"),
            shape: Shape::fixed(2, c),
            decay: false,
            regularizer: None,
            segments: vec![
                Segment {
                    name: format!("{name}.weight"),
                    len: c,
                    init: Init::Constant(1.0),
                    torch_shape: None,
                },
                Segment {
                    name: format!("{name}.bias"),
                    len: c,
                    init: Init::Zeros,
                    torch_shape: None,
                },
            ],
        })
    }

    /// Batch norm over the batch for each column: learnable gamma (ones) and beta (zeros),
    /// running mean (zeros) and variance (ones) with PyTorch's momentum convention.
    pub fn batch_norm(
        &mut self,
        x: TensorId,
        eps: f32,
        momentum: f32,
        name: &str,
    ) -> Result<TensorId> {
        let c = self.need_batch(x, &format!("batch norm {name} input"))?;
        self.batch_norm_spatial(x, c, 1, eps, momentum, name)
    }

    /// BatchNorm2d: per-channel statistics over the batch and the H·W positions of an NCHW
    /// image with `c` channels.
    pub fn batch_norm2d(
        &mut self,
        x: TensorId,
        c: usize,
        hw: usize,
        eps: f32,
        momentum: f32,
        name: &str,
    ) -> Result<TensorId> {
        let f = self.need_batch(x, &format!("batch norm {name} input"))?;
        if c * hw != f || c == 0 {
            return Err(Error::Shape {
                context: format!("batch norm 2d {name}"),
                got: vec![0, f],
                expected: format!("[batch, {c}·{hw}]"),
            });
        }
        self.batch_norm_spatial(x, c, hw, eps, momentum, name)
    }

    fn batch_norm_spatial(
        &mut self,
        x: TensorId,
        c: usize,
        spatial: usize,
        eps: f32,
        momentum: f32,
        name: &str,
    ) -> Result<TensorId> {
        if !(eps > 0.0) {
            return Err(Error::Hyperparameter {
                name: "batch_norm.eps",
                value: eps.to_string(),
                expected: "eps > 0",
            });
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::Hyperparameter {
                name: "batch_norm.momentum",
                value: momentum.to_string(),
                expected: "0 <= momentum <= 1",
            });
        }
        let gb = self.affine(c, name)?;
        self.g.states.push(StateInfo {
            name: format!("{name}.running_mean+running_var"),
            len: 2 * c,
            init: [vec![0.0; c], vec![1.0; c]].concat(),
        });
        let state = self.g.states.len() - 1;
        let outs = self.g.add_node(
            Op::BatchNorm {
                eps,
                momentum,
                state,
                spatial,
            },
            vec![x, gb],
            &[Shape::batch(c * spatial), Shape::fixed(2, c)],
        );
        Ok(outs[0])
    }

    /// Layer norm over each row's features (PyTorch's `LayerNorm(features, eps)` with a
    /// learnable affine): `y = γ·(x − μ)/sqrt(σ² + eps) + β`, μ and the biased σ² over the
    /// row; gamma (ones) and beta (zeros) are excluded from weight decay, as batch norm's.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for eps not > 0; [`Error::Shape`] for an input that is not
    /// a batch.
    pub fn layer_norm(&mut self, x: TensorId, eps: f32, name: &str) -> Result<TensorId> {
        let f = self.need_batch(x, &format!("layer norm {name} input"))?;
        if !(eps > 0.0) {
            return Err(Error::Hyperparameter {
                name: "layer_norm.eps",
                value: eps.to_string(),
                expected: "eps > 0",
            });
        }
        let gb = self.affine(f, name)?;
        let outs = self.g.add_node(
            Op::LayerNorm { eps },
            vec![x, gb],
            &[Shape::batch(f), Shape::batch(2)],
        );
        Ok(outs[0])
    }

    /// An embedding table over token ids of the model's input — the whole input, or some
    /// of its columns taken with [`GraphBuilder::columns`] (PyTorch's
    /// `nn.Embedding(vocab, dim)`, Keras' `Embedding`): each of the L ids per sample
    /// becomes the `dim` values of its row of W `[vocab, dim]`, `y [batch, L·dim]`
    /// (`y[n, j·dim + d] = W[x[n, j], d]`). For Keras' `mask_zero`, pass the ids as the
    /// mask source of the recurrent layer after it ([`GraphBuilder::rnn_full`] with
    /// `mask_value` 0). The ids are f32 integers in `[0, vocab)`;
    /// every batch is checked on the host before upload ([`Error::TokenId`] names the
    /// first one out of range). W is named `<name>.weight`, stored as PyTorch's, decayed
    /// like other weights, and initialized by `init` (PyTorch's default: N(0, 1)). Its
    /// gradient sums the rows of dy by id in a fixed order (deterministic, no atomics).
    ///
    /// # Errors
    /// [`Error::Graph`] when `x` is neither the model's input nor columns of it;
    /// [`Error::Hyperparameter`] for
    /// a vocabulary or dimension of 0; [`Error::TooLarge`] when the table exceeds the
    /// parameter limit.
    pub fn embedding(
        &mut self,
        x: TensorId,
        vocab: usize,
        dim: usize,
        init: Init,
        name: &str,
    ) -> Result<TensorId> {
        let cols = self.need_batch(x, &format!("embedding {name} input"))?;
        if self.g.input_columns(x).is_none() {
            return Err(Error::Graph(format!(
                "embedding {name} reads token ids from the model's input or columns of it \
                 (GraphBuilder::columns) only: its input, tensor {x}, is computed"
            )));
        }
        for (what, v) in [("embedding.vocab", vocab), ("embedding.dim", dim)] {
            if v == 0 {
                return Err(Error::Hyperparameter {
                    name: what,
                    value: v.to_string(),
                    expected: "at least 1",
                });
            }
        }
        let out = cols.checked_mul(dim).ok_or_else(|| Error::Hyperparameter {
            name: "embedding.dim",
            value: format!("{dim} × {cols} ids per sample"),
            expected: "an output row within usize",
        })?;
        let w = self.param(ParamInfo::single(
            format!("{name}.weight"),
            Shape::fixed(vocab, dim),
            init,
            true,
        ))?;
        Ok(self.g.add_node(
            Op::Embedding { vocab, dim },
            vec![x, w],
            &[Shape::batch(out)],
        )[0])
    }

    /// Conv2d over an NCHW image: `y[b, o] = Σ_{c,ky,kx} W[o, c, ky, kx]·x[b, c, ...] + bias[o]`,
    /// computed as im2col → matmul → NCHW permute with the bias fused. The weight is stored
    /// [C·KH·KW, out] (PyTorch's [out, C, KH, KW] transposed); He-normal by `init`.
    pub fn conv2d(
        &mut self,
        x: TensorId,
        geom: Geom2d,
        out: usize,
        init: Init,
        name: &str,
    ) -> Result<TensorId> {
        let f = self.need_batch(x, &format!("conv {name} input"))?;
        if f != geom.c * geom.h * geom.w || out == 0 {
            return Err(Error::Shape {
                context: format!("conv {name}"),
                got: vec![0, f],
                expected: format!(
                    "[batch, {}·{}·{}] and out_channels >= 1",
                    geom.c, geom.h, geom.w
                ),
            });
        }
        let k = geom.c * geom.kh * geom.kw;
        let s = geom.oh * geom.ow;
        if out.checked_mul(s).is_none() {
            return Err(Error::too_large(
                format!("conv {name} output channels"),
                out,
                None,
                format!("out·{s} output pixels to fit in usize"),
            ));
        }
        let mut wi = ParamInfo::single(format!("{name}.weight"), Shape::fixed(k, out), init, true);
        wi.segments[0].torch_shape = Some(vec![out, geom.c, geom.kh, geom.kw]);
        let w = self.param(wi)?;
        let b = self.param(ParamInfo::single(
            format!("{name}.bias"),
            Shape::fixed(1, out),
            Init::Zeros,
            false,
        ))?;
        let cols = self.g.add_node(
            Op::Im2Col(geom),
            vec![x],
            &[Shape {
                rows: Rows::BatchTimes(s),
                cols: k,
            }],
        )[0];
        let y = self.g.add_node(
            Op::MatMul {
                ta: false,
                tb: false,
            },
            vec![cols, w],
            &[Shape {
                rows: Rows::BatchTimes(s),
                cols: out,
            }],
        )[0];
        Ok(self.g.add_node(
            Op::ToNchw {
                spatial: s,
                channels: out,
            },
            vec![y, b],
            &[Shape::batch(out * s)],
        )[0])
    }

    /// Augment an NCHW input batch `x [batch, c·h·w]` (`chw` = (c, h, w)) by the encoded
    /// `spec` ([`crate::kernels::augment::slot`] gives its layout): random per-sample
    /// transforms in training when `random`, only the spec's standardization at
    /// inference. Crate-private: the spec must be valid, so users go through
    /// `nn::augment::Augment::add_to`, which validates and encodes it.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` is not `[batch, c·h·w]`.
    pub(crate) fn augment(
        &mut self,
        x: TensorId,
        spec: [f32; SPEC_LEN],
        random: bool,
        chw: (usize, usize, usize),
    ) -> Result<TensorId> {
        let (c, h, w) = chw;
        let f = self.need_batch(x, "augment input")?;
        if f != c * h * w {
            return Err(Error::Shape {
                context: "augment".into(),
                got: vec![0, f],
                expected: format!("[batch, {c}·{h}·{w}]"),
            });
        }
        self.g.states.push(StateInfo {
            name: "augment.spec".into(),
            len: SPEC_LEN,
            init: spec.to_vec(),
        });
        let state = self.g.states.len() - 1;
        let stream = self.next_stream;
        self.next_stream += 2;
        let sh = Shape::batch(f);
        Ok(self.g.add_node(
            Op::Augment {
                c,
                h,
                w,
                state,
                stream,
                random,
            },
            vec![x],
            &[sh, sh],
        )[0])
    }

    /// Max pooling (no padding) over an NCHW image.
    pub fn max_pool(&mut self, x: TensorId, geom: Geom2d) -> Result<TensorId> {
        self.pool(x, geom, true)
    }

    /// Average pooling (no padding) over an NCHW image.
    pub fn avg_pool(&mut self, x: TensorId, geom: Geom2d) -> Result<TensorId> {
        self.pool(x, geom, false)
    }

    fn pool(&mut self, x: TensorId, geom: Geom2d, max: bool) -> Result<TensorId> {
        let f = self.need_batch(x, "pooling input")?;
        if f != geom.c * geom.h * geom.w || geom.pad != 0 {
            return Err(Error::Shape {
                context: "pooling".into(),
                got: vec![0, f],
                expected: format!("[batch, {}·{}·{}] without padding", geom.c, geom.h, geom.w),
            });
        }
        let out = Shape::batch(geom.c * geom.oh * geom.ow);
        Ok(if max {
            self.g.add_node(Op::MaxPool(geom), vec![x], &[out, out])[0]
        } else {
            self.g.add_node(Op::AvgPool(geom), vec![x], &[out])[0]
        })
    }

    /// a + b (same shapes).
    pub fn add(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        let (sa, sb) = (self.g.shape(a), self.g.shape(b));
        if sa != sb {
            return Err(Error::Shape {
                context: "add".into(),
                got: [sa.describe(), sb.describe()].concat(),
                expected: "two equal shapes".into(),
            });
        }
        Ok(self.g.add_node(Op::Add, vec![a, b], &[sa])[0])
    }

    /// Softmax cross-entropy against the labels, averaged over the batch; ends the forward
    /// graph. Its backward pass is appended by [`super::autodiff::differentiate`] (which
    /// `Sequential::build` and `Session::new` call). The same as
    /// `loss(logits, Loss::default())`.
    pub fn softmax_cross_entropy(self, logits: TensorId) -> Result<Graph> {
        self.loss(logits, Loss::default())
    }

    /// End the forward graph in `loss` over `outputs` `[batch, K]` ([`Loss`] gives each
    /// formula and the PyTorch class it follows). The label rows become `[batch, T + 2]`:
    /// T targets (1 class index for cross-entropy, K values otherwise), the sample weight
    /// and the gradient factor (written by the session). Class weights or `pos_weight`
    /// become a non-trainable state (`loss.class_weights`, `loss.pos_weight`).
    ///
    /// # Errors
    /// [`Error::Shape`]: outputs that are not a batch of activations, cross-entropy over
    /// fewer than 2 classes. [`Error::Hyperparameter`]: label smoothing outside [0, 1], a
    /// Huber δ that is not finite and > 0, a weight vector of the wrong length or with a
    /// negative or non-finite entry.
    pub fn loss(mut self, outputs: TensorId, loss: Loss) -> Result<Graph> {
        let k = self.need_batch(outputs, &format!("{} input", loss.name()))?;
        match &loss {
            Loss::CrossEntropy {
                label_smoothing, ..
            } => {
                if k < 2 {
                    return Err(Error::Shape {
                        context: "softmax cross-entropy".into(),
                        got: vec![0, k],
                        expected: "at least 2 classes (use bce_with_logits for one output)".into(),
                    });
                }
                if !(*label_smoothing >= 0.0 && *label_smoothing <= 1.0) {
                    return Err(Error::Hyperparameter {
                        name: "loss.label_smoothing",
                        value: label_smoothing.to_string(),
                        expected: "0 <= label_smoothing <= 1 (PyTorch's range)",
                    });
                }
            }
            Loss::Huber { delta } if !(delta.is_finite() && *delta > 0.0) => {
                return Err(Error::Hyperparameter {
                    name: "loss.delta",
                    value: delta.to_string(),
                    expected: "a finite Huber threshold > 0",
                });
            }
            _ => {}
        }
        let mut weights = None;
        if let Some(w) = loss.weights() {
            let (name, what) = match loss {
                Loss::CrossEntropy { .. } => ("loss.class_weights", "one weight per class"),
                _ => ("loss.pos_weight", "one weight per output"),
            };
            if w.len() != k {
                return Err(Error::Hyperparameter {
                    name,
                    value: format!("{} values for {k} outputs", w.len()),
                    expected: what,
                });
            }
            let (lo, hi) = crate::limits::WEIGHT_RANGE;
            if let Some(v) = w
                .iter()
                .find(|v| !(v.is_finite() && (**v == 0.0 || (lo..=hi).contains(*v))))
            {
                return Err(Error::Hyperparameter {
                    name,
                    value: v.to_string(),
                    expected: "weights of 0 or in [1e-30, 1e30]",
                });
            }
            if w.iter().all(|&v| v == 0.0) {
                return Err(Error::Hyperparameter {
                    name,
                    value: "all zero".into(),
                    expected: "at least one weight > 0 (all zero, nothing would be learned)",
                });
            }
            self.g.states.push(StateInfo {
                name: name.into(),
                len: k,
                init: w.to_vec(),
            });
            weights = Some(self.g.states.len() - 1);
        }
        let t = loss.targets(k);
        let labels = self.g.labels;
        self.g.tensors[labels].shape = Shape::batch(t + 2);
        let outs = self.g.add_node(
            Op::Loss { loss, weights },
            vec![outputs, labels],
            &[Shape::batch(k), Shape::batch(3)],
        );
        self.g.rowstats = Some(outs[1]);
        self.g.n_forward = self.g.nodes.len();
        Ok(self.g)
    }
}
