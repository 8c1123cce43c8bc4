//! The kernel ABI: what each kernel computes and how it is called, declared once for the
//! planner, the CPU twins and the WGSL entry points.
//!
//! A kernel invocation carries 16 parameter words (the WGSL uniform `p`, [`Words`]). What
//! the words mean is declared by one typed struct per kernel family (in this module's
//! files, e.g. [`matmul::MatMulParams`]), with [`KernelParams::to_words`] and
//! [`KernelParams::from_words`]; nothing outside those structs indexes the words. Entry
//! point, family (WGSL file), arity and pipeline constants of every [`Kernel`] are in one
//! table, [`Kernel::def`].
//!
//! Adding a kernel is the checklist in `docs/adding-a-kernel.md`.

/// The 16 parameter words of one invocation: the WGSL uniform `p` (`array<vec4<u32>, 4>`),
/// read there as `u32` or, through `bitcast<f32>`, as `f32`.
pub type Words = [u32; 16];

/// A kernel family's typed parameters: the one place that says which word holds what.
pub trait KernelParams: Sized {
    /// The words, unused ones zero.
    fn to_words(&self) -> Words;
    /// The inverse of [`KernelParams::to_words`].
    fn from_words(p: &Words) -> Self;
}

/// A value that one parameter word holds: sizes and counts (`usize`, `u32`), `f32` (its
/// bits, read in WGSL through `bitcast<f32>`), flags (`bool`, 1 = set).
pub trait Word: Copy {
    /// The word. Sizes are checked against `u32` before a program is built
    /// ([`crate::limits`]), so the cast of a `usize` keeps every value.
    fn to_word(self) -> u32;
    /// The value back from its word.
    fn from_word(w: u32) -> Self;
}

impl Word for usize {
    fn to_word(self) -> u32 {
        debug_assert!(
            u32::try_from(self).is_ok(),
            "parameter word {self} does not fit u32"
        );
        self as u32
    }
    fn from_word(w: u32) -> Self {
        w as usize
    }
}

impl Word for u32 {
    fn to_word(self) -> u32 {
        self
    }
    fn from_word(w: u32) -> Self {
        w
    }
}

impl Word for f32 {
    fn to_word(self) -> u32 {
        self.to_bits()
    }
    fn from_word(w: u32) -> Self {
        f32::from_bits(w)
    }
}

impl Word for bool {
    fn to_word(self) -> u32 {
        self as u32
    }
    fn from_word(w: u32) -> Self {
        w == 1
    }
}

/// Declares a parameter struct and its [`KernelParams`] impl from one list of
/// `field: type = word index`, so the index of each field is written exactly once.
macro_rules! params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $word:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::kernels::KernelParams for $name {
            fn to_words(&self) -> $crate::kernels::Words {
                let mut p = [0u32; 16];
                $( p[$word] = $crate::kernels::Word::to_word(self.$field); )*
                p
            }
            fn from_words(p: &$crate::kernels::Words) -> Self {
                $name { $( $field: $crate::kernels::Word::from_word(p[$word]), )* }
            }
        }
    };
}

pub mod augment;
pub mod batchnorm;
pub mod clip;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod layernorm;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod rnn;
pub mod softmax_xent;

/// Activation functions with a fused kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// `max(x, 0)`
    Relu,
    /// `tanh(x)`
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
}

impl Act {
    /// The value of the WGSL override `ACT`.
    pub fn code(self) -> u32 {
        match self {
            Act::Relu => 0,
            Act::Tanh => 1,
            Act::Sigmoid => 2,
        }
    }
}

