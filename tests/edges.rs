//! Results at the edges of the input space, on every backend (CPU reference, fast CPU,
//! GPU): loss numerics at extreme logits, batch norm with one value per channel, labels
//! out of range, non-finite steps never applied, and skipped steps that do not count.
//! Expected values are computed here in f64 from the formulas, never taken from a backend.

mod common;
use common::*;
use shadeprop::backend::check::run_kernel;
use shadeprop::backend::{Globals, Kernel};
use shadeprop::error::Error;
use shadeprop::kernels::KernelParams;
use shadeprop::kernels::clip::ClipFinalizeParams;
use shadeprop::kernels::softmax_xent::SoftmaxXentParams;
use shadeprop::nn::Sequential;
use shadeprop::optim::{Adam, Every, LossScale, LrSchedule, Precision, Sgd};
use shadeprop::plan::Mode;
use shadeprop::session::Session;

/// ln Σ exp(z) − z[y] and softmax(z) − onehot(y), in f64 from the f32 inputs.
fn xent_f64(z: &[f32], y: usize) -> (f64, Vec<f64>) {
    let mx = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let s: f64 = z.iter().map(|&v| (v as f64 - mx).exp()).sum();
    let loss = s.ln() - (z[y] as f64 - mx);
    let grad = z
        .iter()
        .enumerate()
        .map(|(j, &v)| (v as f64 - mx).exp() / s - if j == y { 1.0 } else { 0.0 })
        .collect();
    (loss, grad)
}

// Softmax cross-entropy at extreme logits, equal and unequal, with the label on the
// maximum and off it: loss and gradient on every backend against f64.
backend_test!(softmax_xent_at_extreme_logits, |b| {
    let mut rows: Vec<(Vec<f32>, usize)> = vec![];
    for mag in [1e4f32, 1e5, 1e6, 1e7, 1e8] {
        for sign in [1.0f32, -1.0] {
            let a = sign * mag;
            rows.push((vec![a, a], 1)); // equal: ln 2
            rows.push((vec![a, a, a], 0)); // equal: ln 3
            // Unequal by a few units at that magnitude (exact in f32: steps of 8 at 1e8).
            let b = a - 64.0 * sign;
            rows.push((vec![a, a - 3.0 * ulp(a)], 0)); // label on the max
            rows.push((vec![a, a - 3.0 * ulp(a)], 1)); // label off the max
            rows.push((vec![a, b, a + ulp(a)], 1));
            rows.push((vec![a, -a], 1)); // far apart: loss 2|a| or 0
            rows.push((vec![a, -a], 0));
        }
    }
    // One row per kernel call (rows have 2 or 3 classes).
    for (z, y) in rows {
        let c = z.len();
        let (want_loss, want_grad) = xent_f64(&z, y);
        let p = SoftmaxXentParams {
            rows: 1,
            classes: c,
            width: 3,
            ..Default::default()
        };
        // Label row: the class, sample weight 1, gradient factor 1 (a batch of one).
        let ins = [
            z.clone(),
            vec![y as f32, 1.0, 1.0],
            vec![1.0, 1.0, 0.0, 0.0],
            vec![0.0; 4],
        ];
        let outs = [vec![0.0; c], vec![0.0; 3]];
        let got = xent_kernel(b.as_mut(), p, &ins, &outs);
        let what = format!("logits {z:?} label {y} on {}", b.describe());
        let loss = got[1][0] as f64;
        assert!(
            (loss - want_loss).abs() <= 1e-6 + 1e-6 * want_loss.abs(),
            "{what}: loss {loss}, expected {want_loss}"
        );
        for (j, (&g, &w)) in got[0].iter().zip(&want_grad).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-6,
                "{what}: gradient[{j}] {g}, expected {w}"
            );
        }
    }
});

/// The SoftmaxXent kernel on one backend with default globals.
fn xent_kernel(
    b: &mut dyn shadeprop::backend::Backend,
    p: SoftmaxXentParams,
    ins: &[Vec<f32>],
    outs: &[Vec<f32>],
) -> Vec<Vec<f32>> {
    run_kernel(
        b,
        Kernel::SoftmaxXent,
        p.to_words(),
        ins,
        outs,
        &Globals::default(),
    )
    .unwrap()
}

fn ulp(x: f32) -> f32 {
    let b = x.abs().to_bits();
    f32::from_bits(b + 1) - f32::from_bits(b)
}

// The reported case end to end: a model whose logits are [1e8, 1e8] for a sample of label
// 1 reports loss ln 2 on evaluation and in training.
backend_test!(model_with_huge_equal_logits_reports_ln2, |b| {
    let name = b.describe();
    let g = Sequential::new(1).linear(2).build().unwrap();
    let mut s = Session::new(b, g, Sgd::default(), 0, 4).unwrap();
    s.set_param("0.weight", &[0.0, 0.0]).unwrap();
    s.set_param("0.bias", &[1e8, 1e8]).unwrap();
    s.eval_batch(&[0.5], &[1.0]).unwrap();
    let m = s.take_metrics(Mode::Eval).unwrap();
    assert!(
        (m.loss - std::f32::consts::LN_2).abs() < 1e-6,
        "{name}: eval loss {}",
        m.loss
    );
    let (m, grads) = s.gradients(&[0.5], &[1.0]).unwrap();
    assert!(
        (m.loss - std::f32::consts::LN_2).abs() < 1e-6,
        "{name}: loss {}",
        m.loss
    );
    // d loss / d bias = softmax − onehot = (0.5, −0.5).
    assert_eq!(grads[1].1, vec![0.5, -0.5], "{name}");
});

