//! The softmax cross-entropy ABI (`shaders/softmax_xent.wgsl`; CPU twins in
//! `backend/cpu/softmax_xent.rs`).

params! {
    /// [`super::Kernel::SoftmaxXent`]: per row of `z [M, C]` with label y, sample weight
    /// s and gradient factor g (the label row, [`super::loss`]): without smoothing or
    /// class weights `loss = ln Σ exp(z − max) − (z_y − max)` and
    /// `dz = S·g·(softmax(z) − onehot(y))`; in general (PyTorch's `CrossEntropyLoss` with
    /// `label_smoothing` ε and `weight` w)
    /// `loss = (1 − ε)·w_y·(−log p_y) + (ε/C)·Σ_c w_c·(−log p_c)` and
    /// `dz_j = S·g·((1 − ε)·w_y·(p_j − [j = y]) + (ε/C)·(W·p_j − w_j))`, W = Σ_c w_c. S is
    /// the loss scale with [`super::Globals::MIXED`] (else 1). A label that is not an
    /// integer in `[0, C)` gives a NaN loss and a zero gradient row.
    ///
    /// # Shapes
    /// `ins = [z [M, C], labels [M, L = 3], amp [4], class weights [C] (or any buffer
    /// without weighted)]`, `outs = [dz [M, C], rowstats [M, 3]]` (s·loss, correct, s·w_y).
    pub struct SoftmaxXentParams {
        rows: usize = 0,
        classes: usize = 1,
        /// L, the words of a label row.
        width: usize = 2,
        /// ε, PyTorch's `label_smoothing`.
        smoothing: f32 = 3,
        /// Whether `ins[3]` holds class weights.
        weighted: bool = 4,
    }
}

/// The sums [`super::Kernel::MetricsAccum`] accumulates in a metrics slot, in the order of
/// its 4 words.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricSums {
    /// Σ s·loss over the rows (s the sample weight, 1 by default).
    pub loss: f32,
    /// Σ of the rows' metric column: correct (1 when the argmax is the label), the
    /// fraction of correct binary decisions (BCE), or the mean absolute error
    /// (regression).
    pub correct: f32,
    /// Rows accumulated.
    pub samples: f32,
    /// Batches accumulated.
    pub steps: f32,
    /// Σ of the rows' weights (s, times the target's class weight for class-weighted
    /// cross-entropy): the denominator of the mean loss.
    pub weight: f32,
}

impl MetricSums {
    /// Words of a metrics slot.
    pub const LEN: usize = 5;

    /// The sums from their words (at least [`MetricSums::LEN`]).
    pub fn read(w: &[f32]) -> Self {
        MetricSums {
            loss: w[0],
            correct: w[1],
            samples: w[2],
            steps: w[3],
            weight: w[4],
        }
    }
}