/// Every primitive a program can run, grouped by role. Each variant's parameters are the
/// typed struct named in its documentation; its operands (`ins`, `outs`, in order) are
/// documented on that struct, the CPU twin and the WGSL entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    // ---- forward ---------------------------------------------------------------------
    /// `C = op(A)·op(B) (+ bias)`; `ta`/`tb` read A or B transposed in place; `half`: A
    /// and B are packed f16 ([`Kernel::CastHalf`]), products and sums f32 (mixed
    /// precision). Parameters: [`matmul::MatMulParams`] (the flags are its fields).
    MatMul {
        ta: bool,
        tb: bool,
        bias: bool,
        half: bool,
    },
    /// `y = f(x)`. Parameters: [`elementwise::Len`].
    ActFwd(Act),
    /// `c = a + b`. Parameters: [`elementwise::Len`].
    Add,
    /// Dropout mask times scale (the same kernel forward and backward). Parameters:
    /// [`dropout::DropoutParams`].
    Dropout,
    /// ReLU then dropout in one pass (the plan fuses the pair): outputs the dropout's
    /// output only. Parameters: [`dropout::DropoutParams`].
    ReluDropout,
    /// Batch norm with batch statistics; updates running statistics. Parameters:
    /// [`batchnorm::BatchNormParams`].
    BnFwdTrain,
    /// Batch norm with running statistics. Parameters: [`batchnorm::BatchNormParams`].
    BnFwdEval,
    /// Layer norm per row (training and inference alike). Parameters:
    /// [`layernorm::LayerNormParams`].
    LnFwd,
    /// The recurrent-dropout mask and padded-step flags of a recurrent layer. Parameters:
    /// [`rnn::RnnParams`].
    RnnAux,
    /// One time step of an LSTM (recurrent matmul, gates, state update). Parameters:
    /// [`rnn::RnnParams`].
    LstmStep,
    /// One time step of a GRU. Parameters: [`rnn::RnnParams`].
    GruStep,
    /// Columns `[start, start + len)` of every row. Parameters:
    /// [`elementwise::SliceParams`].
    SliceCols,
    /// A table lookup per token id (PyTorch's `nn.Embedding`). Parameters:
    /// [`embedding::EmbeddingParams`].
    Embedding,
    /// Patches of an NCHW image as matrix rows. Parameters: [`conv::Window`].
    Im2Col,
    /// `[B, S, C] → [B, C, S]`, optionally adding a per-channel bias, optionally followed
    /// by the ReLU (the fused convolution epilogue). Parameters: [`conv::ToNchwParams`]
    /// (the flags are its fields).
    ToNchw { bias: bool, relu: bool },
    /// Max pooling: the maximum and its window index. Parameters: [`conv::Window`].
    MaxPoolFwd,
    /// Average pooling. Parameters: [`conv::Window`].
    AvgPoolFwd,
    /// Softmax cross-entropy: gradient and per-row (loss, correct). Parameters:
    /// [`softmax_xent::SoftmaxXentParams`].
    SoftmaxXent,
    /// Binary cross-entropy with logits: gradient and per-row statistics. Parameters:
    /// [`loss::BceParams`].
    BceWithLogits,
    /// Mean squared error, mean absolute error or Huber: gradient and per-row
    /// statistics. Parameters: [`loss::RegressionParams`].
    RegressionLoss,

    // ---- backward only (created by autodiff) -----------------------------------------
    /// `dx = dy · f'(x)`, from y. Parameters: [`elementwise::Len`].
    ActBwd(Act),
    /// The backward of ReLU then dropout, from the fused forward's output (no mask).
    /// Parameters: [`dropout::DropoutParams`].
    DropoutReluBwd,
    /// Batch norm backward (dx, dgamma, dbeta). Parameters: [`batchnorm::BatchNormParams`].
    BnBwd,
    /// Layer norm backward, dx per row. Parameters: [`layernorm::LayerNormParams`].
    LnBwdX,
    /// Layer norm backward, dgamma and dbeta per feature over the rows. Parameters:
    /// [`layernorm::LayerNormParams`].
    LnBwdParams,
    /// `db[n] = Σ_m dY[m, n]`. Parameters: [`elementwise::BiasGradParams`].
    BiasGrad,
    /// The adjoint of [`Kernel::SliceCols`] (zeros outside the slice). Parameters:
    /// [`elementwise::SliceParams`].
    SliceColsBwd,
    /// The LSTM backward of one time step. Parameters: [`rnn::RnnParams`].
    LstmStepBwd,
    /// The GRU backward of one time step. Parameters: [`rnn::RnnParams`].
    GruStepBwd,
    /// The two bias gradients of a recurrent layer. Parameters: [`rnn::RnnParams`].
    RnnBiasGrad,
    /// The gradient of a recurrent layer's given initial state. Parameters:
    /// [`rnn::RnnParams`].
    RnnStateGrad,
    /// The gradient of an embedding table (a deterministic gather per row). Parameters:
    /// [`embedding::EmbeddingParams`].
    EmbeddingBwd,
    /// The adjoint of Im2Col (a deterministic gather). Parameters: [`conv::Window`].
    Col2Im,
    /// `[B, C, S] → [B, S, C]`. Parameters: [`conv::ToNhwcParams`].
    ToNhwc,
    /// Max pooling backward, from the saved window indices. Parameters: [`conv::Window`].
    MaxPoolBwd,
    /// Average pooling backward. Parameters: [`conv::Window`].
    AvgPoolBwd,

    // ---- update (the optimizer tail) -------------------------------------------------
    /// Penalty gradient, value clipping, and partial sums of `g²` and of the penalty.
    /// Parameters: [`clip::GradPrepParams`].
    GradPrep,
    /// Scale one parameter's gradient to a maximum norm (per-tensor clipping).
    /// Parameters: [`clip::ClipTensorParams`].
    ClipTensor,
    /// Global norm, clip scale, learning rate, Adam's bias corrections, loss scale.
    /// Parameters: [`clip::ClipFinalizeParams`].
    ClipFinalize,
    /// SGD with momentum and coupled weight decay over the flat parameter buffer.
    /// Parameters: [`optim::SgdParams`].
    SgdUpdate,
    /// Adam (coupled L2) or AdamW (decoupled) over the flat parameter buffer.
    /// Parameters: [`optim::AdamParams`].
    AdamUpdate,

    // ---- data, precision and bookkeeping ---------------------------------------------
    /// f32 → f16 storage, two values per 32-bit word (mixed precision). Parameters:
    /// [`elementwise::Len`].
    CastHalf,
    /// The sum of a split-K matmul's slices (+ bias): issued by the GPU backend only.
    /// Parameters: [`elementwise::SliceSumParams`] (the flag is its field).
    SliceSum { bias: bool },
    /// Accumulate row statistics into the device metrics buffer. Parameters:
    /// [`elementwise::Len`] (rows).
    MetricsAccum,
    /// `(Σ x, Σ x², zeros, n)` of one tensor, for diagnostics. Parameters:
    /// [`elementwise::Len`].
    TensorStats,
    /// Flips and affine warp per sample (training). Parameters:
    /// [`augment::AugmentParams`].
    AugmentGeom,
    /// Brightness, contrast, noise, cutout (training) and standardization. Parameters:
    /// [`augment::AugmentParams`].
    AugmentPhoto,
}