// A label that is not a class index (≥ classes, fractional) gives a NaN loss, not an
// out-of-bounds access, a truncated class or a panic, on every backend (the session
// refuses such labels before).
backend_test!(
    softmax_xent_label_out_of_range_is_nan_not_out_of_bounds,
    |b| {
        for y in [2.0f32, 10.0, 255.0, 1e9, 0.5, 1.5] {
            let p = SoftmaxXentParams {
                rows: 2,
                classes: 2,
                width: 3,
                ..Default::default()
            };
            // Row 1 is valid and must come out right; row 0 holds the bad label.
            let ins = [
                vec![1.0, 2.0, 3.0, 1.0],
                vec![y, 1.0, 0.5, 0.0, 1.0, 0.5],
                vec![1.0, 1.0, 0.0, 0.0],
                vec![0.0; 4],
            ];
            let outs = [vec![7.0; 4], vec![7.0; 6]];
            let (want1, _) = xent_f64(&[3.0, 1.0], 0);
            let got = xent_kernel(b.as_mut(), p, &ins, &outs);
            let what = format!("label {y} on {}", b.describe());
            assert!(got[1][0].is_nan(), "{what}: loss {}", got[1][0]);
            assert_eq!(got[1][1], 0.0, "{what}: counted correct");
            assert!(
                (got[1][3] as f64 - want1).abs() < 1e-6,
                "{what}: the valid row"
            );
        }
    }
);

// A NaN or infinite logit is never counted as a correct prediction.
backend_test!(non_finite_logits_are_never_correct, |b| {
    for z in [[f32::NAN, 1.0], [1.0, f32::NAN], [f32::INFINITY, 0.0]] {
        let p = SoftmaxXentParams {
            rows: 1,
            classes: 2,
            width: 3,
            ..Default::default()
        };
        let ins = [
            z.to_vec(),
            vec![0.0, 1.0, 1.0],
            vec![1.0, 1.0, 0.0, 0.0],
            vec![0.0; 4],
        ];
        let outs = [vec![0.0; 2], vec![0.0; 3]];
        let got = xent_kernel(b.as_mut(), p, &ins, &outs);
        assert_eq!(got[1][1], 0.0, "{z:?} on {}: counted correct", b.describe());
    }
});

/// A small 3 → 4 → 2 ReLU network.
fn mlp3() -> shadeprop::graph::Graph {
    Sequential::new(3)
        .linear(4)
        .relu()
        .linear(2)
        .build()
        .unwrap()
}

fn bn_model() -> Sequential {
    Sequential::new(2).batch_norm().linear(2)
}

/// `res` is batch norm's refusal of one value per channel, naming `layer`.
fn refused_one_value(res: Result<(), Error>, layer: usize, name: &str) {
    let msg = res
        .expect_err("a one-value batch-norm step must be refused")
        .to_string();
    assert!(
        msg.contains(&format!("layer {layer}")) && msg.contains("more than 1 value per channel"),
        "{name}: {msg}"
    );
}

// One value per channel in training is refused, naming the layer, and the running
// statistics stay as they were (PyTorch: "Expected more than 1 value per channel when
// training"); one sample in evaluation is fine.
backend_test!(
    batch_norm_with_one_value_per_channel_is_refused_in_training,
    |w: Which| {
        {
            let b = w.open();
            let name = b.describe();
            let mut s = Session::new(b, bn_model().build().unwrap(), Sgd::default(), 0, 8).unwrap();
            let before = s.state().unwrap();
            for res in [
                s.train_batch(&[1.0, 2.0], &[0.0]).map(|_| ()),
                s.gradients(&[1.0, 2.0], &[0.0]).map(|_| ()),
                s.probe(&[1.0, 2.0], &[0.0]).map(|_| ()),
            ] {
                refused_one_value(res, 0, &name);
            }
            assert_eq!(
                s.state().unwrap(),
                before,
                "{name}: running statistics moved"
            );
            assert_eq!(s.step(), 0, "{name}");
            s.eval_batch(&[1.0, 2.0], &[0.0]).unwrap();
            let m = s.take_metrics(Mode::Eval).unwrap();
            assert_eq!(m.samples, 1);
            // Two rows train.
            s.train_batch(&[1.0, 2.0, 3.0, 5.0], &[0.0, 1.0]).unwrap();
            s.take_metrics(Mode::Train).unwrap();
        }
        // 2-d batch norm over a 1×1 image: one sample is one value per channel.
        let b = w.open();
        let name = b.describe();
        let g = Sequential::image(1, 1, 1)
            .conv2d(2, 1, 1, 0)
            .batch_norm2d()
            .flatten()
            .linear(2)
            .build()
            .unwrap();
        let mut s = Session::new(b, g, Sgd::default(), 0, 8).unwrap();
        refused_one_value(s.train_batch(&[1.0], &[0.0]), 1, &name);
        s.train_batch(&[1.0, 2.0], &[0.0, 1.0]).unwrap();
    }
);

// The same with a maximum batch of 1, whose training program `Session::new` compiles before
// any batch is seen (it used to train on the one row and move the running statistics).
backend_test!(batch_norm_with_a_maximum_batch_of_one_is_refused, |b| {
    let name = b.describe();
    let mut s = Session::new(b, bn_model().build().unwrap(), Sgd::default(), 0, 1).unwrap();
    let before = s.state().unwrap();
    refused_one_value(s.train_batch(&[1.0, 2.0], &[0.0]), 0, &name);
    assert_eq!(
        s.state().unwrap(),
        before,
        "{name}: running statistics moved"
    );
    assert_eq!(s.step(), 0, "{name}");
    s.eval_batch(&[1.0, 2.0], &[0.0]).unwrap();
});

