//! Datasets: samples as rows of features with class labels ([`Dataset`]), their checks,
//! and the seeded per-epoch order. Splits and folds, scalers fitted on the training split
//! only, and loaders for MNIST-format pairs, IDX files and image folders live in the
//! submodules.

#[cfg(feature = "image-folders")]
pub mod folder;
pub mod idx;
mod mnist;
mod scale;
mod split;
pub mod tabular;

pub use crate::task::Task;
pub use mnist::{idx_image_size, load_idx_pair, load_mnist};
pub use scale::{Scaler, Standardizer};
pub use split::{DEFAULT_SPLIT, HeldOut, split3_indices};

use crate::error::{Error, Result};
use crate::rng::{Rng, stream};

/// Samples as rows of `features` f32 values with their targets: class indices
/// (multiclass), values in [0, 1] (binary, multi-label: 0 or 1, or soft targets) or real
/// values (regression), and
/// optional per-sample weights.
///
/// Build one with [`Dataset::new`] (multiclass) or [`Dataset::for_task`], which check the
/// shapes, every target and every value; a dataset built field by field is checked by
/// [`Dataset::validate`], which every split calls (scalers and [`Dataset::gather`] check
/// its shape and what they read).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// [n, features] row-major.
    pub x: Vec<f32>,
    /// `[n, targets]` row-major: class indices as f32 for [`Task::Multiclass`]
    /// (integers in `[0, classes)`), values in [0, 1] for [`Task::Binary`] and
    /// [`Task::Multilabel`], finite values for [`Task::Regression`].
    pub y: Vec<f32>,
    /// Values per row (> 0).
    pub features: usize,
    /// Number of classes: C ≥ 1 (multiclass), 2 (binary), k = `targets` (multi-label),
    /// 0 (regression).
    pub classes: usize,
    /// What the targets are.
    pub task: Task,
    /// Target values per row: 1 for multiclass and binary, k for multi-label, T for
    /// regression. 0 is read as 1 (a dataset built field by field with `..Default`).
    pub targets: usize,
    /// Per-sample weights `[n]` (finite, ≥ 0), or None for all 1: the loss is their
    /// weighted mean (Keras' `sample_weight`).
    pub weights: Option<Vec<f32>>,
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

/// The first target of `y` (rows of `targets` values) that `task` cannot take, as
/// [`Error::Label`] (multiclass: not an integer in [0, `classes`)) or [`Error::Target`]
/// naming its row and column (binary and multilabel: not in [0, 1]; regression: not
/// finite). `origin` names the data.
pub fn check_targets(
    y: &[f32],
    task: Task,
    classes: usize,
    targets: usize,
    origin: &str,
) -> Result<()> {
    let targets = targets.max(1);
    let bad = |i: usize, expected: &'static str| Error::Target {
        what: "target",
        value: y[i],
        row: i / targets,
        column: i % targets,
        expected,
        origin: origin.into(),
    };
    match task {
        Task::Multiclass => check_labels(y, classes, origin),
        Task::Binary | Task::Multilabel => {
            match y.iter().position(|&v| !(0.0..=1.0).contains(&v)) {
                None => Ok(()),
                Some(i) => Err(bad(i, "a value in [0, 1] (binary cross-entropy targets)")),
            }
        }
        Task::Regression => match y.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(bad(i, "a finite regression target")),
        },
    }
}

pub use crate::limits::WEIGHT_RANGE;

/// The first sample weight that is negative, not finite, or non-zero outside
/// [`WEIGHT_RANGE`], as [`Error::Target`] naming its row; `origin` names the data.
pub fn check_weights(w: &[f32], origin: &str) -> Result<()> {
    let (lo, hi) = WEIGHT_RANGE;
    match w
        .iter()
        .position(|&v| !(v.is_finite() && (v == 0.0 || (lo..=hi).contains(&v))))
    {
        None => Ok(()),
        Some(i) => Err(Error::Target {
            what: "sample weight",
            value: w[i],
            row: i,
            column: 0,
            expected: "0, or a finite weight in [1e-30, 1e30]",
            origin: origin.into(),
        }),
    }
}