/// Which WGSL file holds a kernel's entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Matmul,
    /// The matmul reading packed f16 operands (same source, other loaders).
    MatmulHalf,
    Half,
    Elementwise,
    Dropout,
    BatchNorm,
    LayerNorm,
    Rnn,
    Embedding,
    SoftmaxXent,
    Loss,
    Clip,
    Optim,
    Stats,
    Conv,
    Pool,
    Augment,
}

impl Family {
    /// WGSL source of the family (without the common prelude).
    pub fn source(self) -> &'static str {
        match self {
            Family::Matmul | Family::MatmulHalf => include_str!("../../shaders/matmul.wgsl"),
            Family::Half => include_str!("../../shaders/half.wgsl"),
            Family::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            Family::Dropout => include_str!("../../shaders/dropout.wgsl"),
            Family::BatchNorm => include_str!("../../shaders/batchnorm.wgsl"),
            Family::LayerNorm => include_str!("../../shaders/layernorm.wgsl"),
            Family::Rnn => include_str!("../../shaders/rnn.wgsl"),
            Family::Embedding => include_str!("../../shaders/embedding.wgsl"),
            Family::SoftmaxXent => include_str!("../../shaders/softmax_xent.wgsl"),
            Family::Loss => include_str!("../../shaders/loss.wgsl"),
            Family::Clip => include_str!("../../shaders/clip.wgsl"),
            Family::Optim => include_str!("../../shaders/optim.wgsl"),
            Family::Stats => include_str!("../../shaders/stats.wgsl"),
            Family::Conv => include_str!("../../shaders/conv.wgsl"),
            Family::Pool => include_str!("../../shaders/pool.wgsl"),
            Family::Augment => include_str!("../../shaders/augment.wgsl"),
        }
    }
}