// The trainer never feeds a one-value batch to batch norm: 5 samples at batch 4 train
// one batch of 4 and drop the last sample; running_var is what one batch of 4 gives.
backend_test!(trainer_drops_a_last_batch_of_one_before_batch_norm, |b| {
    use shadeprop::data::Dataset;
    use shadeprop::train::{EpochConfig, train_epoch};
    let x = vec![1.0, 2.0, 3.0, 5.0, 4.0, -1.0, 0.0, 0.5, 9.0, 9.0];
    let y = vec![0.0, 1.0, 0.0, 1.0, 0.0];
    let ds = Dataset {
        x: x.clone(),
        y,
        features: 2,
        classes: 2,
        ..Default::default()
    };
    let name = b.describe();
    let mut s = Session::new(b, bn_model().build().unwrap(), Sgd::default(), 0, 4).unwrap();
    let cfg = EpochConfig {
        batch_size: 4,
        shuffle: false,
        ..Default::default()
    };
    let e = train_epoch(&mut s, &ds, &cfg, 0, 0).unwrap();
    assert_eq!(
        e.metrics.samples, 4,
        "{name}: the last one-sample batch is dropped"
    );
    assert_eq!(s.step(), 1, "{name}");
    // running_var = 0.9·1 + 0.1·unbiased var of the first 4 rows, per feature.
    let st = &s.state().unwrap()[0].1;
    for f in 0..2 {
        let v: Vec<f64> = (0..4).map(|r| x[r * 2 + f] as f64).collect();
        let mean = v.iter().sum::<f64>() / 4.0;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 3.0;
        let want = 0.9 + 0.1 * var;
        assert!(
            (st[2 + f] as f64 - want).abs() < 1e-5,
            "{name}: running_var[{f}] {} vs {want}",
            st[2 + f]
        );
    }
});

// Labels that are not an integer in [0, classes) are named errors on every session
// entry point, with the row and the value; nothing runs.
backend_test!(bad_labels_are_refused_at_the_session, |b| {
    let name = b.describe();
    let g = Sequential::new(2).linear(3).build().unwrap();
    let mut s = Session::new(b, g, Sgd::default(), 0, 4).unwrap();
    let before = s.params().unwrap();
    let x = [0.1, 0.2, 0.3, 0.4];
    for bad in [3.0f32, 10.0, 255.0, -1.0, 2.5, f32::NAN, f32::INFINITY] {
        let y = [1.0, bad];
        let errs = [
            s.train_batch(&x, &y).err(),
            s.eval_batch(&x, &y).err(),
            s.gradients(&x, &y).err(),
            s.probe(&x, &y).err(),
        ];
        for e in errs {
            let e = e.unwrap_or_else(|| panic!("{name}: label {bad} accepted"));
            let msg = e.to_string();
            assert!(matches!(e, Error::Label { .. }), "{name}: {msg}");
            assert!(
                msg.contains("row 1") && msg.contains(&format!("{bad}")),
                "{name}: {msg}"
            );
            assert!(msg.contains("[0, 3)"), "{name}: {msg}");
        }
    }
    assert_eq!(s.params().unwrap(), before, "{name}");
    assert_eq!(s.step(), 0);
});

// A NaN or infinite input to a training step is refused before upload, naming the row
// and feature, with nothing changed; a step whose gradient overflows to infinity on the
// device is not applied (parameters, moments, count of applied updates as before, in f32
// and in mixed precision at the loss scale's floor of 1), the next metrics read names
// it, and the session then trains on from the last good parameters.
backend_test!(non_finite_step_is_skipped_and_reported, |w: Which| {
    let one = Precision::Mixed(LossScale {
        init: 1.0,
        ..LossScale::default()
    });
    for (adam, prec) in [
        (false, Precision::F32),
        (true, Precision::F32),
        (false, one),
        (true, one),
    ] {
        let b = w.open();
        let name = format!("{} adam={adam} {}", b.describe(), prec.name());
        // One linear layer: dW = xᵀ·dz, so an input of 1e30 gives Σ g² ≈ 1e60 = inf.
        let g = Sequential::new(3).linear(2).build().unwrap();
        let mut s = if adam {
            let o = Adam {
                lr: 0.01,
                clip_norm: Some(1.0),
                ..Adam::default()
            };
            Session::with_precision(b, g, o, 0, 4, prec)
        } else {
            let o = Sgd {
                lr: 0.1,
                momentum: 0.9,
                clip_norm: Some(1.0),
                ..Sgd::default()
            };
            Session::with_precision(b, g, o, 0, 4, prec)
        }
        .unwrap();
        let (x, y) = batch(3, 2, 3, 2);
        s.train_batch(&x, &y).unwrap();
        s.take_metrics(Mode::Train).unwrap();
        let snap = s.snapshot().unwrap();
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut bad = x.clone();
            bad[4] = v; // row 1, feature 1
            let e = s.train_batch(&bad, &y).unwrap_err();
            assert!(matches!(e, Error::NonFiniteInput { .. }), "{name}: {e}");
            assert!(e.to_string().contains("row 1, feature 1"), "{name}: {e}");
        }
        assert_eq!(
            s.snapshot().unwrap(),
            snap,
            "{name}: a refused batch changed state"
        );
        // Finite inputs whose gradient overflows f32 (Σ g² ≈ 1e60).
        let mut big = x.clone();
        big[4] = 1e30;
        s.train_batch(&big, &y).unwrap();
        let e = s.take_metrics(Mode::Train).unwrap_err().to_string();
        assert!(
            e.contains("non-finite") && e.contains("was skipped"),
            "{name}: {e}"
        );
        let after = s.snapshot().unwrap();
        assert_eq!(after.params, snap.params, "{name}: parameters changed");
        assert_eq!(after.velocity, snap.velocity, "{name}: momentum changed");
        assert_eq!(
            after.second_moment, snap.second_moment,
            "{name}: Adam's m2 changed"
        );
        assert_eq!(after.applied_steps, 1, "{name}: applied steps");
        // Mixed: S stays at its floor of 1 and the skip is no overflow (amp[3]); only the
        // run of finite steps (amp[2]) restarts.
        if !snap.loss_scale.is_empty() {
            let (a, b) = (&after.loss_scale, &snap.loss_scale);
            assert_eq!([a[0], a[1], a[3]], [b[0], b[1], b[3]], "{name}: {a:?}");
        }
        // Trains on.
        s.train_batch(&x, &y).unwrap();
        let m = s.take_metrics(Mode::Train).unwrap();
        assert!(m.loss.is_finite(), "{name}");
        assert_eq!(s.snapshot().unwrap().applied_steps, 2, "{name}");
        assert!(
            s.params()
                .unwrap()
                .iter()
                .all(|(_, v)| v.iter().all(|x| x.is_finite()))
        );
    }
});

