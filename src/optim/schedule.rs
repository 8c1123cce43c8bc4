//! Learning-rate schedules.

use super::bad;
use crate::error::{Error, Result};

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

    /// Check every setting against its range.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] naming the first setting out of range, its value and the
    /// range expected.
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

/// Linear warm-up in front of any schedule: the rate of update `t` (updates applied before
/// it, starting at 0) is the schedule's rate times
/// `start_factor + (1 − start_factor)·min(t, steps)/steps`, so the first update runs at
/// `start_factor·lr` and update `steps` onwards at the full rate. This is PyTorch's
/// `LinearLR(start_factor, end_factor=1, total_iters=steps)` stepped once per update and
/// chained multiplicatively with the schedule (`ChainedScheduler`); it counts applied
/// updates, so a skipped step (non-finite gradient) does not advance it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warmup {
    /// Updates until the full rate (≥ 1, at most 2³² − 1).
    pub steps: u64,
    /// The first update's factor, in (0, 1] (PyTorch's default is 1/3).
    pub start_factor: f32,
}

impl Warmup {
    /// A warm-up over `steps` updates from `start_factor`.
    pub fn new(steps: u64, start_factor: f32) -> Self {
        Warmup {
            steps,
            start_factor,
        }
    }

    /// Check both settings against their ranges.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] naming `warmup.steps` or `warmup.start_factor`, its value
    /// and the range expected.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.steps > u32::MAX as u64 {
            return Err(Error::Hyperparameter {
                name: "warmup.steps",
                value: self.steps.to_string(),
                expected: "1 ..= 2^32 - 1 updates",
            });
        }
        if !(self.start_factor > 0.0 && self.start_factor <= 1.0) {
            return bad(
                "warmup.start_factor",
                self.start_factor,
                "0 < start_factor <= 1",
            );
        }
        Ok(())
    }

    /// The factor on the rate of update `t`.
    pub fn factor(&self, t: u64) -> f32 {
        let w = self.start_factor;
        let n = self.steps.min(u32::MAX as u64) as u32;
        w + (1.0 - w) * (t.min(n as u64) as u32 as f32 / n as f32)
    }
}
