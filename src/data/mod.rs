//! Datasets: MNIST-style IDX loading, seeded splits, standardization fitted on the
//! training split only, and seeded per-epoch shuffling.

pub mod augment;
pub mod folder;
pub mod idx;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rng::{Rng, stream};

/// Samples as rows of `features` f32 values, labels as class indices.
///
/// Build one with [`Dataset::new`], which checks the shapes and every label; a dataset
/// built field by field is checked by [`Dataset::validate`], which every split calls.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// [n, features] row-major.
    pub x: Vec<f32>,
    /// [n] class indices: integers in [0, classes), stored as f32.
    pub y: Vec<f32>,
    pub features: usize,
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

impl Dataset {
    /// A dataset of `y.len()` rows, checked: `x.len()` = rows · `features` ([`Error::Shape`])
    /// and every label an integer in [0, `classes`) ([`Error::Label`] with the row).
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

    /// Check the shapes and labels of a dataset built field by field (see [`Dataset::new`]).
    pub fn validate(&self) -> Result<()> {
        if self.x.len() != self.y.len() * self.features {
            return Err(Error::Shape {
                context: "dataset".into(),
                got: vec![self.x.len()],
                expected: format!(
                    "{} rows · {} features = {} values",
                    self.y.len(),
                    self.features,
                    self.y.len() * self.features
                ),
            });
        }
        check_labels(&self.y, self.classes, "the dataset")
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Rows `idx` in that order.
    pub fn gather(&self, idx: &[usize]) -> Dataset {
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

    /// The first `n` samples.
    pub fn take(&self, n: usize) -> Dataset {
        self.gather(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// A seeded random split: (train, validation) with round(n · `val_fraction`) samples in
    /// validation; a fraction of 0 gives no validation samples.
    ///
    /// Errors: [`Error::Hyperparameter`] outside 0 <= fraction < 1; [`Error::Split`] when a
    /// fraction above 0 rounds to 0 validation samples, or leaves no training sample;
    /// [`Error::Label`] / [`Error::Shape`] for a malformed dataset.
    pub fn split(&self, val_fraction: f32, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(Error::Hyperparameter {
                name: "val_fraction",
                value: val_fraction.to_string(),
                expected: "0 <= fraction < 1",
            });
        }
        self.validate()?;
        let n_val = side_len("validation", val_fraction, self.len())?;
        if n_val == self.len() && n_val > 0 {
            return Err(no_train(val_fraction, self.len()));
        }
        let perm = Rng::new(seed).permutation(stream::SPLIT, 0, self.len());
        Ok((self.gather(&perm[n_val..]), self.gather(&perm[..n_val])))
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
    /// rounds to 0 samples or no training sample is left.
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
        let n_val = side_len("validation", b, self.len())?;
        let n_test = side_len("test", c, self.len())?;
        if n_val + n_test >= self.len() {
            return Err(no_train(b + c, self.len()));
        }
        let perm = Rng::new(seed).permutation(stream::SPLIT, 1, self.len());
        let (test, rest) = perm.split_at(n_test);
        let (val, train) = rest.split_at(n_val);
        Ok((
            self.gather(train),
            self.gather(val),
            HeldOut(self.gather(test)),
        ))
    }

    /// A seeded stratified split: each class contributes round(val_fraction · its count)
    /// samples to validation, clamped to [1, count − 1], so both sides keep the class
    /// proportions and see every class (a fraction of 0 gives no validation samples).
    ///
    /// Errors: [`Error::Split`] naming a class with a single sample when the fraction is
    /// above 0 (it cannot be on both sides: scikit-learn's `train_test_split(stratify=y)`
    /// refuses it too, "the least populated class in y has only 1 member");
    /// [`Error::Label`] / [`Error::Shape`] for a malformed dataset.
    pub fn stratified_split(&self, val_fraction: f32, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(Error::Hyperparameter {
                name: "val_fraction",
                value: val_fraction.to_string(),
                expected: "0 <= fraction < 1",
            });
        }
        let by_class = self.by_class()?;
        if val_fraction > 0.0
            && let Some((c, idx)) = by_class.iter().enumerate().find(|(_, i)| i.len() == 1)
        {
            return Err(Error::Split(format!(
                "class {c} has {} sample, too few to appear in both training and validation \
                 (a stratified split needs at least 2 per class)",
                idx.len()
            )));
        }
        let (mut tr, mut va) = (vec![], vec![]);
        for (c, idx) in by_class.iter().enumerate() {
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
        Ok((self.gather(&tr), self.gather(&va)))
    }

    /// Row indices per class (after [`Dataset::validate`]).
    fn by_class(&self) -> Result<Vec<Vec<usize>>> {
        self.validate()?;
        let mut by_class: Vec<Vec<usize>> = vec![vec![]; self.classes];
        for (i, &y) in self.y.iter().enumerate() {
            by_class[y as usize].push(i);
        }
        Ok(by_class)
    }

    /// Seeded stratified k-fold cross-validation indices, as scikit-learn's
    /// `StratifiedKFold(k, shuffle=True)`: k pairs (train, validation), the validation folds
    /// disjoint and covering every sample once, each class spread over the folds as evenly
    /// as its count allows (its counts per fold differ by at most 1; so do the fold sizes).
    /// Each class's members are shuffled, the classes laid end to end, and the j-th sample
    /// of that order goes to fold j mod k.
    ///
    /// Errors: [`Error::Hyperparameter`] for k < 2; [`Error::Split`] naming a class with
    /// fewer members than folds (it would be missing from some validation fold);
    /// [`Error::Label`] / [`Error::Shape`] for a malformed dataset.
    pub fn stratified_kfold(&self, k: usize, seed: u64) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
        if k < 2 {
            return Err(Error::Hyperparameter {
                name: "k",
                value: k.to_string(),
                expected: "k >= 2 folds",
            });
        }
        let by_class = self.by_class()?;
        if let Some((c, idx)) = by_class
            .iter()
            .enumerate()
            .find(|(_, i)| !i.is_empty() && i.len() < k)
        {
            return Err(Error::Split(format!(
                "class {c} has {} samples, fewer than the {k} folds of a stratified k-fold",
                idx.len()
            )));
        }
        let mut fold_of = vec![0usize; self.len()];
        let mut j = 0;
        for (c, idx) in by_class.iter().enumerate() {
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
    pub fn kfold(&self, k: usize, seed: u64) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
        self.validate()?;
        if k < 2 || k > self.len() {
            return Err(Error::Hyperparameter {
                name: "k",
                value: k.to_string(),
                expected: "2 <= k <= the number of samples",
            });
        }
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
    Global(Standardizer),
    PerFeature { mean: Vec<f32>, std: Vec<f32> },
    MinMax { min: Vec<f32>, max: Vec<f32> },
}

impl From<Standardizer> for Scaler {
    fn from(s: Standardizer) -> Self {
        Scaler::Global(s)
    }
}

impl Scaler {
    /// Per-feature mean and population std fitted on `ds` (two passes in f64; std 1 where
    /// the variance is exactly 0).
    pub fn fit_per_feature(ds: &Dataset) -> Result<Self> {
        let (f, n) = (ds.features, ds.len());
        if n == 0 {
            return Err(Error::Shape {
                context: "scaler fit".into(),
                got: vec![0],
                expected: "a non-empty training split".into(),
            });
        }
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
    /// range of 1 when applied).
    pub fn fit_min_max(ds: &Dataset) -> Result<Self> {
        let f = ds.features;
        if ds.is_empty() {
            return Err(Error::Shape {
                context: "scaler fit".into(),
                got: vec![0],
                expected: "a non-empty training split".into(),
            });
        }
        let (mut min, mut max) = (vec![f32::INFINITY; f], vec![f32::NEG_INFINITY; f]);
        for row in ds.x.chunks(f) {
            for j in 0..f {
                min[j] = min[j].min(row[j]);
                max[j] = max[j].max(row[j]);
            }
        }
        Ok(Scaler::MinMax { min, max })
    }

    /// Scale a dataset in place.
    pub fn apply(&self, ds: &mut Dataset) -> Result<()> {
        let f = ds.features;
        let check = |len: usize| {
            if len == f {
                Ok(())
            } else {
                Err(Error::Shape {
                    context: "scaler".into(),
                    got: vec![f],
                    expected: format!("{len} features, as fitted"),
                })
            }
        };
        match self {
            Scaler::Global(s) => s.apply(ds),
            Scaler::PerFeature { mean, std } => {
                check(mean.len())?;
                for row in ds.x.chunks_mut(f) {
                    for j in 0..f {
                        row[j] = (row[j] - mean[j]) / nonzero_scale(std[j]);
                    }
                }
            }
            Scaler::MinMax { min, max } => {
                check(min.len())?;
                for row in ds.x.chunks_mut(f) {
                    for j in 0..f {
                        row[j] = (row[j] - min[j]) / nonzero_scale(max[j] - min[j]);
                    }
                }
            }
        }
        Ok(())
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

    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let vec = |k: &str| -> Option<Vec<f32>> {
            v[k].as_array()?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect()
        };
        match v["kind"].as_str()? {
            "global" => Some(Scaler::Global(Standardizer {
                mean: v["mean"].as_f64()? as f32,
                std: v["std"].as_f64()? as f32,
            })),
            "per_feature" => Some(Scaler::PerFeature {
                mean: vec("mean")?,
                std: vec("std")?,
            }),
            "min_max" => Some(Scaler::MinMax {
                min: vec("min")?,
                max: vec("max")?,
            }),
            _ => None,
        }
    }
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
    pub mean: f32,
    pub std: f32,
}

impl Standardizer {
    /// Fit on a dataset (the training split). Sums in f64, two passes.
    pub fn fit(ds: &Dataset) -> Result<Self> {
        if ds.x.is_empty() {
            return Err(Error::Shape {
                context: "standardizer fit".into(),
                got: vec![0],
                expected: "a non-empty training split".into(),
            });
        }
        let n = ds.x.len() as f64;
        let mean = ds.x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = ds.x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        Ok(Standardizer {
            mean: mean as f32,
            std: nonzero_scale(var.sqrt() as f32),
        })
    }
    /// x' = (x − mean) / std in place (std 0 taken as 1).
    pub fn apply(&self, ds: &mut Dataset) {
        let std = nonzero_scale(self.std);
        ds.x.iter_mut().for_each(|v| *v = (*v - self.mean) / std);
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
