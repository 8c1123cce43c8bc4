//! Optimizers, norm penalties, clipping and learning-rate schedules.
//!
//! Notation: m = batch size (the session's configured batch), lambda = strength,
//! lr = learning rate, s = global-norm clip scale.
//!
//! One training step, after the backward pass, is (kernels in shaders/optim.wgsl and
//! shaders/clip.wgsl, CPU twins in src/backend/cpu/):
//!
//! 1. penalty gradient and value clipping, per element:
//!    g := clamp(dJ/dw + a·w + b·sign(w), min, max), penalty = Σ (a/2)·w² + b·|w|
//!    where (a, b) come from the parameter's [`Regularizer`] (with mixed precision the
//!    gradient arrives multiplied by the loss scale S and dJ/dw = (1/S)·that, exactly;
//!    see [`Precision`]);
//! 2. global-norm clipping: s = min(1, clip_norm / (‖g‖₂ + 1e-6)) over all parameters
//!    (or, with `clip_per_tensor`, each tensor scaled by its own norm);
//! 3. the update:
//!    - SGD (PyTorch): g' = s·g + wd·w; v = mu·v + g'; w := w − lr·v
//!      (Nesterov: w := w − lr·(g' + mu·v)); with mu = 0 and wd = lambda/m this is
//!      **w := (1 − lr·lambda/m)·w − lr·dJ/dw**;
//!    - Adam (coupled L2): g' = s·g + wd·w; m1 = b1·m1 + (1−b1)·g'; m2 = b2·m2 + (1−b2)·g'²;
//!      w := w − lr·m̂1/(sqrt(m̂2) + eps), m̂k = mk/(1−bkᵗ);
//!    - AdamW (decoupled): the same moments of g' = s·g, and w := w − lr·(m̂1/(sqrt(m̂2) + eps) + wd·w).
//!
//! Weight decay and penalties apply to parameters marked `decay` (weights); biases and
//! batch-norm gamma/beta are excluded unless a layer sets its own regularizer.

use crate::error::{Error, Result};

fn bad<T>(name: &'static str, v: f32, expected: &'static str) -> Result<T> {
    Err(Error::Hyperparameter {
        name,
        value: v.to_string(),
        expected,
    })
}

fn check_common(
    lr: f32,
    wd: f32,
    clip_norm: Option<f32>,
    clip_value: Option<(f32, f32)>,
) -> Result<()> {
    if !(lr > 0.0 && lr.is_finite()) {
        return bad("lr", lr, "a finite learning rate > 0");
    }
    if !(wd >= 0.0 && wd.is_finite()) {
        return bad("weight_decay", wd, "a finite value >= 0");
    }
    if let Some(c) = clip_norm
        && !(c > 0.0 && c.is_finite())
    {
        return bad("clip_norm", c, "a finite value > 0");
    }
    if let Some((lo, hi)) = clip_value
        && !(lo < hi)
    {
        return bad("clip_value.max", hi, "max > min");
    }
    Ok(())
}

/// SGD hyperparameters (PyTorch's `torch.optim.SGD` semantics).
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    /// Coupled L2 coefficient wd (= lambda/m in the course notation), applied to
    /// parameters marked `decay` (weights, not biases or batch-norm parameters).
    pub weight_decay: f32,
    /// Global-norm clipping threshold; `None` leaves gradients unscaled (the norm is still
    /// measured and reported).
    pub clip_norm: Option<f32>,
    /// Element-wise gradient clipping to [min, max] (applied before the norm clipping).
    pub clip_value: Option<(f32, f32)>,
    /// Apply `clip_norm` to each parameter tensor's own norm instead of the global norm.
    pub clip_per_tensor: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            lr: 0.01,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            clip_norm: None,
            clip_value: None,
            clip_per_tensor: false,
        }
    }
}

impl Sgd {
    /// The W-MLP / W-CNN optimizer of docs/benchmarks.md: lr 0.05, momentum 0.9,
    /// weight decay 5e-4 on weights, global-norm clipping at 1.0.
    pub fn w_mlp() -> Self {
        Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            clip_norm: Some(1.0),
            clip_value: None,
            clip_per_tensor: false,
        }
    }

    /// Check every hyperparameter's range.
    pub fn validate(&self) -> Result<()> {
        check_common(self.lr, self.weight_decay, self.clip_norm, self.clip_value)?;
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum, "0 <= momentum < 1");
        }
        if self.nesterov && self.momentum == 0.0 {
            return bad("momentum", self.momentum, "momentum > 0 with nesterov");
        }
        Ok(())
    }
}

