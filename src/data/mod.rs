//! Datasets: MNIST-style IDX loading, seeded splits, standardization fitted on the
//! training split only, and seeded per-epoch shuffling.

pub mod folder;
pub mod idx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// [n] class indices: integers in [0, classes), stored as f32.
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

    /// A seeded random split: (train, validation) with round(n · `val_fraction`) samples in
    /// validation; a fraction of 0 gives no validation samples.
    ///
    /// Errors: [`Error::Hyperparameter`] outside 0 <= fraction < 1; [`Error::Split`] when a
    /// fraction above 0 rounds to 0 validation samples, or leaves no training sample;
    /// [`Error::Empty`] for a dataset with no samples; [`Error::Label`] / [`Error::Shape`] /
    /// [`Error::NonFiniteInput`] for a malformed dataset ([`Dataset::validate`]).
    pub fn split(&self, val_fraction: f32, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(Error::Hyperparameter {
                name: "val_fraction",
                value: val_fraction.to_string(),
                expected: "0 <= fraction < 1",
            });
        }
        self.validate()?;
        self.need_rows("split")?;
        let n_val = side_len("validation", val_fraction, self.len())?;
        if n_val == self.len() && n_val > 0 {
            return Err(no_train(val_fraction, self.len()));
        }
        let perm = Rng::new(seed).permutation(stream::SPLIT, 0, self.len());
        Ok((self.rows(&perm[n_val..]), self.rows(&perm[..n_val])))
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

/// Three-way split fractions: (train, validation, test), summing to 1.
pub const DEFAULT_SPLIT: (f32, f32, f32) = (0.7, 0.2, 0.1);

/// round(n · fraction) samples for one side of a split; a fraction above 0 that rounds
/// to 0 samples is an error saying so.
fn side_len(side: &str, fraction: f32, n: usize) -> Result<usize> {
    let k = (n as f64 * fraction as f64).round() as usize;
    if fraction > 0.0 && k == 0 {
        return Err(Error::Split(format!(
            "a {side} fraction of {fraction} of {n} samples rounds to 0 samples; \
             use a fraction of at least 0.5/{n} = {}, or 0 for no {side} split",
            0.5 / n.max(1) as f64
        )));
    }
    Ok(k.min(n))
}

fn no_train(held_out: f32, n: usize) -> Error {
    Error::Split(format!(
        "holding out a fraction of {held_out} of {n} samples leaves 0 samples for training"
    ))
}

/// A held-out test set that can only be evaluated, and only once: it cannot be trained
/// on, peeked at for tuning, or evaluated twice by accident.
pub struct HeldOut(Dataset);

impl HeldOut {
    pub fn new(ds: Dataset) -> Self {
        HeldOut(ds)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Apply the training split's scaler (the only change allowed).
    pub fn scale(&mut self, scaler: &Scaler) -> Result<()> {
        scaler.apply(&mut self.0)
    }
    /// Evaluate once (consumes the test set).
    pub fn evaluate(
        self,
        s: &mut crate::session::Session,
        batch_size: usize,
    ) -> Result<crate::session::Metrics> {
        crate::train::evaluate(s, &self.0, batch_size)
    }
}

impl Dataset {
    /// A seeded random three-way split by fractions (train, validation, test), e.g.
    /// [`DEFAULT_SPLIT`] = 70/20/10 when one dataset is all there is. Validation and test
    /// get round(n · fraction) samples each; [`Error::Split`] when a fraction above 0
    /// rounds to 0 samples or no training sample is left; [`Error::Empty`] and malformed
    /// datasets as [`Dataset::split`].
    pub fn split3(
        &self,
        fractions: (f32, f32, f32),
        seed: u64,
    ) -> Result<(Dataset, Dataset, HeldOut)> {
        let (a, b, c) = fractions;
        if [a, b, c].iter().any(|f| !(0.0..=1.0).contains(f))
            || ((a + b + c) - 1.0).abs() > 1e-4
            || a <= 0.0
        {
            return Err(Error::Hyperparameter {
                name: "split fractions",
                value: format!("{fractions:?}"),
                expected: "three fractions in [0, 1] summing to 1, train > 0",
            });
        }
        self.validate()?;
        self.need_rows("split")?;
        let n_val = side_len("validation", b, self.len())?;
        let n_test = side_len("test", c, self.len())?;
        if n_val + n_test >= self.len() {
            return Err(no_train(b + c, self.len()));
        }
        let perm = Rng::new(seed).permutation(stream::SPLIT, 1, self.len());
        let (test, rest) = perm.split_at(n_test);
        let (val, train) = rest.split_at(n_val);
        Ok((self.rows(train), self.rows(val), HeldOut(self.rows(test))))
    }

