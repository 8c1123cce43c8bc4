//! Datasets: samples as rows of features with class labels ([`Dataset`]), their checks,
//! and the seeded per-epoch order. Splits and folds, scalers fitted on the training split
//! only, and loaders for MNIST-format pairs, IDX files and image folders live in the
//! submodules.

pub mod folder;
pub mod idx;
mod mnist;
mod scale;
mod split;
mod task;

pub use mnist::{idx_image_size, load_idx_pair, load_mnist};
pub use scale::{Scaler, Standardizer};
pub use split::{DEFAULT_SPLIT, HeldOut};
pub use task::Task;

use crate::error::{Error, Result};
use crate::rng::{Rng, stream};

/// Samples as rows of `features` f32 values, labels as class indices.
///
/// Build one with [`Dataset::new`], which checks the shapes, every label and every value;
/// a dataset built field by field is checked by [`Dataset::validate`], which every split
/// calls (scalers and [`Dataset::gather`] check its shape and what they read).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// [n, features] row-major.
    pub x: Vec<f32>,
    /// `[n]` class indices: integers in `[0, classes)`, stored as f32.
    pub y: Vec<f32>,
    /// Values per row (> 0).
    pub features: usize,
    /// Number of classes (> 0).
    pub classes: usize,
}

/// The first label of `y` that is not an integer in [0, classes) (10 of 10 classes, 255,
/// −1, 2.5, NaN), as [`Error::Label`] naming its row, its value and `origin` (a file, or
/// "the dataset").
pub fn check_labels(y: &[f32], classes: usize, origin: &str) -> Result<()> {
    match y
        .iter()
        .position(|&v| !(v >= 0.0 && v < classes as f32 && v.fract() == 0.0))
    {
        None => Ok(()),
        Some(row) => Err(Error::Label {
            value: y[row],
            row,
            classes,
            origin: origin.into(),
        }),
    }
}

/// The first NaN or infinite value of row-major `x` (rows of `features` values) as
/// [`Error::NonFiniteInput`] naming its row and feature.
pub fn check_finite(x: &[f32], features: usize, context: &str) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFiniteInput {
            context: context.into(),
            row: i / features,
            feature: i % features,
            value: x[i],
        }),
    }
}

impl Dataset {
    /// A dataset of `y.len()` rows, checked by [`Dataset::validate`]: features > 0,
    /// classes > 0, `x.len()` = rows · `features` ([`Error::Shape`]), every label an
    /// integer in [0, `classes`) ([`Error::Label`] with the row) and every feature value
    /// finite ([`Error::NonFiniteInput`] with the row and feature).
    pub fn new(x: Vec<f32>, y: Vec<f32>, features: usize, classes: usize) -> Result<Self> {
        let ds = Dataset {
            x,
            y,
            features,
            classes,
        };
        ds.validate()?;
        Ok(ds)
    }

    /// The full O(n) check of a dataset built field by field (see [`Dataset::new`]): the
    /// shape ([`Dataset::check_shape`]), the labels and finite feature values. Every split
    /// and fold calls it.
    pub fn validate(&self) -> Result<()> {
        self.check_shape()?;
        check_labels(&self.y, self.classes, "the dataset")?;
        self.check_finite("dataset")
    }

    /// The O(1) shape check: features > 0, classes > 0 and `x.len()` = `y.len()` ·
    /// `features`, as [`Error::Shape`] naming the counts. Cheap enough to call every epoch.
    pub fn check_shape(&self) -> Result<()> {
        let shape = |got: usize, expected: String| Error::Shape {
            context: "dataset".into(),
            got: vec![got],
            expected,
        };
        if self.features == 0 {
            return Err(shape(0, "features >= 1 per row".into()));
        }
        if self.classes == 0 {
            return Err(shape(0, "classes >= 1".into()));
        }
        match self.y.len().checked_mul(self.features) {
            Some(n) if n == self.x.len() => Ok(()),
            n => Err(shape(
                self.x.len(),
                format!(
                    "{} rows · {} features = {} values",
                    self.y.len(),
                    self.features,
                    n.map_or("more than usize can count".into(), |n| n.to_string())
                ),
            )),
        }
    }

    /// The first NaN or infinite feature value as [`Error::NonFiniteInput`] naming its row
    /// and feature (after [`Dataset::check_shape`]).
    fn check_finite(&self, context: &str) -> Result<()> {
        check_finite(&self.x, self.features, context)
    }

    /// [`Error::Empty`] for a dataset with no rows, naming what needed them.
    fn need_rows(&self, what: &str) -> Result<()> {
        if self.is_empty() {
            return Err(Error::Empty {
                what: "the dataset".into(),
                expected: format!("at least 1 sample to {what}"),
            });
        }
        Ok(())
    }

    /// The number of samples (rows).
    pub fn len(&self) -> usize {
        self.y.len()
    }
    /// Whether the dataset holds no samples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Rows `idx` in that order. Errors: a malformed shape ([`Dataset::check_shape`]) or
    /// an index >= `len()` ([`Error::Shape`] naming it).
    pub fn gather(&self, idx: &[usize]) -> Result<Dataset> {
        self.check_shape()?;
        if let Some(&i) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(Error::Shape {
                context: "dataset gather index".into(),
                got: vec![i],
                expected: format!("row indices < {} (the number of samples)", self.len()),
            });
        }
        Ok(self.rows(idx))
    }

    /// Rows `idx` (checked shape and indices).
    fn rows(&self, idx: &[usize]) -> Dataset {
        let f = self.features;
        let mut x = Vec::with_capacity(idx.len() * f);
        for &i in idx {
            x.extend_from_slice(&self.x[i * f..(i + 1) * f]);
        }
        Dataset {
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            features: f,
            classes: self.classes,
        }
    }

    /// The first min(`n`, `len()`) samples. Errors: a malformed shape.
    pub fn take(&self, n: usize) -> Result<Dataset> {
        self.gather(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// Indices of epoch `epoch`'s order (a seeded permutation, or 0..n without shuffle).
    pub fn epoch_order(&self, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
        if shuffle {
            Rng::new(seed).permutation(stream::SHUFFLE, epoch as u32, self.len())
        } else {
            (0..self.len()).collect()
        }
    }
}
