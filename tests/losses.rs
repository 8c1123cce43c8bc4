//! Every loss through a whole session, on every backend (CPU reference, fast CPU, GPU):
//! the loss value against an independent f64 implementation of PyTorch's documented
//! formula (CrossEntropyLoss with `label_smoothing` and `weight`, BCEWithLogitsLoss with
//! `pos_weight`, MSELoss, L1Loss, HuberLoss), sample weights as a weighted mean, and the
//! parameter gradients against central differences of that f64 formula. Values at the
//! extremes (logits ±1e8) are checked by hand.

mod common;

use common::*;
use shadeprop::Error;
use shadeprop::backend::cpu::Cpu;
use shadeprop::data::Task;
use shadeprop::graph::GraphBuilder;
use shadeprop::graph::init::Init;
use shadeprop::kernels::loss::Loss;
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::plan::Mode;
use shadeprop::rng::Rng;
use shadeprop::session::Session;

const F: usize = 3;
const B: usize = 7;

/// x [B, 3] → linear(k) → `loss`, parameters from seed 5.
fn session(b: Box<dyn shadeprop::backend::Backend>, loss: Loss, k: usize) -> Session {
    let mut gb = GraphBuilder::new(F);
    let x = gb.input();
    let z = gb.linear(x, k, Init::XAVIER_UNIFORM, true, "fc").unwrap();
    let g = gb.loss(z, loss).unwrap();
    Session::new(b, g, Sgd::default(), 5, B).unwrap()
}

