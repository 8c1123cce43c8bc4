//! The ABI of the gradient-preparation and clipping kernels (`shaders/clip.wgsl`; CPU
//! twins in `backend/cpu/clip.rs`).

params! {
    /// [`super::Kernel::GradPrep`]: `g := clamp(g·u + a·w + b·sign(w), lo, hi)` (the
    /// clamp only with `clip_value`; the penalty terms only with
    /// [`super::Globals::PENALTY`]; `u = 1/S` unscales a loss-scaled gradient with
    /// [`super::Globals::MIXED`], else 1), and per residue class `t mod parts` the
    /// partial sums `(Σ g², Σ (a/2)·w² + b·|w|)`.
    ///
    /// # Shapes
    /// `ins = [w [n], a [n] (L2 coefficients), b [n] (L1), amp [4]]`,
    /// `outs = [g [n], partials [2·parts]]`.
    pub struct GradPrepParams {
        n: usize = 0,
        parts: usize = 1,
        lo: f32 = 2,
        hi: f32 = 3,
        clip_value: bool = 4,
    }
}

params! {
    /// [`super::Kernel::ClipTensor`]: `g := min(1, max_norm / (sqrt(stats[1]) + 1e-6))·g`
    /// (per-tensor clipping, from the tensor's [`super::Kernel::TensorStats`]).
    ///
    /// # Shapes
    /// `ins = [stats [4]]`, `outs = [g [n]]`.
    pub struct ClipTensorParams {
        n: usize = 0,
        max_norm: f32 = 1,
    }
}

params! {
    /// [`super::Kernel::ClipFinalize`]: from the partial sums, the clip info
    /// `(norm, scale, penalty, skip, lr, bc1, bc2, skipped steps)` with
    /// `scale = min(1, max_norm / (norm + 1e-6))` (1 when `max_norm` ≤ 0); a non-finite
    /// gradient sets skip and (when `update`) counts a skipped step; lr and Adam's bias
    /// corrections `1 − β^(t+1)` at the count t of applied updates; with
    /// [`super::Globals::MIXED`], the dynamic loss-scale update (back off on overflow,
    /// grow after `growth_interval` clean steps). Formulas in shaders/clip.wgsl.
    ///
    /// # Shapes
    /// `ins = [partials [2·parts]]`, `outs = [clipinfo and amp]`: one range holding the
    /// clip info at 0 and the loss-scaling state `amp [4]` at `amp_offset`.
    pub struct ClipFinalizeParams {
        parts: usize = 0,
        max_norm: f32 = 1,
        growth_interval: u32 = 2,
        growth: f32 = 3,
        /// `1/growth`, computed on the host once.
        inv_growth: f32 = 4,
        backoff: f32 = 5,
        /// `1/backoff`, computed on the host once.
        inv_backoff: f32 = 6,
        amp_offset: usize = 7,
        /// A training step (the update runs): skips are counted, the loss scale moves.
        update: bool = 8,
        beta1: f32 = 9,
        beta2: f32 = 10,
    }
}

/// The clip info [`super::Kernel::ClipFinalize`] writes (and the optimizer kernels read),
/// in the order of its [`ClipInfo::LEN`] words.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClipInfo {
    /// Global gradient norm before clipping (penalties included).
    pub norm: f32,
    /// The clip scale applied to the gradient.
    pub scale: f32,
    /// The penalty term of the loss.
    pub penalty: f32,
    /// 1 when this step's gradient was not finite (the update is skipped).
    pub skip: f32,
    /// The learning rate of this step.
    pub lr: f32,
    /// Adam's bias corrections `1 − β₁^(t+1)` and `1 − β₂^(t+1)`.
    pub bc1: f32,
    pub bc2: f32,
    /// Training steps skipped so far (non-finite gradients), in total.
    pub skipped: f32,
}

impl ClipInfo {
    /// Words of the clip info.
    pub const LEN: usize = 8;
    /// Index of [`ClipInfo::skipped`].
    pub const SKIPPED: usize = 7;

    /// The clip info from its words (at least [`ClipInfo::LEN`]).
    pub fn read(w: &[f32]) -> Self {
        ClipInfo {
            norm: w[0],
            scale: w[1],
            penalty: w[2],
            skip: w[3],
            lr: w[4],
            bc1: w[5],
            bc2: w[6],
            skipped: w[Self::SKIPPED],
        }
    }
}

/// The dynamic loss-scaling state (mixed precision), 4 words updated by
/// [`super::Kernel::ClipFinalize`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossScaleState {
    /// The loss scale S.
    pub scale: f32,
    /// 1/S.
    pub inv_scale: f32,
    /// Finite steps in a row since the last change of S.
    pub clean_steps: f32,
    /// Steps skipped because the f16 gradient overflowed (S backed off), in total.
    pub overflows: f32,
}

impl LossScaleState {
    /// Words of the state.
    pub const LEN: usize = 4;

    /// The state from its words (at least [`LossScaleState::LEN`]).
    pub fn read(w: &[f32]) -> Self {
        LossScaleState {
            scale: w[0],
            inv_scale: w[1],
            clean_steps: w[2],
            overflows: w[3],
        }
    }
}
