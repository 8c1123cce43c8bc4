//! The losses other than softmax cross-entropy (`shaders/loss.wgsl`; CPU twins in
//! `backend/cpu/loss.rs`), and [`Loss`], the loss a graph ends in.
//!
//! Every loss kernel reads the batch's *label rows* `[M, L]`: the targets (L − 2 values),
//! then the sample weight `s_i`, then the row's gradient factor `g_i = s_i / D` with `D`
//! the batch's weight total (`Σ s_j`, or `Σ s_j·w_{y_j}` for class-weighted
//! cross-entropy; `g_i = 0` when `D = 0`). The session writes them
//! ([`crate::session::Session::train_batch_weighted`]): without sample weights
//! `s_i = 1`, `g_i = 1/M`, the plain mean over the batch. Each kernel writes per-row
//! statistics `[M, 3]` = (`s_i·loss_i`, a metric, `s_i·w`), which
//! [`super::Kernel::MetricsAccum`] sums, so an epoch's loss is Σ s·loss / Σ s·w — a short
//! last batch weighs its samples, not a whole batch.

params! {
    /// [`super::Kernel::BceWithLogits`]: per element of `z [M, K]` with target `t ∈ [0, 1]`
    /// and positive weight `p_c` (1 without `pos_weighted`), PyTorch's
    /// `BCEWithLogitsLoss(pos_weight)` in the log-sigmoid form, stable for any finite z:
    /// `l = p_c·t·softplus(−z) + (1 − t)·softplus(z)`,
    /// `softplus(x) = max(x, 0) + log1p(e^{−|x|})`;
    /// `dz = S·(g_i/K)·(σ(z)·(p_c·t + 1 − t) − p_c·t)`.
    /// Row statistics: (`s_i·mean_c l`, the fraction of the K outputs with
    /// `[z > 0] = [t > 0.5]` (Keras' `binary_accuracy` at threshold 0.5), `s_i`). A
    /// target that is not in [0, 1] gives a NaN loss and a zero gradient row.
    ///
    /// # Shapes
    /// `ins = [z [M, K], labels [M, L = K + 2], amp [4], pos_weight [K] (or any buffer
    /// without pos_weighted)]`, `outs = [dz [M, K], rowstats [M, 3]]`.
    pub struct BceParams {
        rows: usize = 0,
        outputs: usize = 1,
        /// L, the words of a label row.
        width: usize = 2,
        pos_weighted: bool = 3,
    }
}

params! {
    /// [`super::Kernel::RegressionLoss`]: per element of `z [M, T]` with target t,
    /// d = z − t, PyTorch's `MSELoss` (`l = d²`, `dl = 2d`), `L1Loss` (`l = |d|`,
    /// `dl = sign(d)`, 0 at d = 0) or `HuberLoss(delta)` (`l = d²/2` when |d| < δ, else
    /// `δ·(|d| − δ/2)`; `dl = d`, else `δ·sign(d)`), each averaged over the T outputs;
    /// `dz = S·(g_i/T)·dl`. Row statistics: (`s_i·mean_t l`, `mean_t |d|`, `s_i`), so the
    /// metric column accumulates the mean absolute error. A non-finite target gives a
    /// NaN loss and a zero gradient row.
    ///
    /// # Shapes
    /// `ins = [z [M, T], labels [M, L = T + 2], amp [4]]`,
    /// `outs = [dz [M, T], rowstats [M, 3]]`.
    pub struct RegressionParams {
        rows: usize = 0,
        outputs: usize = 1,
        /// L, the words of a label row.
        width: usize = 2,
        /// 0 mean squared error, 1 mean absolute error, 2 Huber.
        kind: u32 = 3,
        /// Huber's δ (> 0).
        delta: f32 = 4,
    }
}

/// The loss a model is trained with: the last node of its forward graph.
///
/// Every loss is the weighted mean over the batch of per-sample losses, each the mean of
/// its outputs' element losses (PyTorch's `reduction="mean"` when there are no sample
/// weights). The norm penalties are added on top of it by the optimizer tail: with
/// `Regularizer::L2 { lambda }` and batch size m, the gradient gains `λ·w`, which is
/// the course's `(λ/(2m))·‖w‖²` term summed over the m samples of the batch (the data
/// term is a mean over m, so the penalty per sample is `λ/(2m)·‖w‖²` in the sum form).
#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy over C ≥ 2 classes (PyTorch's `CrossEntropyLoss`): targets
    /// are class indices. `label_smoothing` ε ∈ [0, 1] mixes the one-hot target with the
    /// uniform distribution, `(1 − ε)·onehot + ε/C`; `class_weights` (length C, finite,
    /// ≥ 0) weigh each sample's loss by its target class's weight, and the mean is divided
    /// by the sum of those weights (PyTorch's `weight`). With both: per sample
    /// `(1 − ε)·w_y·(−log p_y) + (ε/C)·Σ_c w_c·(−log p_c)`, over `Σ w_y` (PyTorch).
    CrossEntropy {
        label_smoothing: f32,
        class_weights: Option<Vec<f32>>,
    },
    /// Binary cross-entropy with logits over K ≥ 1 independent outputs (binary when K = 1,
    /// multi-label otherwise); targets in [0, 1]. `pos_weight` (length K, finite, ≥ 0)
    /// multiplies the positive term (PyTorch's `BCEWithLogitsLoss(pos_weight)`).
    BceWithLogits { pos_weight: Option<Vec<f32>> },
    /// Mean squared error (PyTorch's `MSELoss`).
    Mse,
    /// Mean absolute error (PyTorch's `L1Loss`).
    Mae,
    /// Huber loss with threshold δ > 0 (PyTorch's `HuberLoss(delta)`).
    Huber { delta: f32 },
}

impl Default for Loss {
    /// Plain softmax cross-entropy.
    fn default() -> Self {
        Loss::CrossEntropy {
            label_smoothing: 0.0,
            class_weights: None,
        }
    }
}

impl Loss {
    /// The configuration name: `cross_entropy`, `bce_with_logits`, `mse`, `mae`, `huber`.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::CrossEntropy { .. } => "cross_entropy",
            Loss::BceWithLogits { .. } => "bce_with_logits",
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber { .. } => "huber",
        }
    }

    /// The task this loss trains for a model with `outputs` output units.
    pub fn task(&self, outputs: usize) -> crate::task::Task {
        use crate::task::Task;
        match self {
            Loss::CrossEntropy { .. } => Task::Multiclass,
            Loss::BceWithLogits { .. } if outputs == 1 => Task::Binary,
            Loss::BceWithLogits { .. } => Task::Multilabel,
            _ => Task::Regression,
        }
    }

    /// Target values per label row for a model with `outputs` output units: 1 class
    /// index for cross-entropy, one target per output otherwise.
    pub fn targets(&self, outputs: usize) -> usize {
        match self {
            Loss::CrossEntropy { .. } => 1,
            _ => outputs,
        }
    }

    /// The per-class (cross-entropy) or per-output (BCE) weights, if any.
    pub fn weights(&self) -> Option<&[f32]> {
        match self {
            Loss::CrossEntropy { class_weights, .. } => class_weights.as_deref(),
            Loss::BceWithLogits { pos_weight } => pos_weight.as_deref(),
            _ => None,
        }
    }
}
