//! Host-side evaluation metrics: pure functions over row-major host slices with `f64`
//! results, following scikit-learn's and Keras' definitions (each function names the one
//! it follows), and [`task_metrics`], the metrics of a [`Task`] under their Keras names.
//!
//! Conventions shared by every function:
//! - A matrix `[n, w]` is a slice of `n · w` values, row-major (row `i` is
//!   `x[i*w .. (i+1)*w]`).
//! - Inputs are validated, never trusted: slices of different lengths or of the wrong shape
//!   are [`Error::Shape`], no samples is [`Error::Empty`], a NaN or infinite score, output
//!   or target is [`Error::NonFiniteInput`] (scikit-learn's `assert_all_finite`), a 0/1
//!   target holding anything else is [`Error::Label`], a class index out of range is
//!   [`Error::ClassIndex`], a bad `k` or threshold is [`Error::Hyperparameter`]; nothing
//!   panics on user input.
//! - Zero division (a precision with no predicted positive, a recall with no actual
//!   positive, an F1 with neither) gives 0.0: scikit-learn's `zero_division=0`, which is
//!   also what Keras' `Precision`, `Recall` and `F1Score` return (`divide_no_nan`).

use crate::error::{Error, Result};
use crate::task::Task;

// ---------------------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------------------

/// `a` and `b` hold the same number of values, and at least one.
fn same_nonempty(context: &str, a: (&str, usize), b: (&str, usize)) -> Result<()> {
    if a.1 != b.1 {
        return Err(Error::Shape {
            context: format!("{context}: {} and {}", a.0, b.0),
            got: vec![a.1, b.1],
            expected: format!("as many {} as {}", b.0, a.0),
        });
    }
    if a.1 == 0 {
        return Err(Error::Empty {
            what: format!("{context}'s {}", a.0),
            expected: "at least 1 sample".into(),
        });
    }
    Ok(())
}

/// Every value of the `[_, width]` matrix `x` is finite (the error names row and column).
fn finite(context: &str, x: &[f32], width: usize) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFiniteInput {
            context: context.into(),
            row: i / width.max(1),
            feature: i % width.max(1),
            value: x[i],
        }),
    }
}

/// Every value of the `[_, width]` matrix `t` is exactly 0 or 1 (the error names the row,
/// and the column when there is more than one).
fn zero_one(origin: &str, t: &[f32], width: usize) -> Result<()> {
    match t.iter().position(|&v| v != 0.0 && v != 1.0) {
        None => Ok(()),
        Some(i) => Err(Error::Label {
            value: t[i],
            row: i / width.max(1),
            classes: 2,
            origin: if width > 1 {
                format!("{origin}, column {}", i % width)
            } else {
                origin.into()
            },
        }),
    }
}

/// Every index is below `classes`.
fn indices(what: &str, idx: &[usize], classes: usize) -> Result<()> {
    match idx.iter().position(|&c| c >= classes) {
        None => Ok(()),
        Some(row) => Err(Error::ClassIndex {
            what: what.into(),
            index: idx[row],
            row,
            classes,
        }),
    }
}

/// A table of `bytes` bytes (None: more than u128 counts), sized by `name` = `value`, fits
/// in the host's memory.
fn fits(name: &str, value: usize, bytes: Option<u128>) -> Result<()> {
    match bytes {
        Some(b) if b <= crate::limits::host_memory_bytes() => Ok(()),
        _ => Err(Error::too_large(
            name,
            value,
            bytes,
            "a table that fits in the host's memory",
        )),
    }
}

/// `num / den`, or 0.0 when `den` is 0 (scikit-learn's `zero_division=0`).
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// `n · width` without overflow, or a shape error naming the two.
fn cells(context: &str, n: usize, width: usize) -> Result<usize> {
    n.checked_mul(width).ok_or_else(|| Error::Shape {
        context: context.into(),
        got: vec![n, width],
        expected: "n · width to fit in usize".into(),
    })
}

/// The shape `[n, width]` of a regression matrix of `len` values: `width` ≥ 1 divides it.
fn rows_of(context: &str, len: usize, width: usize) -> Result<usize> {
    if width == 0 || !len.is_multiple_of(width) {
        return Err(Error::Shape {
            context: context.into(),
            got: vec![len, width],
            expected: "a [n, width] matrix: width ≥ 1 dividing the number of values".into(),
        });
    }
    Ok(len / width)
}