    /// A seeded stratified split: each class contributes round(val_fraction · its count)
    /// samples to validation, clamped to [1, count − 1], so both sides keep the class
    /// proportions and see every class (a fraction of 0 gives no validation samples).
    ///
    /// Errors: [`Error::Split`] naming a class with a single sample when the fraction is
    /// above 0 (it cannot be on both sides: scikit-learn's `train_test_split(stratify=y)`
    /// refuses it too, "the least populated class in y has only 1 member");
    /// [`Error::Empty`] and malformed datasets as [`Dataset::split`].
    pub fn stratified_split(&self, val_fraction: f32, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(Error::Hyperparameter {
                name: "val_fraction",
                value: val_fraction.to_string(),
                expected: "0 <= fraction < 1",
            });
        }
        let by_class = self.by_class("split")?;
        if val_fraction > 0.0
            && let Some((c, idx)) = by_class.iter().find(|(_, i)| i.len() == 1)
        {
            return Err(Error::Split(format!(
                "class {c} has {} sample, too few to appear in both training and validation \
                 (a stratified split needs at least 2 per class)",
                idx.len()
            )));
        }
        // scikit-learn's rule: each side must be able to hold one sample of every class
        // (n_val = ⌈fraction·n⌉ and n − n_val both at least the number of classes), or the
        // one-per-class minimum below would silently exceed the fraction asked for.
        let (n, k) = (self.len(), by_class.len());
        let n_val = (val_fraction as f64 * n as f64).ceil() as usize;
        if val_fraction > 0.0 && (n_val < k || n - n_val < k) {
            let side = if n_val < k { "validation" } else { "training" };
            return Err(Error::Split(format!(
                "a stratified split of {n} samples at {val_fraction} gives {n_val} validation and {} training samples, but each side needs one of each of the {k} classes present; the {side} side is too small (scikit-learn refuses this too)",
                n - n_val
            )));
        }
        let (mut tr, mut va) = (vec![], vec![]);
        for (&c, idx) in &by_class {
            let perm = Rng::new(seed).permutation(stream::SPLIT, 2 + c as u32, idx.len());
            let mut n_val = (idx.len() as f32 * val_fraction).round() as usize;
            if val_fraction > 0.0 && !idx.is_empty() {
                n_val = n_val.clamp(1, idx.len() - 1);
            }
            for (k, &p) in perm.iter().enumerate() {
                if k < n_val {
                    va.push(idx[p])
                } else {
                    tr.push(idx[p])
                }
            }
        }
        tr.sort_unstable();
        va.sort_unstable();
        Ok((self.rows(&tr), self.rows(&va)))
    }

    /// Row indices of each class present, by class index (after [`Dataset::validate`]
    /// and [`Dataset::need_rows`]); a map, so a huge `classes` allocates nothing.
    fn by_class(&self, what: &str) -> Result<BTreeMap<usize, Vec<usize>>> {
        self.validate()?;
        self.need_rows(what)?;
        let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, &y) in self.y.iter().enumerate() {
            by_class.entry(y as usize).or_default().push(i);
        }
        Ok(by_class)
    }

    /// [`Error::Hyperparameter`] unless 2 <= k <= the number of samples, checked before
    /// anything of size k is allocated.
    fn check_k(&self, k: usize) -> Result<()> {
        if k < 2 || k > self.len() {
            return Err(Error::Hyperparameter {
                name: "k",
                value: format!("{k} (with {} samples)", self.len()),
                expected: "2 <= k <= the number of samples",
            });
        }
        Ok(())
    }

    /// Seeded stratified k-fold cross-validation indices, as scikit-learn's
    /// `StratifiedKFold(k, shuffle=True)`: k pairs (train, validation), the validation folds
    /// disjoint and covering every sample once, each class spread over the folds as evenly
    /// as its count allows (its counts per fold differ by at most 1; so do the fold sizes).
    /// Each class's members are shuffled, the classes laid end to end, and the j-th sample
    /// of that order goes to fold j mod k.
    ///
    /// Errors: [`Error::Hyperparameter`] unless 2 <= k <= n; [`Error::Split`] naming a
    /// class with fewer members than folds (it would be missing from some validation
    /// fold); [`Error::Empty`] and malformed datasets as [`Dataset::split`].
    pub fn stratified_kfold(&self, k: usize, seed: u64) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
        let by_class = self.by_class("make folds")?;
        self.check_k(k)?;
        if let Some((c, idx)) = by_class.iter().find(|(_, i)| i.len() < k) {
            return Err(Error::Split(format!(
                "class {c} has {} samples, fewer than the {k} folds of a stratified k-fold",
                idx.len()
            )));
        }
        let mut fold_of = vec![0usize; self.len()];
        let mut j = 0;
        for (&c, idx) in &by_class {
            let perm = Rng::new(seed).permutation(stream::SPLIT, 2000 + c as u32, idx.len());
            for &p in &perm {
                fold_of[idx[p]] = j % k;
                j += 1;
            }
        }
        Ok((0..k)
            .map(|f| {
                let (val, train): (Vec<usize>, Vec<usize>) =
                    (0..self.len()).partition(|&i| fold_of[i] == f);
                (train, val)
            })
            .collect())
    }

    /// Seeded k-fold cross-validation indices: k pairs (train, validation), the validation
    /// folds disjoint and covering every sample once.
    ///
    /// Errors: [`Error::Hyperparameter`] unless 2 <= k <= n; [`Error::Empty`] and
    /// malformed datasets as [`Dataset::split`].
    pub fn kfold(&self, k: usize, seed: u64) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
        self.validate()?;
        self.need_rows("make folds")?;
        self.check_k(k)?;
        let perm = Rng::new(seed).permutation(stream::SPLIT, 1000, self.len());
        let n = self.len();
        Ok((0..k)
            .map(|f| {
                let (lo, hi) = (f * n / k, (f + 1) * n / k);
                let mut val = perm[lo..hi].to_vec();
                let mut train: Vec<usize> = perm[..lo].iter().chain(&perm[hi..]).copied().collect();
                val.sort_unstable();
                train.sort_unstable();
                (train, val)
            })
            .collect())
    }
}

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