/// Targets for `loss` with k outputs: class indices, 0/1 (and one soft value), or reals.
fn targets(loss: &Loss, k: usize, seed: u64) -> Vec<f32> {
    let r = Rng::new(seed);
    match loss {
        Loss::CrossEntropy { .. } => (0..B)
            .map(|i| r.below(1, 0, i as u32, k as u32) as f32)
            .collect(),
        Loss::BceWithLogits { .. } => (0..B * k)
            .map(|i| {
                if i == 3 {
                    0.25
                } else {
                    r.below(2, 0, i as u32, 2) as f32
                }
            })
            .collect(),
        _ => rand_vec(seed, B * k).iter().map(|v| v * 2.0).collect(),
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// z = x·W + b in f64 (W stored [in, out]).
fn logits(x: &[f32], w: &[f64], bias: &[f64], k: usize) -> Vec<f64> {
    let mut z = vec![0.0; B * k];
    for i in 0..B {
        for c in 0..k {
            z[i * k + c] = bias[c]
                + (0..F)
                    .map(|j| x[i * F + j] as f64 * w[j * k + c])
                    .sum::<f64>();
        }
    }
    z
}

/// PyTorch's documented formula in f64, reduction "mean", with sample weights s as a
/// weighted mean (the denominator Σ s_i, or Σ s_i·w_{y_i} with class weights).
fn loss_f64(loss: &Loss, z: &[f64], y: &[f32], s: &[f64], k: usize) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..B {
        let zi = &z[i * k..(i + 1) * k];
        let (li, wi) = match loss {
            Loss::CrossEntropy {
                label_smoothing: eps,
                class_weights,
            } => {
                let eps = *eps as f64;
                let cw = |c: usize| class_weights.as_ref().map_or(1.0, |w| w[c] as f64);
                let lse = zi.iter().map(|v| v.exp()).sum::<f64>().ln();
                let yi = y[i] as usize;
                let smooth: f64 = (0..k).map(|c| cw(c) * (lse - zi[c])).sum();
                (
                    (1.0 - eps) * cw(yi) * (lse - zi[yi]) + eps / k as f64 * smooth,
                    cw(yi),
                )
            }
            Loss::BceWithLogits { pos_weight } => {
                let mut l = 0.0;
                for c in 0..k {
                    let t = y[i * k + c] as f64;
                    let p = pos_weight.as_ref().map_or(1.0, |w| w[c] as f64);
                    let sig = 1.0 / (1.0 + (-zi[c]).exp());
                    l -= p * t * sig.ln() + (1.0 - t) * (1.0 - sig).ln();
                }
                (l / k as f64, 1.0)
            }
            _ => {
                let mut l = 0.0;
                for c in 0..k {
                    let d = zi[c] - y[i * k + c] as f64;
                    l += match loss {
                        Loss::Mse => d * d,
                        Loss::Mae => d.abs(),
                        Loss::Huber { delta } => {
                            let dl = *delta as f64;
                            if d.abs() < dl {
                                0.5 * d * d
                            } else {
                                dl * (d.abs() - 0.5 * dl)
                            }
                        }
                        _ => unreachable!(),
                    };
                }
                (l / k as f64, 1.0)
            }
        };
        num += s[i] * li;
        den += s[i] * wi;
    }
    num / den
}

/// The loss variants under test with their output count.
fn variants() -> Vec<(Loss, usize)> {
    vec![
        (Loss::default(), 4),
        (
            Loss::CrossEntropy {
                label_smoothing: 0.1,
                class_weights: None,
            },
            4,
        ),
        (
            Loss::CrossEntropy {
                label_smoothing: 0.0,
                class_weights: Some(vec![0.5, 2.0, 1.0, 3.0]),
            },
            4,
        ),
        (
            Loss::CrossEntropy {
                label_smoothing: 0.2,
                class_weights: Some(vec![0.5, 2.0, 1.0, 3.0]),
            },
            4,
        ),
        (Loss::BceWithLogits { pos_weight: None }, 1),
        (
            Loss::BceWithLogits {
                pos_weight: Some(vec![3.0, 0.5, 1.0]),
            },
            3,
        ),
        (Loss::Mse, 2),
        (Loss::Mae, 2),
        (Loss::Huber { delta: 0.5 }, 2),
    ]
}

// The loss and its gradients against the f64 formula, with and without sample weights.
backend_test!(
    every_loss_matches_the_pytorch_formula_and_finite_differences,
    |w: Which| {
        for (vi, (loss, k)) in variants().into_iter().enumerate() {
            let be = w.open();
            let name = be.describe();
            let mut s = session(be, loss.clone(), k);
            let x = rand_vec(40 + vi as u64, B * F);
            let y = targets(&loss, k, 50 + vi as u64);
            let sw: Vec<f32> = rand_vec(60, B)
                .iter()
                .map(|v| v.abs() * 2.0 + 0.1)
                .collect();
            let p = s.params().unwrap();
            let (w, bias) = (f64s(&p[0].1), f64s(&p[1].1));
            for weights in [None, Some(&sw[..])] {
                let what = format!(
                    "{} ({:?}) weights {} on {name}",
                    loss.name(),
                    loss,
                    weights.is_some()
                );
                let s64: Vec<f64> = weights.map_or(vec![1.0; B], f64s);
                let (m, grads) = s.gradients_weighted(&x, &y, weights).unwrap();
                let want = loss_f64(&loss, &logits(&x, &w, &bias, k), &y, &s64, k);
                assert!(
                    (m.loss as f64 - want).abs() <= 1e-5 + 1e-5 * want.abs(),
                    "{what}: loss {} expected {want}",
                    m.loss
                );
                // Central differences of the f64 formula in every weight and bias.
                let h = 1e-5;
                for (pi, (pname, analytic)) in grads.iter().enumerate() {
                    for j in 0..analytic.len() {
                        let (mut wp, mut bp) = (w.clone(), bias.clone());
                        let at = |wv: &mut Vec<f64>, bv: &mut Vec<f64>, d: f64| {
                            if pi == 0 { wv[j] += d } else { bv[j] += d }
                        };
                        at(&mut wp, &mut bp, h);
                        let lp = loss_f64(&loss, &logits(&x, &wp, &bp, k), &y, &s64, k);
                        at(&mut wp, &mut bp, -2.0 * h);
                        let lm = loss_f64(&loss, &logits(&x, &wp, &bp, k), &y, &s64, k);
                        let fd = (lp - lm) / (2.0 * h);
                        let an = analytic[j] as f64;
                        assert!(
                            (fd - an).abs() <= 2e-4 + 1e-3 * fd.abs(),
                            "{what}: d loss / d {pname}[{j}] = {an}, finite differences {fd}"
                        );
                    }
                }
            }
        }
    }
);

// Binary cross-entropy at logits ±1e8 (by hand: softplus(1e8) = 1e8, softplus(−1e8) = 0):
// a confident right answer costs 0, a confident wrong one 1e8 (times pos_weight for a
// positive), and the gradient is σ(z) − t, bounded, never NaN.
backend_test!(bce_is_stable_at_huge_logits, |w: Which| {
    let b = w.open();
    let name = b.describe();
    let mut s = session(
        b,
        Loss::BceWithLogits {
            pos_weight: Some(vec![2.0]),
        },
        1,
    );
    s.set_param("fc.weight", &[0.0, 0.0, 0.0]).unwrap();
    for (z, t, want_loss, want_db) in [
        (1e8f32, 1.0f32, 0.0f64, 0.0f64),
        (-1e8, 0.0, 0.0, 0.0),
        (1e8, 0.0, 1e8, 1.0),
        // Positive target: pos_weight 2 multiplies the loss and the gradient σ(z)·(p·t) − p·t.
        (-1e8, 1.0, 2e8, -2.0),
    ] {
        s.set_param("fc.bias", &[z]).unwrap();
        let x = vec![0.0; B * F];
        let y = vec![t; B];
        let (m, g) = s.gradients(&x, &y).unwrap();
        assert!(
            (m.loss as f64 - want_loss).abs() <= 1e-6 * want_loss.max(1.0),
            "z {z} t {t} on {name}: loss {} expected {want_loss}",
            m.loss
        );
        assert!(
            (g[1].1[0] as f64 - want_db).abs() < 1e-6,
            "z {z} t {t} on {name}: d/db {} expected {want_db}",
            g[1].1[0]
        );
    }
});

// Binary accuracy is Keras' rule: σ(z) > 0.5, i.e. z > 0, against t > 0.5. Regression
// reports the mean absolute error instead. Both by hand.
backend_test!(device_metrics_follow_the_task, |w: Which| {
    let b = w.open();
    let name = b.describe();
    let mut s = session(b, Loss::BceWithLogits { pos_weight: None }, 1);
    assert_eq!(s.graph().task(), Task::Binary);
    s.set_param("fc.weight", &[1.0, 0.0, 0.0]).unwrap();
    s.set_param("fc.bias", &[0.0]).unwrap();
    // z = x0: rows with x0 > 0 predict 1.
    let x0 = [0.5f32, -0.5, 2.0, -2.0, 0.1, -0.1, 0.0];
    let y = [1.0f32, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    // Right: rows 0, 2, 3, 5, 6 (z = 0 predicts 0) → 5/7.
    let x: Vec<f32> = x0.iter().flat_map(|&v| [v, 0.0, 0.0]).collect();
    s.eval_batch(&x, &y).unwrap();
    let m = s.take_metrics(Mode::Eval).unwrap();
    assert!(
        (m.accuracy - 5.0 / 7.0).abs() < 1e-6,
        "{name}: accuracy {}",
        m.accuracy
    );

    let mut s = session(w.open(), Loss::Mse, 1);
    assert_eq!(s.graph().task(), Task::Regression);
    s.set_param("fc.weight", &[1.0, 0.0, 0.0]).unwrap();
    s.set_param("fc.bias", &[0.0]).unwrap();
    let y = [0.0f32; 7];
    s.eval_batch(&x, &y).unwrap();
    let m = s.take_metrics(Mode::Eval).unwrap();
    // |z − 0| = 0.5, 0.5, 2, 2, 0.1, 0.1, 0 → MAE 5.2/7; MSE (0.25·2 + 4·2 + 0.01·2)/7.
    assert!((m.mae - 5.2 / 7.0).abs() < 1e-6, "{name}: mae {}", m.mae);
    assert!((m.loss - 8.52 / 7.0).abs() < 1e-6, "{name}: mse {}", m.loss);
});

// Targets the task cannot take are refused before the device sees them, naming the row
// and column; so are bad sample weights; a batch whose weights are all 0 trains nothing.
backend_test!(bad_targets_and_weights_are_named, |w: Which| {
    let b = w.open();
    let name = b.describe();
    let mut s = session(b, Loss::BceWithLogits { pos_weight: None }, 1);
    let x = rand_vec(1, B * F);
    let mut y = vec![0.0f32; B];
    y[4] = 2.0;
    let e = s.train_batch(&x, &y).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Target {
                row: 4,
                column: 0,
                ..
            }
        ) && e.to_string().contains("[0, 1]"),
        "{name}: {e}"
    );
    y[4] = 1.0;
    let mut sw = vec![1.0f32; B];
    sw[2] = -1.0;
    let e = s.train_batch_weighted(&x, &y, Some(&sw)).unwrap_err();
    assert!(
        matches!(e, Error::Target { row: 2, .. }) && e.to_string().contains("sample weight"),
        "{name}: {e}"
    );
    sw[2] = 1e38;
    let e = s.train_batch_weighted(&x, &y, Some(&sw)).unwrap_err();
    assert!(
        matches!(e, Error::Target { row: 2, .. }) && e.to_string().contains("1e30"),
        "{name}: {e}"
    );
    let e = s.train_batch_weighted(&x, &y, Some(&sw[..3])).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{name}: {e}");
    let before = s.params().unwrap();
    s.train_batch_weighted(&x, &y, Some(&[0.0; B])).unwrap();
    let m = s.take_metrics(Mode::Train).unwrap();
    assert_eq!(
        m.loss, 0.0,
        "{name}: a batch that weighs nothing has loss 0"
    );
    assert_eq!(s.params().unwrap(), before, "{name}: and moves nothing");

    let mut s = session(w.open(), Loss::Mse, 2);
    let mut y = vec![0.0f32; B * 2];
    y[5] = f32::NAN;
    let e = s.train_batch(&x, &y).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Target {
                row: 2,
                column: 1,
                ..
            }
        ),
        "{name}: {e}"
    );
});

