//! Norm penalties (L1, L2, elastic net) and how their strength is scaled.

use super::bad;
use crate::error::Result;

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

    /// Check every setting against its range.
    ///
    /// # Errors
    /// [`crate::Error::Hyperparameter`] naming the first setting out of range, its value and the
    /// range expected.
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