/// Load an MNIST-format pair (`{prefix}-images-idx3-ubyte[.gz]`,
/// `{prefix}-labels-idx1-ubyte[.gz]`) with pixels scaled to [0, 1] and 10 classes; a
/// label outside 0..=9 is an [`Error::Label`] naming the label file, the row and the value.
pub fn load_idx_pair(dir: &Path, prefix: &str) -> Result<Dataset> {
    let find = |stem: String| -> Result<PathBuf> {
        let plain = dir.join(&stem);
        let gz = dir.join(format!("{stem}.gz"));
        if plain.exists() {
            Ok(plain)
        } else if gz.exists() {
            Ok(gz)
        } else {
            Err(Error::Idx {
                path: plain,
                what: "not found (nor .gz); run scripts/fetch-data.sh".into(),
            })
        }
    };
    let ip = find(format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find(format!("{prefix}-labels-idx1-ubyte"))?;
    let images = idx::read_u8(&ip)?;
    let labels = idx::read_u8(&lp)?;
    if images.dims.len() != 3 {
        return Err(Error::Idx {
            path: ip,
            what: format!("dimensions {:?}, expected [N, rows, cols]", images.dims),
        });
    }
    if labels.dims.len() != 1 {
        return Err(Error::Idx {
            path: lp,
            what: format!("dimensions {:?}, expected [N]", labels.dims),
        });
    }
    if labels.dims[0] != images.dims[0] {
        return Err(Error::Idx {
            path: lp,
            what: format!("{} labels for {} images", labels.dims[0], images.dims[0]),
        });
    }
    let y: Vec<f32> = labels.data.iter().map(|&l| l as f32).collect();
    check_labels(&y, 10, &lp.display().to_string())?;
    Dataset::new(
        images.data.iter().map(|&p| p as f32 / 255.0).collect(),
        y,
        images.dims[1] * images.dims[2],
        10,
    )
}

/// MNIST or Fashion-MNIST from `dir`: (train 60,000, test 10,000).
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset)> {
    Ok((load_idx_pair(dir, "train")?, load_idx_pair(dir, "t10k")?))
}

/// The images file of an MNIST-format pair in `dir` (`{prefix}-images-idx3-ubyte[.gz]`)
/// and its image size (rows, cols), read from the file's header.
pub fn idx_image_size(dir: &Path, prefix: &str) -> Result<(PathBuf, usize, usize)> {
    let stem = format!("{prefix}-images-idx3-ubyte");
    let gz = dir.join(format!("{stem}.gz"));
    let path = if !dir.join(&stem).exists() && gz.exists() {
        gz
    } else {
        dir.join(&stem)
    };
    match idx::read_dims(&path)?[..] {
        [_, rows, cols] => Ok((path, rows, cols)),
        ref d => Err(Error::Idx {
            what: format!("dimensions {d:?}, expected [N, rows, cols]"),
            path,
        }),
    }
}
