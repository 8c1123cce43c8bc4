//! Lowering a differentiated [`Graph`] to a backend [`Program`] for one mode and batch
//! size, with buffers laid out once ([`Layout`]):
//!
//! - parameters, their gradients, momentum and per-element weight-decay coefficients live
//!   in four flat buffers with the same layout, so clipping and the optimizer are single
//!   dispatches over all parameters;
//! - intermediates (activations, their gradients, saved statistics) go to a pool of
//!   buffers assigned by lifetime: a buffer is reused once the last reader of its previous
//!   tensor has run, so tensors whose lifetimes do not overlap share memory.

use super::{DropoutKind, Graph, Op, TensorId};
use crate::backend::cpu::matmul;
use crate::backend::{BufferSpec, Instr, Kernel, Program, Slice, fbits};
use crate::error::{Error, Result};
use crate::optim::{LossScale, Optimizer, Precision};
use crate::rng::dropout_threshold;

/// Fixed buffer indices.
pub mod buf {
    pub const PARAMS: usize = 0;
    pub const GRADS: usize = 1;
    pub const VELOCITY: usize = 2;
    pub const WD: usize = 3;
    pub const STATE: usize = 4;
    pub const INPUT: usize = 5;
    pub const LABELS: usize = 6;
    pub const METRICS: usize = 7;
    pub const PARTIALS: usize = 8;
    pub const DUMMY: usize = 9;
    /// Per-element L2 penalty coefficients a (penalty (a/2)·w²).
    pub const L2C: usize = 10;
    /// Per-element L1 penalty coefficients b (penalty b·|w|).
    pub const L1C: usize = 11;
    /// Adam's second moments (one element when the optimizer is SGD).
    pub const M2: usize = 12;
    /// Probe statistics, one slot of (Σ x, Σ x², zeros, n) per [`super::Probe`].
    pub const STATS: usize = 13;
    /// The parameters as packed f16 (mixed precision; one element otherwise).
    pub const PARAMS_F16: usize = 14;
    pub const POOL_BASE: usize = 15;
}

/// Number of partial sums in the global-norm reduction.
pub const NORM_PARTIALS: usize = 1024;

/// Training (batch statistics, dropout, backward pass, update), gradients only (training
/// forward and backward with penalties and clipping, no update: for gradient checks),
/// inference, or Monte Carlo dropout inference (running statistics, dropout sampling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Train,
    Grad,
    Eval,
    McEval,
    /// Like `Grad`, plus device-side statistics of every activation, gradient and weight
    /// (see [`probe_slots`]).
    Probe,
}

impl Mode {
    /// Forward pass only, batch norm with running statistics.
    pub fn inference(self) -> bool {
        matches!(self, Mode::Eval | Mode::McEval)
    }
}

/// Where every persistent tensor lives, and the pool of intermediate buffers.
#[derive(Clone, Debug)]
pub struct Layout {
    pub align: usize,
    pub max_batch: usize,
    /// Offset of each parameter in the flat buffers (aligned).
    pub param_off: Vec<usize>,
    pub params_len: usize,
    pub state_off: Vec<usize>,
    pub state_len: usize,
    /// Capacity of each pool buffer, in elements.
    pub pool: Vec<usize>,
    /// Once programs are loaded the pool is frozen: existing buffers keep their sizes (they
    /// are bound), later programs reuse them and may only append new ones.
    pub frozen: bool,
    /// Whether the optimizer keeps a second moment (Adam).
    pub second_moment: bool,
    /// Number of probe statistics slots.
    pub stats_slots: usize,
    /// Mixed precision (f16 matmul operands, dynamic loss scaling), or None for f32.
    pub mixed: Option<LossScale>,
}

/// Words of the clip info (see [`Layout::clip_off`]); index 7 counts skipped steps.
pub const CLIP_INFO: usize = 8;
/// Index of the count of skipped steps (non-finite gradient) in the clip info.
pub const CLIP_SKIPPED: usize = 7;

impl Layout {
    pub fn new(g: &Graph, align: usize, max_batch: usize) -> Result<Self> {
        Self::with_precision(g, align, max_batch, Precision::F32)
    }

