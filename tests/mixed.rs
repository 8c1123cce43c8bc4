//! Mixed precision: f16 matmul operands with f32 master weights and dynamic loss scaling.
//! The same results on every backend, close to (but not the same as) f32 training, loss
//! scaling that backs off, skips and grows as PyTorch's GradScaler, and exact resume.

mod common;
use common::*;
use shadeprop::backend::cpu::Cpu;
use shadeprop::graph::Graph;
use shadeprop::nn::Sequential;
use shadeprop::optim::{LossScale, Precision, Sgd};
use shadeprop::plan::Mode;
use shadeprop::session::{Metrics, Session};
use shadeprop::train::checkpoint;

/// 20 → 32 (batch norm optional) → ReLU → dropout → 24 → ReLU → 5.
fn mlp_with(batch_norm: bool) -> Graph {
    let mut m = Sequential::new(20).linear(32);
    if batch_norm {
        m = m.batch_norm();
    }
    m.relu()
        .dropout(0.2)
        .linear(24)
        .relu()
        .linear(5)
        .build()
        .unwrap()
}

fn mlp() -> Graph {
    mlp_with(true)
}

fn cnn() -> Graph {
    Sequential::image(1, 8, 8)
        .conv2d(4, 3, 1, 1)
        .relu()
        .max_pool(2, 2)
        .flatten()
        .linear(12)
        .relu()
        .linear(5)
        .build()
        .unwrap()
}

fn session(b: Box<dyn shadeprop::backend::Backend>, g: &Graph, p: Precision) -> Session {
    Session::with_precision(b, g.clone(), Sgd::w_mlp(), 3, 8, p).unwrap()
}

/// Train `steps` steps on fixed batches; the metrics of the run and the parameters.
fn train(s: &mut Session, steps: u64) -> (Metrics, Vec<f32>) {
    let f = s.graph().in_features();
    for i in 0..steps {
        let (x, y) = batch(100 + i, 8, f, 5);
        s.train_batch(&x, &y).unwrap();
    }
    let m = s.take_metrics(Mode::Train).unwrap();
    let p = s
        .params()
        .unwrap()
        .into_iter()
        .flat_map(|(_, v)| v)
        .collect();
    (m, p)
}

/// The mixed-precision program gives the CPU reference's parameters on the fast CPU
/// backend and the GPU (the f16 casts are bit-identical; only f32 summation order differs,
/// which can move a value across an f16 rounding boundary, hence the looser tolerance).
#[test]
fn mixed_precision_same_on_every_backend() {
    for (name, g) in [("mlp", mlp()), ("cnn", cnn())] {
        let mut runs = vec![];
        for b in backends() {
            let what = format!("{name} on {}", b.describe());
            let mut s = session(b, &g, Precision::mixed());
            runs.push((what, train(&mut s, 6)));
        }
        let (_, (m0, p0)) = &runs[0];
        assert!(m0.loss.is_finite() && m0.loss_scale == 65536.0 && m0.skipped_steps == 0);
        for (what, (m, p)) in &runs[1..] {
            assert_close(&format!("{what}: parameters"), p, p0, 1e-4, 1e-3);
            assert!(
                (m.loss - m0.loss).abs() <= 1e-4 * m0.loss,
                "{what}: loss {m:?} vs {m0:?}"
            );
            assert_eq!(
                (m.loss_scale, m.skipped_steps),
                (m0.loss_scale, m0.skipped_steps)
            );
        }
    }
}

/// Mixed precision changes the arithmetic (the parameters differ from the f32 run's) but
/// not the training: after 40 steps the loss and the parameters stay close to f32's.
#[test]
fn mixed_precision_tracks_f32_training() {
    for g in [mlp(), cnn()] {
        let (m32, p32) = train(&mut session(Box::new(Cpu::fast()), &g, Precision::F32), 40);
        let (m16, p16) = train(
            &mut session(Box::new(Cpu::fast()), &g, Precision::mixed()),
            40,
        );
        assert!(
            p16 != p32,
            "mixed precision computed exactly the f32 result"
        );
        assert_close("mixed vs f32 parameters", &p16, &p32, 2e-2, 5e-2);
        assert!(
            (m16.loss - m32.loss).abs() <= 0.02 * m32.loss,
            "mean loss over 40 steps: mixed {} vs f32 {}",
            m16.loss,
            m32.loss
        );
        assert_eq!(m32.loss_scale, 0.0, "no loss scale in f32");
    }
}