// Hyperparameters of the losses are checked where the graph is built.
#[test]
fn bad_loss_hyperparameters_are_refused() {
    let build = |loss: Loss, k: usize| {
        let mut gb = GraphBuilder::new(F);
        let x = gb.input();
        let z = gb.linear(x, k, Init::XAVIER_UNIFORM, true, "fc").unwrap();
        gb.loss(z, loss).map(|_| ())
    };
    for (loss, k, what) in [
        (Loss::default(), 1, "at least 2 classes"),
        (
            Loss::CrossEntropy {
                label_smoothing: 1.5,
                class_weights: None,
            },
            3,
            "label_smoothing",
        ),
        (
            Loss::CrossEntropy {
                label_smoothing: f32::NAN,
                class_weights: None,
            },
            3,
            "label_smoothing",
        ),
        (
            Loss::CrossEntropy {
                label_smoothing: 0.0,
                class_weights: Some(vec![1.0, 2.0]),
            },
            3,
            "class_weights",
        ),
        (
            Loss::BceWithLogits {
                pos_weight: Some(vec![-1.0]),
            },
            1,
            "pos_weight",
        ),
        (Loss::Huber { delta: 0.0 }, 1, "delta"),
        // Weights that would overflow or underflow the weighted sums, or train nothing.
        (
            Loss::CrossEntropy {
                label_smoothing: 0.0,
                class_weights: Some(vec![1e38, 1.0, 1.0]),
            },
            3,
            "[1e-30, 1e30]",
        ),
        (
            Loss::BceWithLogits {
                pos_weight: Some(vec![1e-40]),
            },
            1,
            "[1e-30, 1e30]",
        ),
        (
            Loss::CrossEntropy {
                label_smoothing: 0.0,
                class_weights: Some(vec![0.0; 3]),
            },
            3,
            "all zero",
        ),
        (
            Loss::Huber {
                delta: f32::INFINITY,
            },
            1,
            "delta",
        ),
    ] {
        let e = build(loss.clone(), k).unwrap_err().to_string();
        assert!(e.contains(what), "{loss:?}: {e}");
    }
}