// ---------------------------------------------------------------------------------------
// Multiclass counts
// ---------------------------------------------------------------------------------------

/// The confusion matrix `m[t][p]` = number of samples of true class `t` predicted as `p`:
/// rows are the truth, columns the prediction (scikit-learn's `confusion_matrix(truth,
/// pred, labels=range(classes))`).
///
/// Shapes: `pred` `[n]`, `truth` `[n]` class indices; result `[classes][classes]`.
///
/// Errors: [`Error::Shape`] when the lengths differ, [`Error::Empty`] when `n` = 0,
/// [`Error::ClassIndex`] naming the first index ≥ `classes` (and its row),
/// [`Error::TooLarge`] when a `classes × classes` table cannot fit in memory.
pub fn confusion_matrix(pred: &[usize], truth: &[usize], classes: usize) -> Result<Vec<Vec<u64>>> {
    let context = "confusion_matrix";
    same_nonempty(context, ("pred", pred.len()), ("truth", truth.len()))?;
    indices("confusion_matrix pred", pred, classes)?;
    indices("confusion_matrix truth", truth, classes)?;
    let bytes = (classes as u128).checked_mul(classes as u128 * 8);
    fits("confusion_matrix classes", classes, bytes)?;
    let mut m = vec![vec![0u64; classes]; classes];
    for (&p, &t) in pred.iter().zip(truth) {
        m[t][p] += 1;
    }
    Ok(m)
}

/// Per-class true positives, false positives and false negatives (one-vs-rest).
struct PerClass {
    tp: Vec<u64>,
    fp: Vec<u64>,
    fn_: Vec<u64>,
}

impl PerClass {
    fn new(context: &str, pred: &[usize], truth: &[usize], classes: usize) -> Result<PerClass> {
        same_nonempty(context, ("pred", pred.len()), ("truth", truth.len()))?;
        indices(&format!("{context} pred"), pred, classes)?;
        indices(&format!("{context} truth"), truth, classes)?;
        fits(
            &format!("{context} classes"),
            classes,
            Some(classes as u128 * 24),
        )?;
        let mut c = PerClass {
            tp: vec![0; classes],
            fp: vec![0; classes],
            fn_: vec![0; classes],
        };
        for (&p, &t) in pred.iter().zip(truth) {
            if p == t {
                c.tp[p] += 1;
            } else {
                c.fp[p] += 1;
                c.fn_[t] += 1;
            }
        }
        Ok(c)
    }

    /// The mean over every class of `f(tp, fp, fn)`.
    fn mean(&self, f: impl Fn(u64, u64, u64) -> f64) -> f64 {
        let n = self.tp.len();
        let sum: f64 = (0..n).map(|c| f(self.tp[c], self.fp[c], self.fn_[c])).sum();
        sum / n as f64
    }

    fn precision(&self) -> f64 {
        self.mean(|tp, fp, _| ratio(tp, tp + fp))
    }
    fn recall(&self) -> f64 {
        self.mean(|tp, _, fn_| ratio(tp, tp + fn_))
    }
    fn f1(&self) -> f64 {
        self.mean(|tp, fp, fn_| ratio(2 * tp, 2 * tp + fp + fn_))
    }
}

/// Macro-averaged precision over the `classes` labels `0..classes`: the unweighted mean of
/// `tp_c / (tp_c + fp_c)` over every class `c`, a class never predicted counting 0.0.
///
/// Follows scikit-learn's `precision_score(truth, pred, labels=range(classes),
/// average="macro", zero_division=0)`. Note the `labels`: without it scikit-learn averages
/// only over the classes present in `truth ∪ pred`; here every one of the `classes` labels
/// counts, so a class absent from both lowers the mean (its precision is 0.0).
///
/// Shapes and errors as [`confusion_matrix`].
pub fn macro_precision(pred: &[usize], truth: &[usize], classes: usize) -> Result<f64> {
    Ok(PerClass::new("macro_precision", pred, truth, classes)?.precision())
}

/// Macro-averaged recall over the `classes` labels: the unweighted mean of
/// `tp_c / (tp_c + fn_c)`, a class absent from `truth` counting 0.0 (scikit-learn's
/// `recall_score(truth, pred, labels=range(classes), average="macro", zero_division=0)`;
/// see [`macro_precision`] on `labels`).
///
/// Shapes and errors as [`confusion_matrix`].
pub fn macro_recall(pred: &[usize], truth: &[usize], classes: usize) -> Result<f64> {
    Ok(PerClass::new("macro_recall", pred, truth, classes)?.recall())
}

