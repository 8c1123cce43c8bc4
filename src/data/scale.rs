//! Input scaling fitted on the training split only and applied unchanged to every other
//! set: [`Scaler`] (global, per feature, min-max) and [`Standardizer`].

use super::Dataset;
use crate::error::{Error, Result};

/// Input scaling fitted on the training split only, then applied unchanged to validation,
/// test and inference data (and stored in checkpoints):
/// - `Global`: x' = (x − mean) / std with one mean and std (the W-MLP convention);
/// - `PerFeature`: the same per input feature;
/// - `MinMax`: x' = (x − min) / (max − min) per feature.
///
/// A feature that is constant in the fitted data gets a scale of 1 (std 1, range 1), as
/// scikit-learn's `StandardScaler` and `MinMaxScaler` do: a new value v on it maps to
/// v − mean (v − min), never to (v − mean) / ε.
#[derive(Clone, Debug, PartialEq)]
pub enum Scaler {
    /// One mean and std for every value.
    Global(Standardizer),
    /// A mean and a std (> 0) per feature.
    PerFeature { mean: Vec<f32>, std: Vec<f32> },
    /// A minimum and a maximum (>= the minimum) per feature.
    MinMax { min: Vec<f32>, max: Vec<f32> },
}

impl From<Standardizer> for Scaler {
    fn from(s: Standardizer) -> Self {
        Scaler::Global(s)
    }
}