// A batch whose statistics overflow (a value of 1e30 in one feature) leaves that
// batch-norm channel's running statistics as they were; the other channels update.
backend_test!(
    batch_norm_keeps_running_statistics_when_batch_statistics_overflow,
    |b| {
        let name = b.describe();
        let g = Sequential::new(3).batch_norm().linear(2).build().unwrap();
        let mut s = Session::new(b, g, Sgd::default(), 0, 4).unwrap();
        let before = s.state().unwrap()[0].1.clone();
        let x = [0.5, 1.0, -1.0, 1.5, 1e30, 2.0];
        s.train_batch(&x, &[0.0, 1.0]).unwrap();
        let _ = s.take_metrics(Mode::Train);
        let after = s.state().unwrap()[0].1.clone();
        // [mean0, mean1, mean2, var0, var1, var2]: channel 1 untouched; channel 0 by
        // PyTorch's rule: 0.9·0 + 0.1·1.0 and 0.9·1 + 0.1·(unbiased var 0.5).
        assert_eq!((after[1], after[4]), (before[1], before[4]), "{name}");
        assert!((after[0] - 0.1).abs() < 1e-6, "{name}: {after:?}");
        assert!((after[3] - 0.95).abs() < 1e-6, "{name}: {after:?}");
    }
);

// Finite parameters and inputs whose logits overflow f32 (3e38·10): evaluation and
// prediction name the non-finite value instead of reporting NaN.
backend_test!(
    overflowing_logits_at_evaluation_and_prediction_are_named,
    |b| {
        let name = b.describe();
        let g = Sequential::new(1).linear(2).build().unwrap();
        let mut s = Session::new(b, g, Sgd::default(), 0, 4).unwrap();
        s.set_param("0.weight", &[3e38, -3e38]).unwrap();
        s.eval_batch(&[10.0], &[1.0]).unwrap();
        let e = s.take_metrics(Mode::Eval).unwrap_err().to_string();
        assert!(e.contains("evaluation loss"), "{name}: {e}");
        for e in [
            s.predict(&[10.0]).map(|_| ()),
            s.predict_mc(&[10.0], 2).map(|_| ()),
        ] {
            let e = e.unwrap_err().to_string();
            assert!(e.contains("logit 0 of input row 0"), "{name}: {e}");
        }
    }
);

// Non-finite inputs at evaluation and prediction are named errors with row and feature.
backend_test!(
    non_finite_inputs_at_evaluation_and_prediction_are_named,
    |b| {
        let name = b.describe();
        let g = mlp3();
        let mut s = Session::new(b, g, Sgd::default(), 0, 4).unwrap();
        let mut x = vec![0.5f32; 6];
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            x[5] = bad;
            for e in [
                s.eval_batch(&x, &[0.0, 1.0]).err(),
                s.predict(&x).err(),
                s.predict_mc(&x, 2).err(),
            ] {
                let msg = e
                    .unwrap_or_else(|| panic!("{name}: {bad} accepted"))
                    .to_string();
                assert!(
                    msg.contains("row 1, feature 2") && msg.contains(&format!("{bad}")),
                    "{name}: {msg}"
                );
            }
        }
        let m = s.take_metrics(Mode::Eval).unwrap();
        assert_eq!(m.samples, 0, "{name}: nothing evaluated");
    }
);