/// Macro-averaged F1 over the `classes` labels: the unweighted mean of the per-class
/// `F1_c = 2·tp_c / (2·tp_c + fp_c + fn_c)` (the harmonic mean of the class's precision and
/// recall), a class with `tp_c + fp_c + fn_c = 0` counting 0.0. It is the mean of the
/// per-class F1, not the F1 of the macro precision and recall.
///
/// Follows scikit-learn's `f1_score(truth, pred, labels=range(classes), average="macro",
/// zero_division=0)` (and Keras' `F1Score(average="macro")` on one-hot rows); see
/// [`macro_precision`] on `labels`.
///
/// Shapes and errors as [`confusion_matrix`].
pub fn macro_f1(pred: &[usize], truth: &[usize], classes: usize) -> Result<f64> {
    Ok(PerClass::new("macro_f1", pred, truth, classes)?.f1())
}

/// The index of the largest value of `row`, the first one on ties (NumPy's and Keras'
/// `argmax`). `row` must be non-empty and finite.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// Top-k accuracy: the fraction of rows whose true class is among the `k` highest scores.
///
/// Ties follow Keras' `sparse_top_k_categorical_accuracy` (its `in_top_k`, as
/// `tf.math.in_top_k`): the true class's rank is `1 + #{j : probs[i, j] > probs[i, t_i]}`
/// and the row counts when that rank is ≤ k, so classes tied with the true class never
/// push it out. Not scikit-learn's `top_k_accuracy_score`, which sorts the scores and
/// breaks ties by putting higher class indices first, so its answer depends on how the
/// classes are numbered; Keras' rule does not, and it is the metric reported under its
/// Keras name by [`task_metrics`]. `k` ≥ `classes` gives 1.0.
///
/// Shapes: `probs` `[n, classes]` (probabilities or any scores), `truth` `[n]` class
/// indices.
///
/// Errors: [`Error::Empty`] when `n` = 0, [`Error::Shape`] when `probs` does not hold
/// `n · classes` values, [`Error::ClassIndex`] for a truth ≥ `classes`,
/// [`Error::NonFiniteInput`] for a NaN or infinite score, [`Error::Hyperparameter`] for
/// `k` = 0.
pub fn top_k_accuracy(probs: &[f32], truth: &[usize], classes: usize, k: usize) -> Result<f64> {
    let context = "top_k_accuracy";
    if k == 0 {
        return Err(Error::Hyperparameter {
            name: "k",
            value: "0".into(),
            expected: "an integer ≥ 1",
        });
    }
    let n = truth.len();
    if n == 0 {
        return Err(Error::Empty {
            what: "top_k_accuracy's truth".into(),
            expected: "at least 1 sample".into(),
        });
    }
    if Some(probs.len()) != n.checked_mul(classes) {
        return Err(Error::Shape {
            context: "top_k_accuracy probs".into(),
            got: vec![probs.len()],
            expected: format!("[{n}, {classes}]: {n} rows of truth × {classes} classes"),
        });
    }
    indices("top_k_accuracy truth", truth, classes)?;
    finite(&format!("{context} probs"), probs, classes)?;
    let hits = truth
        .iter()
        .enumerate()
        .filter(|&(i, &t)| {
            let row = &probs[i * classes..(i + 1) * classes];
            let above = row.iter().filter(|&&v| v > row[t]).count();
            above < k
        })
        .count();
    Ok(hits as f64 / n as f64)
}

// ---------------------------------------------------------------------------------------
// Binary counts and ROC AUC
// ---------------------------------------------------------------------------------------

/// The four counts of a thresholded binary classifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BinaryCounts {
    /// Predicted 1, target 1.
    pub tp: u64,
    /// Predicted 1, target 0.
    pub fp: u64,
    /// Predicted 0, target 0.
    pub tn: u64,
    /// Predicted 0, target 1 (`fn` is a keyword).
    pub fn_: u64,
}