/// Adam / AdamW hyperparameters (PyTorch's `torch.optim.Adam` and `AdamW`).
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Coupled L2 (Adam: added to the gradient) or decoupled (AdamW: w -= lr·wd·w).
    pub weight_decay: f32,
    /// `true` for AdamW.
    pub decoupled: bool,
    pub clip_norm: Option<f32>,
    pub clip_value: Option<(f32, f32)>,
    /// Apply `clip_norm` per parameter tensor instead of globally.
    pub clip_per_tensor: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            clip_norm: None,
            clip_value: None,
            clip_per_tensor: false,
        }
    }
}

impl Adam {
    /// AdamW with PyTorch's defaults (weight decay 0.01).
    pub fn adamw() -> Self {
        Adam {
            weight_decay: 0.01,
            decoupled: true,
            ..Adam::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_common(self.lr, self.weight_decay, self.clip_norm, self.clip_value)?;
        if !(0.0..1.0).contains(&self.beta1) {
            return bad("beta1", self.beta1, "0 <= beta1 < 1");
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return bad("beta2", self.beta2, "0 <= beta2 < 1");
        }
        if !(self.eps > 0.0) {
            return bad("eps", self.eps, "eps > 0");
        }
        Ok(())
    }
}

/// The optimizer of a session.
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    Sgd(Sgd),
    Adam(Adam),
}

impl From<Sgd> for Optimizer {
    fn from(s: Sgd) -> Self {
        Optimizer::Sgd(s)
    }
}

impl From<Adam> for Optimizer {
    fn from(a: Adam) -> Self {
        Optimizer::Adam(a)
    }
}

impl Optimizer {
    pub fn validate(&self) -> Result<()> {
        match self {
            Optimizer::Sgd(s) => s.validate(),
            Optimizer::Adam(a) => a.validate(),
        }
    }
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd(s) => s.lr,
            Optimizer::Adam(a) => a.lr,
        }
    }
    pub(crate) fn set_lr(&mut self, lr: f32) {
        match self {
            Optimizer::Sgd(s) => s.lr = lr,
            Optimizer::Adam(a) => a.lr = lr,
        }
    }
    pub fn weight_decay(&self) -> f32 {
        match self {
            Optimizer::Sgd(s) => s.weight_decay,
            Optimizer::Adam(a) => a.weight_decay,
        }
    }
    pub fn clip_norm(&self) -> Option<f32> {
        match self {
            Optimizer::Sgd(s) => s.clip_norm,
            Optimizer::Adam(a) => a.clip_norm,
        }
    }
    pub fn clip_per_tensor(&self) -> bool {
        match self {
            Optimizer::Sgd(s) => s.clip_per_tensor,
            Optimizer::Adam(a) => a.clip_per_tensor,
        }
    }
    pub fn clip_value(&self) -> Option<(f32, f32)> {
        match self {
            Optimizer::Sgd(s) => s.clip_value,
            Optimizer::Adam(a) => a.clip_value,
        }
    }
    /// Whether a second moment buffer is needed.
    pub fn is_adam(&self) -> bool {
        matches!(self, Optimizer::Adam(_))
    }
}

/// How a penalty's strength is scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// The course convention: L2 = (lambda / 2m)·Σ w², L1 = (lambda / 2m)·Σ |w|.
    Course,
    /// Keras' convention (and "cost = loss + lambda·complexity"): L2 = lambda·Σ w²,
    /// L1 = lambda·Σ |w|, independent of the batch size.
    Keras,
}

/// A norm penalty added to the loss (reported separately from the data loss).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regularizer {
    /// Squared Frobenius norm.
    L2 { lambda: f32, scale: Scale },
    /// Sum of absolute values.
    L1 { lambda: f32, scale: Scale },
    /// lambda·Σ (beta·|w| + (1 − beta)/2 · w²).
    ElasticNet { lambda: f32, beta: f32 },
}