impl Scaler {
    /// Per-feature mean and population std fitted on `ds` (two passes in f64, so columns
    /// near ±f32::MAX fit exactly; std 1 where the variance is exactly 0).
    ///
    /// Errors: a malformed shape ([`Dataset::check_shape`]), no rows ([`Error::Empty`]),
    /// a NaN or infinite value ([`Error::NonFiniteInput`] naming its row and feature).
    pub fn fit_per_feature(ds: &Dataset) -> Result<Self> {
        check_fit(ds)?;
        let (f, n) = (ds.features, ds.len());
        // Two passes: the deviations of a constant feature are exactly 0 (a one-pass
        // E[x²] − mean² leaves rounding noise that would become a tiny std).
        let mut mean = vec![0f64; f];
        for row in ds.x.chunks(f) {
            for j in 0..f {
                mean[j] += row[j] as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut sq = vec![0f64; f];
        for row in ds.x.chunks(f) {
            for j in 0..f {
                sq[j] += (row[j] as f64 - mean[j]).powi(2);
            }
        }
        // The std of values within [min, max] is at most (max − min)/2 <= f32::MAX.
        let std = sq
            .iter()
            .map(|&q| nonzero_scale((q / n as f64).sqrt() as f32))
            .collect();
        Ok(Scaler::PerFeature {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        })
    }

    /// Per-feature minimum and maximum fitted on `ds` (a constant feature is scaled by a
    /// range of 1 when applied). Errors as [`Scaler::fit_per_feature`].
    pub fn fit_min_max(ds: &Dataset) -> Result<Self> {
        check_fit(ds)?;
        let f = ds.features;
        let (mut min, mut max) = (vec![f32::INFINITY; f], vec![f32::NEG_INFINITY; f]);
        for row in ds.x.chunks(f) {
            for j in 0..f {
                min[j] = min[j].min(row[j]);
                max[j] = max[j].max(row[j]);
            }
        }
        Ok(Scaler::MinMax { min, max })
    }

    /// Check the stored parameters: means and minima finite, stds finite and > 0,
    /// maxima finite and >= their minima, matching lengths. Errors:
    /// [`Error::Hyperparameter`] naming the field (`scaler.std`, ...), the value and
    /// the feature.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, j: usize, v: f32, expected| {
            Err(Error::Hyperparameter {
                name,
                value: format!("{v} (feature {j})"),
                expected,
            })
        };
        let (a, b, names) = match self {
            Scaler::Global(s) => return s.validate(),
            Scaler::PerFeature { mean, std } => (mean, std, ("scaler.mean", "scaler.std")),
            Scaler::MinMax { min, max } => (min, max, ("scaler.min", "scaler.max")),
        };
        if a.len() != b.len() {
            return Err(Error::Shape {
                context: format!("scaler {} and {}", names.0, names.1),
                got: vec![a.len(), b.len()],
                expected: "one value of each per feature".into(),
            });
        }
        for (j, (&a, &b)) in a.iter().zip(b).enumerate() {
            if !a.is_finite() {
                return bad(names.0, j, a, "a finite number");
            }
            match self {
                Scaler::PerFeature { .. } if !(b.is_finite() && b > 0.0) => {
                    return bad(names.1, j, b, "a finite std > 0");
                }
                Scaler::MinMax { .. } if !(b.is_finite() && b >= a) => {
                    return bad(names.1, j, b, "a finite maximum >= the minimum");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Scale a dataset in place, the arithmetic in f64: x' = (x − mean) / std, or
    /// (x − min) / (max − min) with a range of 0 taken as 1.
    ///
    /// Errors, all before any value is changed: invalid parameters
    /// ([`Scaler::validate`]); a malformed shape ([`Dataset::check_shape`]) or a feature
    /// count other than the fitted one ([`Error::Shape`]); a NaN or infinite value
    /// ([`Error::NonFiniteInput`] with its row and feature); a scaled value beyond f32
    /// ([`Error::TooLarge`] with its row and feature).
    pub fn apply(&self, ds: &mut Dataset) -> Result<()> {
        self.validate()?;
        let f = ds.features;
        let fitted = match self {
            Scaler::Global(s) => return s.apply(ds),
            Scaler::PerFeature { mean, .. } => mean.len(),
            Scaler::MinMax { min, .. } => min.len(),
        };
        ds.check_shape()?;
        if fitted != f {
            return Err(Error::Shape {
                context: "scaler".into(),
                got: vec![f],
                expected: format!("{fitted} features, as fitted"),
            });
        }
        ds.check_finite("scaler input")?;
        let (shift, scale): (Vec<f64>, Vec<f64>) = match self {
            Scaler::PerFeature { mean, std } => (
                mean.iter().map(|&m| m as f64).collect(),
                std.iter().map(|&s| s as f64).collect(),
            ),
            Scaler::MinMax { min, max } => (
                min.iter().map(|&m| m as f64).collect(),
                min.iter()
                    .zip(max)
                    .map(|(&lo, &hi)| match hi as f64 - lo as f64 {
                        0.0 => 1.0,
                        r => r,
                    })
                    .collect(),
            ),
            Scaler::Global(_) => unreachable!("returned above"),
        };
        scale_checked(&mut ds.x, f, |j, v| (v as f64 - shift[j]) / scale[j])
    }

    /// JSON form (stored in checkpoints).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scaler::Global(s) => {
                serde_json::json!({"kind": "global", "mean": s.mean, "std": s.std})
            }
            Scaler::PerFeature { mean, std } => {
                serde_json::json!({"kind": "per_feature", "mean": mean, "std": std})
            }
            Scaler::MinMax { min, max } => {
                serde_json::json!({"kind": "min_max", "min": min, "max": max})
            }
        }
    }

    /// [`Scaler::try_from_json`], None on any error.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        Self::try_from_json(v).ok()
    }

    /// Read the JSON form back, checked by [`Scaler::validate`] (a std of 0, −0, below 0,
    /// or a value beyond f32 is refused). Errors: [`Error::Hyperparameter`] naming the
    /// missing, mistyped or invalid field.
    pub fn try_from_json(v: &serde_json::Value) -> Result<Self> {
        let missing = |name| Error::Hyperparameter {
            name,
            value: "missing or not a number".into(),
            expected: "the scaler's stored parameters",
        };
        let num = |name, x: &serde_json::Value| x.as_f64().map(|f| f as f32).ok_or(missing(name));
        let vec = |name: &'static str, k: &str| -> Result<Vec<f32>> {
            v[k].as_array()
                .ok_or(missing(name))?
                .iter()
                .map(|x| num(name, x))
                .collect()
        };
        let sc = match v["kind"].as_str() {
            Some("global") => Scaler::Global(Standardizer {
                mean: num("scaler.mean", &v["mean"])?,
                std: num("scaler.std", &v["std"])?,
            }),
            Some("per_feature") => Scaler::PerFeature {
                mean: vec("scaler.mean", "mean")?,
                std: vec("scaler.std", "std")?,
            },
            Some("min_max") => Scaler::MinMax {
                min: vec("scaler.min", "min")?,
                max: vec("scaler.max", "max")?,
            },
            _ => {
                return Err(Error::Hyperparameter {
                    name: "scaler.kind",
                    value: v["kind"].to_string(),
                    expected: "\"global\", \"per_feature\" or \"min_max\"",
                });
            }
        };
        sc.validate()?;
        Ok(sc)
    }
}