impl BinaryCounts {
    /// `(tp + tn) / (tp + fp + tn + fn)`: Keras' `binary_accuracy` (0.0 when every count is
    /// 0).
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.fp + self.tn + self.fn_)
    }

    /// `tp / (tp + fp)`, and 0.0 when nothing is predicted positive (scikit-learn's
    /// `precision_score(zero_division=0)`; Keras' `Precision` also gives 0.0).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// `tp / (tp + fn)`, and 0.0 when no target is positive (scikit-learn's
    /// `recall_score(zero_division=0)`; Keras' `Recall` also gives 0.0).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// `2·tp / (2·tp + fp + fn)` (the harmonic mean of precision and recall), and 0.0 when
    /// `tp + fp + fn` = 0 (scikit-learn's `f1_score(zero_division=0)`).
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

/// The counts of `[_, width]` scores thresholded with `score > threshold` against 0/1
/// targets of the same shape (validated; errors name row and column).
fn counts(
    context: &str,
    scores: &[f32],
    targets: &[f32],
    width: usize,
    threshold: f32,
) -> Result<BinaryCounts> {
    if !threshold.is_finite() {
        return Err(Error::Hyperparameter {
            name: "threshold",
            value: threshold.to_string(),
            expected: "a finite number",
        });
    }
    same_nonempty(
        context,
        ("scores", scores.len()),
        ("targets", targets.len()),
    )?;
    finite(&format!("{context} scores"), scores, width)?;
    finite(&format!("{context} targets"), targets, width)?;
    zero_one(&format!("{context} targets"), targets, width)?;
    let mut c = BinaryCounts::default();
    for (&s, &t) in scores.iter().zip(targets) {
        match (s > threshold, t == 1.0) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    Ok(c)
}

/// The confusion counts of binary scores: a sample is predicted positive when
/// `score > threshold`, strictly (Keras' rule: `binary_accuracy` casts
/// `y_pred > threshold`, and `Precision` / `Recall` count `y_pred > thresholds`), so a
/// probability exactly at the threshold (0.5) is predicted negative.
///
/// Shapes: `scores` `[n]` (probabilities, or any scores with a matching threshold),
/// `targets` `[n]` each exactly 0.0 or 1.0.
///
/// Errors: [`Error::Shape`] when the lengths differ, [`Error::Empty`] when `n` = 0,
/// [`Error::NonFiniteInput`] for a NaN or infinite score or target, [`Error::Label`] naming
/// the row of a target that is not 0 or 1, [`Error::Hyperparameter`] for a non-finite
/// threshold.
pub fn binary_counts(scores: &[f32], targets: &[f32], threshold: f32) -> Result<BinaryCounts> {
    counts("binary_counts", scores, targets, 1, threshold)
}

/// Mann–Whitney AUC of `(score, is_positive)` pairs: the probability that a random
/// positive scores above a random negative, ties counting 1/2. None when one class is
/// missing. Scores must be finite.
fn mann_whitney(mut pairs: Vec<(f32, bool)>) -> Option<f64> {
    // `+ 0.0` turns -0.0 into 0.0, so that the two zeros tie.
    for p in pairs.iter_mut() {
        p.0 += 0.0;
    }
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as u128;
    let negatives = pairs.len() as u128 - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // 2U = Σ over tie groups of pos_g · (2 · negatives below + neg_g), exact in integers.
    let (mut twice_u, mut below, mut i) = (0u128, 0u128, 0);
    while i < pairs.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0u128, 0u128);
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            if pairs[j].1 {
                pos += 1;
            } else {
                neg += 1;
            }
            j += 1;
        }
        twice_u += pos * (2 * below + neg);
        below += neg;
        i = j;
    }
    Some(twice_u as f64 / (2 * positives * negatives) as f64)
}

/// The area under the ROC curve, in its exact Mann–Whitney form:
///
/// `AUC = (1 / (P·N)) · Σ_{i positive} Σ_{j negative} [s_i > s_j] + ½ [s_i = s_j]`
///
/// computed in O(n log n) by sorting and counting tie groups. It equals scikit-learn's
/// `roc_auc_score(targets, scores)` (the trapezoidal area under the full ROC curve, which
/// counts ties 1/2). Perfectly ranked scores give 1.0, inverted 0.0, all-equal 0.5.
///
/// Shapes: `scores` `[n]`, `targets` `[n]` each exactly 0.0 or 1.0.
///
/// Errors: as [`binary_counts`], and [`Error::Empty`] when the targets hold one class only
/// (scikit-learn raises "Only one class present in y_true. ROC AUC score is not defined
/// in that case.").
pub fn roc_auc(scores: &[f32], targets: &[f32]) -> Result<f64> {
    let context = "roc_auc";
    same_nonempty(
        context,
        ("scores", scores.len()),
        ("targets", targets.len()),
    )?;
    finite("roc_auc scores", scores, 1)?;
    finite("roc_auc targets", targets, 1)?;
    zero_one("roc_auc targets", targets, 1)?;
    let pairs = scores
        .iter()
        .zip(targets)
        .map(|(&s, &t)| (s, t == 1.0))
        .collect();
    mann_whitney(pairs).ok_or_else(|| one_class("roc_auc targets", targets))
}

