//! The batch-norm ABI (`shaders/batchnorm.wgsl`; CPU twins in `backend/cpu/batchnorm.rs`).

params! {
    /// [`super::Kernel::BnFwdTrain`], [`super::Kernel::BnFwdEval`],
    /// [`super::Kernel::BnBwd`] over `x [M, C, S]` (S = `spatial`, 0 reads as 1): per
    /// channel over the M·S values, `y = γ·(x − μ)/sqrt(σ² + eps) + β`; training updates
    /// the running statistics as `r := (1 − momentum)·r + momentum·batch` (PyTorch's rule,
    /// unbiased running variance).
    ///
    /// # Shapes
    /// - train: `ins = [x, γβ [2C]]`, `outs = [y, saved (μ, 1/σ) [2C], running (μ, σ²) [2C]]`;
    /// - eval: `ins = [x, γβ, running]`, `outs = [y]`;
    /// - backward: `ins = [x, dy, γβ, saved]`, `outs = [dx, dγβ]`.
    pub struct BatchNormParams {
        /// M: the batch size.
        rows: usize = 0,
        channels: usize = 1,
        eps: f32 = 2,
        momentum: f32 = 3,
        spatial: usize = 4,
    }
}
