//! Where every buffer of a plan lives: the fixed buffers, the flat parameter layout, the
//! slots of the METRICS buffer, and the pool of intermediate buffers.

use crate::backend::BufferSpec;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Rows, TensorId};
use crate::kernels::Act;
use crate::limits::{MAX_ELEMENTS, f32_bytes, host_memory_bytes};
use crate::optim::{LossScale, Precision};

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
    /// Index of the first pool buffer (intermediates); pool buffer i is `POOL_BASE + i`.
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
pub const CLIP_INFO: usize = crate::kernels::clip::ClipInfo::LEN;
/// Index of the count of skipped steps (non-finite gradient) in the clip info.
pub const CLIP_SKIPPED: usize = crate::kernels::clip::ClipInfo::SKIPPED;

impl Layout {
    /// An f32 layout ([`Layout::with_precision`] with [`Precision::F32`]).
    ///
    /// # Errors
    /// As [`Layout::with_precision`].
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
                "the model's {} parameters take {params_len} values of the flat parameter \
                 buffer once each of its {} tensors starts at a multiple of {align} (this \
                 backend's alignment); fewer than 2^24 = {} fit: make the model smaller",
                g.param_count(),
                g.params.len(),
                1usize << 24
            )));
        }
        check_max_batch(g, max_batch, params_len)?;
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
        self.align.max(8)
    }

    /// Offset of the clip info in the METRICS buffer, so that one readback returns every
    /// device-side metric: [`CLIP_INFO`] words (pre-clip norm, clip scale, penalty, skip,
    /// lr, Adam's bias corrections bc1 and bc2, skipped steps in total; shaders/clip.wgsl).
    pub fn clip_off(&self) -> usize {
        2 * self.align.max(8)
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
            ("labels", self.max_batch * g.shape(g.labels).cols),
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
            Op::Act(Act::Relu) => "relu",
            Op::Act(Act::Tanh) => "tanh",
            Op::Act(Act::Sigmoid) => "sigmoid",
            Op::Dropout { .. } => "dropout",
            Op::BatchNorm { .. } => "batch_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Add => "add",
            Op::ToNchw { .. } => "conv2d",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::Rnn {
                cell: crate::graph::RnnCell::Lstm,
                ..
            } => "lstm",
            Op::Rnn {
                cell: crate::graph::RnnCell::Gru,
                ..
            } => "gru",
            Op::SliceCols { .. } => "last_step",
            Op::Embedding { .. } => "embedding",
            // Not a layer's output (listed, not wildcarded, so a new op must choose).
            Op::Input
            | Op::Labels
            | Op::Param(_)
            | Op::Augment { .. }
            | Op::Im2Col(_)
            | Op::ToNhwc { .. }
            | Op::Loss { .. }
            | Op::ActBwd(_)
            | Op::BatchNormBwd { .. }
            | Op::LayerNormBwd
            | Op::Reshape
            | Op::RnnAux { .. }
            | Op::SliceColsBwd { .. }
            | Op::EmbeddingBwd { .. }
            | Op::RnnBwd { .. }
            | Op::BiasGrad
            | Op::Col2Im(_)
            | Op::MaxPoolBwd(_)
            | Op::AvgPoolBwd(_) => continue,
        };
        let out = node.outputs[0];
        if g.shape(out).rows == Rows::Batch {
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

/// Refuse a maximum batch for which some tensor of `g` would have more elements than
/// usize or the kernels' u32 counts hold, or whose largest tensor alone (plus four copies of
/// the `params_len` parameters: values, gradients, momentum, decay) exceeds the host's
/// memory — before any buffer is allocated. The error names `max_batch`, its value and the
/// bytes.
fn check_max_batch(g: &Graph, max_batch: usize, params_len: usize) -> Result<()> {
    let mut largest = 0usize;
    for t in &g.tensors {
        let n = t.shape.checked_numel(max_batch);
        match n {
            Some(n) if n <= MAX_ELEMENTS => largest = largest.max(n),
            _ => {
                return Err(Error::too_large(
                    "max_batch",
                    max_batch,
                    n.and_then(f32_bytes).or_else(|| {
                        (t.shape.checked_numel(1)? as u128)
                            .checked_mul(max_batch as u128)?
                            .checked_mul(4)
                    }),
                    format!(
                        "at most {MAX_ELEMENTS} elements per tensor; a tensor of this model has {} values per sample",
                        t.shape
                            .checked_numel(1)
                            .map_or("too many".into(), |n| n.to_string())
                    ),
                ));
            }
        }
    }
    let need = (largest as u128 + 4 * params_len as u128) * 4;
    let mem = host_memory_bytes();
    if need > mem {
        return Err(Error::too_large(
            "max_batch",
            max_batch,
            Some(need),
            format!("at most the host's memory, {mem} bytes"),
        ));
    }
    Ok(())
}