// Loading non-finite parameters (set_param, restore) names the tensor.
backend_test!(non_finite_parameters_are_refused_on_load, |w: Which| {
    {
        let b = w.open();
        let name = b.describe();
        let g = Sequential::new(3).linear(2).build().unwrap();
        let mut s = Session::new(b, g, Sgd::default(), 0, 4).unwrap();
        let e = s
            .set_param("0.bias", &[0.0, f32::NAN])
            .unwrap_err()
            .to_string();
        assert!(e.contains("0.bias") && e.contains("NaN"), "{name}: {e}");
        let mut snap = s.snapshot().unwrap();
        snap.params.iter_mut().for_each(|v| *v = f32::NAN);
        let e = s.restore(&snap).unwrap_err().to_string();
        assert!(e.contains("0.weight"), "{name}: {e}");
        let mut snap = s.snapshot().unwrap();
        snap.velocity[0] = f32::INFINITY;
        let e = s.restore(&snap).unwrap_err().to_string();
        assert!(
            e.contains("0.weight") && e.contains("momentum"),
            "{name}: {e}"
        );
    }
    // A loss-scaling state that is not a power of two >= 1 with its inverse.
    let b = w.open();
    let name = b.describe();
    let g = Sequential::new(3).linear(2).build().unwrap();
    let mut s = Session::with_precision(b, g, Sgd::default(), 0, 4, Precision::mixed()).unwrap();
    for bad in [
        [f32::NAN, f32::NAN],
        [0.0, f32::INFINITY],
        [3.0, 1.0 / 3.0],
        [0.5, 2.0],
    ] {
        let mut snap = s.snapshot().unwrap();
        snap.loss_scale[0] = bad[0];
        snap.loss_scale[1] = bad[1];
        let e = s.restore(&snap).unwrap_err().to_string();
        assert!(e.contains("optimizer.loss_scale"), "{name} {bad:?}: {e}");
    }
});

// Mixed precision with the loss scale started at 2^100: every step overflows until the
// scale has backed off, and those skipped steps do not count. The first applied Adam
// step then moves each weight by lr·g/(|g| + eps/…) ≈ lr (t = 1: m̂ = g, v̂ = g²), not by
// lr·(1 − 0.9^t)… as when Adam's t counts skipped steps.
backend_test!(
    skipped_steps_do_not_advance_adam_or_the_schedule,
    |w: Which| {
        {
            let b = w.open();
            let name = b.describe();
            let g = Sequential::new(4).linear(3).build().unwrap();
            let prec = Precision::Mixed(LossScale {
                init: 2f32.powi(100),
                ..LossScale::default()
            });
            let lr = 1e-3f32;
            let opt = Adam {
                lr,
                eps: 1e-12,
                weight_decay: 0.0,
                ..Adam::default()
            };
            let mut s = Session::with_precision(b, g, opt, 0, 8, prec).unwrap();
            let (x, y) = batch(5, 8, 4, 3);
            let mut skipped = 0;
            let mut before = s.params().unwrap();
            for _ in 0..200 {
                before = s.params().unwrap();
                s.train_batch(&x, &y).unwrap();
                let m = s.take_metrics(Mode::Train).unwrap();
                if m.skipped_steps == skipped {
                    break;
                }
                skipped = m.skipped_steps;
            }
            assert!(skipped > 50, "{name}: {skipped} skipped steps");
            assert_eq!(s.snapshot().unwrap().applied_steps, 1, "{name}");
            let after = s.params().unwrap();
            for ((n, w0), (_, w1)) in before.iter().zip(&after) {
                for (a, c) in w0.iter().zip(w1) {
                    let moved = (a - c).abs();
                    assert!(
                        (moved - lr).abs() <= 1e-3 * lr,
                        "{name}: {n} moved {moved}, expected lr {lr}"
                    );
                }
            }
        }
        // f32, a per-step schedule: a skipped step (gradient overflow) leaves the schedule where
        // it was.
        // StepLR(step_size 1, gamma 0.5): the first applied step uses lr0 whatever was skipped.
        let b = w.open();
        let name = b.describe();
        let g = Sequential::new(2).linear(2).build().unwrap();
        let lr0 = 0.5f32;
        let mut s = Session::new(
            b,
            g,
            Sgd {
                lr: lr0,
                ..Sgd::default()
            },
            0,
            4,
        )
        .unwrap();
        s.set_schedule(LrSchedule::Step {
            step_size: 1,
            gamma: 0.5,
            every: Every::Step,
        })
        .unwrap();
        let x = [0.3, -0.7, 1.1, 0.2];
        let y = [0.0, 1.0];
        for _ in 0..3 {
            // Finite inputs whose gradient overflows: Σ g² ≈ 1e60.
            s.train_batch(&[1e30, 0.0, 0.0, 0.0], &y).unwrap();
            assert!(s.take_metrics(Mode::Train).is_err());
        }
        let w0 = s.params().unwrap();
        let (_, grads) = s.gradients(&x, &y).unwrap();
        s.train_batch(&x, &y).unwrap();
        s.take_metrics(Mode::Train).unwrap();
        let w1 = s.params().unwrap();
        assert_sgd_step(&name, &w0, &w1, &grads, lr0);
        // The second applied step uses lr0·0.5.
        let (_, grads) = s.gradients(&x, &y).unwrap();
        s.train_batch(&x, &y).unwrap();
        s.take_metrics(Mode::Train).unwrap();
        let w2 = s.params().unwrap();
        assert_sgd_step(&name, &w1, &w2, &grads, 0.5 * lr0);
    }
);

/// `after` = `before` − lr·`grads`, element by element (a plain SGD step at rate lr).
fn assert_sgd_step(
    name: &str,
    before: &[(String, Vec<f32>)],
    after: &[(String, Vec<f32>)],
    grads: &[(String, Vec<f32>)],
    lr: f32,
) {
    for (((n, a), (_, c)), (_, gr)) in before.iter().zip(after).zip(grads) {
        for i in 0..a.len() {
            let want = a[i] - lr * gr[i];
            assert!(
                (c[i] - want).abs() <= 1e-6,
                "{name}: {n}[{i}] {} vs {want} (lr {lr})",
                c[i]
            );
        }
    }
}