    /// A layout for `precision`. Mixed precision doubles the alignment, so that every
    /// parameter's packed f16 copy (at half its offset) is still a bindable range.
    pub fn with_precision(
        g: &Graph,
        align: usize,
        max_batch: usize,
        precision: Precision,
    ) -> Result<Self> {
        precision.validate()?;
        let (align, mixed) = match precision {
            Precision::F32 => (align, None),
            Precision::Mixed(l) => (2 * align, Some(l)),
        };
        if max_batch == 0 {
            return Err(Error::Hyperparameter {
                name: "batch_size",
                value: "0".into(),
                expected: ">= 1",
            });
        }
        let up = |x: usize| x.div_ceil(align) * align;
        let mut off = 0;
        let mut param_off = vec![];
        for p in &g.params {
            param_off.push(off);
            off = up(off + p.shape.numel(0));
        }
        let params_len = off.max(1);
        if params_len >= 1 << 24 {
            return Err(Error::Graph(format!(
                "{params_len} parameters; at most 2^24 are supported"
            )));
        }
        crate::limits::check_max_batch(g, max_batch, params_len)?;
        let mut off = 0;
        let mut state_off = vec![];
        for s in &g.states {
            state_off.push(off);
            off = up(off + s.len);
        }
        Ok(Layout {
            align,
            max_batch,
            param_off,
            params_len,
            state_off,
            state_len: off.max(1),
            pool: vec![],
            frozen: false,
            second_moment: false,
            stats_slots: probe_slots(g).len(),
            mixed,
        })
    }

    /// The precision this layout was made for.
    pub fn precision(&self) -> Precision {
        self.mixed.map_or(Precision::F32, Precision::Mixed)
    }

    /// Offset of the evaluation metrics slot in the METRICS buffer (train slot at 0).
    pub fn eval_metrics_off(&self) -> usize {
        self.align.max(4)
    }

    /// Offset of the clip info in the METRICS buffer, so that one readback returns every
    /// device-side metric: [`CLIP_INFO`] words (pre-clip norm, clip scale, penalty, skip,
    /// lr, Adam's bias corrections bc1 and bc2, skipped steps in total; shaders/clip.wgsl).
    pub fn clip_off(&self) -> usize {
        2 * self.align.max(4)
    }

    /// Distance between probe statistics slots (a binding offset must be aligned).
    pub fn stats_stride(&self) -> usize {
        self.align.max(4)
    }

    /// Offset of the loss-scaling state (S, 1/S, finite steps in a row, skipped steps in
    /// total) in the METRICS buffer (read back with the metrics; unused in f32), aligned
    /// like the other slots because kernels bind it on its own.
    pub fn amp_off(&self) -> usize {
        self.clip_off() + CLIP_INFO.next_multiple_of(self.align.max(4))
    }

    /// Length of the METRICS buffer.
    pub fn metrics_len(&self) -> usize {
        self.amp_off() + 4
    }

    /// The buffers of this layout.
    pub fn specs(&self, g: &Graph) -> Vec<BufferSpec> {
        let inf = g.in_features();
        let mut v: Vec<BufferSpec> = [
            ("params", self.params_len),
            ("grads", self.params_len),
            ("velocity", self.params_len),
            ("weight_decay", self.params_len),
            ("state", self.state_len),
            ("input", self.max_batch * inf),
            ("labels", self.max_batch),
            ("metrics", self.metrics_len()),
            ("norm_partials", 2 * NORM_PARTIALS),
            ("dummy", 4),
            ("l2_coefficients", self.params_len),
            ("l1_coefficients", self.params_len),
            (
                "second_moment",
                if self.second_moment {
                    self.params_len
                } else {
                    1
                },
            ),
            ("probe_stats", self.stats_slots.max(1) * self.stats_stride()),
            (
                "params_f16",
                if self.mixed.is_some() {
                    self.params_len / 2
                } else {
                    1
                },
            ),
        ]
        .iter()
        .map(|&(n, len)| BufferSpec {
            name: n.into(),
            len,
        })
        .collect();
        for (i, &len) in self.pool.iter().enumerate() {
            v.push(BufferSpec {
                name: format!("pool{i}"),
                len,
            });
        }
        v
    }

    /// Bytes of all buffers.
    pub fn total_bytes(&self, g: &Graph) -> usize {
        self.specs(g).iter().map(|s| s.len * 4).sum()
    }
}

/// What a probe statistics slot describes.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    /// The output of the k-th forward op with a batch dimension (for a `Sequential`, the
    /// k-th layer), named `k.kind`.
    Activation(TensorId, String),
    /// The gradient of parameter `pid` (penalties and value clipping included, before the
    /// global-norm scale).
    ParamGrad(usize),
    /// The weights of parameter `pid`.
    ParamWeight(usize),
}

/// The probe's slots, in a fixed order: activations, then (gradient, weight) per parameter.
pub fn probe_slots(g: &Graph) -> Vec<Probe> {
    let mut v = vec![];
    let mut k = 0;
    for node in &g.nodes[..g.n_forward] {
        let kind = match node.op {
            Op::Linear => "linear",
            Op::MatMul { .. } => "matmul",
            Op::Act(crate::backend::Act::Relu) => "relu",
            Op::Act(crate::backend::Act::Tanh) => "tanh",
            Op::Act(crate::backend::Act::Sigmoid) => "sigmoid",
            Op::Dropout { .. } => "dropout",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Add => "add",
            Op::ToNchw { .. } => "conv2d",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            _ => continue,
        };
        let out = node.outputs[0];
        if g.shape(out).rows == super::Rows::Batch {
            v.push(Probe::Activation(out, format!("{k}.{kind}")));
            k += 1;
        }
    }
    for pid in 0..g.params.len() {
        v.push(Probe::ParamGrad(pid));
        v.push(Probe::ParamWeight(pid));
    }
    v
}

