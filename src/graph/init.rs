//! Weight initialization. For a weight of shape [fan_in, fan_out]:
//! - zeros / constant c (all units identical: the symmetry is never broken);
//! - uniform U(low, high); normal N(mean, std²);
//! - Xavier/Glorot: uniform r = gain·sqrt(3 / fan_avg), normal std = gain·sqrt(1 / fan_avg),
//!   fan_avg = (fan_in + fan_out) / 2;
//! - He/Kaiming: normal std = gain·sqrt(2 / fan), uniform r = sqrt(3)·std, fan = fan_in
//!   (default) or fan_out;
//! - LeCun: normal std = gain·sqrt(1 / fan_in), uniform r = sqrt(3)·std;
//! - orthogonal (Saxe et al. 2014; PyTorch's `nn.init.orthogonal_`, Keras' `Orthogonal`):
//!   gain·Q, Q from the QR factorization of a matrix of standard normal draws, signs fixed
//!   so that R's diagonal is positive: orthonormal columns when fan_in ≥ fan_out, else
//!   orthonormal rows.
//!
//! Draws come from the shared counter-based generator, keyed by (seed, INIT stream,
//! parameter index, element), so they do not depend on the backend.

use crate::error::{Error, Result};
use crate::rng::{Rng, stream};

/// Which fan He/Kaiming scales by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fan {
    In,
    Out,
    Avg,
}

/// Uniform or normal flavour of a scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    Uniform,
    Normal,
}

/// An initialization scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Constant(f32),
    Uniform {
        low: f32,
        high: f32,
    },
    Normal {
        mean: f32,
        std: f32,
    },
    Xavier {
        dist: Dist,
        gain: f32,
    },
    He {
        dist: Dist,
        fan: Fan,
        gain: f32,
    },
    LeCun {
        dist: Dist,
        gain: f32,
    },
    /// gain·Q with Q orthonormal ([module docs](self)); Keras' default for recurrent
    /// weights. Computed on the host in f64 (m·n² operations for an m×n weight, m ≥ n).
    Orthogonal {
        gain: f32,
    },
}

impl Init {
    /// He-normal over fan_in, gain 1 (the W-MLP default).
    pub const HE_NORMAL: Init = Init::He {
        dist: Dist::Normal,
        fan: Fan::In,
        gain: 1.0,
    };
    /// Xavier-uniform, gain 1.
    pub const XAVIER_UNIFORM: Init = Init::Xavier {
        dist: Dist::Uniform,
        gain: 1.0,
    };

    /// Check the scheme's hyperparameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: f32, expected| {
            Err(Error::Hyperparameter {
                name,
                value: value.to_string(),
                expected,
            })
        };
        match *self {
            Init::Uniform { low, high } if !(low < high) => {
                bad("init.uniform.high", high, "high > low")
            }
            Init::Normal { std, .. } if !(std >= 0.0) => bad("init.normal.std", std, "std >= 0"),
            Init::Xavier { gain, .. }
            | Init::He { gain, .. }
            | Init::LeCun { gain, .. }
            | Init::Orthogonal { gain }
                if !(gain > 0.0 && gain.is_finite()) =>
            {
                bad("init.gain", gain, "gain > 0")
            }
            _ => Ok(()),
        }
    }

    /// Sample `fan_in·fan_out` values (or `n` for vectors: pass fan_in = fan_out = n).
    pub fn sample(
        &self,
        rng: &Rng,
        param_index: u32,
        n: usize,
        fan_in: usize,
        fan_out: usize,
    ) -> Vec<f32> {
        let u = |i: usize| rng.uniform(stream::INIT, param_index, i as u32);
        let z = |i: usize| rng.normal(stream::INIT, param_index, i as u32);
        let fan_avg = (fan_in + fan_out) as f32 / 2.0;
        let scaled = |dist: Dist, std: f32| -> Vec<f32> {
            match dist {
                Dist::Normal => (0..n).map(|i| std * z(i)).collect(),
                Dist::Uniform => {
                    let r = 3f32.sqrt() * std;
                    (0..n).map(|i| (2.0 * u(i) - 1.0) * r).collect()
                }
            }
        };
        match *self {
            Init::Zeros => vec![0.0; n],
            Init::Constant(c) => vec![c; n],
            Init::Uniform { low, high } => (0..n).map(|i| low + (high - low) * u(i)).collect(),
            Init::Normal { mean, std } => (0..n).map(|i| mean + std * z(i)).collect(),
            Init::Xavier { dist, gain } => scaled(dist, gain * (1.0 / fan_avg).sqrt()),
            Init::LeCun { dist, gain } => scaled(dist, gain * (1.0 / fan_in as f32).sqrt()),
            Init::He { dist, fan, gain } => {
                let f = match fan {
                    Fan::In => fan_in as f32,
                    Fan::Out => fan_out as f32,
                    Fan::Avg => fan_avg,
                };
                scaled(dist, gain * (2.0 / f).sqrt())
            }
            Init::Orthogonal { gain } => {
                // A [fan_in, fan_out] matrix when n is one, else n values as one row.
                let (rows, cols) = if fan_in.checked_mul(fan_out) == Some(n) {
                    (fan_in, fan_out)
                } else {
                    (1, n)
                };
                orthogonal(rows, cols, gain, |i| z(i) as f64)
            }
        }
    }
}

/// gain·Q for a `rows × cols` matrix (row-major): Q from modified Gram-Schmidt, applied
/// twice for accuracy, on the columns of the tall m × k orientation (m = max, k = min of
/// rows and cols) of standard normal draws `z(i)` — the Q of a QR factorization with R's
/// diagonal positive, transposed back for a wide matrix. Draws that are linearly dependent
/// (probability zero) leave a zero column.
fn orthogonal(rows: usize, cols: usize, gain: f32, z: impl Fn(usize) -> f64) -> Vec<f32> {
    let (m, k) = (rows.max(cols), rows.min(cols));
    // Column c of the tall matrix, as a vector of m values: the draws laid out [m, k].
    let mut q: Vec<Vec<f64>> = (0..k)
        .map(|c| (0..m).map(|r| z(r * k + c)).collect())
        .collect();
    for c in 0..k {
        for _ in 0..2 {
            for p in 0..c {
                let d: f64 = q[c].iter().zip(&q[p]).map(|(a, b)| a * b).sum();
                let (head, tail) = q.split_at_mut(c);
                for (a, b) in tail[0].iter_mut().zip(&head[p]) {
                    *a -= d * b;
                }
            }
        }
        let norm = q[c].iter().map(|a| a * a).sum::<f64>().sqrt();
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        q[c].iter_mut().for_each(|a| *a *= inv);
    }
    let mut out = vec![0f32; rows * cols];
    for (c, col) in q.iter().enumerate() {
        for (r, v) in col.iter().enumerate() {
            // Tall: element (r, c); wide: the transpose, element (c, r).
            let at = if rows >= cols {
                r * cols + c
            } else {
                c * cols + r
            };
            out[at] = (gain as f64 * v) as f32;
        }
    }
    out
}
