//! Seeded splits of a dataset: train/validation (random or stratified), train/validation/
//! test with a [`HeldOut`] test set, and (stratified) k-fold cross-validation indices.

use std::collections::BTreeMap;

use super::Task;
use super::{Dataset, Scaler};
use crate::error::{Error, Result};
use crate::rng::{Rng, stream};

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
    /// Set `ds` aside as a held-out split.
    pub fn new(ds: Dataset) -> Self {
        HeldOut(ds)
    }
    /// Samples held out.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether nothing is held out.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Apply the training split's scaler (the only change allowed).
    pub fn scale(&mut self, scaler: &Scaler) -> Result<()> {
        scaler.apply(&mut self.0)
    }
    /// The test set itself, for the one evaluation that consumes it (the training layer's
    /// `evaluate_held_out`).
    pub(crate) fn into_dataset(self) -> Dataset {
        self.0
    }
}

/// The row indices (train, validation, test) of [`Dataset::split3`] over `n` rows: the
/// same seeded permutation, so rows that are not a [`Dataset`] yet (a CSV table whose
/// preprocessing is fitted on the training rows) split exactly as a dataset would. Errors
/// as [`Dataset::split3`].
pub fn split3_indices(
    n: usize,
    fractions: (f32, f32, f32),
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
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
    if n == 0 {
        return Err(Error::Empty {
            what: "the dataset".into(),
            expected: "at least 1 sample to split".into(),
        });
    }
    let n_val = side_len("validation", b, n)?;
    let n_test = side_len("test", c, n)?;
    if n_val + n_test >= n {
        return Err(no_train(b + c, n));
    }
    let perm = Rng::new(seed).permutation(stream::SPLIT, 1, n);
    let (test, rest) = perm.split_at(n_test);
    let (val, train) = rest.split_at(n_val);
    Ok((train.to_vec(), val.to_vec(), test.to_vec()))
}

impl Dataset {
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
        self.validate()?;
        self.need_rows("split")?;
        let (train, val, test) = split3_indices(self.len(), fractions, seed)?;
        Ok((
            self.rows(&train),
            self.rows(&val),
            HeldOut(self.rows(&test)),
        ))
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
        if !matches!(self.task, Task::Multiclass | Task::Binary) {
            return Err(Error::Split(format!(
                "{what}: stratification needs one class per sample, and this dataset's task is {}; use an unstratified split",
                self.task
            )));
        }
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