#[derive(Clone, Copy, Debug)]
enum Operand {
    T(TensorId),
    /// The packed f16 copy of a tensor (mixed precision).
    H(TensorId),
    Fixed(Slice),
}

struct Pre {
    kernel: Kernel,
    p: [u32; 16],
    ins: Vec<Operand>,
    outs: Vec<Operand>,
}

/// Peephole fusion of ReLU and dropout, one dispatch instead of two each way:
/// - ActFwd(ReLU) x → r, then Dropout r → y becomes ReluDropout x → y;
/// - in training, Dropout dy → dr, then ActBwd(ReLU) (r, dr) → dx becomes
///   DropoutReluBwd (y, dy) → dx, which needs neither r nor the mask (dx = s·[y > 0]·dy).
///
/// Applied only when r has no other reader than those two (and dr none but the ReLU
/// backward), so r is never stored at all.
fn fuse_relu_dropout(pre: &mut Vec<Pre>, root: &dyn Fn(TensorId) -> TensorId) {
    let same = |a: &Operand, b: &Operand| match (a, b) {
        (Operand::T(x), Operand::T(y)) => root(*x) == root(*y),
        _ => false,
    };
    let relu = crate::backend::Act::Relu;
    let readers = |pre: &[Pre], x: &Operand| -> Vec<usize> {
        (0..pre.len())
            .filter(|&j| pre[j].ins.iter().any(|o| same(o, x)))
            .collect()
    };
    let mut i = 0;
    while i + 1 < pre.len() {
        let (a, b) = (&pre[i], &pre[i + 1]);
        let pair = a.kernel == Kernel::ActFwd(relu)
            && b.kernel == Kernel::Dropout
            && a.p[0] == b.p[0]
            && same(&a.outs[0], &b.ins[0]);
        if !pair {
            i += 1;
            continue;
        }
        // Every reader of r but the dropout must be a ReLU backward fed by the backward
        // dropout (same mask parameters) right before it, whose output nothing else reads.
        let r = &pre[i].outs[0];
        let mut bwd = vec![];
        let mut ok = true;
        for j in readers(pre, r).into_iter().filter(|&j| j != i + 1) {
            let fits = j > i + 1
                && pre[j].kernel == Kernel::ActBwd(relu)
                && same(&pre[j].ins[0], r)
                && !same(&pre[j].ins[1], r)
                && pre[j - 1].kernel == Kernel::Dropout
                && pre[j - 1].p == pre[i + 1].p
                && same(&pre[j - 1].outs[0], &pre[j].ins[1])
                && readers(pre, &pre[j - 1].outs[0]) == [j];
            ok &= fits;
            bwd.push(j);
        }
        if !ok {
            i += 1;
            continue;
        }
        let y = pre[i + 1].outs[0].clone_op();
        // Backward pairs first (they come later, so the indices above stay valid).
        for &j in bwd.iter().rev() {
            let act = pre.remove(j);
            let drop = &mut pre[j - 1];
            let dy = drop.ins[0].clone_op();
            drop.kernel = Kernel::DropoutReluBwd;
            drop.ins = vec![y.clone_op(), dy];
            drop.outs = vec![act.outs[0].clone_op()];
        }
        let drop = pre.remove(i + 1);
        let act = &mut pre[i];
        act.kernel = Kernel::ReluDropout;
        act.p = drop.p;
        act.outs = drop.outs;
        i += 1;
    }
}

/// The convolution epilogue takes the ReLU after it: ToNchw z → ActFwd(ReLU) z → r becomes
/// ToNchw{relu} → r when nothing else reads z (the ReLU backward reads r, not z).
fn fuse_conv_relu(pre: &mut Vec<Pre>, root: &dyn Fn(TensorId) -> TensorId) {
    let same = |a: &Operand, b: &Operand| match (a, b) {
        (Operand::T(x), Operand::T(y)) => root(*x) == root(*y),
        _ => false,
    };
    let relu = crate::backend::Act::Relu;
    let mut i = 0;
    while i + 1 < pre.len() {
        let fits = matches!(pre[i].kernel, Kernel::ToNchw { relu: false, .. })
            && pre[i + 1].kernel == Kernel::ActFwd(relu)
            && same(&pre[i].outs[0], &pre[i + 1].ins[0])
            && (0..pre.len())
                .filter(|&j| pre[j].ins.iter().any(|o| same(o, &pre[i].outs[0])))
                .eq([i + 1]);
        if fits {
            let act = pre.remove(i + 1);
            let conv = &mut pre[i];
            if let Kernel::ToNchw { bias, .. } = conv.kernel {
                conv.kernel = Kernel::ToNchw { bias, relu: true };
            }
            conv.p[14] = 1;
            conv.outs = act.outs;
        }
        i += 1;
    }
}

