//! The dropout ABI (`shaders/dropout.wgsl`; CPU twins in `backend/cpu/dropout.rs`).

params! {
    /// [`super::Kernel::Dropout`], [`super::Kernel::ReluDropout`] and
    /// [`super::Kernel::DropoutReluBwd`]: `y_i = x_i · scale` if
    /// `keep(seed, stream, step, ⌊draw(i) / group⌋, threshold)` (`draw(i) = i`, or the time-shared index of `period`) else 0, with keep decided by the
    /// shared counter-based generator ([`crate::rng::dropout_keep`]), so that `group`
    /// consecutive elements share one draw (DropConnect rows, spatial dropout channels).
    /// `threshold` 0 keeps everything (classic dropout at inference: `scale = 1 − p`).
    ///
    /// # Shapes
    /// `ins = [x]` (`[y, dy]` for the fused backward), `outs = [y]`, `n` elements each.
    pub struct DropoutParams {
        n: usize = 0,
        threshold: u32 = 1,
        scale: f32 = 2,
        stream: u32 = 3,
        /// Elements per draw (0 reads as 1).
        group: usize = 4,
        /// With `period` P > 0, element i draws as `⌊i / row⌋·P + i mod P` (before the
        /// grouping): one mask per sequence row of `row = T·P` values, shared by its T
        /// steps (a recurrent layer's input dropout).
        period: usize = 5,
        /// The row length of `period`.
        row: usize = 6,
    }
}