impl Regularizer {
    /// L2 with the course scaling (lambda / 2m)·‖W‖²_F.
    pub fn l2(lambda: f32) -> Self {
        Regularizer::L2 {
            lambda,
            scale: Scale::Course,
        }
    }
    /// L1 with the course scaling (lambda / 2m)·‖W‖₁.
    pub fn l1(lambda: f32) -> Self {
        Regularizer::L1 {
            lambda,
            scale: Scale::Course,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let (lambda, beta) = match *self {
            Regularizer::L2 { lambda, .. } | Regularizer::L1 { lambda, .. } => (lambda, 0.0),
            Regularizer::ElasticNet { lambda, beta } => (lambda, beta),
        };
        if !(lambda >= 0.0 && lambda.is_finite()) {
            return bad("regularizer.lambda", lambda, "a finite value >= 0");
        }
        if !(0.0..=1.0).contains(&beta) {
            return bad("elastic_net.beta", beta, "0 <= beta <= 1");
        }
        Ok(())
    }

    /// Per-element coefficients (a, b) of penalty = Σ (a/2)·w² + b·|w| for batch size m;
    /// the gradient is a·w + b·sign(w).
    pub fn coefficients(&self, m: usize) -> (f32, f32) {
        let m = m as f32;
        match *self {
            Regularizer::L2 {
                lambda,
                scale: Scale::Course,
            } => (lambda / m, 0.0),
            Regularizer::L2 {
                lambda,
                scale: Scale::Keras,
            } => (2.0 * lambda, 0.0),
            Regularizer::L1 {
                lambda,
                scale: Scale::Course,
            } => (0.0, lambda / (2.0 * m)),
            Regularizer::L1 {
                lambda,
                scale: Scale::Keras,
            } => (0.0, lambda),
            Regularizer::ElasticNet { lambda, beta } => (lambda * (1.0 - beta), lambda * beta),
        }
    }
}

/// When a schedule advances.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Every {
    Epoch,
    Step,
}

/// Learning-rate schedules, as functions of t = epoch or step (PyTorch's StepLR,
/// ExponentialLR, CosineAnnealingLR):
/// - constant: lr_t = lr₀;
/// - step: lr_t = lr₀·gamma^⌊t / step_size⌋;
/// - exponential: lr_t = lr₀·gammaᵗ;
/// - cosine: lr_t = eta_min + (lr₀ − eta_min)·(1 + cos(π·min(t, t_max)/t_max))/2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    Constant,
    Step {
        step_size: u64,
        gamma: f32,
        every: Every,
    },
    Exponential {
        gamma: f32,
        every: Every,
    },
    Cosine {
        t_max: u64,
        eta_min: f32,
        every: Every,
    },
}