impl Operand {
    fn clone_op(&self) -> Operand {
        *self
    }
}

/// Mixed precision: every matmul reads packed f16 operands ([`Kernel::CastHalf`]). The
/// parameters are cast once, at the start of the program, into PARAMS_F16; any other
/// operand is cast right before the first matmul that reads it, and that f16 copy serves
/// every later matmul (the forward activation kept for the weight gradient, a gradient
/// feeding both dW and dX), so the f32 original can be freed early.
fn to_half(
    pre: &mut Vec<Pre>,
    home: &[Option<Slice>],
    root: &dyn Fn(TensorId) -> TensorId,
    numel: &dyn Fn(TensorId) -> usize,
    n_params: usize,
) -> Result<()> {
    let mut out = Vec::with_capacity(pre.len() + 8);
    let mut p = [0u32; 16];
    p[0] = n_params as u32;
    out.push(Pre {
        kernel: Kernel::CastHalf,
        p,
        ins: vec![fixed(buf::PARAMS, 0, n_params)],
        outs: vec![fixed(buf::PARAMS_F16, 0, n_params / 2)],
    });
    let mut cast = std::collections::HashSet::new();
    for mut pr in pre.drain(..) {
        if let Kernel::MatMul { ta, tb, bias, .. } = pr.kernel {
            for j in 0..2 {
                let Operand::T(x) = pr.ins[j] else {
                    return Err(Error::Graph(format!(
                        "mixed precision: matmul operand {:?} has no f16 copy",
                        pr.ins[j]
                    )));
                };
                let r = root(x);
                match home[r] {
                    Some(s) if s.buf == buf::PARAMS => {
                        pr.ins[j] = fixed(buf::PARAMS_F16, s.off / 2, s.len.div_ceil(2));
                    }
                    _ => {
                        if cast.insert(r) {
                            let mut q = [0u32; 16];
                            q[0] = numel(r) as u32;
                            out.push(Pre {
                                kernel: Kernel::CastHalf,
                                p: q,
                                ins: vec![Operand::T(r)],
                                outs: vec![Operand::H(r)],
                            });
                        }
                        pr.ins[j] = Operand::H(r);
                    }
                }
            }
            pr.kernel = Kernel::MatMul {
                ta,
                tb,
                bias,
                half: true,
            };
            pr.p[12] = 1;
        }
        out.push(pr);
    }
    *pre = out;
    Ok(())
}

fn fixed(buf: usize, off: usize, len: usize) -> Operand {
    Operand::Fixed(Slice { buf, off, len })
}

