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

/// The sums [`super::Kernel::MetricsAccum`] accumulates in a metrics slot, in the order of
/// its 4 words.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricSums {
    /// Σ loss over the rows.
    pub loss: f32,
    /// Σ correct (1 when the argmax is the label).
    pub correct: f32,
    /// Rows accumulated.
    pub samples: f32,
    /// Batches accumulated.
    pub steps: f32,
}

impl MetricSums {
    /// Words of a metrics slot.
    pub const LEN: usize = 4;

    /// The sums from their words (at least [`MetricSums::LEN`]).
    pub fn read(w: &[f32]) -> Self {
        MetricSums {
            loss: w[0],
            correct: w[1],
            samples: w[2],
            steps: w[3],
        }
    }
}
