//! Bias and variance from a run's errors, and the next step of the basic recipe for
//! machine learning:
//!
//! - avoidable bias = train error − baseline error (human-level or another proxy for the
//!   Bayes error; 0 when unknown);
//! - variance = validation error − train error;
//! - high bias (avoidable bias above the tolerance) → a bigger network, train longer, a
//!   better optimizer or architecture;
//! - otherwise high variance (variance above the tolerance) → more data (augmentation),
//!   regularization (L2, dropout), early stopping, a different architecture;
//! - both → fix the bias first, then the variance.
//!
//! With the tolerance at 2 percentage points and baseline 0: train 1% / val 12% is high
//! variance; 14% / 15% high bias; 14% / 21% both; 0.5% / 1% neither.

use std::fmt;
use std::path::Path;

use super::folder::read_result;
use crate::error::{Error, Result};

/// The verdict of [`diagnose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Neither component above the tolerance.
    Good,
    HighBias,
    HighVariance,
    HighBiasAndVariance,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Good => "low bias, low variance",
            Verdict::HighBias => "high bias",
            Verdict::HighVariance => "high variance",
            Verdict::HighBiasAndVariance => "high bias and high variance",
        })
    }
}

/// Errors (fractions in [0, 1]) and what they say.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    pub train_error: f64,
    pub val_error: f64,
    pub baseline_error: f64,
    /// train − baseline.
    pub avoidable_bias: f64,
    /// val − train.
    pub variance: f64,
    pub tolerance: f64,
    pub verdict: Verdict,
    /// The recipe's next steps for the verdict, most useful first.
    pub next_steps: Vec<&'static str>,
}

const FOR_BIAS: [&str; 3] = [
    "a bigger network (more hidden units or layers)",
    "train longer (more epochs, less early-stopping patience pressure)",
    "a better optimizer or learning rate, or another architecture",
];
const FOR_VARIANCE: [&str; 4] = [
    "more data (or data augmentation)",
    "regularization: a larger L2 lambda, dropout",
    "early stopping on the validation loss",
    "another architecture",
];

/// Diagnose from the train, validation and baseline errors (fractions in [0, 1]), calling
/// a component high when it exceeds `tolerance` (a fraction too: 0.02 = 2 points).
pub fn diagnose(train: f64, val: f64, baseline: f64, tolerance: f64) -> Result<Diagnosis> {
    for (name, v) in [
        ("train error", train),
        ("validation error", val),
        ("baseline error", baseline),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::Hyperparameter {
                name: match name {
                    "train error" => "train_error",
                    "validation error" => "val_error",
                    _ => "baseline_error",
                },
                value: v.to_string(),
                expected: "a fraction in [0, 1]",
            });
        }
    }
    if !(0.0..1.0).contains(&tolerance) {
        return Err(Error::Hyperparameter {
            name: "tolerance",
            value: tolerance.to_string(),
            expected: "a fraction in [0, 1)",
        });
    }
    let avoidable_bias = train - baseline;
    let variance = val - train;
    let verdict = match (avoidable_bias > tolerance, variance > tolerance) {
        (false, false) => Verdict::Good,
        (true, false) => Verdict::HighBias,
        (false, true) => Verdict::HighVariance,
        (true, true) => Verdict::HighBiasAndVariance,
    };
    let next_steps = match verdict {
        Verdict::Good => vec!["done: evaluate once on the test set"],
        Verdict::HighBias => FOR_BIAS.to_vec(),
        Verdict::HighVariance => FOR_VARIANCE.to_vec(),
        Verdict::HighBiasAndVariance => {
            let mut v = vec!["first reduce the bias:"];
            v.extend(FOR_BIAS);
            v.push("then the variance:");
            v.extend(FOR_VARIANCE);
            v
        }
    };
    Ok(Diagnosis {
        train_error: train,
        val_error: val,
        baseline_error: baseline,
        avoidable_bias,
        variance,
        tolerance,
        verdict,
        next_steps,
    })
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pc = |x: f64| format!("{:.2}%", 100.0 * x);
        writeln!(
            f,
            "train error {}, validation error {}, baseline {}",
            pc(self.train_error),
            pc(self.val_error),
            pc(self.baseline_error)
        )?;
        writeln!(
            f,
            "avoidable bias {} (train − baseline), variance {} (validation − train), tolerance {}",
            pc(self.avoidable_bias),
            pc(self.variance),
            pc(self.tolerance)
        )?;
        writeln!(f, "verdict: {}", self.verdict)?;
        // "first reduce the bias: a; b; then the variance: c; d"
        let mut next = String::new();
        for (i, step) in self.next_steps.iter().enumerate() {
            if i > 0 {
                next += if self.next_steps[i - 1].ends_with(':') {
                    " "
                } else {
                    "; "
                };
            }
            next += step;
        }
        write!(f, "next: {next}")
    }
}

/// The diagnosis of one run folder (its `result.json`).
pub fn diagnose_run(dir: &Path, baseline: f64, tol: f64) -> Result<Diagnosis> {
    let r = read_result(dir)?;
    // The rules are about classification errors; a regression run has none.
    if r.task == crate::task::Task::Regression {
        return Err(crate::error::Error::Hyperparameter {
            name: "diagnose --run",
            value: format!("{} (a regression run)", dir.display()),
            expected: "a classification run: the diagnosis compares error rates; for regression pass --train-error and --val-error as fractions you define",
        });
    }
    let (Some(tr), Some(va)) = (r.train_accuracy, r.val_accuracy) else {
        return Err(crate::error::Error::Hyperparameter {
            name: "diagnose --run",
            value: format!("{} (a run without a validation split)", dir.display()),
            expected: "a run with a validation split (data.val_fraction > 0): the diagnosis compares the training and validation errors",
        });
    };
    diagnose(
        (1.0 - tr).clamp(0.0, 1.0),
        (1.0 - va).clamp(0.0, 1.0),
        baseline,
        tol,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lectures_table() {
        let d = |t: f64, v: f64| diagnose(t / 100.0, v / 100.0, 0.0, 0.02).unwrap().verdict;
        assert_eq!(d(1.0, 12.0), Verdict::HighVariance);
        assert_eq!(d(14.0, 15.0), Verdict::HighBias);
        assert_eq!(d(14.0, 21.0), Verdict::HighBiasAndVariance);
        assert_eq!(d(0.5, 1.0), Verdict::Good);
        // With a human-level error of 13%, 14% / 15% is no longer high bias.
        let near = diagnose(0.14, 0.15, 0.13, 0.02).unwrap();
        assert_eq!(near.verdict, Verdict::Good);
        assert!((near.avoidable_bias - 0.01).abs() < 1e-12);
    }

    #[test]
    fn bad_errors_are_named() {
        let e = diagnose(1.5, 0.1, 0.0, 0.02).unwrap_err().to_string();
        assert!(e.contains("train_error") && e.contains("1.5"), "{e}");
        let e = diagnose(0.1, 0.1, 0.0, -1.0).unwrap_err().to_string();
        assert!(e.contains("tolerance"), "{e}");
    }
}