/// The loss-scale sequence of 121 steps from a scale of 2^100 on one backend: (scale,
/// skipped steps) after each step from the second on.
fn backoff_sequence(b: Box<dyn shadeprop::backend::Backend>) -> Vec<(f32, usize)> {
    let g = mlp();
    let huge = LossScale {
        init: 2f32.powi(100),
        growth_interval: 3,
        ..LossScale::default()
    };
    let what = b.describe();
    let mut s = session(b, &g, Precision::Mixed(huge));
    let before = s.snapshot().unwrap();
    let (m, _) = train(&mut s, 1);
    let after = s.snapshot().unwrap();
    assert_eq!(
        (m.skipped_steps, m.loss_scale),
        (1, 2f32.powi(99)),
        "{what}"
    );
    assert_eq!(
        (&after.params, &after.velocity),
        (&before.params, &before.velocity),
        "{what}: a skipped step must not change the parameters or the momentum"
    );
    assert!(
        m.loss.is_finite(),
        "the loss itself is not scaled: {}",
        m.loss
    );
    // Gradients computed for inspection neither skip nor change the scale.
    let (x, y) = batch(7, 8, 20, 5);
    s.gradients(&x, &y).unwrap();
    assert_eq!(s.snapshot().unwrap().loss_scale, after.loss_scale, "{what}");
    // Back off until a step goes through.
    let mut seq = vec![];
    for _ in 0..120 {
        let (m, _) = train(&mut s, 1);
        seq.push((m.loss_scale, m.skipped_steps));
    }
    let first_ok = seq
        .windows(2)
        .position(|w| w[1].1 == w[0].1)
        .expect("never recovered");
    let (scale, skipped) = seq[first_ok];
    assert!(skipped > 60 && scale < 2f32.powi(40), "{what}: {seq:?}");
    // From there: three finite steps in a row double the scale (unless it overflows
    // again, which skips and halves); the sequence must follow those rules exactly.
    let mut good = 0;
    for w in seq[first_ok..].windows(2) {
        let ((s0, k0), (s1, k1)) = (w[0], w[1]);
        if k1 > k0 {
            assert_eq!((s1, k1), (s0 / 2.0, k0 + 1), "{what}: skip halves");
            good = 0;
        } else {
            good += 1;
            let want = if good == 3 { s0 * 2.0 } else { s0 };
            good %= 3;
            assert_eq!(s1, want, "{what}: growth every 3 finite steps");
        }
    }
    seq
}

// A loss scale far too large overflows f16 in the backward pass: each such step is
// skipped (parameters and momentum unchanged) and halves the scale, until the gradients
// fit; then finite steps double it every growth interval. The same sequence on every
// backend as on the CPU reference.
backend_test!(loss_scale_backs_off_skips_and_grows, |which: Which| {
    let seq = backoff_sequence(which.open());
    if which != Which::CpuRef {
        assert_eq!(
            seq,
            backoff_sequence(Which::CpuRef.open()),
            "{which:?}: loss-scale sequence differs from the CPU's"
        );
    }
});

