//! The graph of ops. A model lowers to a forward graph through [`GraphBuilder`];
//! [`autodiff`] appends the backward nodes from per-op gradient rules; [`plan`] turns the
//! result, plus the clipping and optimizer updates, into a backend [`Program`].
//!
//! Every tensor is 2-D: `[rows, cols]`, where rows is the batch for activations.
//!
//! [`Program`]: crate::backend::Program

pub mod autodiff;
pub mod plan;

use crate::backend::Act;
use crate::error::{Error, Result};
use crate::nn::init::Init;
use crate::optim::Regularizer;
use crate::rng::stream;

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
    pub fn batch(cols: usize) -> Self {
        Shape {
            rows: Rows::Batch,
            cols,
        }
    }
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

/// A named part of a parameter with its initializer.
#[derive(Clone, Debug)]
pub struct Segment {
    pub name: String,
    pub len: usize,
    pub init: Init,
    /// The shape PyTorch gives this tensor when it is not [out, in] (conv weights).
    pub torch_shape: Option<Vec<usize>>,
}

/// A trainable parameter. `segments` name its parts (a batch-norm parameter holds
/// gamma then beta, named like PyTorch's `N.weight` and `N.bias`).
#[derive(Clone, Debug)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Shape,
    /// Whether weight decay and the session's default penalty apply (weights yes; biases
    /// and batch-norm parameters no).
    pub decay: bool,
    /// A penalty for this parameter alone (Keras' kernel_regularizer / bias_regularizer);
    /// it overrides the session's default and applies even when `decay` is false.
    pub regularizer: Option<Regularizer>,
    pub segments: Vec<Segment>,
}

impl ParamInfo {
    fn single(name: String, shape: Shape, init: Init, decay: bool) -> Self {
        let len = shape.numel(0);
        ParamInfo {
            segments: vec![Segment {
                name: name.clone(),
                len,
                init,
                torch_shape: None,
            }],
            name,
            shape,
            decay,
            regularizer: None,
        }
    }
}

/// Non-trainable persistent state (batch-norm running mean then running variance).
#[derive(Clone, Debug)]
pub struct StateInfo {
    pub name: String,
    pub len: usize,
    /// Initial value of each element.
    pub init: Vec<f32>,
}

/// The two dropout conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropoutKind {
    /// Training: y = x·mask/(1−p); inference: y = x (PyTorch, Keras).
    Inverted,
    /// Training: y = x·mask; inference: y = (1−p)·x (the original paper).
    Classic,
}

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
    /// share one mask bit (H·W for spatial dropout, 1 otherwise).
    Dropout {
        p: f32,
        stream: u32,
        kind: DropoutKind,
        group: usize,
    },
    /// Batch norm per channel over the batch (and the `spatial` positions of NCHW images).
    /// Inputs: x, gamma_beta. Outputs: y, saved stats.
    BatchNorm {
        eps: f32,
        momentum: f32,
        state: usize,
        spatial: usize,
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
    /// [batch·S rows, C] → [batch, C·S] (NCHW), + bias[c] when a bias input is given.
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
    /// Softmax cross-entropy (mean over the batch). Inputs: logits, labels. Outputs:
    /// dlogits (the seed of the backward pass) and per-row (loss, correct).
    SoftmaxXent,
    /// db = Σ_rows dy.
    BiasGrad,
    /// dx from y and dy.
    ActBwd(Act),
    /// Batch-norm backward. Inputs: x, dy, gamma_beta, saved. Outputs: dx, dgamma_beta.
    BatchNormBwd {
        spatial: usize,
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
    /// The SoftmaxXent node's row statistics.
    pub rowstats: Option<TensorId>,
    /// Gradient tensor of each parameter (same order as `params`).
    pub param_grads: Vec<Option<TensorId>>,
}

impl Graph {
    /// Input features.
    pub fn in_features(&self) -> usize {
        self.tensors[self.input].shape.cols
    }
    /// Classes of the softmax cross-entropy head (the logits' columns); 0 without one.
    pub fn classes(&self) -> usize {
        self.nodes[..self.n_forward]
            .iter()
            .find(|n| matches!(n.op, Op::SoftmaxXent))
            .map_or(0, |n| self.tensors[n.inputs[0]].shape.cols)
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
    pub fn shape(&self, t: TensorId) -> Shape {
        self.tensors[t].shape
    }
}

/// The functional builder: each method adds a node and returns its output tensor.
pub struct GraphBuilder {
    g: Graph,
    next_stream: u32,
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
        if total.is_none_or(|t| t > crate::limits::MAX_PARAMS) {
            let n = shape.checked_numel(0);
            return Err(Error::too_large(
                format!("parameter {}", info.name),
                format!("{:?}", shape.describe()),
                n.and_then(crate::limits::f32_bytes),
                format!(
                    "at most {} (2^24) parameters in the model, {} so far",
                    crate::limits::MAX_PARAMS,
                    self.g.param_count()
                ),
            ));
        }
        self.g.params.push(info);
        let pid = self.g.params.len() - 1;
        Ok(self.g.add_node(Op::Param(pid), vec![], &[shape])[0])
    }

    fn need_batch(&self, t: TensorId, ctx: &str) -> Result<usize> {
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
            },
            vec![x],
            &[s],
        )[0])
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
        let gb = self.param(ParamInfo {
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
        })?;
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

    /// Conv2d over an NCHW image: y[b, o] = Σ_{c,ky,kx} W[o, c, ky, kx]·x[b, c, ...] + bias[o],
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

    /// Augment an NCHW input batch (see [`crate::data::augment::Augment`]): random per-sample
    /// transforms in training, only the spec's standardization at inference.
    pub fn augment(
        &mut self,
        x: TensorId,
        spec: &crate::data::augment::Augment,
        chw: (usize, usize, usize),
    ) -> Result<TensorId> {
        spec.validate()?;
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
            len: crate::data::augment::SPEC_LEN,
            init: spec.spec(h, w),
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
                random: spec.is_random(),
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

    /// Softmax cross-entropy against the labels, averaged over the batch; ends the graph
    /// and derives the backward pass.
    pub fn softmax_cross_entropy(mut self, logits: TensorId) -> Result<Graph> {
        let c = self.need_batch(logits, "softmax cross-entropy logits")?;
        if c < 2 {
            return Err(Error::Shape {
                context: "softmax cross-entropy".into(),
                got: vec![0, c],
                expected: "at least 2 classes".into(),
            });
        }
        let labels = self.g.labels;
        let outs = self.g.add_node(
            Op::SoftmaxXent,
            vec![logits, labels],
            &[Shape::batch(c), Shape::batch(2)],
        );
        self.g.rowstats = Some(outs[1]);
        self.g.n_forward = self.g.nodes.len();
        autodiff::differentiate(&mut self.g)?;
        Ok(self.g)
    }
}
