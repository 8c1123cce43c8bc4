//! Optimizer configuration: SGD with momentum (classic or Nesterov), coupled L2 weight
//! decay on weights only, and global-norm clipping. The update itself is the kernel
//! `sgd_update` (shaders/optim.wgsl and its CPU twin):
//!
//!   g = s·dJ/dw + wd·w,   v = mu·v + g,   w := w - lr·v
//!
//! where s = min(1, clip_norm / (||dJ/dw||₂ + 1e-6)) over all parameters together.
//! With mu = 0 and wd = lambda/m this is the textbook L2-regularized step
//! w := (1 - lr·lambda/m)·w - lr·dJ/dw.

use crate::error::{Error, Result};

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
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            lr: 0.01,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            clip_norm: None,
        }
    }
}

impl Sgd {
    /// The W-MLP / W-CNN optimizer of ../shared/BENCHMARKS.md: lr 0.05, momentum 0.9,
    /// weight decay 5e-4 on weights, global-norm clipping at 1.0.
    pub fn w_mlp() -> Self {
        Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            clip_norm: Some(1.0),
        }
    }

    /// Check every hyperparameter's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, v: f32, expected| {
            Err(Error::Hyperparameter {
                name,
                value: v.to_string(),
                expected,
            })
        };
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", self.lr, "a finite learning rate > 0");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum, "0 <= momentum < 1");
        }
        if self.nesterov && self.momentum == 0.0 {
            return bad("momentum", self.momentum, "momentum > 0 with nesterov");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", self.weight_decay, "a finite value >= 0");
        }
        if let Some(c) = self.clip_norm
            && !(c > 0.0 && c.is_finite())
        {
            return bad("clip_norm", c, "a finite value > 0");
        }
        Ok(())
    }
}
