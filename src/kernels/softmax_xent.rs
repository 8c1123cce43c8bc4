//! The softmax cross-entropy ABI (`shaders/softmax_xent.wgsl`; CPU twins in
//! `backend/cpu/softmax_xent.rs`).

params! {
    /// [`super::Kernel::SoftmaxXent`]: per row of `z [M, C]` with label y,
    /// `loss = ln Σ exp(z − max) − (z_y − max)`, `dz = scale·(softmax(z) − onehot(y))`
    /// (times the loss scale with [`super::Globals::MIXED`]); a label that is not an
    /// integer in `[0, C)` gives a NaN loss and a zero gradient row.
    ///
    /// # Shapes
    /// `ins = [z [M, C], labels [M], amp [4]]`, `outs = [dz [M, C], rowstats [M, 2]]`
    /// (loss, correct).
    pub struct SoftmaxXentParams {
        rows: usize = 0,
        classes: usize = 1,
        /// 1/M: the mean over the batch.
        scale: f32 = 2,
    }
}
