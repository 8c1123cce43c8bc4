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

mod precision;
mod regularizer;
mod schedule;

pub use precision::{LossScale, Precision};
pub use regularizer::{Regularizer, Scale};
pub use schedule::{Every, LrSchedule, Warmup};

use crate::error::{Error, Result};

pub(super) fn bad<T>(name: &'static str, v: f32, expected: &'static str) -> Result<T> {
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
    // Clipping bounds are finite, as clip_norm is: an infinite bound clips nothing
    // (off is `None`), and WGSL does not promise IEEE infinities in a shader.
    if let Some((lo, hi)) = clip_value {
        if !lo.is_finite() {
            return bad(
                "clip_value.min",
                lo,
                "a finite bound (None turns clipping off)",
            );
        }
        if !hi.is_finite() {
            return bad(
                "clip_value.max",
                hi,
                "a finite bound (None turns clipping off)",
            );
        }
        if !(lo < hi) {
            return bad("clip_value.max", hi, "max > min");
        }
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

    /// Check every setting against its range.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] naming the first setting out of range, its value and the
    /// range expected.
    pub fn validate(&self) -> Result<()> {
        check_common(self.lr, self.weight_decay, self.clip_norm, self.clip_value)?;
        if !(0.0..1.0).contains(&self.beta1) {
            return bad("beta1", self.beta1, "0 <= beta1 < 1");
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return bad("beta2", self.beta2, "0 <= beta2 < 1");
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return bad("eps", self.eps, "a finite eps > 0");
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
    /// Check every setting against its range.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] naming the first setting out of range, its value and the
    /// range expected.
    pub fn validate(&self) -> Result<()> {
        match self {
            Optimizer::Sgd(s) => s.validate(),
            Optimizer::Adam(a) => a.validate(),
        }
    }
    /// The base learning rate.
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
    /// The weight-decay coefficient λ (coupled for SGD and Adam, decoupled for AdamW).
    pub fn weight_decay(&self) -> f32 {
        match self {
            Optimizer::Sgd(s) => s.weight_decay,
            Optimizer::Adam(a) => a.weight_decay,
        }
    }
    /// The maximum global (or per-tensor) gradient norm, if clipping by norm.
    pub fn clip_norm(&self) -> Option<f32> {
        match self {
            Optimizer::Sgd(s) => s.clip_norm,
            Optimizer::Adam(a) => a.clip_norm,
        }
    }
    /// Whether norm clipping applies to each tensor on its own rather than to the global norm.
    pub fn clip_per_tensor(&self) -> bool {
        match self {
            Optimizer::Sgd(s) => s.clip_per_tensor,
            Optimizer::Adam(a) => a.clip_per_tensor,
        }
    }
    /// The (min, max) bounds of clipping by value, if any.
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