// A batch larger than the session's maximum names both sizes.
backend_test!(batch_over_the_maximum_names_both_sizes, |b| {
    let g = Sequential::new(2).linear(2).build().unwrap();
    let mut s = Session::new(b, g, Sgd::default(), 0, 4).unwrap();
    let e = s
        .train_batch(&[0.0; 10], &[0.0; 5])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("batch of 5") && e.contains("maximum batch 4"),
        "{e}"
    );
    let e = s.eval_batch(&[0.0; 10], &[0.0; 5]).unwrap_err().to_string();
    assert!(
        e.contains("batch of 5") && e.contains("maximum batch 4"),
        "{e}"
    );
});

// A checkpoint whose weights are all NaN but whose checksum is valid is refused on load,
// naming the tensor; evaluating a session whose parameters went non-finite names it too.
backend_test!(non_finite_checkpoint_and_evaluation_name_the_tensor, |b| {
    use shadeprop::data::Dataset;
    use shadeprop::plan::buf;
    use shadeprop::train::{checkpoint, evaluate};
    let dir = scratch_dir("edges");
    let path = dir.join("nan.safetensors");
    let name = b.describe();
    let g = mlp3();
    let mut s = Session::new(b, g.clone(), Sgd::default(), 0, 4).unwrap();
    let n = s.layout().params_len;
    // Behind the session's back, as a corrupt writer would.
    s.backend_mut()
        .write(buf::PARAMS, 0, &vec![f32::NAN; n])
        .unwrap();
    let ds = Dataset {
        x: vec![0.5; 6],
        y: vec![0.0, 1.0],
        features: 3,
        classes: 2,
        ..Default::default()
    };
    let e = evaluate(&mut s, &ds, 4).unwrap_err().to_string();
    assert!(e.contains("0.weight") && e.contains("NaN"), "{name}: {e}");
    checkpoint::save(&path, &mut s, &Default::default(), &[]).unwrap();
    let mut t = Session::new(
        Box::new(shadeprop::backend::cpu::Cpu::new()),
        g,
        Sgd::default(),
        0,
        4,
    )
    .unwrap();
    let e = checkpoint::load(&path, &mut t).unwrap_err().to_string();
    assert!(
        e.contains("0.weight") && e.contains("NaN") && e.contains("nan.safetensors"),
        "{name}: {e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
});

// A checkpoint of an augmented model loads with the augmentation layer's settings (its
// standardization and ranges come from the model, not from zeros): evaluation after the
// load equals evaluation before it, and training on from the loaded checkpoint gives the
// same parameters as training on without it, bit for bit.
backend_test!(
    checkpoints_of_augmented_models_keep_the_augmentation_settings,
    |b| {
        use shadeprop::nn::augment::Augment;
        use shadeprop::train::checkpoint;
        let dir = scratch_dir("aug");
        let path = dir.join("aug.safetensors");
        let spec = Augment {
            rotation: (-10.0, 10.0),
            translate_x: (-1.0, 1.0),
            standardize: Some((0.5, 0.25)),
            ..Augment::default()
        };
        let model = || {
            Sequential::image(1, 6, 6)
                .augment(spec)
                .conv2d(2, 3, 1, 1)
                .relu()
                .flatten()
                .linear(3)
                .build()
                .unwrap()
        };
        let (x, y) = batch(9, 4, 36, 3);
        let x: Vec<f32> = x.iter().map(|v| v.abs()).collect();
        let name = b.describe();
        let mut s = Session::new(b, model(), Sgd::default(), 0, 4).unwrap();
        s.train_batch(&x, &y).unwrap();
        s.take_metrics(Mode::Train).unwrap();
        s.eval_batch(&x, &y).unwrap();
        let before = s.take_metrics(Mode::Eval).unwrap();
        checkpoint::save(&path, &mut s, &Default::default(), &[]).unwrap();
        let mut t = Session::new(
            Box::new(shadeprop::backend::cpu::Cpu::new()),
            model(),
            Sgd::default(),
            0,
            4,
        )
        .unwrap();
        checkpoint::load(&path, &mut t).unwrap();
        t.eval_batch(&x, &y).unwrap();
        let after = t.take_metrics(Mode::Eval).unwrap();
        assert!(
            (after.loss - before.loss).abs() <= 1e-5 * before.loss.abs(),
            "{name}: eval loss {} after the load, {} before",
            after.loss,
            before.loss
        );
        assert_eq!(
            t.state().unwrap(),
            s.state().unwrap(),
            "{name}: model state"
        );
        // Loading into the same backend and training on is bit-identical.
        checkpoint::load(&path, &mut s).unwrap();
        let snap = s.snapshot().unwrap();
        s.train_batch(&x, &y).unwrap();
        let p1 = s.params().unwrap();
        s.restore(&snap).unwrap();
        s.train_batch(&x, &y).unwrap();
        assert_eq!(s.params().unwrap(), p1, "{name}");
        std::fs::remove_dir_all(dir).unwrap();
    }
);

// The trainer names a bad label or input by its row in the dataset (not in the shuffled
// batch), and refuses an epoch with no batch to train on instead of logging loss 0.
backend_test!(trainer_names_dataset_rows_and_refuses_empty_epochs, |b| {
    use shadeprop::data::Dataset;
    use shadeprop::train::{EpochConfig, train_epoch};
    let cfg = EpochConfig {
        batch_size: 4,
        shuffle: true,
        ..Default::default()
    };
    let name = b.describe();
    let mut s = Session::new(b, bn_model().build().unwrap(), Sgd::default(), 0, 4).unwrap();
    let x: Vec<f32> = (0..24).map(|i| i as f32 * 0.1).collect();
    let mut y: Vec<f32> = (0..12).map(|i| (i % 2) as f32).collect();
    y[7] = 10.0;
    let ds = Dataset {
        x: x.clone(),
        y,
        features: 2,
        classes: 2,
        ..Default::default()
    };
    let e = train_epoch(&mut s, &ds, &cfg, 0, 0).unwrap_err();
    assert!(matches!(e, Error::Label { row: 7, .. }), "{name}: {e}");
    // Evaluation in batches of 4 names the dataset row too (row 7, batch row 3).
    let e = shadeprop::train::evaluate(&mut s, &ds, 4).unwrap_err();
    assert!(matches!(e, Error::Label { row: 7, .. }), "{name}: {e}");
    let mut x2 = x.clone();
    x2[2 * 9 + 1] = f32::NAN;
    let y2: Vec<f32> = (0..12).map(|i| (i % 2) as f32).collect();
    let ds = Dataset {
        x: x2,
        y: y2,
        features: 2,
        classes: 2,
        ..Default::default()
    };
    let e = train_epoch(&mut s, &ds, &cfg, 0, 0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFiniteInput {
                row: 9,
                feature: 1,
                ..
            }
        ),
        "{name}: {e}"
    );
    for n in [0usize, 1] {
        let ds = Dataset {
            x: vec![0.5; 2 * n],
            y: vec![0.0; n],
            features: 2,
            classes: 2,
            ..Default::default()
        };
        let e = train_epoch(&mut s, &ds, &cfg, 0, 0).unwrap_err();
        assert!(matches!(e, Error::Empty { .. }), "{name}: {n} samples: {e}");
    }
});

