//! The layer-norm ABI (`shaders/layernorm.wgsl`; CPU twins in `backend/cpu/layernorm.rs`).

params! {
    /// [`super::Kernel::LnFwd`], [`super::Kernel::LnBwdX`], [`super::Kernel::LnBwdParams`]
    /// over `x [M, F]`: per row over its F features (PyTorch's `LayerNorm(F)` with
    /// `elementwise_affine=True`), `y = γ·(x − μ)/sqrt(σ² + eps) + β` with the biased
    /// variance; the same in training and inference (no running statistics).
    ///
    /// # Shapes
    /// - forward: `ins = [x, γβ [2F]]`, `outs = [y, saved (μ, 1/σ) [M, 2]]`;
    /// - backward of x: `ins = [x, dy, γβ, saved]`, `outs = [dx]`;
    /// - backward of γβ: `ins = [x, dy, saved]`, `outs = [dγβ [2F]]`.
    pub struct LayerNormParams {
        /// M: the rows (the batch).
        rows: usize = 0,
        /// F: the features normalized together.
        features: usize = 1,
        eps: f32 = 2,
    }
}