impl LrSchedule {
    /// Cosine annealing per step (PyTorch's CosineAnnealingLR) from the base rate down to 0
    /// over `epochs` epochs of `samples` samples in batches of `batch`.
    /// The step count saturates instead of wrapping; [`LrSchedule::validate`] then refuses
    /// more than 2³² − 1 steps.
    pub fn cosine_over_epochs(samples: usize, batch: usize, epochs: u64) -> Self {
        let steps = (samples.div_ceil(batch.max(1)) as u64).saturating_mul(epochs);
        LrSchedule::Cosine {
            t_max: steps.max(1),
            eta_min: 0.0,
            every: Every::Step,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match *self {
            LrSchedule::Step { step_size: 0, .. } => bad("schedule.step_size", 0.0, ">= 1"),
            LrSchedule::Cosine { t_max: 0, .. } => bad("schedule.t_max", 0.0, ">= 1"),
            LrSchedule::Step { gamma, .. } | LrSchedule::Exponential { gamma, .. }
                if !(gamma > 0.0) =>
            {
                bad("schedule.gamma", gamma, "gamma > 0")
            }
            LrSchedule::Cosine { eta_min, .. } if !(eta_min >= 0.0) => {
                bad("schedule.eta_min", eta_min, ">= 0")
            }
            // Per-step schedules are evaluated on the device over u32 step counts.
            LrSchedule::Cosine {
                t_max,
                every: Every::Step,
                ..
            } if t_max > u32::MAX as u64 => Err(Error::Hyperparameter {
                name: "schedule.t_max",
                value: t_max.to_string(),
                expected: "at most 2^32 - 1 steps for a per-step schedule (epochs × steps per epoch for the cosine over the run)",
            }),
            LrSchedule::Step {
                step_size,
                every: Every::Step,
                ..
            } if step_size > u32::MAX as u64 => Err(Error::Hyperparameter {
                name: "schedule.step_size",
                value: step_size.to_string(),
                expected: "at most 2^32 - 1 steps for a per-step schedule",
            }),
            _ => Ok(()),
        }
    }

    /// The learning rate at `epoch` / global `step`, from the base rate `lr0`.
    pub fn lr(&self, lr0: f32, epoch: u64, step: u64) -> f32 {
        let t = |every: Every| match every {
            Every::Epoch => epoch,
            Every::Step => step,
        };
        match *self {
            LrSchedule::Constant => lr0,
            LrSchedule::Step {
                step_size,
                gamma,
                every,
            } => lr0 * gamma.powi((t(every) / step_size) as i32),
            LrSchedule::Exponential { gamma, every } => lr0 * gamma.powf(t(every) as f32),
            LrSchedule::Cosine {
                t_max,
                eta_min,
                every,
            } => {
                let x = t(every).min(t_max) as f64 / t_max as f64;
                (eta_min as f64
                    + (lr0 - eta_min) as f64 * (1.0 + (std::f64::consts::PI * x).cos()) / 2.0)
                    as f32
            }
        }
    }
}

/// Arithmetic of a session: all f32, or mixed precision.
///
/// Mixed precision (as PyTorch's `autocast` + `GradScaler`, Keras' `mixed_float16`): every
/// matrix product, forward and backward, reads its operands stored as f16 (activations,
/// weights and the gradients flowing back, packed two per 32-bit word) and multiplies and
/// sums in f32; everything else (batch norm, softmax, the optimizer, the master weights)
/// stays f32. The loss gradient is multiplied by a loss scale S so that small gradients
/// survive f16; the parameter gradients are divided by S before clipping and the update,
/// and S adapts on the device ([`LossScale`]), so no step waits for the host.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Precision {
    #[default]
    F32,
    Mixed(LossScale),
}

impl Precision {
    /// Mixed precision with PyTorch's `GradScaler` defaults.
    pub fn mixed() -> Self {
        Precision::Mixed(LossScale::default())
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            Precision::F32 => Ok(()),
            Precision::Mixed(l) => l.validate(),
        }
    }

    /// `"f32"` or `"mixed"`.
    pub fn name(&self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Mixed(_) => "mixed",
        }
    }
}

/// `"f32"`, or `"mixed"` with the default [`LossScale`] ([`Precision::mixed`]).
impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "mixed" => Ok(Precision::mixed()),
            _ => Err(Error::Hyperparameter {
                name: "precision",
                value: format!("{s:?}"),
                expected: "f32 or mixed",
            }),
        }
    }
}

/// Dynamic loss scaling (PyTorch's `GradScaler` semantics and defaults): a step whose
/// gradient holds a non-finite value is skipped and S := max(S·backoff, 1); after
/// `growth_interval` finite steps in a row, S := S·growth while S·growth ≤ 1e30. S and the
/// factors are powers of two, so scaling and unscaling are exact. Unlike `GradScaler`, S
/// has a floor of 1: a step skipped at S = 1 is not an overflow the scale can absorb, and
/// is reported as [`crate::Error::NonFinite`] at the next metrics read, as in f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScale {
    pub init: f32,
    pub growth: f32,
    pub backoff: f32,
    pub growth_interval: u32,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale {
            init: 65536.0,
            growth: 2.0,
            backoff: 0.5,
            growth_interval: 2000,
        }
    }
}

impl LossScale {
    pub fn validate(&self) -> Result<()> {
        let pow2 = |x: f32| x > 0.0 && x.is_finite() && x.to_bits() & 0x7F_FFFF == 0;
        if !(pow2(self.init) && self.init >= 1.0) {
            return bad("loss_scale.init", self.init, "a power of two >= 1");
        }
        if !(pow2(self.growth) && self.growth > 1.0) {
            return bad("loss_scale.growth", self.growth, "a power of two > 1");
        }
        if !(pow2(self.backoff) && self.backoff < 1.0) {
            return bad("loss_scale.backoff", self.backoff, "a power of two < 1");
        }
        if self.growth_interval == 0 {
            return bad("loss_scale.growth_interval", 0.0, "at least 1 step");
        }
        Ok(())
    }
}