// The loss scale grows only while S·growth stays at most 1e30, whatever the growth
// factor: with growth 2^127 it stays finite (S·growth would be inf), and with growth 2
// it stops at 2^99 (2^100 > 1e30 > 2^99).
backend_test!(the_loss_scale_never_grows_past_1e30, |b| {
    for (s0, growth, want) in [
        (2f32.powi(29), 2f32.powi(127), 2f32.powi(29)),
        (2f32.powi(98), 2.0, 2f32.powi(99)),
        (2f32.powi(99), 2.0, 2f32.powi(99)),
    ] {
        let p = ClipFinalizeParams {
            parts: 1,
            growth_interval: 1,
            growth,
            inv_growth: 1.0 / growth,
            backoff: 0.5,
            inv_backoff: 2.0,
            amp_offset: 8,
            update: true,
            ..Default::default()
        };
        let g = Globals {
            flags: Globals::MIXED,
            ..Globals::default()
        };
        let ins = [vec![1.0, 0.0]];
        let outs = [[vec![0.0; 8], vec![s0, 1.0 / s0, 0.0, 0.0]].concat()];
        let got = run_kernel(
            b.as_mut(),
            Kernel::ClipFinalize,
            p.to_words(),
            &ins,
            &outs,
            &g,
        )
        .unwrap();
        assert_eq!(
            (got[0][8], got[0][9]),
            (want, 1.0 / want),
            "S {s0} growth {growth} on {}",
            b.describe()
        );
    }
});

/// A cosine schedule over more steps than the device's u32 step count holds (epochs
/// large enough that epochs × steps per epoch wraps u64) is refused, not wrapped to a
/// schedule that reaches 0 after one step.
#[test]
fn a_cosine_schedule_over_too_many_steps_is_refused() {
    let g = Sequential::new(2).linear(2).build().unwrap();
    let mut s = Session::new(
        Box::new(shadeprop::backend::cpu::Cpu::new()),
        g,
        Sgd::default(),
        0,
        4,
    )
    .unwrap();
    for epochs in [1u64 << 62, 1 << 31] {
        let e = s
            .set_schedule(LrSchedule::cosine_over_epochs(10, 3, epochs))
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule.t_max"), "{epochs}: {e}");
    }
    s.set_schedule(LrSchedule::cosine_over_epochs(10, 3, 1 << 29))
        .unwrap();
}