/// The checks every fit makes: shape, at least one row, finite values.
fn check_fit(ds: &Dataset) -> Result<()> {
    ds.check_shape()?;
    if ds.is_empty() {
        return Err(Error::Empty {
            what: "the dataset to fit a scaler on".into(),
            expected: "a non-empty training split".into(),
        });
    }
    ds.check_finite("scaler fit")
}

/// x := g(feature, x) for every value of `x` ([n, f] row-major), computed in f64; a
/// result beyond f32 is [`Error::TooLarge`] naming its row and feature, found before any
/// value is written.
fn scale_checked(x: &mut [f32], f: usize, g: impl Fn(usize, f32) -> f64) -> Result<()> {
    if let Some(i) = (0..x.len()).find(|&i| !((g(i % f, x[i]) as f32).is_finite())) {
        return Err(Error::TooLarge {
            name: format!("the value at row {}, feature {}", i / f, i % f),
            value: x[i].to_string(),
            needs: format!("it scales to {:e}", g(i % f, x[i])),
            expected: format!("a scaled value within ±{:e} (f32)", f32::MAX),
        });
    }
    for (i, v) in x.iter_mut().enumerate() {
        *v = g(i % f, *v) as f32;
    }
    Ok(())
}

/// A scale of 0 (a feature constant where fitted) replaced by 1, as scikit-learn's
/// `_handle_zeros_in_scale`.
fn nonzero_scale(s: f32) -> f32 {
    if s == 0.0 { 1.0 } else { s }
}

/// Standardization x' = (x - mean) / std with one global mean and std, fitted on the
/// training split only and then applied unchanged to validation and test data (std 1
/// when the fitted data is constant, as scikit-learn).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standardizer {
    /// The mean of every value of the fitted data.
    pub mean: f32,
    /// Their population std (> 0; 1 for constant data).
    pub std: f32,
}

impl Standardizer {
    /// Fit on a dataset (the training split). Sums in f64, two passes. Errors as
    /// [`Scaler::fit_per_feature`].
    pub fn fit(ds: &Dataset) -> Result<Self> {
        check_fit(ds)?;
        let n = ds.x.len() as f64;
        let mean = ds.x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = ds.x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        Ok(Standardizer {
            mean: mean as f32,
            std: nonzero_scale(var.sqrt() as f32),
        })
    }

    /// Check the parameters: a finite mean and a finite std > 0 ([`Error::Hyperparameter`]
    /// naming `scaler.mean` or `scaler.std`).
    pub fn validate(&self) -> Result<()> {
        if !self.mean.is_finite() {
            return Err(Error::Hyperparameter {
                name: "scaler.mean",
                value: self.mean.to_string(),
                expected: "a finite number",
            });
        }
        if !(self.std.is_finite() && self.std > 0.0) {
            return Err(Error::Hyperparameter {
                name: "scaler.std",
                value: self.std.to_string(),
                expected: "a finite std > 0",
            });
        }
        Ok(())
    }

    /// x' = (x − mean) / std in place, in f64. Errors as [`Scaler::apply`].
    pub fn apply(&self, ds: &mut Dataset) -> Result<()> {
        self.validate()?;
        ds.check_shape()?;
        ds.check_finite("scaler input")?;
        let (m, s) = (self.mean as f64, self.std as f64);
        scale_checked(&mut ds.x, ds.features, |_, v| (v as f64 - m) / s)
    }
}
