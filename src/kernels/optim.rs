//! The optimizer-update ABI (`shaders/optim.wgsl`; CPU twins in `backend/cpu/optim.rs`).

params! {
    /// [`super::Kernel::SgdUpdate`]: `g = s·dJ/dw + wd_i·w`; `v = μ·v + g`;
    /// `w := w − lr·v` (Nesterov: `w := w − lr·(g + μ·v)`), with s (clip scale) and lr
    /// from the clip info; nothing changes when its skip flag is set.
    ///
    /// # Shapes
    /// `ins = [grad [n], wd [n], clipinfo [8]]`, `outs = [w [n], v [n]]`.
    pub struct SgdParams {
        n: usize = 0,
        momentum: f32 = 1,
        nesterov: bool = 2,
    }
}

params! {
    /// [`super::Kernel::AdamUpdate`]: Adam (coupled L2 in the gradient) or AdamW
    /// (`decoupled`: `w := w − lr·wd_i·w` beside the Adam step), with lr and the bias
    /// corrections from the clip info (formulas in shaders/optim.wgsl).
    ///
    /// # Shapes
    /// `ins = [grad [n], wd [n], clipinfo [8]]`, `outs = [w [n], m1 [n], m2 [n]]`.
    pub struct AdamParams {
        n: usize = 0,
        beta1: f32 = 1,
        beta2: f32 = 2,
        eps: f32 = 3,
        decoupled: bool = 4,
    }
}
