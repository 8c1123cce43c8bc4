//! Mixed precision: f16 matmul operands and dynamic loss scaling.

use super::bad;
use crate::error::{Error, Result};

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

    /// Check every setting against its range.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] naming the first setting out of range, its value and the
    /// range expected.
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
    /// Check every setting against its range.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] naming the first setting out of range, its value and the
    /// range expected.
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