/// The error for targets holding a single class.
fn one_class(what: &str, targets: &[f32]) -> Error {
    let missing = if targets.contains(&1.0) {
        "negative (0)"
    } else {
        "positive (1)"
    };
    Error::Empty {
        what: format!("the {missing} class of {what}"),
        expected: "both classes: ROC AUC is not defined for one class (scikit-learn: \"Only one class present in y_true\")".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Regression
// ---------------------------------------------------------------------------------------

/// Validated regression inputs: `(n, width)`.
fn regression(context: &str, outputs: &[f32], targets: &[f32], width: usize) -> Result<usize> {
    same_nonempty(
        context,
        ("outputs", outputs.len()),
        ("targets", targets.len()),
    )?;
    let n = rows_of(context, outputs.len(), width)?;
    finite(&format!("{context} outputs"), outputs, width)?;
    finite(&format!("{context} targets"), targets, width)?;
    Ok(n)
}

/// The mean over all elements of `f(output − target)`, in f64.
fn mean_of(outputs: &[f32], targets: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let sum: f64 = outputs
        .iter()
        .zip(targets)
        .map(|(&o, &t)| f(o as f64 - t as f64))
        .sum();
    sum / outputs.len() as f64
}

/// Mean absolute error over all `n · width` elements: `Σ |ŷ − y| / (n·width)` (Keras'
/// `mean_absolute_error` / `"mae"`, and scikit-learn's `mean_absolute_error` with
/// `multioutput="uniform_average"`, which is the same mean since every column has `n`
/// rows).
///
/// Shapes: `outputs` and `targets` `[n, width]`.
///
/// Errors: [`Error::Shape`] for different lengths or a `width` of 0 or not dividing them,
/// [`Error::Empty`] for no values, [`Error::NonFiniteInput`] naming row and column of a NaN
/// or infinite value.
pub fn mae(outputs: &[f32], targets: &[f32], width: usize) -> Result<f64> {
    regression("mae", outputs, targets, width)?;
    Ok(mean_of(outputs, targets, f64::abs))
}

/// Mean squared error over all `n · width` elements: `Σ (ŷ − y)² / (n·width)` (Keras'
/// `mean_squared_error` / `"mse"`; scikit-learn's `mean_squared_error`, uniform average).
///
/// Shapes and errors as [`mae`].
pub fn mse(outputs: &[f32], targets: &[f32], width: usize) -> Result<f64> {
    regression("mse", outputs, targets, width)?;
    Ok(mean_of(outputs, targets, |d| d * d))
}

/// Root mean squared error: `√(Σ (ŷ − y)² / (n·width))`, the root of [`mse`] over all
/// elements (Keras' `RootMeanSquaredError`, name `root_mean_squared_error`). With several
/// columns this differs from scikit-learn's `root_mean_squared_error(multioutput=
/// "uniform_average")`, which averages the per-column roots; for one column they agree.
///
/// Shapes and errors as [`mae`].
pub fn rmse(outputs: &[f32], targets: &[f32], width: usize) -> Result<f64> {
    regression("rmse", outputs, targets, width)?;
    Ok(mean_of(outputs, targets, |d| d * d).sqrt())
}

/// The coefficient of determination, per column `j`
/// `R²_j = 1 − Σ_i (y_ij − ŷ_ij)² / Σ_i (y_ij − ȳ_j)²`, averaged uniformly over the
/// columns: scikit-learn's `r2_score(targets, outputs, multioutput="uniform_average")`.
///
/// A constant target column (every `y_ij` equal) follows scikit-learn's
/// `force_finite=True`: its R² is 1.0 when its predictions are exact, else 0.0. A column is
/// constant when its values are equal, tested exactly; scikit-learn instead tests its
/// computed denominator for 0, which a rounding error in the mean can make tiny but not 0
/// (e.g. three f64 0.1s, where it returns −1.7e31), rather than this rule's value.
///
/// Shapes: `outputs` and `targets` `[n, width]`, `n` ≥ 2.
///
/// Errors: as [`mae`], and [`Error::Shape`] for fewer than 2 rows (scikit-learn returns NaN
/// there: "R^2 score is not well-defined with less than two samples").
pub fn r2_score(outputs: &[f32], targets: &[f32], width: usize) -> Result<f64> {
    let n = regression("r2_score", outputs, targets, width)?;
    if n < 2 {
        return Err(Error::Shape {
            context: "r2_score".into(),
            got: vec![n, width],
            expected: "at least 2 rows: R² is not defined for fewer".into(),
        });
    }
    let mut total = 0.0;
    for j in 0..width {
        let col = |x: &[f32]| -> Vec<f64> { (0..n).map(|i| x[i * width + j] as f64).collect() };
        let (y, yhat) = (col(targets), col(outputs));
        let ss_res: f64 = y.iter().zip(&yhat).map(|(a, b)| (a - b) * (a - b)).sum();
        let mean = y.iter().sum::<f64>() / n as f64;
        let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
        let constant = y.iter().all(|&a| a == y[0]) || ss_tot == 0.0;
        total += if constant {
            if ss_res == 0.0 { 1.0 } else { 0.0 }
        } else {
            1.0 - ss_res / ss_tot
        };
    }
    Ok(total / width as f64)
}

// ---------------------------------------------------------------------------------------
// Task metrics
// ---------------------------------------------------------------------------------------

/// The evaluation metrics of `task`, by the names Keras users know, in a fixed order:
///
/// | task | outputs (after the link) | targets | metrics, in order |
/// |---|---|---|---|
/// | `Multiclass` | `[n, C]` softmax rows | `[n]` class indices (as f32) | `accuracy`, `sparse_top_k_categorical_accuracy` (only when C > 5), `precision`, `recall`, `f1_score` |
/// | `Binary` | `[n, 1]` sigmoid | `[n]` 0/1 | `accuracy`, `precision`, `recall`, `f1_score`, `auc` |
/// | `Multilabel` | `[n, k]` sigmoid | `[n, k]` 0/1 | `accuracy`, `precision`, `recall`, `f1_score`, `auc` |
/// | `Regression` | `[n, T]` values | `[n, T]` values | `mae`, `mse`, `root_mean_squared_error`, `r2_score` |
///
/// `width` is C, 1, k or T; `n` the number of rows.
///
/// - **Multiclass**: `accuracy` is Keras' `sparse_categorical_accuracy` (the arg-max of
///   the row, the first on ties, equals the target); `sparse_top_k_categorical_accuracy`
///   is [`top_k_accuracy`] with k = 5 (Keras' default), left out when C ≤ 5 where it
///   would always be 1.0; `precision`, `recall`, `f1_score` are macro averages over the C
///   classes of the arg-max predictions ([`macro_precision`], [`macro_recall`],
///   [`macro_f1`]; Keras' `F1Score(average="macro")`).
/// - **Binary**: a probability `> 0.5` predicts 1 ([`binary_counts`]); `accuracy` is
///   Keras' `binary_accuracy`, `precision` / `recall` / `f1_score` those of the positive
///   class ([`BinaryCounts`]), `auc` is [`roc_auc`] (the exact area; Keras' `AUC`
///   approximates it with 200 thresholds). Targets of one class only are an error, as
///   in [`roc_auc`].
/// - **Multilabel**: every one of the `n · k` decisions (`p > 0.5`) counts once:
///   `accuracy` is Keras' `binary_accuracy` over all of them, and `precision`, `recall`,
///   `f1_score` are micro averages (the counts of all labels pooled: Keras'
///   `F1Score(average="micro")`, scikit-learn's `average="micro"`). `auc` is the macro
///   mean of [`roc_auc`] over the label columns (scikit-learn's `roc_auc_score(average=
///   "macro")`), skipping a column whose targets hold one class (its AUC is not defined;
///   scikit-learn would raise); an error only when no column is left.
/// - **Regression**: [`mae`], [`mse`], [`rmse`] (Keras' `root_mean_squared_error`), and
///   [`r2_score`] (Keras' `R2Score`, scikit-learn's uniform average); it needs n ≥ 2.
///
/// Errors: [`Error::Empty`] for `n` = 0; [`Error::Shape`] when `width` does not fit the
/// task (Multiclass C ≥ 2, Binary 1, others ≥ 1) or `outputs` / `targets` are not the
/// shapes above; [`Error::NonFiniteInput`] for a NaN or infinite output or target;
/// [`Error::Label`] for a class target that is not an integer in `[0, C)` or a 0/1 target
/// that is neither; and those of the functions named.
/// The names [`task_metrics`] returns for `task`, in its order; `outputs` is the number
/// of classes for multiclass (top-5 accuracy only above 5 classes; pass 0 when unknown).
pub fn task_metric_names(task: Task, outputs: usize) -> Vec<&'static str> {
    match task {
        Task::Multiclass if outputs > 5 => vec![
            "accuracy",
            "sparse_top_k_categorical_accuracy",
            "precision",
            "recall",
            "f1_score",
        ],
        Task::Multiclass => vec!["accuracy", "precision", "recall", "f1_score"],
        Task::Binary | Task::Multilabel => {
            vec!["accuracy", "precision", "recall", "f1_score", "auc"]
        }
        Task::Regression => vec!["mae", "mse", "root_mean_squared_error", "r2_score"],
    }
}

pub fn task_metrics(
    task: Task,
    outputs: &[f32],
    targets: &[f32],
    n: usize,
    width: usize,
) -> Result<Vec<(&'static str, f64)>> {
    let context = format!("task_metrics ({task})");
    if n == 0 {
        return Err(Error::Empty {
            what: format!("{context}'s batch"),
            expected: "at least 1 sample".into(),
        });
    }
    let (min_width, fixed_width) = match task {
        Task::Multiclass => (2, None),
        Task::Binary => (1, Some(1)),
        Task::Multilabel | Task::Regression => (1, None),
    };
    if width < min_width || fixed_width.is_some_and(|w| w != width) {
        return Err(Error::Shape {
            context: format!("{context} width"),
            got: vec![width],
            expected: match task {
                Task::Multiclass => "C ≥ 2 classes".into(),
                Task::Binary => "1 output".into(),
                _ => "at least 1 output".into(),
            },
        });
    }
    let cells = cells(&context, n, width)?;
    if outputs.len() != cells {
        return Err(Error::Shape {
            context: format!("{context} outputs"),
            got: vec![outputs.len()],
            expected: format!("[{n}, {width}] = {cells} values"),
        });
    }
    let target_len = match task {
        Task::Multiclass | Task::Binary => n,
        Task::Multilabel | Task::Regression => cells,
    };
    if targets.len() != target_len {
        return Err(Error::Shape {
            context: format!("{context} targets"),
            got: vec![targets.len()],
            expected: match task {
                Task::Multiclass => format!("[{n}] class indices"),
                Task::Binary => format!("[{n}] 0/1 targets"),
                _ => format!("[{n}, {width}] = {cells} values"),
            },
        });
    }
    finite(&format!("{context} outputs"), outputs, width)?;
    match task {
        Task::Multiclass => multiclass(&context, outputs, targets, n, width),
        Task::Binary | Task::Multilabel => {
            let c = counts(&context, outputs, targets, width, 0.5)?;
            let auc = if task == Task::Binary {
                let pairs = outputs
                    .iter()
                    .zip(targets)
                    .map(|(&s, &t)| (s, t == 1.0))
                    .collect();
                mann_whitney(pairs)
                    .ok_or_else(|| one_class(&format!("{context} targets"), targets))?
            } else {
                macro_auc(&context, outputs, targets, n, width)?
            };
            Ok(vec![
                ("accuracy", c.accuracy()),
                ("precision", c.precision()),
                ("recall", c.recall()),
                ("f1_score", c.f1()),
                ("auc", auc),
            ])
        }
        Task::Regression => {
            regression(&context, outputs, targets, width)?;
            Ok(vec![
                ("mae", mae(outputs, targets, width)?),
                ("mse", mse(outputs, targets, width)?),
                ("root_mean_squared_error", rmse(outputs, targets, width)?),
                ("r2_score", r2_score(outputs, targets, width)?),
            ])
        }
    }
}

/// Multiclass metrics of validated `[n, classes]` outputs (see [`task_metrics`]).
fn multiclass(
    context: &str,
    outputs: &[f32],
    targets: &[f32],
    n: usize,
    classes: usize,
) -> Result<Vec<(&'static str, f64)>> {
    let mut truth = Vec::with_capacity(n);
    for (row, &t) in targets.iter().enumerate() {
        if !(t >= 0.0 && t < classes as f32 && t.fract() == 0.0) {
            return Err(Error::Label {
                value: t,
                row,
                classes,
                origin: format!("{context} targets"),
            });
        }
        truth.push(t as usize);
    }
    let pred: Vec<usize> = outputs.chunks_exact(classes).map(argmax).collect();
    let correct = pred.iter().zip(&truth).filter(|(p, t)| p == t).count();
    let mut m = vec![("accuracy", correct as f64 / n as f64)];
    if classes > 5 {
        m.push((
            "sparse_top_k_categorical_accuracy",
            top_k_accuracy(outputs, &truth, classes, 5)?,
        ));
    }
    let c = PerClass::new(context, &pred, &truth, classes)?;
    m.extend([
        ("precision", c.precision()),
        ("recall", c.recall()),
        ("f1_score", c.f1()),
    ]);
    Ok(m)
}

/// The mean ROC AUC over the label columns of validated `[n, k]` outputs and 0/1 targets,
/// skipping columns of one class (see [`task_metrics`]).
fn macro_auc(context: &str, outputs: &[f32], targets: &[f32], n: usize, k: usize) -> Result<f64> {
    let aucs: Vec<f64> = (0..k)
        .filter_map(|j| {
            let pairs = (0..n)
                .map(|i| (outputs[i * k + j], targets[i * k + j] == 1.0))
                .collect();
            mann_whitney(pairs)
        })
        .collect();
    if aucs.is_empty() {
        return Err(Error::Empty {
            what: format!("one class of each of the {k} label columns of {context} targets"),
            expected: "at least one column holding both a 0 and a 1: ROC AUC is not defined for a column of one class (such columns are skipped)".into(),
        });
    }
    Ok(aucs.iter().sum::<f64>() / aucs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The Mann–Whitney definition, O(P·N): pairs ranked right count 1, ties 1/2.
    fn brute_auc(pairs: &[(f32, bool)]) -> f64 {
        let (mut sum, mut count) = (0.0, 0.0);
        for &(sp, _) in pairs.iter().filter(|p| p.1) {
            for &(sn, _) in pairs.iter().filter(|p| !p.1) {
                sum += if sp > sn {
                    1.0
                } else if sp == sn {
                    0.5
                } else {
                    0.0
                };
                count += 1.0;
            }
        }
        sum / count
    }

    #[test]
    fn sorted_auc_equals_the_pairwise_definition_with_many_ties() {
        let rng = Rng::new(7);
        for trial in 0..50u32 {
            let n = 2 + rng.below(0, trial, 0, 60) as usize;
            // Few distinct scores (0.0 .. 0.4, -0.0 among them), so ties are common.
            let pairs: Vec<(f32, bool)> = (0..n as u32)
                .map(|i| {
                    let level = rng.below(1, trial, i, 5) as f32 * 0.1;
                    let s = if level == 0.0 && i % 2 == 0 {
                        -0.0
                    } else {
                        level
                    };
                    (s, rng.below(2, trial, i, 2) == 1)
                })
                .collect();
            let has_both = pairs.iter().any(|p| p.1) && pairs.iter().any(|p| !p.1);
            match mann_whitney(pairs.clone()) {
                Some(a) => {
                    assert!(has_both);
                    assert!((a - brute_auc(&pairs)).abs() < 1e-12, "trial {trial}");
                }
                None => assert!(!has_both),
            }
        }
    }

    #[test]
    fn argmax_takes_the_first_of_tied_maxima() {
        assert_eq!(argmax(&[0.1, 0.4, 0.4, 0.1]), 1);
        assert_eq!(argmax(&[0.3]), 0);
        assert_eq!(argmax(&[0.2, 0.2, 0.2]), 0);
    }

    #[test]
    fn ratio_is_zero_on_zero_division() {
        assert_eq!(ratio(0, 0), 0.0);
        assert_eq!(ratio(1, 4), 0.25);
    }
}