// The trainer records the task's validation metrics from predictions (binary: precision,
// recall, F1, AUC) next to the device's loss and accuracy; a validation set on which one
// is undefined (a single class: no AUC) leaves it out and trains on.
#[test]
fn trainer_records_task_metrics_and_survives_undefined_ones() {
    use shadeprop::data::Dataset;
    use shadeprop::train::fit::{FitConfig, Trainer};
    let n = 64;
    let x = rand_vec(7, n * F);
    // Label: the sign of the first feature.
    let y: Vec<f32> = (0..n).map(|i| (x[i * F] > 0.0) as u8 as f32).collect();
    let train = Dataset::for_task(Task::Binary, x.clone(), y.clone(), F, 1).unwrap();
    let both = train.take(16).unwrap();
    let zeros: Vec<usize> = (0..n).filter(|&i| y[i] == 0.0).take(8).collect();
    let one_class = train.gather(&zeros).unwrap();
    for (val, auc) in [(both, true), (one_class, false)] {
        let g = Sequential::new(F)
            .linear(1)
            .loss(Loss::BceWithLogits { pos_weight: None })
            .build()
            .unwrap();
        let mut s = Session::new(Box::new(Cpu::fast()), g, Sgd::default(), 0, 16).unwrap();
        let cfg = FitConfig {
            epochs: 3,
            epoch: shadeprop::train::EpochConfig {
                batch_size: 16,
                ..Default::default()
            },
            ..Default::default()
        };
        let h = Trainer::new(cfg)
            .fit(&mut s, &train, Some(&val), &mut [])
            .unwrap();
        assert_eq!(h.epochs.len(), 3);
        let last = h.epochs.last().unwrap();
        assert!(last.get("val_loss").is_some() && last.get("val_accuracy").is_some());
        assert_eq!(last.get("val_auc").is_some(), auc, "{:?}", last.values);
        assert_eq!(last.get("val_f1_score").is_some(), auc, "{:?}", last.values);
    }
}
