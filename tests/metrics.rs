//! Host-side evaluation metrics. Expected values come from outside the code: hand
//! computations written out in comments, or scikit-learn 1.9.1 run once (the call that
//! produced each number is named next to it; inputs were the same f32 values widened to
//! f64). Nothing here runs Python.

use shadeprop::Error;
use shadeprop::data::Task;
use shadeprop::metrics::{
    BinaryCounts, binary_counts, confusion_matrix, macro_f1, macro_precision, macro_recall, mae,
    mse, r2_score, rmse, roc_auc, task_metrics, top_k_accuracy,
};
use shadeprop::train::fit::{Direction, EVAL_METRICS, METRICS, metric_direction};

fn close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12,
        "got {got}, expected {want} (difference {})",
        got - want
    );
}

/// The metrics by name, compared with `want` in order.
fn same_metrics(got: &[(&'static str, f64)], want: &[(&str, f64)]) {
    let names: Vec<&str> = got.iter().map(|m| m.0).collect();
    let want_names: Vec<&str> = want.iter().map(|m| m.0).collect();
    assert_eq!(names, want_names);
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.1 - w.1).abs() <= 1e-12,
            "{}: got {}, expected {}",
            g.0,
            g.1,
            w.1
        );
    }
}

// ---------------------------------------------------------------------------------------
// Confusion matrix and macro averages
// ---------------------------------------------------------------------------------------

#[test]
fn confusion_matrix_rows_are_truth_columns_predictions() {
    let (pred, truth) = ([0, 2, 1, 2, 0], [0, 1, 1, 2, 2]);
    // sklearn confusion_matrix([0,1,1,2,2], [0,2,1,2,0], labels=range(3))
    assert_eq!(
        confusion_matrix(&pred, &truth, 3).unwrap(),
        vec![vec![1, 0, 0], vec![0, 1, 1], vec![1, 0, 1]]
    );
    // labels=range(4): a class seen in neither gets a zero row and column.
    assert_eq!(
        confusion_matrix(&pred, &truth, 4).unwrap(),
        vec![
            vec![1, 0, 0, 0],
            vec![0, 1, 1, 0],
            vec![1, 0, 1, 0],
            vec![0, 0, 0, 0]
        ]
    );
}

#[test]
fn macro_averages_count_a_class_never_predicted_as_zero() {
    // truth [0,0,1,1,2,2], pred [0,0,1,1,1,0]: class 2 is never predicted.
    // Per class (tp, fp, fn): 0 → (2,1,0), 1 → (2,1,0), 2 → (0,0,2).
    // precision 2/3, 2/3, 0 (0/0 → 0)   → mean 4/9
    // recall    1,   1,   0             → mean 2/3
    // F1 = 2tp/(2tp+fp+fn): 4/5, 4/5, 0 → mean 8/15
    let (truth, pred) = ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 0]);
    // sklearn precision_score / recall_score / f1_score(truth, pred, labels=range(3),
    // average="macro", zero_division=0) → 0.4444444444444444, 0.6666666666666666,
    // 0.5333333333333333
    close(macro_precision(&pred, &truth, 3).unwrap(), 4.0 / 9.0);
    close(macro_recall(&pred, &truth, 3).unwrap(), 2.0 / 3.0);
    close(macro_f1(&pred, &truth, 3).unwrap(), 8.0 / 15.0);
    // labels=range(4): class 3 (absent from both) adds a fourth 0 to each mean, as with
    // sklearn's labels=range(4) → 0.3333333333333333, 0.5, 0.4.
    close(macro_precision(&pred, &truth, 4).unwrap(), 1.0 / 3.0);
    close(macro_recall(&pred, &truth, 4).unwrap(), 0.5);
    close(macro_f1(&pred, &truth, 4).unwrap(), 0.4);
}