/// Compile `g` for `mode` at batch size `batch` (≤ `layout.max_batch`).
pub fn compile(
    g: &Graph,
    layout: &mut Layout,
    mode: Mode,
    batch: usize,
    opt: &Optimizer,
) -> Result<Program> {
    if batch == 0 || batch > layout.max_batch {
        return Err(Error::Shape {
            context: "batch".into(),
            got: vec![batch],
            expected: format!("1..={}", layout.max_batch),
        });
    }
    let n_nodes = if mode.inference() {
        g.n_forward
    } else {
        g.nodes.len()
    };
    let numel = |t: TensorId| g.shape(t).numel(batch);
    // Fixed homes and aliases.
    let mut home: Vec<Option<Slice>> = vec![None; g.tensors.len()];
    let mut alias: Vec<Option<TensorId>> = vec![None; g.tensors.len()];
    home[g.input] = Some(Slice {
        buf: buf::INPUT,
        off: 0,
        len: numel(g.input),
    });
    home[g.labels] = Some(Slice {
        buf: buf::LABELS,
        off: 0,
        len: batch,
    });
    for node in &g.nodes[..g.n_forward] {
        if let Op::Param(pid) = node.op {
            let len = g.params[pid].shape.numel(0);
            home[node.outputs[0]] = Some(Slice {
                buf: buf::PARAMS,
                off: layout.param_off[pid],
                len,
            });
        }
    }
    if !mode.inference() {
        for (pid, d) in g.param_grads.iter().enumerate() {
            if let Some(d) = *d {
                let len = g.params[pid].shape.numel(0);
                home[d] = Some(Slice {
                    buf: buf::GRADS,
                    off: layout.param_off[pid],
                    len,
                });
            }
        }
    }
    let metrics_off = if mode.inference() {
        layout.eval_metrics_off()
    } else {
        0
    };

    let mut pre: Vec<Pre> = vec![];
    let t = Operand::T;
    let amp = fixed(buf::METRICS, layout.amp_off(), 4);
    let probes = probe_slots(g);
    for (nid, node) in g.nodes[..n_nodes].iter().enumerate() {
        let (ins, outs) = (&node.inputs, &node.outputs);
        let mut p = [0u32; 16];
        match node.op {
            Op::Input | Op::Labels | Op::Param(_) => {}
            Op::Linear => {
                let s_w = g.shape(ins[1]);
                let kernel = Kernel::MatMul {
                    ta: false,
                    tb: false,
                    bias: ins.len() > 2,
                    half: false,
                };
                let p = matmul::params(kernel, batch, s_w.cols, s_w.rows_at(batch));
                let bias = ins.get(2).map(|&b| t(b)).unwrap_or(fixed(buf::DUMMY, 0, 4));
                pre.push(Pre {
                    kernel,
                    p,
                    ins: vec![t(ins[0]), t(ins[1]), bias],
                    outs: vec![t(outs[0])],
                });
            }
            Op::MatMul { ta, tb } => {
                let sa = g.shape(ins[0]);
                let so = g.shape(outs[0]);
                let k = if ta { sa.rows_at(batch) } else { sa.cols };
                let kernel = Kernel::MatMul {
                    ta,
                    tb,
                    bias: false,
                    half: false,
                };
                let p = matmul::params(kernel, so.rows_at(batch), so.cols, k);
                pre.push(Pre {
                    kernel,
                    p,
                    ins: vec![t(ins[0]), t(ins[1]), fixed(buf::DUMMY, 0, 4)],
                    outs: vec![t(outs[0])],
                });
            }
            Op::Act(a) => {
                p[0] = numel(outs[0]) as u32;
                pre.push(Pre {
                    kernel: Kernel::ActFwd(a),
                    p,
                    ins: vec![t(ins[0])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::ActBwd(a) => {
                p[0] = numel(outs[0]) as u32;
                pre.push(Pre {
                    kernel: Kernel::ActBwd(a),
                    p,
                    ins: vec![t(ins[0]), t(ins[1])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::Dropout {
                p: prob,
                stream,
                kind,
                group,
            } => {
                let deterministic = mode == Mode::Eval;
                if prob == 0.0 || (deterministic && kind == DropoutKind::Inverted) {
                    alias[outs[0]] = Some(ins[0]);
                } else {
                    p[0] = numel(outs[0]) as u32;
                    p[3] = stream;
                    p[4] = group as u32;
                    if deterministic {
                        // Classic dropout at inference: y = (1 − p)·x (threshold 0 keeps all).
                        p[1] = 0;
                        p[2] = fbits(1.0 - prob);
                    } else {
                        p[1] = dropout_threshold(prob);
                        let scale = if kind == DropoutKind::Inverted {
                            1.0 / (1.0 - prob)
                        } else {
                            1.0
                        };
                        p[2] = fbits(scale);
                    }
                    pre.push(Pre {
                        kernel: Kernel::Dropout,
                        p,
                        ins: vec![t(ins[0])],
                        outs: vec![t(outs[0])],
                    });
                }
            }
            Op::BatchNorm {
                eps,
                momentum,
                state,
                spatial,
            } => {
                let c = g.shape(outs[0]).cols / spatial;
                let st = fixed(buf::STATE, layout.state_off[state], 2 * c);
                p[0] = batch as u32;
                p[1] = c as u32;
                p[2] = fbits(eps);
                p[3] = fbits(momentum);
                p[4] = spatial as u32;
                if !mode.inference() {
                    pre.push(Pre {
                        kernel: Kernel::BnFwdTrain,
                        p,
                        ins: vec![t(ins[0]), t(ins[1])],
                        outs: vec![t(outs[0]), t(outs[1]), st],
                    });
                } else {
                    pre.push(Pre {
                        kernel: Kernel::BnFwdEval,
                        p,
                        ins: vec![t(ins[0]), t(ins[1]), st],
                        outs: vec![t(outs[0])],
                    });
                }
            }
            Op::BatchNormBwd { spatial } => {
                p[0] = batch as u32;
                p[1] = (g.shape(outs[0]).cols / spatial) as u32;
                p[4] = spatial as u32;
                pre.push(Pre {
                    kernel: Kernel::BnBwd,
                    p,
                    ins: ins.iter().map(|&i| t(i)).collect(),
                    outs: vec![t(outs[0]), t(outs[1])],
                });
            }
            Op::BiasGrad => {
                p[0] = g.shape(ins[0]).rows_at(batch) as u32;
                p[1] = g.shape(outs[0]).cols as u32;
                pre.push(Pre {
                    kernel: Kernel::BiasGrad,
                    p,
                    ins: vec![t(ins[0])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::Augment {
                c,
                h,
                w,
                state,
                stream,
                random,
            } => {
                let spec = fixed(
                    buf::STATE,
                    layout.state_off[state],
                    crate::data::augment::SPEC_LEN,
                );
                for (k, v) in [batch, c, h, w, stream as usize].into_iter().enumerate() {
                    p[k] = v as u32;
                }
                if mode.inference() || !random {
                    pre.push(Pre {
                        kernel: Kernel::AugmentPhoto,
                        p,
                        ins: vec![t(ins[0]), spec],
                        outs: vec![t(outs[0])],
                    });
                } else {
                    p[5] = 1;
                    pre.push(Pre {
                        kernel: Kernel::AugmentGeom,
                        p,
                        ins: vec![t(ins[0]), spec],
                        outs: vec![t(outs[1])],
                    });
                    pre.push(Pre {
                        kernel: Kernel::AugmentPhoto,
                        p,
                        ins: vec![t(outs[1]), spec],
                        outs: vec![t(outs[0])],
                    });
                }
            }
            Op::Im2Col(geom) | Op::Col2Im(geom) => {
                let kernel = if matches!(node.op, Op::Im2Col(_)) {
                    Kernel::Im2Col
                } else {
                    Kernel::Col2Im
                };
                pre.push(Pre {
                    kernel,
                    p: crate::kernels::KernelParams::to_words(&crate::kernels::conv::Window {
                        batch,
                        g: geom,
                    }),
                    ins: vec![t(ins[0])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::ToNchw { spatial, channels } => {
                p[0] = batch as u32;
                p[1] = spatial as u32;
                p[2] = channels as u32;
                let bias = ins.len() > 1;
                p[15] = bias as u32;
                let b = ins.get(1).map(|&b| t(b)).unwrap_or(fixed(buf::DUMMY, 0, 4));
                pre.push(Pre {
                    kernel: Kernel::ToNchw { bias, relu: false },
                    p,
                    ins: vec![t(ins[0]), b],
                    outs: vec![t(outs[0])],
                });
            }
            Op::ToNhwc { spatial, channels } => {
                p[0] = batch as u32;
                p[1] = spatial as u32;
                p[2] = channels as u32;
                pre.push(Pre {
                    kernel: Kernel::ToNhwc,
                    p,
                    ins: vec![t(ins[0])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::MaxPool(geom) => {
                pre.push(Pre {
                    kernel: Kernel::MaxPoolFwd,
                    p: crate::kernels::KernelParams::to_words(&crate::kernels::conv::Window {
                        batch,
                        g: geom,
                    }),
                    ins: vec![t(ins[0])],
                    outs: vec![t(outs[0]), t(outs[1])],
                });
            }
            Op::MaxPoolBwd(geom) => {
                pre.push(Pre {
                    kernel: Kernel::MaxPoolBwd,
                    p: crate::kernels::KernelParams::to_words(&crate::kernels::conv::Window {
                        batch,
                        g: geom,
                    }),
                    ins: vec![t(ins[0]), t(ins[1])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::AvgPool(geom) | Op::AvgPoolBwd(geom) => {
                let kernel = if matches!(node.op, Op::AvgPool(_)) {
                    Kernel::AvgPoolFwd
                } else {
                    Kernel::AvgPoolBwd
                };
                pre.push(Pre {
                    kernel,
                    p: crate::kernels::KernelParams::to_words(&crate::kernels::conv::Window {
                        batch,
                        g: geom,
                    }),
                    ins: vec![t(ins[0])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::Add => {
                p[0] = numel(outs[0]) as u32;
                pre.push(Pre {
                    kernel: Kernel::Add,
                    p,
                    ins: vec![t(ins[0]), t(ins[1])],
                    outs: vec![t(outs[0])],
                });
            }
            Op::SoftmaxXent => {
                p[0] = batch as u32;
                p[1] = g.shape(ins[0]).cols as u32;
                p[2] = fbits(1.0 / batch as f32);
                pre.push(Pre {
                    kernel: Kernel::SoftmaxXent,
                    p,
                    ins: vec![t(ins[0]), t(ins[1]), amp],
                    outs: vec![t(outs[0]), t(outs[1])],
                });
                let mut q = [0u32; 16];
                q[0] = batch as u32;
                pre.push(Pre {
                    kernel: Kernel::MetricsAccum,
                    p: q,
                    ins: vec![t(outs[1])],
                    outs: vec![fixed(buf::METRICS, metrics_off, 4)],
                });
            }
        }
        // Probe: statistics of this node's activation right after it is produced, so the
        // probe keeps no tensor alive longer than training does.
        if mode == Mode::Probe {
            for (k, probe) in probes.iter().enumerate() {
                if let Probe::Activation(t_id, _) = *probe
                    && g.tensors[t_id].producer == nid
                {
                    let mut q = [0u32; 16];
                    q[0] = numel(t_id) as u32;
                    let slot = fixed(buf::STATS, k * layout.stats_stride(), 4);
                    pre.push(Pre {
                        kernel: Kernel::TensorStats,
                        p: q,
                        ins: vec![t(t_id)],
                        outs: vec![slot],
                    });
                }
            }
        }
    }
    if !mode.inference() {
        // Penalties and value clipping, the global norm, then (training only) the update.
        let n = layout.params_len;
        let np = NORM_PARTIALS;
        let clip = fixed(buf::METRICS, layout.clip_off(), CLIP_INFO);
        let mut p = [0u32; 16];
        p[0] = n as u32;
        p[1] = np as u32;
        if let Some((lo, hi)) = opt.clip_value() {
            p[2] = fbits(lo);
            p[3] = fbits(hi);
            p[4] = 1;
        }
        pre.push(Pre {
            kernel: Kernel::GradPrep,
            p,
            ins: vec![
                fixed(buf::PARAMS, 0, n),
                fixed(buf::L2C, 0, n),
                fixed(buf::L1C, 0, n),
                amp,
            ],
            outs: vec![fixed(buf::GRADS, 0, n), fixed(buf::PARTIALS, 0, 2 * np)],
        });
        // Per-tensor clipping: each gradient scaled by its own norm (measured into the
        // probe slot of that gradient); the global pass below then only measures.
        let per_tensor = opt.clip_per_tensor() && opt.clip_norm().is_some();
        if per_tensor {
            for (k, probe) in probes.iter().enumerate() {
                let Probe::ParamGrad(pid) = *probe else {
                    continue;
                };
                let len = g.params[pid].shape.numel(0);
                let grad = fixed(buf::GRADS, layout.param_off[pid], len);
                let slot = fixed(buf::STATS, k * layout.stats_stride(), 4);
                let mut q = [0u32; 16];
                q[0] = len as u32;
                pre.push(Pre {
                    kernel: Kernel::TensorStats,
                    p: q,
                    ins: vec![grad],
                    outs: vec![slot],
                });
                q[1] = fbits(opt.clip_norm().unwrap_or(0.0));
                pre.push(Pre {
                    kernel: Kernel::ClipTensor,
                    p: q,
                    ins: vec![slot],
                    outs: vec![grad],
                });
            }
        }
        let mut p = [0u32; 16];
        p[0] = np as u32;
        p[1] = fbits(if per_tensor {
            0.0
        } else {
            opt.clip_norm().unwrap_or(0.0)
        });
        if let Some(l) = layout.mixed {
            p[2] = l.growth_interval;
            p[3] = fbits(l.growth);
            p[4] = fbits(1.0 / l.growth);
            p[5] = fbits(l.backoff);
            p[6] = fbits(1.0 / l.backoff);
        }
        p[8] = (mode == Mode::Train) as u32;
        if let Optimizer::Adam(o) = opt {
            p[9] = fbits(o.beta1);
            p[10] = fbits(o.beta2);
        }
        // The clip info and, at p7, the loss-scaling state: one operand (same buffer).
        p[7] = (layout.amp_off() - layout.clip_off()) as u32;
        pre.push(Pre {
            kernel: Kernel::ClipFinalize,
            p,
            ins: vec![fixed(buf::PARTIALS, 0, 2 * np)],
            outs: vec![fixed(buf::METRICS, layout.clip_off(), p[7] as usize + 4)],
        });
        let ins = vec![fixed(buf::GRADS, 0, n), fixed(buf::WD, 0, n), clip];
        let mut p = [0u32; 16];
        p[0] = n as u32;
        match opt {
            _ if mode != Mode::Train => {}
            Optimizer::Sgd(o) => {
                p[1] = fbits(o.momentum);
                p[2] = o.nesterov as u32;
                let outs = vec![fixed(buf::PARAMS, 0, n), fixed(buf::VELOCITY, 0, n)];
                pre.push(Pre {
                    kernel: Kernel::SgdUpdate,
                    p,
                    ins,
                    outs,
                });
            }
            Optimizer::Adam(o) => {
                if !layout.second_moment {
                    return Err(Error::Graph(
                        "Adam needs a layout with a second-moment buffer".into(),
                    ));
                }
                p[1] = fbits(o.beta1);
                p[2] = fbits(o.beta2);
                p[3] = fbits(o.eps);
                p[4] = o.decoupled as u32;
                let outs = vec![
                    fixed(buf::PARAMS, 0, n),
                    fixed(buf::VELOCITY, 0, n),
                    fixed(buf::M2, 0, n),
                ];
                pre.push(Pre {
                    kernel: Kernel::AdamUpdate,
                    p,
                    ins,
                    outs,
                });
            }
        }
    }

    if mode == Mode::Probe {
        for (k, probe) in probes.iter().enumerate() {
            let (b, pid) = match *probe {
                Probe::ParamGrad(pid) => (buf::GRADS, pid),
                Probe::ParamWeight(pid) => (buf::PARAMS, pid),
                Probe::Activation(..) => continue,
            };
            let len = g.params[pid].shape.numel(0);
            let mut q = [0u32; 16];
            q[0] = len as u32;
            let slot = fixed(buf::STATS, k * layout.stats_stride(), 4);
            pre.push(Pre {
                kernel: Kernel::TensorStats,
                p: q,
                ins: vec![fixed(b, layout.param_off[pid], len)],
                outs: vec![slot],
            });
        }
    }

    // Resolve aliases, then assign pool buffers by lifetime.
    let root = |mut x: TensorId| {
        while let Some(a) = alias[x] {
            x = a;
        }
        x
    };
    fuse_relu_dropout(&mut pre, &root);
    fuse_conv_relu(&mut pre, &root);
    if layout.mixed.is_some() {
        to_half(&mut pre, &home, &root, &numel, layout.params_len)?;
    }
    // Pool tensors are keyed by root id, f16 copies by tensor count + root id.
    let nt = g.tensors.len();
    let key = |op: &Operand| match *op {
        Operand::T(x) => Some(root(x)),
        Operand::H(x) => Some(nt + root(x)),
        Operand::Fixed(_) => None,
    };
    let need_of = |k: usize| {
        if k >= nt {
            numel(k - nt).div_ceil(2).max(1)
        } else {
            numel(k).max(1)
        }
    };
    let mut last_use = vec![0usize; 2 * nt];
    for (i, pr) in pre.iter().enumerate() {
        for op in pr.ins.iter().chain(&pr.outs) {
            if let Some(k) = key(op) {
                last_use[k] = i;
            }
        }
    }
    // The logits stay readable after the program (Session::predict).
    let logits = g.nodes[..g.n_forward]
        .iter()
        .find(|n| n.op == Op::SoftmaxXent)
        .map(|n| root(n.inputs[0]));
    if let Some(l) = logits {
        last_use[l] = usize::MAX;
    }
    let mut assigned: Vec<Option<usize>> = vec![None; 2 * nt];
    let mut busy = vec![false; layout.pool.len()];
    let mut instrs = vec![];
    for (i, pr) in pre.iter().enumerate() {
        let mut resolve = |op: &Operand,
                           is_out: bool,
                           busy: &mut Vec<bool>,
                           layout: &mut Layout|
         -> Result<Slice> {
            match *op {
                Operand::Fixed(s) => Ok(s),
                Operand::T(_) | Operand::H(_) => {
                    let r = key(op).unwrap_or_default();
                    if r < nt
                        && let Some(s) = home[r]
                    {
                        return Ok(s);
                    }
                    let need = need_of(r);
                    if assigned[r].is_none() {
                        if !is_out {
                            return Err(Error::Graph(format!(
                                "tensor {r} is read before it is written"
                            )));
                        }
                        // Best fit among free buffers; else grow one; else add one.
                        let free: Vec<usize> =
                            (0..layout.pool.len()).filter(|&b| !busy[b]).collect();
                        let fit = free
                            .iter()
                            .copied()
                            .filter(|&b| layout.pool[b] >= need)
                            .min_by_key(|&b| layout.pool[b]);
                        let b = match (fit, free.iter().copied().max_by_key(|&b| layout.pool[b])) {
                            (Some(b), _) => b,
                            (None, Some(b)) if !layout.frozen => {
                                layout.pool[b] = need;
                                b
                            }
                            // Frozen buffers are bound by loaded programs and never resized;
                            // a program that needs more gets a new buffer appended.
                            _ => {
                                layout.pool.push(need);
                                busy.push(false);
                                layout.pool.len() - 1
                            }
                        };
                        busy[b] = true;
                        assigned[r] = Some(b);
                    }
                    Ok(Slice {
                        buf: buf::POOL_BASE + assigned[r].unwrap(),
                        off: 0,
                        len: need,
                    })
                }
            }
        };
        let ins = pr
            .ins
            .iter()
            .map(|o| resolve(o, false, &mut busy, layout))
            .collect::<Result<Vec<_>>>()?;
        let outs = pr
            .outs
            .iter()
            .map(|o| resolve(o, true, &mut busy, layout))
            .collect::<Result<Vec<_>>>()?;
        if let Some(s) = ins.iter().find(|s| outs.iter().any(|o| o.buf == s.buf)) {
            return Err(Error::Graph(format!(
                "{:?} would read and write buffer {} in one dispatch",
                pr.kernel, s.buf
            )));
        }
        // Free every pool tensor whose last use was this instruction.
        for op in pr.ins.iter().chain(&pr.outs) {
            if let Some(r) = key(op)
                && last_use[r] == i
                && let Some(b) = assigned[r]
            {
                busy[b] = false;
            }
        }
        instrs.push(Instr {
            kernel: pr.kernel,
            p: pr.p,
            ins,
            outs,
        });
    }
    let logits = logits.and_then(|l| {
        home[l].or_else(|| {
            assigned[l].map(|b| Slice {
                buf: buf::POOL_BASE + b,
                off: 0,
                len: numel(l),
            })
        })
    });
    Ok(Program { instrs, logits })
}