/// A checkpoint carries the count of applied updates, for the session and for every
/// callback snapshot, so a resumed schedule and Adam's t continue where they were.
#[test]
fn checkpoints_carry_applied_steps() {
    use shadeprop::train::checkpoint;
    let dir = std::env::temp_dir().join(format!("shadeprop-applied-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.safetensors");
    let g = Sequential::new(2).linear(2).build().unwrap();
    let mut s = Session::new(
        Box::new(shadeprop::backend::cpu::Cpu::new()),
        g.clone(),
        Sgd::default(),
        0,
        4,
    )
    .unwrap();
    let y = [0.0, 1.0];
    s.train_batch(&[0.1, 0.2, 0.3, 0.4], &y).unwrap();
    s.train_batch(&[1e30, 0.0, 0.0, 0.0], &y).unwrap(); // skipped: Σ g² overflows
    assert!(s.take_metrics(Mode::Train).is_err());
    let cb = s.snapshot().unwrap();
    s.train_batch(&[0.1, 0.2, 0.3, 0.4], &y).unwrap();
    s.take_metrics(Mode::Train).unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!((snap.step, snap.applied_steps), (3, 2));
    checkpoint::save(
        &path,
        &mut s,
        &Default::default(),
        &[("early_stopping".into(), cb)],
    )
    .unwrap();
    let mut t = Session::new(
        Box::new(shadeprop::backend::cpu::Cpu::new()),
        g,
        Sgd::default(),
        0,
        4,
    )
    .unwrap();
    let (_, cbs) = checkpoint::load(&path, &mut t).unwrap();
    let back = t.snapshot().unwrap();
    assert_eq!((back.step, back.applied_steps), (3, 2));
    assert_eq!((cbs[0].1.step, cbs[0].1.applied_steps), (2, 1));
    std::fs::remove_dir_all(dir).unwrap();
}

// Malformed graphs through the public graph API end in named errors, never a panic or a
// checkpoint that cannot be written: two layers with one name, a parameter whose segments
// do not cover its shape, an empty graph.
#[test]
fn malformed_graphs_are_named_errors() {
    use shadeprop::graph::{Graph, GraphBuilder, ParamInfo, Segment, Shape, autodiff};
    use shadeprop::nn::init::Init;
    let mut b = GraphBuilder::new(4);
    let x = b.input();
    let h = b.linear(x, 4, Init::XAVIER_UNIFORM, true, "fc").unwrap();
    let e = b
        .linear(h, 3, Init::XAVIER_UNIFORM, true, "fc")
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"fc.weight\" is used twice"), "{e}");
    let seg = |len| Segment {
        name: "w.weight".into(),
        len,
        init: Init::XAVIER_UNIFORM,
        torch_shape: None,
    };
    for len in [2, 14, 1000] {
        let e = b
            .param(ParamInfo {
                name: "w".into(),
                shape: Shape::fixed(4, 3),
                decay: true,
                regularizer: None,
                segments: vec![seg(len)],
            })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("segments hold {len} values")) && e.contains("holds 12"),
            "{e}"
        );
    }
    let e = autodiff::differentiate(&mut Graph::default()).unwrap_err();
    assert!(
        e.to_string().contains("no forward pass ending in a loss"),
        "{e}"
    );
    let cpu = Box::new(shadeprop::backend::cpu::Cpu::new());
    let e = Session::new(cpu, Graph::default(), Sgd::default(), 0, 4)
        .err()
        .expect("an empty graph must be refused");
    assert!(
        e.to_string().contains("no forward pass ending in a loss"),
        "{e}"
    );
}

// Augmentation sizes that would only blank every image, or overflow the kernels' integer
// arithmetic, are refused by name.
#[test]
fn augmentation_sizes_out_of_range_are_refused() {
    use shadeprop::graph::GraphBuilder;
    use shadeprop::nn::augment::Augment;
    for a in [
        Augment {
            crop_padding: 1 << 31,
            ..Augment::default()
        },
        Augment {
            cutout_size: usize::MAX,
            cutout_p: 1.0,
            ..Augment::default()
        },
    ] {
        let e = a.validate().unwrap_err().to_string();
        assert!(e.contains("at most 65536 pixels"), "{e}");
    }
    let mut b = GraphBuilder::new(4);
    let x = b.input();
    for chw in [(1, (1 << 62) + 1, 4), ((1 << 63) + 2, 2, 1)] {
        let e = Augment::default()
            .add_to(&mut b, x, chw)
            .unwrap_err()
            .to_string();
        assert!(e.contains("augment image"), "{chw:?}: {e}");
    }
}

// A hand-made program whose operand counts are not its kernel's is refused by every
// backend's load, naming the kernel.
backend_test!(instructions_with_the_wrong_operand_count_are_refused, |b| {
    let mut b = b;
    let name = b.describe();
    use shadeprop::backend::{BufferSpec, Instr, Program, Slice};
    b.create_buffers(&[BufferSpec {
        name: "x".into(),
        len: 64,
    }])
    .unwrap();
    let s = Slice {
        buf: 0,
        off: 0,
        len: 16,
    };
    let mm = shadeprop::kernels::matmul::MatMulParams {
        m: 4,
        n: 4,
        k: 4,
        ..Default::default()
    };
    let e = b
        .load(&Program {
            instrs: vec![Instr {
                kernel: mm.kernel(),
                p: mm.to_words(),
                ins: vec![s],
                outs: vec![s],
            }],
            logits: None,
        })
        .expect_err("a matmul with one input must be refused")
        .to_string();
    assert!(
        e.contains("MatMul") && e.contains("takes 3 inputs"),
        "{name}: {e}"
    );
});

/// An update that overflows (a finite gradient times a huge rate) leaves non-finite
/// parameters; the next steps' non-finite gradients are skipped, and the error says the
/// parameters were already not finite — not that they are the last finite step's.
#[test]
fn an_overflowing_update_is_not_reported_as_kept_finite_parameters() {
    let g = Sequential::new(3).linear(2).build().unwrap();
    let mut s = Session::new(
        Box::new(shadeprop::backend::cpu::Cpu::new()),
        g,
        Sgd {
            lr: 3e38,
            ..Sgd::default()
        },
        0,
        2,
    )
    .unwrap();
    let x = [1.0, -2.0, 3.0, 0.5, 0.25, -1.0];
    let e = (0..4)
        .find_map(|_| {
            s.train_batch(&x, &[0.0, 1.0])
                .and_then(|_| s.take_metrics(Mode::Train))
                .err()
        })
        .expect("the overflow is reported")
        .to_string();
    assert!(
        !e.contains("those of the last finite step") || !e.contains("non-finite parameter"),
        "contradictory: {e}"
    );
    assert!(
        e.contains("non-finite parameter") || e.contains("not finite"),
        "{e}"
    );
}