/// A checkpoint carries the loss-scaling state: a run resumed from it continues exactly as
/// the uninterrupted run (CPU reference, bit for bit).
#[test]
fn mixed_precision_checkpoint_resumes_exactly() {
    let g = mlp();
    let p = Precision::Mixed(LossScale {
        init: 1024.0,
        growth_interval: 2,
        ..LossScale::default()
    });
    let dir = std::env::temp_dir().join(format!("shadeprop-mixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    let mut a = session(Box::new(Cpu::new()), &g, p);
    train(&mut a, 3);
    let meta = checkpoint::Meta {
        epoch: 0,
        batch: 3,
        history: serde_json::json!([]),
        callbacks: serde_json::json!({}),
        standardizer: None,
        preprocessing: None,
        partial: None,
    };
    let saved = a.snapshot().unwrap();
    assert_eq!(saved.loss_scale, vec![2048.0, 1.0 / 2048.0, 1.0, 0.0]);
    // A callback's snapshot (EarlyStopping's best weights) keeps its loss scale too.
    let callbacks = [("early_stopping".to_string(), saved.clone())];
    checkpoint::save(&path, &mut a, &meta, &callbacks).unwrap();
    let mut b = session(Box::new(Cpu::new()), &g, p);
    let (_, cbs) = checkpoint::load(&path, &mut b).unwrap();
    assert_eq!(b.snapshot().unwrap(), saved);
    assert_eq!(cbs, callbacks);
    let (ma, pa) = train(&mut a, 3);
    let (mb, pb) = train(&mut b, 3);
    assert_eq!(pa, pb);
    assert_eq!((ma.loss, ma.loss_scale), (mb.loss, mb.loss_scale));
    // An f32 session refuses the mixed checkpoint (its flat optimizer and callback state
    // follows the mixed layout), naming both precisions.
    let mut c = session(Box::new(Cpu::new()), &g, Precision::F32);
    let e = checkpoint::load(&path, &mut c).unwrap_err().to_string();
    assert!(
        e.contains("precision mixed") && e.contains("precision f32"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn invalid_loss_scales_are_named_errors() {
    let d = LossScale::default();
    for (ls, name) in [
        (LossScale { init: 1000.0, ..d }, "loss_scale.init"),
        (LossScale { growth: 1.0, ..d }, "loss_scale.growth"),
        (LossScale { backoff: 0.3, ..d }, "loss_scale.backoff"),
        (
            LossScale {
                growth_interval: 0,
                ..d
            },
            "loss_scale.growth_interval",
        ),
    ] {
        let e = Session::with_precision(
            Box::new(Cpu::new()),
            mlp(),
            Sgd::w_mlp(),
            0,
            8,
            Precision::Mixed(ls),
        )
        .err()
        .expect("accepted")
        .to_string();
        assert!(e.contains(name), "{e}");
    }
}

/// Mixed precision with AdamW, an L1 penalty (the gradient preparation's penalty branch,
/// after unscaling) and per-tensor clipping: the same parameters on every backend, and
/// close to the f32 run. No batch norm here: the bias before a batch norm has a zero
/// gradient up to rounding, which Adam's normalized step would amplify into ±lr on any
/// backend (f32 included), whatever the precision.
#[test]
fn mixed_precision_with_adamw_penalty_and_per_tensor_clipping() {
    use shadeprop::optim::{Adam, Regularizer};
    let g = mlp_with(false);
    let opt = Adam {
        lr: 1e-3,
        clip_norm: Some(0.5),
        clip_per_tensor: true,
        ..Adam::adamw()
    };
    let run = |b: Box<dyn shadeprop::backend::Backend>, p: Precision| {
        let mut s = Session::with_precision(b, g.clone(), opt.clone(), 3, 8, p).unwrap();
        s.set_regularizer(Some(Regularizer::l1(0.01))).unwrap();
        train(&mut s, 6)
    };
    let mut runs = vec![];
    for b in backends() {
        let what = b.describe();
        runs.push((what, run(b, Precision::mixed())));
    }
    let (_, (m0, p0)) = &runs[0];
    assert!(m0.penalty > 0.0 && m0.skipped_steps == 0, "{m0:?}");
    for (what, (m, p)) in &runs[1..] {
        assert_close(&format!("{what}: parameters"), p, p0, 1e-4, 1e-3);
        assert!(
            (m.penalty - m0.penalty).abs() <= 1e-4 * m0.penalty,
            "{what}"
        );
    }
    let (m32, p32) = run(Box::new(Cpu::new()), Precision::F32);
    assert_close("mixed vs f32 parameters", p0, &p32, 1e-3, 1e-2);
    assert!(
        (m0.loss - m32.loss).abs() <= 0.01 * m32.loss,
        "{m0:?} vs {m32:?}"
    );
}