/// The per-step values every kernel can read (`G` in WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Globals {
    /// Low 32 bits of the run's seed (the counter-based generator's key, [`crate::rng`]).
    pub seed_lo: u32,
    /// High 32 bits of the run's seed.
    pub seed_hi: u32,
    /// Training step counter (dropout masks are keyed by it).
    pub step: u32,
    /// Base learning rate of this step: the whole rate when the schedule is evaluated on
    /// the host (constant, per-epoch), lr₀ for a per-step schedule (`sched_kind` ≠ 0),
    /// which `ClipFinalize` evaluates at the count of applied updates (shaders/clip.wgsl).
    pub lr: f32,
    /// Per-step schedule parameter: gamma (step, exponential) or eta_min (cosine).
    pub sched_x: f32,
    /// Per-step schedule parameter: step_size (step) or t_max (cosine).
    pub sched_n: u32,
    /// Bit set of per-run switches: [`Globals::PENALTY`], [`Globals::MIXED`].
    pub flags: u32,
    /// Per-step schedule evaluated on the device: 0 none (`lr` as is), 1 step,
    /// 2 exponential, 3 cosine ([`crate::optim::LrSchedule`]'s formulas).
    pub sched_kind: u32,
    /// Linear warm-up length in applied updates (0: none). The rate of update `t0` is
    /// multiplied by `warmup_start + (1 − warmup_start)·min(t0, warmup_steps)/warmup_steps`
    /// ([`crate::optim::Warmup`], PyTorch's `LinearLR`).
    pub warmup_steps: u32,
    /// The warm-up's first factor, in (0, 1].
    pub warmup_start: f32,
    /// Padding to the 16-byte multiple a uniform buffer needs.
    pub _pad: [u32; 2],
}

impl Globals {
    /// Some parameter has a nonzero L1 or L2 penalty coefficient: `GradPrep` reads the
    /// coefficient arrays only then (otherwise it only measures the gradient's norm).
    pub const PENALTY: u32 = 1;
    /// Mixed precision: the loss gradient is scaled by the device-side loss scale, which
    /// `GradPrep` divides out and `ClipFinalize` updates (shaders/clip.wgsl).
    pub const MIXED: u32 = 2;

    /// The run's 64-bit seed.
    pub fn seed(&self) -> u64 {
        (self.seed_hi as u64) << 32 | self.seed_lo as u64
    }
}