/// The first value in `columns` of row-major `x` (rows of `features` values) that is not
/// a token id of a `vocab`-row embedding, an integer in `[0, vocab)` (NaN, −1, 2.5,
/// `vocab`), as [`Error::TokenId`] naming its row and column; `origin` names the data.
/// Columns past a row's end are not read.
pub fn check_token_ids(
    x: &[f32],
    features: usize,
    columns: std::ops::Range<usize>,
    vocab: usize,
    origin: &str,
) -> Result<()> {
    let f = features.max(1);
    let columns = columns.start.min(f)..columns.end.min(f);
    for (row, r) in x.chunks(f).enumerate() {
        let Some(c) = r.get(columns.clone()) else {
            continue;
        };
        if let Some(j) = c
            .iter()
            .position(|&v| crate::limits::token_index(v, vocab).is_none())
        {
            return Err(Error::TokenId {
                value: c[j],
                row,
                column: columns.start + j,
                vocab,
                origin: origin.into(),
            });
        }
    }
    Ok(())
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
    /// A multiclass dataset of `y.len()` rows, checked by [`Dataset::validate`]:
    /// features > 0, classes > 0, `x.len()` = rows · `features` ([`Error::Shape`]), every
    /// label an integer in [0, `classes`) ([`Error::Label`] with the row) and every
    /// feature value finite ([`Error::NonFiniteInput`] with the row and feature).
    pub fn new(x: Vec<f32>, y: Vec<f32>, features: usize, classes: usize) -> Result<Self> {
        let ds = Dataset {
            x,
            y,
            features,
            classes,
            task: Task::Multiclass,
            targets: 1,
            weights: None,
        };
        ds.validate()?;
        Ok(ds)
    }

    /// A dataset for `task` from row-major slices the caller already holds: `x`
    /// `[n, features]` and `y` `[n, width]`, where `width` is the number of classes for
    /// multiclass (y then holds one class index per row), 1 for binary, k for
    /// multi-label and T for regression. Checked as [`Dataset::validate`]: targets in
    /// range for the task ([`Error::Label`], [`Error::Target`] naming row and column),
    /// finite features, consistent lengths ([`Error::Shape`]).
    pub fn for_task(
        task: Task,
        x: Vec<f32>,
        y: Vec<f32>,
        features: usize,
        width: usize,
    ) -> Result<Self> {
        let (classes, targets) = match task {
            Task::Multiclass => (width, 1),
            Task::Binary => (2, 1),
            Task::Multilabel => (width, width),
            Task::Regression => (0, width),
        };
        if task == Task::Binary && width != 1 {
            return Err(Error::Shape {
                context: "binary dataset".into(),
                got: vec![width],
                expected: "1 target per row (use multilabel for several 0/1 targets)".into(),
            });
        }
        let ds = Dataset {
            x,
            y,
            features,
            classes,
            task,
            targets,
            weights: None,
        };
        ds.validate()?;
        Ok(ds)
    }

    /// The same samples with per-sample weights `w` `[n]` (finite, ≥ 0;
    /// [`Error::Target`] names the first bad one, [`Error::Shape`] a wrong length).
    pub fn with_weights(mut self, w: Vec<f32>) -> Result<Self> {
        self.weights = Some(w);
        self.check_shape()?;
        check_weights(self.weights.as_deref().unwrap_or_default(), "the dataset")?;
        Ok(self)
    }

    /// Target values per row (`targets`, with 0 read as 1).
    pub fn width(&self) -> usize {
        self.targets.max(1)
    }

    /// The targets of row `i` (after [`Dataset::check_shape`]).
    pub fn target_row(&self, i: usize) -> &[f32] {
        let t = self.width();
        &self.y[i * t..(i + 1) * t]
    }

    /// The full O(n) check of a dataset built field by field (see [`Dataset::new`]): the
    /// shape ([`Dataset::check_shape`]), the targets, the weights and finite feature
    /// values. Every split and fold calls it.
    pub fn validate(&self) -> Result<()> {
        self.check_shape()?;
        check_targets(
            &self.y,
            self.task,
            self.classes,
            self.width(),
            "the dataset",
        )?;
        if let Some(w) = &self.weights {
            check_weights(w, "the dataset")?;
            // Weights that are all 0 train nothing and report a loss of 0: refused.
            if !w.is_empty() && w.iter().all(|&v| v == 0.0) {
                return Err(Error::Hyperparameter {
                    name: "sample weights",
                    value: format!("all {} zero", w.len()),
                    expected: "at least one sample with a weight > 0",
                });
            }
        }
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
        if self.classes == 0 && self.task != Task::Regression {
            return Err(shape(0, "classes >= 1".into()));
        }
        let t = self.width();
        if !self.y.len().is_multiple_of(t) {
            return Err(shape(
                self.y.len(),
                format!("whole rows of {t} target values"),
            ));
        }
        if let Some(w) = &self.weights
            && w.len() != self.len()
        {
            return Err(Error::Shape {
                context: "dataset sample weights".into(),
                got: vec![w.len()],
                expected: format!("one weight per sample ({})", self.len()),
            });
        }
        match self.len().checked_mul(self.features) {
            Some(n) if n == self.x.len() => Ok(()),
            n => Err(shape(
                self.x.len(),
                format!(
                    "{} rows · {} features = {} values",
                    self.len(),
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
        self.y.len() / self.width()
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
        let t = self.width();
        let mut y = Vec::with_capacity(idx.len() * t);
        for &i in idx {
            y.extend_from_slice(&self.y[i * t..(i + 1) * t]);
        }
        Dataset {
            x,
            y,
            features: f,
            classes: self.classes,
            task: self.task,
            targets: self.targets,
            weights: self
                .weights
                .as_ref()
                .map(|w| idx.iter().map(|&i| w[i]).collect()),
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