#[test]
fn class_metrics_reject_bad_input() {
    // Length mismatch.
    assert!(matches!(
        confusion_matrix(&[0, 1], &[0], 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        macro_f1(&[0], &[0, 1], 2),
        Err(Error::Shape { .. })
    ));
    // Empty input.
    assert!(matches!(
        confusion_matrix(&[], &[], 2),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        macro_precision(&[], &[], 2),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        macro_recall(&[], &[], 2),
        Err(Error::Empty { .. })
    ));
    // A class out of range, named with its row, in predictions and in truth.
    match confusion_matrix(&[0, 1, 3], &[0, 1, 1], 3) {
        Err(Error::ClassIndex {
            index: 3,
            row: 2,
            classes: 3,
            what,
        }) => assert!(what.contains("pred"), "{what}"),
        other => panic!("{other:?}"),
    }
    match macro_recall(&[0, 1], &[0, 7], 3) {
        Err(
            e @ Error::ClassIndex {
                index: 7, row: 1, ..
            },
        ) => {
            let msg = e.to_string();
            assert!(msg.contains("truth") && msg.contains("[0, 3)"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // classes = 0: every index is out of range.
    assert!(matches!(
        macro_f1(&[0], &[0], 0),
        Err(Error::ClassIndex { classes: 0, .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Binary counts
// ---------------------------------------------------------------------------------------

#[test]
fn binary_counts_predict_positive_strictly_above_the_threshold() {
    // scores 0.9 0.5 0.2 0.7 0.5 0.1, targets 1 1 0 0 0 1; `> 0.5` predicts 1 0 0 1 0 0
    // (the two 0.5s are negative): tp = row 0, fp = row 3, tn = rows 2 4, fn = rows 1 5.
    let c = binary_counts(
        &[0.9, 0.5, 0.2, 0.7, 0.5, 0.1],
        &[1., 1., 0., 0., 0., 1.],
        0.5,
    )
    .unwrap();
    assert_eq!(
        c,
        BinaryCounts {
            tp: 1,
            fp: 1,
            tn: 2,
            fn_: 2
        }
    );
    // accuracy 3/6, precision 1/2, recall 1/3, F1 2/(2+1+2) = 0.4; sklearn
    // accuracy_score / precision_score / recall_score / f1_score(t, scores > 0.5) →
    // 0.5, 0.5, 0.3333333333333333, 0.4.
    close(c.accuracy(), 0.5);
    close(c.precision(), 0.5);
    close(c.recall(), 1.0 / 3.0);
    close(c.f1(), 0.4);
}

#[test]
fn precision_without_predicted_positives_is_zero() {
    // Nothing above 0.5: tp = fp = 0. sklearn precision_score([0,1,0,1], [0,0,0,0],
    // zero_division=0) → 0.0, recall_score → 0.0, f1_score → 0.0.
    let c = binary_counts(&[0.1, 0.2, 0.3, 0.5], &[0., 1., 0., 1.], 0.5).unwrap();
    assert_eq!((c.tp, c.fp, c.tn, c.fn_), (0, 0, 2, 2));
    assert_eq!(c.precision(), 0.0);
    assert_eq!(c.recall(), 0.0);
    assert_eq!(c.f1(), 0.0);
    close(c.accuracy(), 0.5);
    // No positive target at all: recall 0/0 → 0.
    let c = binary_counts(&[0.9, 0.1], &[0., 0.], 0.5).unwrap();
    assert_eq!((c.precision(), c.recall(), c.f1()), (0.0, 0.0, 0.0));
    // Counts of nothing (built by hand): every ratio is 0, nothing divides by zero.
    let z = BinaryCounts::default();
    assert_eq!(
        (z.accuracy(), z.precision(), z.recall(), z.f1()),
        (0.0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn binary_counts_reject_bad_input() {
    assert!(matches!(
        binary_counts(&[0.1, 0.2], &[0.], 0.5),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        binary_counts(&[], &[], 0.5),
        Err(Error::Empty { .. })
    ));
    // A target that is not 0 or 1, named with its row.
    match binary_counts(&[0.1, 0.2, 0.3], &[0., 1., 0.5], 0.5) {
        Err(Error::Label {
            row: 2,
            value,
            classes: 2,
            ..
        }) => assert_eq!(value, 0.5),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        binary_counts(&[0.1], &[2.], 0.5),
        Err(Error::Label { row: 0, .. })
    ));
    // NaN score (and infinite target) are errors, not silently "negative".
    assert!(matches!(
        binary_counts(&[0.1, f32::NAN], &[0., 1.], 0.5),
        Err(Error::NonFiniteInput { row: 1, .. })
    ));
    assert!(matches!(
        binary_counts(&[0.1], &[f32::INFINITY], 0.5),
        Err(Error::NonFiniteInput { row: 0, .. })
    ));
    assert!(matches!(
        binary_counts(&[0.1], &[1.], f32::NAN),
        Err(Error::Hyperparameter {
            name: "threshold",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// ROC AUC
// ---------------------------------------------------------------------------------------

#[test]
fn roc_auc_counts_ties_one_half() {
    // targets 0 0 1 1 1 0, scores 0.1 0.4 0.35 0.8 0.4 0.4.
    // Positives 0.35, 0.8, 0.4 against negatives 0.1, 0.4, 0.4:
    //   0.35: beats 0.1, loses to 0.4 0.4           → 1
    //   0.8:  beats all three                       → 3
    //   0.4:  beats 0.1, ties 0.4 twice (½ each)    → 2
    // AUC = 6 / 9. sklearn roc_auc_score(t, s) → 0.6666666666666667.
    close(
        roc_auc(&[0.1, 0.4, 0.35, 0.8, 0.4, 0.4], &[0., 0., 1., 1., 1., 0.]).unwrap(),
        2.0 / 3.0,
    );
}

#[test]
fn roc_auc_of_equal_perfect_and_inverted_rankings() {
    // All scores equal: every pair ties → 0.5 (sklearn roc_auc_score([0,1,0,1,1], [0.3]*5)).
    assert_eq!(roc_auc(&[0.3; 5], &[0., 1., 0., 1., 1.]).unwrap(), 0.5);
    // Perfect and inverted rankings: sklearn → 1.0 and 0.0.
    assert_eq!(
        roc_auc(&[0.1, 0.2, 0.3, 0.4], &[0., 0., 1., 1.]).unwrap(),
        1.0
    );
    assert_eq!(
        roc_auc(&[0.4, 0.3, 0.2, 0.1], &[0., 0., 1., 1.]).unwrap(),
        0.0
    );
    // -0.0 and 0.0 are one score: a tie (sklearn roc_auc_score([0,1], [-0.0, 0.0]) → 0.5).
    assert_eq!(roc_auc(&[-0.0, 0.0], &[0., 1.]).unwrap(), 0.5);
    assert_eq!(roc_auc(&[0.0, -0.0], &[0., 1.]).unwrap(), 0.5);
}

#[test]
fn roc_auc_rejects_bad_input() {
    assert!(matches!(
        roc_auc(&[0.1, 0.2], &[1.]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(roc_auc(&[], &[]), Err(Error::Empty { .. })));
    // One class present: sklearn raises "Only one class present in y_true".
    match roc_auc(&[0.1, 0.2], &[1., 1.]) {
        Err(e @ Error::Empty { .. }) => assert!(e.to_string().contains("negative"), "{e}"),
        other => panic!("{other:?}"),
    }
    match roc_auc(&[0.1, 0.2], &[0., 0.]) {
        Err(e @ Error::Empty { .. }) => assert!(e.to_string().contains("positive"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        roc_auc(&[0.1, f32::NAN, 0.3], &[0., 1., 1.]),
        Err(Error::NonFiniteInput { row: 1, .. })
    ));
    assert!(matches!(
        roc_auc(&[0.1, 0.2], &[0., -1.]),
        Err(Error::Label { row: 1, .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Top-k accuracy
// ---------------------------------------------------------------------------------------

#[test]
fn top_k_accuracy_counts_classes_tied_with_the_truth_in() {
    #[rustfmt::skip]
    let probs = [
        0.4, 0.2, 0.2, 0.2,   // truth 1: one score above 0.2 → rank 2
        0.1, 0.3, 0.3, 0.3,   // truth 0: three above 0.1     → rank 4
        0.5, 0.25, 0.25, 0.0, // truth 2: one above 0.25      → rank 2
    ];
    let truth = [1, 0, 2];
    // Keras' in_top_k rank rule (rank = 1 + #strictly greater; hit when rank ≤ k):
    //   k = 1: ranks 2, 4, 2 → 0 hits; k = 2: rows 0 and 2 → 2/3; k = 4: all → 1.
    assert_eq!(top_k_accuracy(&probs, &truth, 4, 1).unwrap(), 0.0);
    close(top_k_accuracy(&probs, &truth, 4, 2).unwrap(), 2.0 / 3.0);
    assert_eq!(top_k_accuracy(&probs, &truth, 4, 3).unwrap(), 2.0 / 3.0);
    assert_eq!(top_k_accuracy(&probs, &truth, 4, 4).unwrap(), 1.0);
    assert_eq!(top_k_accuracy(&probs, &truth, 4, 9).unwrap(), 1.0);
    // For contrast, sklearn top_k_accuracy_score(truth, probs, k=2, labels=range(4)) gives
    // 0.3333333333333333: it breaks the row-0 tie by index (class 3 before class 1), so
    // the answer depends on how the classes are numbered. The Keras rule is kept.
}

#[test]
fn top_k_accuracy_rejects_bad_input() {
    let probs = [0.5, 0.5, 0.2, 0.8];
    assert!(matches!(
        top_k_accuracy(&probs, &[0, 1], 2, 0),
        Err(Error::Hyperparameter { name: "k", .. })
    ));
    assert!(matches!(
        top_k_accuracy(&[], &[], 2, 1),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        top_k_accuracy(&probs, &[0, 1, 1], 2, 1),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        top_k_accuracy(&probs, &[0, 2], 2, 1),
        Err(Error::ClassIndex {
            index: 2,
            row: 1,
            ..
        })
    ));
    assert!(matches!(
        top_k_accuracy(&[0.5, f32::NAN, 0.2, 0.8], &[0, 1], 2, 1),
        Err(Error::NonFiniteInput {
            row: 0,
            feature: 1,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Regression
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
const Y: [f32; 12] = [
    0.5, -1.0, 3.0,
    1.25, 2.0, 2.5,
    -0.75, 0.5, 4.0,
    2.0, 1.5, 3.25,
];
#[rustfmt::skip]
const YHAT: [f32; 12] = [
    0.25, -0.5, 3.5,
    1.0, 1.75, 2.0,
    -0.5, 0.0, 3.75,
    2.5, 1.0, 3.0,
];

#[test]
fn mae_mse_rmse_average_over_every_element() {
    // |ŷ − y|: 0.25 0.5 0.5 / 0.25 0.25 0.5 / 0.25 0.5 0.25 / 0.5 0.5 0.25 → sum 4.5
    // MAE 4.5/12 = 0.375; squares sum 1.875 → MSE 0.15625, RMSE √0.15625.
    // sklearn mean_absolute_error(Y, YHAT) → 0.375, mean_squared_error → 0.15625.
    close(mae(&YHAT, &Y, 3).unwrap(), 0.375);
    close(mse(&YHAT, &Y, 3).unwrap(), 0.15625);
    close(rmse(&YHAT, &Y, 3).unwrap(), 0.15625f64.sqrt());
    // Keras' RMSE is the root of the overall MSE, not sklearn's
    // root_mean_squared_error(multioutput="uniform_average") (0.39223251027904 here).
    assert!((rmse(&YHAT, &Y, 3).unwrap() - 0.39223251027904).abs() > 1e-3);
}

#[test]
fn r2_is_the_uniform_average_over_outputs() {
    // sklearn r2_score(Y, YHAT) → 0.7352813852813852 (raw_values 0.89393939, 0.8452381,
    // 0.46666667).
    close(r2_score(&YHAT, &Y, 3).unwrap(), 0.7352813852813852);
    // Column 0 by hand: ȳ = 0.75, SS_tot = 0.0625 + 0.25 + 2.25 + 1.5625 = 4.125,
    // SS_res = 0.0625·3 + 0.25 = 0.4375 → 1 − 0.4375/4.125 = 0.8939393939…
    let col = |x: &[f32]| -> Vec<f32> { x.chunks(3).map(|r| r[0]).collect() };
    close(
        r2_score(&col(&YHAT), &col(&Y), 1).unwrap(),
        1.0 - 0.4375 / 4.125,
    );
}

#[test]
fn r2_of_a_constant_target_column_follows_force_finite() {
    // Column 0: y = 1 2 3, ŷ = 1.5 2 2.5 → 1 − 0.5/2 = 0.75. Column 1: y = 5 5 5.
    let y = [1.0, 5.0, 2.0, 5.0, 3.0, 5.0];
    // Perfect on the constant column → its R² is 1: mean (0.75 + 1)/2 = 0.875
    // (sklearn r2_score → 0.875).
    close(
        r2_score(&[1.5, 5.0, 2.0, 5.0, 2.5, 5.0], &y, 2).unwrap(),
        0.875,
    );
    // Imperfect on it → 0: mean (0.75 + 0)/2 = 0.375 (sklearn → 0.375, raw [0.75, 0]).
    close(
        r2_score(&[1.5, 5.0, 2.0, 5.0, 2.5, 4.0], &y, 2).unwrap(),
        0.375,
    );
    // A constant column of values whose f64 mean is inexact is still constant: 0.
    assert_eq!(
        r2_score(&[0.1, 0.1, 0.2], &[0.1, 0.1, 0.1], 1).unwrap(),
        0.0
    );
    assert_eq!(
        r2_score(&[0.1, 0.1, 0.1], &[0.1, 0.1, 0.1], 1).unwrap(),
        1.0
    );
}

#[test]
fn regression_metrics_reject_bad_input() {
    for f in [mae, mse, rmse, r2_score] {
        assert!(matches!(
            f(&[1.0, 2.0], &[1.0], 1),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(f(&[], &[], 1), Err(Error::Empty { .. })));
        assert!(matches!(
            f(&[1.0, 2.0], &[1.0, 2.0], 0),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            f(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 2),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            f(&[1.0, 2.0, 3.0, f32::NAN], &[1.0; 4], 2),
            Err(Error::NonFiniteInput {
                row: 1,
                feature: 1,
                ..
            })
        ));
        assert!(matches!(
            f(&[1.0; 4], &[1.0, f32::NEG_INFINITY, 3.0, 4.0], 2),
            Err(Error::NonFiniteInput {
                row: 0,
                feature: 1,
                ..
            })
        ));
    }
    // R² of one row is not defined (sklearn returns NaN with a warning).
    assert!(matches!(
        r2_score(&[1.0, 2.0], &[1.0, 2.0], 2),
        Err(Error::Shape { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// task_metrics
// ---------------------------------------------------------------------------------------

#[test]
fn multiclass_metrics_with_top_5_when_more_than_5_classes() {
    #[rustfmt::skip]
    let probs = [
        0.50, 0.10, 0.05, 0.15, 0.12, 0.08, // truth 0, argmax 0
        0.05, 0.30, 0.40, 0.10, 0.09, 0.06, // truth 1, argmax 2
        0.02, 0.03, 0.04, 0.01, 0.60, 0.30, // truth 5, argmax 4
        0.21, 0.19, 0.17, 0.15, 0.16, 0.12, // truth 5, argmax 0; 0.12 is last → not top 5
    ];
    let truth = [0., 1., 5., 5.];
    // pred [0, 2, 4, 0]; sklearn with labels=range(6), average="macro", zero_division=0:
    // accuracy_score → 0.25, top_k_accuracy_score(k=5) → 0.75 (no ties, so Keras agrees),
    // precision_score → 0.08333333333333333 (class 0: 1/2, others 0 → 0.5/6),
    // recall_score → 0.16666666666666666 (class 0: 1, others 0 → 1/6),
    // f1_score → 0.1111111111111111 (class 0: 2/3 → (2/3)/6).
    let m = task_metrics(Task::Multiclass, &probs, &truth, 4, 6).unwrap();
    same_metrics(
        &m,
        &[
            ("accuracy", 0.25),
            ("sparse_top_k_categorical_accuracy", 0.75),
            ("precision", 1.0 / 12.0),
            ("recall", 1.0 / 6.0),
            ("f1_score", 1.0 / 9.0),
        ],
    );
}

#[test]
fn multiclass_metrics_without_top_k_for_few_classes() {
    #[rustfmt::skip]
    let probs = [
        0.7, 0.2, 0.1,
        0.1, 0.3, 0.6,
        0.2, 0.5, 0.3,
        0.3, 0.3, 0.4,
        0.6, 0.3, 0.1,
    ];
    // pred [0, 2, 1, 2, 0] against truth [0, 2, 2, 1, 0]; sklearn (labels=range(3),
    // macro, zero_division=0): accuracy 0.6, precision 0.5, recall 0.5, f1 0.5.
    let m = task_metrics(Task::Multiclass, &probs, &[0., 2., 2., 1., 0.], 5, 3).unwrap();
    same_metrics(
        &m,
        &[
            ("accuracy", 0.6),
            ("precision", 0.5),
            ("recall", 0.5),
            ("f1_score", 0.5),
        ],
    );
}

#[test]
fn binary_metrics() {
    let s = [0.9, 0.8, 0.3, 0.6, 0.5, 0.2, 0.55];
    let t = [1., 0., 0., 1., 1., 0., 1.];
    // > 0.5 predicts 1 1 0 1 0 0 1: tp 3, fp 1, tn 2, fn 1 (the 0.5 is negative).
    // sklearn accuracy_score → 0.7142857142857143 (5/7), precision_score → 0.75,
    // recall_score → 0.75, f1_score → 0.75, roc_auc_score(t, s) → 0.7500000000000001
    // (by hand: positives 0.9 0.6 0.5 0.55 beat 3, 2, 2, 2 of the negatives 0.8 0.3 0.2
    // → 9/12).
    let m = task_metrics(Task::Binary, &s, &t, 7, 1).unwrap();
    same_metrics(
        &m,
        &[
            ("accuracy", 5.0 / 7.0),
            ("precision", 0.75),
            ("recall", 0.75),
            ("f1_score", 0.75),
            ("auc", 0.75),
        ],
    );
}

#[test]
fn multilabel_metrics_are_micro_and_skip_one_class_auc_columns() {
    #[rustfmt::skip]
    let s = [
        0.9, 0.2, 0.7,
        0.4, 0.6, 0.1,
        0.6, 0.8, 0.3,
        0.2, 0.5, 0.9,
    ];
    #[rustfmt::skip]
    let t = [
        1., 0., 0.,
        0., 1., 0.,
        1., 0., 0.,
        0., 1., 0.,
    ];
    // Decisions (> 0.5): 1 0 1 / 0 1 0 / 1 1 0 / 0 0 1 → 8 of 12 right.
    // Pooled: tp 3, fp 3, fn 1. sklearn accuracy_score(T.ravel(), P.ravel()) →
    // 0.6666666666666666, precision_score(T, P, average="micro") → 0.5,
    // recall_score(micro) → 0.75, f1_score(micro) → 0.6.
    // AUC: column 2 holds only 0s and is skipped; column 0 → 1.0, column 1 → 0.5
    // (sklearn roc_auc_score(T[:, :2], S[:, :2], average="macro") → 0.75).
    let m = task_metrics(Task::Multilabel, &s, &t, 4, 3).unwrap();
    same_metrics(
        &m,
        &[
            ("accuracy", 8.0 / 12.0),
            ("precision", 0.5),
            ("recall", 0.75),
            ("f1_score", 0.6),
            ("auc", 0.75),
        ],
    );
    // Every column of one class: no AUC can be taken.
    assert!(matches!(
        task_metrics(
            Task::Multilabel,
            &[0.2, 0.7, 0.3, 0.9],
            &[0., 1., 0., 1.],
            2,
            2
        ),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn regression_metrics_by_keras_name() {
    let m = task_metrics(Task::Regression, &YHAT, &Y, 4, 3).unwrap();
    same_metrics(
        &m,
        &[
            ("mae", 0.375),
            ("mse", 0.15625),
            ("root_mean_squared_error", 0.15625f64.sqrt()),
            ("r2_score", 0.7352813852813852),
        ],
    );
}

#[test]
fn task_metrics_reject_bad_input() {
    // Empty batch.
    assert!(matches!(
        task_metrics(Task::Binary, &[], &[], 0, 1),
        Err(Error::Empty { .. })
    ));
    // Width that does not fit the task.
    assert!(matches!(
        task_metrics(Task::Multiclass, &[1.0, 1.0], &[0., 0.], 2, 1),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        task_metrics(Task::Binary, &[0.1, 0.9], &[0.], 1, 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        task_metrics(Task::Regression, &[], &[], 1, 0),
        Err(Error::Shape { .. })
    ));
    // Outputs or targets of the wrong length.
    assert!(matches!(
        task_metrics(Task::Multiclass, &[0.5, 0.5, 0.5], &[0., 1.], 2, 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        task_metrics(Task::Multilabel, &[0.5; 4], &[0., 1.], 2, 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        task_metrics(Task::Binary, &[0.5; 2], &[0., 1., 1.], 2, 1),
        Err(Error::Shape { .. })
    ));
    // A multiclass target out of range, fractional or NaN, named with its row.
    for bad in [3.0, 1.5, -1.0, f32::NAN] {
        match task_metrics(
            Task::Multiclass,
            &[0.2, 0.3, 0.5, 0.6, 0.3, 0.1],
            &[0., bad],
            2,
            3,
        ) {
            Err(Error::Label {
                row: 1, classes: 3, ..
            }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
    // A multilabel target that is not 0/1, named with its row and column.
    match task_metrics(Task::Multilabel, &[0.5; 4], &[0., 1., 1., 2.], 2, 2) {
        Err(e @ Error::Label { row: 1, .. }) => {
            assert!(e.to_string().contains("column 1"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A NaN output, named with its row and column.
    assert!(matches!(
        task_metrics(
            Task::Multiclass,
            &[0.2, 0.8, f32::NAN, 0.1],
            &[1., 0.],
            2,
            2
        ),
        Err(Error::NonFiniteInput {
            row: 1,
            feature: 0,
            ..
        })
    ));
    // Binary targets of one class: the AUC is not defined.
    assert!(matches!(
        task_metrics(Task::Binary, &[0.2, 0.8], &[1., 1.], 2, 1),
        Err(Error::Empty { .. })
    ));
    // Regression with one row: R² is not defined.
    assert!(matches!(
        task_metrics(Task::Regression, &[1.0], &[2.0], 1, 1),
        Err(Error::Shape { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Directions
// ---------------------------------------------------------------------------------------

#[test]
fn every_task_metric_has_a_direction_and_the_csv_columns_are_unchanged() {
    // (task, outputs, targets, n, width): one case per task, multiclass with and without
    // top-k.
    type Case = (Task, &'static [f32], &'static [f32], usize, usize);
    let cases: [Case; 5] = [
        (Task::Multiclass, &[0.1; 14], &[0., 6.], 2, 7),
        (Task::Multiclass, &[0.5; 4], &[0., 1.], 2, 2),
        (Task::Binary, &[0.2, 0.7], &[0., 1.], 2, 1),
        (Task::Multilabel, &[0.2, 0.7], &[0., 1.], 2, 1),
        (Task::Regression, &[1.0, 2.0], &[1.5, 2.5], 2, 1),
    ];
    let mut seen = 0;
    for (task, out, tgt, n, w) in cases {
        for (name, _) in task_metrics(task, out, tgt, n, w).unwrap() {
            seen += 1;
            let d = metric_direction(name).unwrap_or_else(|| panic!("{name} has no direction"));
            assert_eq!(metric_direction(&format!("val_{name}")), Some(d), "{name}");
        }
    }
    assert!(seen >= 19);
    for up in [
        "accuracy",
        "precision",
        "recall",
        "f1_score",
        "auc",
        "sparse_top_k_categorical_accuracy",
        "r2_score",
    ] {
        assert_eq!(metric_direction(up), Some(Direction::Up), "{up}");
    }
    for down in ["mae", "mse", "root_mean_squared_error", "val_mse"] {
        assert_eq!(metric_direction(down), Some(Direction::Down), "{down}");
    }
    // Metrics without a direction and unknown names are unchanged.
    assert_eq!(metric_direction("lr"), None);
    assert_eq!(metric_direction("val_unknown"), None);
    // METRICS (the metrics.csv columns) still holds its 12 names, and the new table does
    // not repeat any of them.
    let names: Vec<&str> = METRICS.iter().map(|m| m.0).collect();
    assert_eq!(
        names,
        [
            "loss",
            "data_loss",
            "penalty",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "grad_norm",
            "samples_per_sec",
            "seconds",
            "loss_scale",
            "skipped_steps"
        ]
    );
    assert!(EVAL_METRICS.iter().all(|(n, _)| !names.contains(n)));
}

/// `task_metric_names` (what the trainer's CSV columns and the config check use) names
/// exactly what `task_metrics` returns, in order.
#[test]
fn task_metric_names_match_task_metrics() {
    use shadeprop::metrics::{task_metric_names, task_metrics};
    use shadeprop::task::Task;
    // (task, outputs, targets, rows, width)
    type Case = (Task, Vec<f32>, Vec<f32>, usize, usize);
    let cases: Vec<Case> = vec![
        (
            Task::Binary,
            vec![0.2, 0.8, 0.6, 0.1],
            vec![0.0, 1.0, 1.0, 0.0],
            4,
            1,
        ),
        (
            Task::Multilabel,
            vec![0.2, 0.8, 0.6, 0.1],
            vec![0.0, 1.0, 1.0, 0.0],
            2,
            2,
        ),
        (
            Task::Regression,
            vec![1.0, 2.0, 3.5],
            vec![1.5, 2.0, 3.0],
            3,
            1,
        ),
        (
            Task::Multiclass,
            vec![0.7, 0.3, 0.4, 0.6],
            vec![0.0, 1.0],
            2,
            2,
        ),
        (
            Task::Multiclass,
            (0..12).map(|i| i as f32 / 12.0).collect(),
            vec![5.0, 0.0],
            2,
            6,
        ),
    ];
    for (task, out, y, n, w) in cases {
        let got: Vec<&str> = task_metrics(task, &out, &y, n, w)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, task_metric_names(task, w), "{task}");
    }
}