/// What every backend needs to know of a kernel: where its WGSL is, how many operands it
/// takes, and the pipeline constants of its variant.
pub struct KernelDef {
    /// The WGSL file.
    pub family: Family,
    /// WGSL entry point.
    pub entry: &'static str,
    /// Operands read (bound before the outputs).
    pub n_in: usize,
    /// Operands written.
    pub n_out: usize,
    /// Pipeline-overridable constants (WGSL `override`s) of this variant.
    pub constants: Vec<(&'static str, f64)>,
}

impl Kernel {
    /// The kernel's WGSL file and entry point, arity and pipeline constants.
    pub fn def(&self) -> KernelDef {
        use Family as F;
        let (family, entry, n_in, n_out) = match *self {
            Kernel::MatMul { half: false, .. } => (F::Matmul, "matmul", 3, 1),
            Kernel::MatMul { half: true, .. } => (F::MatmulHalf, "matmul", 3, 1),
            Kernel::ActFwd(_) => (F::Elementwise, "act_fwd", 1, 1),
            Kernel::ActBwd(_) => (F::Elementwise, "act_bwd", 2, 1),
            Kernel::Add => (F::Elementwise, "add", 2, 1),
            Kernel::BiasGrad => (F::Elementwise, "bias_grad", 1, 1),
            Kernel::SliceSum { .. } => (F::Elementwise, "slice_sum", 2, 1),
            Kernel::CastHalf => (F::Half, "cast_half", 1, 1),
            Kernel::Dropout => (F::Dropout, "dropout", 1, 1),
            Kernel::ReluDropout => (F::Dropout, "relu_dropout", 1, 1),
            Kernel::DropoutReluBwd => (F::Dropout, "dropout_relu_bwd", 2, 1),
            Kernel::BnFwdTrain => (F::BatchNorm, "bn_fwd_train", 2, 3),
            Kernel::BnFwdEval => (F::BatchNorm, "bn_fwd_eval", 3, 1),
            Kernel::BnBwd => (F::BatchNorm, "bn_bwd", 4, 2),
            Kernel::LnFwd => (F::LayerNorm, "ln_fwd", 2, 2),
            Kernel::LnBwdX => (F::LayerNorm, "ln_bwd_x", 4, 1),
            Kernel::LnBwdParams => (F::LayerNorm, "ln_bwd_params", 3, 1),
            Kernel::RnnAux => (F::Rnn, "rnn_aux", 2, 1),
            Kernel::LstmStep => (F::Rnn, "lstm_step", 4, 3),
            Kernel::GruStep => (F::Rnn, "gru_step", 4, 3),
            Kernel::LstmStepBwd => (F::Rnn, "lstm_step_bwd", 4, 2),
            Kernel::GruStepBwd => (F::Rnn, "gru_step_bwd", 4, 3),
            Kernel::RnnBiasGrad => (F::Rnn, "rnn_bias_grad", 2, 1),
            Kernel::RnnStateGrad => (F::Rnn, "rnn_state_grad", 4, 1),
            Kernel::SliceCols => (F::Elementwise, "slice_cols", 1, 1),
            Kernel::Embedding => (F::Embedding, "embedding", 2, 1),
            Kernel::EmbeddingBwd => (F::Embedding, "embedding_bwd", 2, 1),
            Kernel::SliceColsBwd => (F::Elementwise, "slice_cols_bwd", 1, 1),
            Kernel::SoftmaxXent => (F::SoftmaxXent, "softmax_xent", 4, 2),
            Kernel::BceWithLogits => (F::Loss, "bce_logits", 4, 2),
            Kernel::RegressionLoss => (F::Loss, "regression_loss", 3, 2),
            Kernel::MetricsAccum => (F::SoftmaxXent, "metrics_accum", 1, 1),
            Kernel::GradPrep => (F::Clip, "grad_prep", 4, 2),
            Kernel::ClipFinalize => (F::Clip, "clip_finalize", 1, 1),
            Kernel::ClipTensor => (F::Clip, "clip_tensor", 1, 1),
            Kernel::SgdUpdate => (F::Optim, "sgd_update", 3, 2),
            Kernel::AdamUpdate => (F::Optim, "adam_update", 3, 3),
            Kernel::TensorStats => (F::Stats, "tensor_stats", 1, 1),
            Kernel::Im2Col => (F::Conv, "im2col", 1, 1),
            Kernel::Col2Im => (F::Conv, "col2im", 1, 1),
            Kernel::ToNchw { .. } => (F::Conv, "to_nchw", 2, 1),
            Kernel::ToNhwc => (F::Conv, "to_nhwc", 1, 1),
            Kernel::MaxPoolFwd => (F::Pool, "maxpool_fwd", 1, 2),
            Kernel::MaxPoolBwd => (F::Pool, "maxpool_bwd", 2, 1),
            Kernel::AvgPoolFwd => (F::Pool, "avgpool_fwd", 1, 1),
            Kernel::AvgPoolBwd => (F::Pool, "avgpool_bwd", 1, 1),
            Kernel::AugmentGeom => (F::Augment, "augment_geom", 2, 1),
            Kernel::AugmentPhoto => (F::Augment, "augment_photo", 2, 1),
        };
        KernelDef {
            family,
            entry,
            n_in,
            n_out,
            constants: self.constants(),
        }
    }

    /// Pipeline-overridable constants of this kernel variant.
    pub fn constants(&self) -> Vec<(&'static str, f64)> {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        match *self {
            Kernel::MatMul { ta, tb, bias, .. } => {
                vec![("TA", b(ta)), ("TB", b(tb)), ("BIAS", b(bias))]
            }
            Kernel::ActFwd(a) | Kernel::ActBwd(a) => vec![("ACT", a.code() as f64)],
            Kernel::ToNchw { bias, relu } => vec![("BIAS", b(bias)), ("RELU", b(relu))],
            Kernel::SliceSum { bias } => vec![("BIAS", b(bias))],
            _ => vec![],
        }
    }
}
