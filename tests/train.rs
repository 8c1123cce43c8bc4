//! Trainer, callbacks, checkpoints, logs and exact resume.

mod common;
use common::*;
use shadeprop::Error;
use shadeprop::backend::Backend;
use shadeprop::backend::cpu::Cpu;
use shadeprop::data::Dataset;
use shadeprop::nn::Sequential;
use shadeprop::optim::{Adam, Sgd};
use shadeprop::session::Session;
use shadeprop::train::EpochConfig;
use shadeprop::train::callbacks::{EarlyStopping, ModelCheckpoint, MonitorMode, TerminateOnNan};
use shadeprop::train::checkpoint;
use shadeprop::train::fit::{FitConfig, Trainer};

/// Run a scripted metric sequence through EarlyStopping; returns (epochs run, best epoch).
fn script(mut es: EarlyStopping, values: &[f64]) -> (usize, Option<u64>) {
    for (e, &v) in values.iter().enumerate() {
        if es.update(e as u64, v).unwrap().1 {
            return (e + 1, es.best_epoch);
        }
    }
    (values.len(), es.best_epoch)
}

#[test]
fn early_stopping_follows_keras_on_scripted_sequences() {
    // Keras' documentation: monitor loss, patience 3, a loss that never improves → 4 epochs.
    assert_eq!(
        script(EarlyStopping::new("loss").patience(3), &[1.0; 10]),
        (4, Some(0))
    );
    // patience 0: stops at the first epoch without improvement.
    assert_eq!(
        script(EarlyStopping::new("loss"), &[1.0, 0.9, 0.95, 0.5]),
        (3, Some(1))
    );
    // A baseline never beaten: improvements do not restart the counter, so it stops at the
    // first non-improving epoch once patience has run out.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(2).baseline(0.5),
            &[0.9, 0.8, 0.85, 0.7, 0.6]
        ),
        (3, Some(1))
    );
    // The same values without the baseline keep improving past epoch 2.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(2),
            &[0.9, 0.8, 0.85, 0.7, 0.6]
        ),
        (5, Some(4))
    );
    // Ties within min_delta are not improvements.
    assert_eq!(
        script(
            EarlyStopping::new("loss").patience(2).min_delta(0.01),
            &[1.0, 0.995, 0.992, 0.991]
        ),
        (3, Some(0))
    );
    // Auto mode maximizes accuracy metrics.
    assert_eq!(
        script(
            EarlyStopping::new("val_accuracy").patience(1),
            &[0.5, 0.6, 0.55, 0.9]
        ),
        (3, Some(1))
    );
    assert_eq!(
        script(
            EarlyStopping::new("val_loss")
                .patience(1)
                .mode(MonitorMode::Max),
            &[0.5, 0.6, 0.55]
        ),
        (3, Some(1))
    );
    // start_from_epoch: the first epochs are not monitored.
    assert_eq!(
        script(
            EarlyStopping::new("loss").patience(1).start_from_epoch(2),
            &[5.0, 4.0, 10.0, 10.0, 1.0]
        ),
        (4, Some(2))
    );
}

fn data(seed: u64, n: usize) -> Dataset {
    let (x, y) = batch(seed, n, 12, 3);
    // Make the labels learnable: shift the inputs by the class.
    let x = x
        .iter()
        .enumerate()
        .map(|(i, v)| v + y[i / 12] * 0.8 * ((i % 12) as f32 / 12.0))
        .collect();
    Dataset {
        x,
        y,
        features: 12,
        classes: 3,
        ..Default::default()
    }
}

fn model() -> Sequential {
    Sequential::new(12)
        .linear(24)
        .batch_norm()
        .relu()
        .dropout(0.3)
        .linear(3)
}

/// The test model on the CPU reference backend with the W-MLP optimizer.
fn cpu_session(seed: u64) -> Session {
    Session::new(
        Box::new(Cpu::new()),
        model().build().unwrap(),
        Sgd::w_mlp(),
        seed,
        32,
    )
    .unwrap()
}

fn cfg(epochs: u64, dir: Option<std::path::PathBuf>) -> FitConfig {
    FitConfig {
        epochs,
        epoch: EpochConfig {
            batch_size: 32,
            log_every: 4,
            ..Default::default()
        },
        seed: Some(5),
        log_dir: dir,
        log_steps: true,
        ..Default::default()
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("shadeprop-{name}-{}-{k}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn restore_best_weights_puts_back_the_best_epoch() {
    let (train, val) = (data(1, 200), data(2, 100));
    let mut es = EarlyStopping::new("val_accuracy")
        .patience(3)
        .restore_best_weights(true);
    let mut s = cpu_session(3);
    let h = Trainer::new(cfg(40, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut es])
        .unwrap();
    let best = h.best_epoch.unwrap();
    assert_eq!(h.stopped_epoch, Some(h.epochs.len() as u64 - 1));
    assert!(h.epochs.len() < 40, "stopped by itself");
    // Training again for best+1 epochs reaches exactly the restored weights.
    let mut r = cpu_session(3);
    Trainer::new(cfg(best + 1, None))
        .fit(&mut r, &train, Some(&val), &mut [])
        .unwrap();
    assert_eq!(s.params().unwrap(), r.params().unwrap());
    assert_eq!(s.state().unwrap(), r.state().unwrap());
}

fn resume_case(make: &dyn Fn() -> Box<dyn Backend>, adam: bool) {
    let (train, val) = (data(3, 150), data(4, 60));
    let opt: shadeprop::optim::Optimizer = if adam {
        Adam {
            lr: 0.01,
            weight_decay: 0.01,
            decoupled: true,
            ..Adam::default()
        }
        .into()
    } else {
        Sgd::w_mlp().into()
    };
    let session = || Session::new(make(), model().build().unwrap(), opt.clone(), 7, 32).unwrap();
    let es = || {
        EarlyStopping::new("val_loss")
            .patience(10)
            .restore_best_weights(true)
    };
    // Uninterrupted: 6 epochs.
    let dir_a = tmp("resume-a");
    let mut a = session();
    let (mut es_a, mut ck_a) = (es(), ModelCheckpoint::every(&dir_a, 1));
    let ha = Trainer::new(cfg(6, Some(dir_a.clone())))
        .fit(&mut a, &train, Some(&val), &mut [&mut es_a, &mut ck_a])
        .unwrap();
    // Interrupted after 3 epochs, resumed in a fresh session from the last checkpoint.
    let dir_b = tmp("resume-b");
    let mut b = session();
    let (mut es_b, mut ck_b) = (es(), ModelCheckpoint::every(&dir_b, 1).keep_each(true));
    Trainer::new(cfg(3, Some(dir_b.clone())))
        .fit(&mut b, &train, Some(&val), &mut [&mut es_b, &mut ck_b])
        .unwrap();
    let mut c = session();
    let (mut es_c, mut ck_c) = (es(), ModelCheckpoint::every(&dir_b, 1).keep_each(true));
    let hc = Trainer::new(cfg(6, Some(dir_b.clone())))
        .resume(
            &dir_b.join("epoch-0003.safetensors"),
            &mut c,
            &train,
            Some(&val),
            &mut [&mut es_c, &mut ck_c],
        )
        .unwrap();
    let bits = |v: Vec<(String, Vec<f32>)>| {
        v.into_iter()
            .map(|(n, x)| (n, x.iter().map(|f| f.to_bits()).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bits(a.params().unwrap()),
        bits(c.params().unwrap()),
        "resumed parameters differ"
    );
    assert_eq!(bits(a.velocity().unwrap()), bits(c.velocity().unwrap()));
    assert_eq!(bits(a.state().unwrap()), bits(c.state().unwrap()));
    assert_eq!(a.step(), c.step());
    assert_eq!(ha.metric("val_loss"), hc.metric("val_loss"));
    assert_eq!(ha.best_epoch, hc.best_epoch);
    // The resumed run's logs are whole: 6 rows.
    let csv = std::fs::read_to_string(dir_b.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    for d in [dir_a, dir_b] {
        assert!(
            std::fs::read_dir(&d).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")),
            "no temporary file left"
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}

backend_test!(resume_is_bit_identical, |which: Which| {
    resume_case(&|| which.open(), false);
    resume_case(&|| which.open(), true);
});

#[test]
fn logs_curves_and_checkpoint_names() {
    let dir = tmp("logs");
    let (train, val) = (data(5, 120), data(6, 60));
    let mut s = cpu_session(1);
    let mut es = EarlyStopping::new("val_loss").patience(2);
    let mut ck = ModelCheckpoint::best_only(&dir, "val_loss");
    let mut c = cfg(5, Some(dir.clone()));
    c.standardizer = Some(
        shadeprop::data::Standardizer {
            mean: 0.5,
            std: 2.0,
        }
        .into(),
    );
    let h = Trainer::new(c)
        .fit(&mut s, &train, Some(&val), &mut [&mut es, &mut ck])
        .unwrap();
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("epoch,loss,data_loss,penalty,accuracy,val_loss,val_accuracy,lr,grad_norm,samples_per_sec,seconds,loss_scale,skipped_steps"));
    assert_eq!(csv.lines().count(), h.epochs.len() + 1);
    let jsonl = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["epoch"], 0, "0-based, as the history");
    assert!(first["val_loss"].as_f64().unwrap() > 0.0);
    assert!(
        std::fs::read_to_string(dir.join("steps.csv"))
            .unwrap()
            .lines()
            .count()
            > h.epochs.len()
    );
    #[cfg(feature = "plots")]
    assert_eq!(
        &std::fs::read(dir.join("curves.png")).unwrap()[..8],
        b"\x89PNG\r\n\x1a\n"
    );
    #[cfg(feature = "plots")]
    assert!(
        std::fs::read_to_string(dir.join("curves.svg"))
            .unwrap()
            .contains("<svg")
    );
    // PyTorch state_dict names and shapes.
    let bytes = std::fs::read(dir.join("best.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    for (n, shape) in [
        ("0.weight", vec![24, 12]),
        ("0.bias", vec![24]),
        ("1.weight", vec![24]),
        ("1.bias", vec![24]),
        ("1.running_mean", vec![24]),
        ("1.running_var", vec![24]),
        ("4.weight", vec![3, 24]),
        ("4.bias", vec![3]),
    ] {
        assert_eq!(st.tensor(n).unwrap().shape(), &shape[..], "{n}");
    }
    assert_eq!(
        st.tensor("1.num_batches_tracked").unwrap().dtype(),
        safetensors::Dtype::I64
    );
    assert!(names.iter().any(|n| n.starts_with("optimizer.momentum.")));
    // The stored weight is the transpose of the session's [in, out] weight [12, 24].
    let w = &s.params().unwrap()[0].1;
    let stored: Vec<f32> = st
        .tensor("0.weight")
        .unwrap()
        .data()
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let _ = w;
    // (best.safetensors holds the best epoch's weights; compare against a fresh load.)
    let mut t = cpu_session(1);
    let (meta, _) = checkpoint::load(&dir.join("best.safetensors"), &mut t).unwrap();
    assert_eq!(
        meta.standardizer,
        Some(shadeprop::data::Scaler::Global(
            shadeprop::data::Standardizer {
                mean: 0.5,
                std: 2.0
            }
        ))
    );
    let w = &t.params().unwrap()[0].1;
    for o in 0..24 {
        for i in 0..12 {
            assert_eq!(stored[o * 12 + i], w[i * 24 + o]);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_checkpoints_and_configurations_are_named_errors() {
    let dir = tmp("bad");
    let (train, val) = (data(7, 64), data(8, 32));
    let mut s = cpu_session(1);
    let mut ck = ModelCheckpoint::every(&dir, 1);
    Trainer::new(cfg(1, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut ck])
        .unwrap();
    let good = dir.join("last.safetensors");
    let bytes = std::fs::read(&good).unwrap();
    let check = |b: &[u8], want: &str| {
        let p = dir.join("broken.safetensors");
        std::fs::write(&p, b).unwrap();
        let mut t = cpu_session(1);
        match checkpoint::load(&p, &mut t) {
            Err(e @ Error::Checkpoint { .. }) => {
                assert!(e.to_string().contains(want), "{e} lacks {want:?}")
            }
            other => panic!("expected a checkpoint error containing {want:?}, got {other:?}"),
        }
    };
    check(&bytes[..bytes.len() / 2], "not a readable safetensors file");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    check(&flipped, "checksum");
    check(b"", "not a readable safetensors file");
    // Another model.
    let mut other = Session::new(
        Box::new(Cpu::new()),
        Sequential::new(12).linear(5).linear(3).build().unwrap(),
        Sgd::w_mlp(),
        1,
        32,
    )
    .unwrap();
    let e = checkpoint::load(&good, &mut other).unwrap_err().to_string();
    assert!(e.contains("written for model"), "{e}");
    // A monitored metric that is never recorded.
    let mut es = EarlyStopping::new("val_acc");
    let e = Trainer::new(cfg(1, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut es])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("monitor \"val_acc\" is not a recorded metric"),
        "{e}"
    );
    // NaN: one poisoned input is named by its row and feature in the training set before
    // the first step; nothing trains.
    let mut poisoned = train.clone();
    poisoned.x[5] = f32::NAN;
    let mut boom = Session::new(
        Box::new(Cpu::new()),
        Sequential::new(12).linear(3).build().unwrap(),
        Sgd::default(),
        1,
        32,
    )
    .unwrap();
    let mut nan = TerminateOnNan;
    let e = Trainer::new(cfg(3, None))
        .fit(&mut boom, &poisoned, Some(&val), &mut [&mut nan])
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFiniteInput {
                row: 0,
                feature: 5,
                ..
            }
        ) && e.to_string().contains("the training set"),
        "{e}"
    );
    assert_eq!(boom.step(), 0);
    // The same at the session's own entry point.
    let mut one = Session::new(
        Box::new(Cpu::new()),
        Sequential::new(12).linear(3).build().unwrap(),
        Sgd::default(),
        1,
        4,
    )
    .unwrap();
    let mut x = vec![0.5f32; 4 * 12];
    x[2 * 12 + 7] = f32::INFINITY;
    // A direct step on a batch holding inf is refused before upload, naming the row.
    let e = one
        .train_batch(&x, &[0.0, 1.0, 2.0, 0.0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("input holds inf at row 2, feature 7"), "{e}");
    let mut t = cpu_session(1);
    checkpoint::load(&good, &mut t).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// Counts every hook and stops training itself after `stop_after` epochs.
struct Counter {
    stop_after: u64,
    begins: u64,
    ends: u64,
    epochs: u64,
    trained: bool,
}

impl shadeprop::train::callbacks::Callback for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn on_epoch_begin(&mut self, _s: &mut Session, _e: u64) -> shadeprop::Result<()> {
        self.epochs += 1;
        Ok(())
    }
    fn on_batch_begin(&mut self, step: u64) -> shadeprop::Result<()> {
        assert_eq!(step, self.begins, "batch_begin sees the steps taken so far");
        self.begins += 1;
        Ok(())
    }
    fn on_batch_end(&mut self, step: u64) -> shadeprop::Result<()> {
        self.ends += 1;
        assert_eq!(step, self.ends);
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        _s: &mut Session,
        log: &shadeprop::train::fit::EpochLog,
        _h: &shadeprop::train::fit::History,
    ) -> shadeprop::Result<shadeprop::train::callbacks::Control> {
        Ok(shadeprop::train::callbacks::Control {
            stop: log.epoch + 1 == self.stop_after,
            save: vec![],
        })
    }
    fn on_train_end(
        &mut self,
        _s: &mut Session,
        _h: &mut shadeprop::train::fit::History,
    ) -> shadeprop::Result<()> {
        self.trained = true;
        Ok(())
    }
}

#[test]
fn every_hook_runs_and_a_callback_can_stop_training() {
    let train = data(9, 100); // 4 batches of 32 (the last one short)
    let mut s = cpu_session(2);
    let mut c = Counter {
        stop_after: 3,
        begins: 0,
        ends: 0,
        epochs: 0,
        trained: false,
    };
    let h = Trainer::new(cfg(10, None))
        .fit(&mut s, &train, None, &mut [&mut c])
        .unwrap();
    assert_eq!(h.epochs.len(), 3);
    assert_eq!((c.epochs, c.begins, c.ends, c.trained), (3, 12, 12, true));
    assert!(
        h.epochs[0].get("val_loss").is_none(),
        "no validation data, no val_ metrics"
    );
}

/// (name, dtype, shape, bytes) of every tensor, and the metadata, to edit.
type Edit = dyn Fn(
    &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
    &mut std::collections::HashMap<String, String>,
);

#[test]
fn malformed_checkpoint_contents_are_named() {
    use safetensors::tensor::{Dtype, TensorView};
    let dir = tmp("contents");
    let mut s = cpu_session(1);
    let good = dir.join("good.safetensors");
    checkpoint::save(&good, &mut s, &Default::default(), &[]).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let md = header.metadata().clone().unwrap();
    // Rebuild the file with one change; the checksum is recomputed so that the check under
    // test is the one that fires.
    let rebuild = |edit: &Edit| -> Vec<u8> {
        let mut ts: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
            .collect();
        let mut m = md.clone();
        edit(&mut ts, &mut m);
        ts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for t in &ts {
            for &b in &t.3 {
                h ^= b as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        }
        m.insert("checksum".into(), format!("{h:016x}"));
        m.insert("metadata_checksum".into(), metadata_checksum(&m));
        let views: Vec<(String, TensorView)> = ts
            .iter()
            .map(|(n, d, sh, b)| (n.clone(), TensorView::new(*d, sh.clone(), b).unwrap()))
            .collect();
        safetensors::tensor::serialize(views, Some(m)).unwrap()
    };
    let expect = |bytes: Vec<u8>, want: &str| {
        let p = dir.join("edited.safetensors");
        std::fs::write(&p, bytes).unwrap();
        let e = checkpoint::load(&p, &mut cpu_session(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e} lacks {want:?}");
    };
    expect(
        rebuild(&|_, m| {
            m.insert("version".into(), "99".into());
        }),
        "format version \"99\", expected \"1\"",
    );
    expect(
        rebuild(&|t, _| t.retain(|x| x.0 != "0.bias")),
        "tensor 0.bias missing",
    );
    expect(
        rebuild(&|t, _| t.push(("9.weight".into(), Dtype::F32, vec![1], vec![0; 4]))),
        "unexpected tensor 9.weight",
    );
    expect(
        rebuild(&|t, _| {
            let x = t.iter_mut().find(|x| x.0 == "0.bias").unwrap();
            x.2 = vec![4, 6];
        }),
        "tensor 0.bias has shape [4, 6], expected [24]",
    );
    expect(
        rebuild(&|t, _| {
            let x = t.iter_mut().find(|x| x.0 == "0.bias").unwrap();
            x.1 = Dtype::I32;
        }),
        "tensor 0.bias has dtype I32, expected F32",
    );
    expect(
        rebuild(&|_, m| {
            m.insert("seed".into(), "5".into());
        }),
        "written with seed 5",
    );
    // Values outside their domain, named by tensor and index: a negative running variance
    // (1/sqrt of it is NaN, which the ReLU after it would hide), a negative
    // num_batches_tracked, a NaN running variance by its own name.
    let set_f32 = |name: &'static str, index: usize, v: f32| {
        move |t: &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
              _: &mut std::collections::HashMap<String, String>| {
            let x = t.iter_mut().find(|x| x.0 == name).unwrap();
            x.3[4 * index..4 * index + 4].copy_from_slice(&v.to_le_bytes());
        }
    };
    expect(
        rebuild(&set_f32("1.running_var", 5, -1e6)),
        "1.running_var holds -1000000 at index 5; expected a running variance >= 0",
    );
    expect(
        rebuild(&set_f32("1.running_var", 2, f32::NAN)),
        "values of 1.running_var holds NaN at index 2",
    );
    expect(
        rebuild(&|t, _| {
            let x = t
                .iter_mut()
                .find(|x| x.0 == "1.num_batches_tracked")
                .unwrap();
            x.3 = (-3i64).to_le_bytes().to_vec();
        }),
        "1.num_batches_tracked holds -3 at index 0; expected a count >= 0",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `bytes` (a safetensors file) with tensor `name`'s f32 value at `index` set to `v`,
/// and no metadata: a PyTorch `state_dict` saved with `safetensors.torch.save_file`.
fn state_dict_with(bytes: &[u8], name: &str, index: usize, v: f32) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let mut data = t.data().to_vec();
            if n == name {
                data[4 * index..4 * index + 4].copy_from_slice(&v.to_le_bytes());
            }
            (n, t.dtype(), t.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, sh, b)| (n.clone(), TensorView::new(*d, sh.clone(), b).unwrap()))
        .collect();
    safetensors::tensor::serialize(views, None).unwrap()
}

// A state_dict whose running variance is negative (-1e6) is refused by load_weights
// naming the tensor and the channel, as is a NaN one; the session keeps its weights.
// Adam's second moments (a mean of squares) are refused below 0 as well, and a callback's
// snapshot in a checkpoint is checked when the checkpoint is read, not at the end of
// training when it is put back.
#[test]
fn negative_running_variances_and_second_moments_are_refused() {
    let dir = tmp("domains");
    std::fs::create_dir_all(&dir).unwrap();
    let w = dir.join("w.safetensors");
    let mut s = cpu_session(1);
    checkpoint::save_weights(&w, &mut s, &serde_json::Value::Null).unwrap();
    let bytes = std::fs::read(&w).unwrap();
    let sd = dir.join("state_dict.safetensors");
    for (v, want) in [
        (
            -1e6,
            "1.running_var holds -1000000 at index 5; expected a running variance >= 0",
        ),
        (f32::NAN, "values of 1.running_var holds NaN at index 5"),
    ] {
        std::fs::write(&sd, state_dict_with(&bytes, "1.running_var", 5, v)).unwrap();
        let mut t = cpu_session(2);
        let before = t.snapshot().unwrap();
        let e = checkpoint::load_weights(&sd, &mut t).unwrap_err();
        assert!(
            matches!(e, Error::Checkpoint { .. }) && e.to_string().contains(want),
            "{e}"
        );
        assert_eq!(t.snapshot().unwrap(), before, "nothing written");
    }
    // The unedited state_dict loads.
    std::fs::write(&sd, state_dict_with(&bytes, "1.running_var", 5, 0.0)).unwrap();
    checkpoint::load_weights(&sd, &mut cpu_session(2)).unwrap();

    let mut a = Session::new(
        Box::new(Cpu::new()),
        model().build().unwrap(),
        Adam::default(),
        1,
        32,
    )
    .unwrap();
    let mut snap = a.snapshot().unwrap();
    snap.second_moment[3] = -0.5;
    let e = a.restore(&snap).unwrap_err().to_string();
    assert!(
        e.contains("the second moment of 0.weight holds -0.5 at index 3"),
        "{e}"
    );

    // A callback snapshot with a negative running variance.
    let mut snap = s.snapshot().unwrap();
    let var = s
        .state()
        .unwrap()
        .iter()
        .position(|(n, _)| n == "1.running_mean+running_var")
        .unwrap();
    assert_eq!(var, 0, "the model's only state");
    snap.state[24 + 7] = -2.0; // running_mean [24], then running_var: channel 7
    let ck = dir.join("cb.safetensors");
    checkpoint::save(
        &ck,
        &mut s,
        &Default::default(),
        &[("early_stopping".into(), snap)],
    )
    .unwrap();
    let e = checkpoint::load(&ck, &mut cpu_session(1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("callback.early_stopping snapshot: 1.running_var holds -2 at index 7"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The documented `metadata_checksum` rule, written out here from the documentation:
/// FNV-1a 64 over every metadata key but `metadata_checksum`, keys in byte order, each as
/// (key length u64 LE, key, value length u64 LE, value), as 16 lowercase hex digits.
fn metadata_checksum(md: &std::collections::HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = md.keys().filter(|k| *k != "metadata_checksum").collect();
    keys.sort();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    };
    for k in keys {
        feed(&(k.len() as u64).to_le_bytes());
        feed(k.as_bytes());
        feed(&(md[k].len() as u64).to_le_bytes());
        feed(md[k].as_bytes());
    }
    format!("{h:016x}")
}

/// `path`'s tensors unchanged, its metadata replaced by `edit` of it (the recorded
/// checksums kept as they were: what a hand edit of the header does).
fn with_metadata(
    path: &std::path::Path,
    edit: &dyn Fn(&mut std::collections::HashMap<String, String>),
) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut md = header.metadata().clone().unwrap();
    edit(&mut md);
    let views: Vec<(String, TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let v = TensorView::new(t.dtype(), t.shape().to_vec(), t.data()).unwrap();
            (n, v)
        })
        .collect();
    safetensors::tensor::serialize(views, Some(md)).unwrap()
}

// The checksum covers the metadata: the standardizer's mean or std, the step, the
// optimizer (each edited with the recorded checksums left as they were) are refused by
// `load`, by `read_preprocessing` (what evaluation and prediction read first) and by
// `load_weights`; a file without `metadata_checksum` (written before it existed) loads.
#[test]
fn edited_checkpoint_metadata_is_refused() {
    let dir = tmp("metadata");
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = cpu_session(1);
    let meta = checkpoint::Meta {
        standardizer: Some(shadeprop::data::Scaler::Global(
            shadeprop::data::Standardizer {
                mean: 0.5,
                std: 2.0,
            },
        )),
        ..Default::default()
    };
    let good = dir.join("good.safetensors");
    checkpoint::save(&good, &mut s, &meta, &[]).unwrap();
    // The recorded value is the documented rule's.
    let bytes = std::fs::read(&good).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let md = header.metadata().clone().unwrap();
    assert_eq!(md["metadata_checksum"], metadata_checksum(&md));
    let edited = dir.join("edited.safetensors");
    let refused = |bytes: Vec<u8>, what: &str| {
        std::fs::write(&edited, bytes).unwrap();
        for e in [
            checkpoint::load(&edited, &mut cpu_session(1)).err(),
            checkpoint::read_preprocessing(&edited).err(),
            checkpoint::load_weights(&edited, &mut cpu_session(1)).err(),
        ] {
            let e = e.unwrap_or_else(|| panic!("{what}: an edited checkpoint loads"));
            assert!(
                matches!(e, Error::Checkpoint { .. })
                    && e.to_string().contains("metadata checksum"),
                "{what}: {e}"
            );
        }
    };
    let replace = |key: &'static str, from: &'static str, to: &'static str| {
        with_metadata(&good, &move |m| {
            let v = m.get_mut(key).unwrap();
            assert!(v.contains(from), "{key} = {v} lacks {from}");
            *v = v.replace(from, to);
        })
    };
    refused(
        replace("standardizer", "\"mean\":0.5", "\"mean\":0.6"),
        "mean",
    );
    refused(replace("standardizer", "\"std\":2.0", "\"std\":3.0"), "std");
    refused(replace("step", "0", "7"), "step");
    refused(replace("optimizer", "lr: 0.05", "lr: 0.5"), "optimizer");
    // The same edit made on the file's bytes, as a text editor would (same length).
    let text = std::fs::read(&good).unwrap();
    let at = text
        .windows(10)
        .position(|w| w == b"\\\"mean\\\":0")
        .expect("the standardizer's mean in the header");
    let mut poked = text.clone();
    poked[at + 9] = b'1';
    refused(poked, "mean edited in place");
    // A checkpoint written before metadata_checksum existed still loads.
    std::fs::write(
        &edited,
        with_metadata(&good, &|m| {
            m.remove("metadata_checksum");
        }),
    )
    .unwrap();
    let (back, _) = checkpoint::load(&edited, &mut cpu_session(1)).unwrap();
    assert_eq!(back.standardizer, meta.standardizer);
    std::fs::remove_dir_all(dir).unwrap();
}

// A weights file carries both checksums: an edited `shadeprop` metadata (the stored
// standardizer) or a flipped tensor byte is refused; a state_dict without them loads.
#[test]
fn edited_weights_files_are_refused() {
    let dir = tmp("weights-checksum");
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = cpu_session(1);
    let info = serde_json::json!({
        "preprocessing": { "standardizer": { "kind": "global", "mean": 0.5, "std": 2.0 } }
    });
    let w = dir.join("w.safetensors");
    checkpoint::save_weights(&w, &mut s, &info).unwrap();
    let edited = dir.join("edited.safetensors");
    let load = |bytes: Vec<u8>| {
        std::fs::write(&edited, bytes).unwrap();
        checkpoint::load_weights(&edited, &mut cpu_session(2))
    };
    let e = load(with_metadata(&w, &|m| {
        let v = m.get_mut("shadeprop").unwrap();
        *v = v.replace("0.5", "0.6");
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("metadata checksum"), "{e}");
    let mut flipped = std::fs::read(&w).unwrap();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    let e = load(flipped).unwrap_err().to_string();
    assert!(e.contains("checksum") && e.contains("corrupt"), "{e}");
    // Without checksums (a PyTorch state_dict) the same tensors load.
    let bare = with_metadata(&w, &|m| m.clear());
    assert_eq!(load(bare).unwrap(), serde_json::Value::Null);
    assert_eq!(load(std::fs::read(&w).unwrap()).unwrap(), info);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `bytes` (a safetensors file) with its header JSON changed by `edit` and the data bytes
/// as they were: what a hand edit of the header does.
fn with_header(
    bytes: &[u8],
    edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut h);
    let text = serde_json::to_vec(&h).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

// A header without one tensor's entry is reported by that tensor's name (the safetensors
// crate names the tensor after the gap, "invalid offset for tensor `4.weight`"), by
// `load`, `load_weights` and, without a model to compare with, by the bytes no entry
// claims; an entry whose offsets were edited is named itself.
#[test]
fn a_tensor_missing_from_the_header_is_named() {
    let dir = tmp("header");
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.safetensors");
    checkpoint::save(&good, &mut cpu_session(1), &Default::default(), &[]).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let p = dir.join("edited.safetensors");
    let errors = |b: Vec<u8>| -> Vec<String> {
        std::fs::write(&p, b).unwrap();
        vec![
            checkpoint::load(&p, &mut cpu_session(1))
                .unwrap_err()
                .to_string(),
            checkpoint::load_weights(&p, &mut cpu_session(1))
                .unwrap_err()
                .to_string(),
            checkpoint::read_preprocessing(&p).unwrap_err().to_string(),
        ]
    };
    let offsets = |name: &str| -> (u64, u64) {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let o = &h[name]["data_offsets"];
        (o[0].as_u64().unwrap(), o[1].as_u64().unwrap())
    };
    // 4.bias ([3] f32, 12 bytes) dropped from the header.
    let (a, b) = offsets("4.bias");
    assert_eq!(b - a, 12);
    let e = errors(with_header(&bytes, &|h| {
        h.remove("4.bias");
    }));
    for e in &e[..2] {
        assert!(
            e.contains("no entry for tensor 4.bias") && !e.contains("invalid offset"),
            "{e}"
        );
    }
    assert!(
        e[2].contains(&format!(
            "data bytes [{a}, {b}) (12 bytes, before 4.weight) belong to no entry"
        )),
        "{}",
        e[2]
    );
    // 0.bias's offsets moved onto 0.weight's first 96 bytes.
    let (a, b) = offsets("0.bias");
    let (w, _) = offsets("0.weight");
    assert_eq!(b - a, 96);
    let e = errors(with_header(&bytes, &|h| {
        h["0.bias"]["data_offsets"] = serde_json::json!([w, w + 96]);
    }));
    for e in &e {
        assert!(
            e.contains(&format!(
                "tensor 0.bias has data_offsets [{w}, {}], where the other entries leave [{a}, {b}]",
                w + 96
            )),
            "{e}"
        );
    }
    // An entry whose offsets do not span its shape.
    let e = errors(with_header(&bytes, &|h| {
        h["0.bias"]["shape"] = serde_json::json!([25]);
    }));
    for e in &e {
        assert!(
            e.contains("tensor 0.bias has data_offsets") && e.contains("take 100"),
            "{e}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

// Metrics read asynchronously (start, keep training, finish) are exactly those a
// synchronous read at the same point gives, and the reset is ordered after the copy: the
// steps after the start are counted in the next read, none twice. On every backend.
backend_test!(
    asynchronous_metric_reads_equal_synchronous_ones,
    |which: Which| {
        use shadeprop::plan::Mode;
        let g = Sequential::new(20)
            .linear(16)
            .relu()
            .dropout(0.3)
            .linear(4)
            .build()
            .unwrap();
        let batches: Vec<_> = (0..5).map(|i| batch(40 + i, 8, 20, 4)).collect();
        let fresh = |b: Box<dyn Backend>| Session::new(b, g.clone(), Sgd::w_mlp(), 9, 8).unwrap();
        let mut s = fresh(which.open());
        for (x, y) in &batches[..3] {
            s.train_batch(x, y).unwrap();
        }
        let first = s.take_metrics(Mode::Train).unwrap();
        for (x, y) in &batches[3..] {
            s.train_batch(x, y).unwrap();
        }
        let (s1, s2) = (first, s.take_metrics(Mode::Train).unwrap());

        let mut a = fresh(which.open());
        assert!(a.finish_metrics().unwrap().is_none(), "nothing started yet");
        for (x, y) in &batches[..3] {
            a.train_batch(x, y).unwrap();
        }
        a.start_metrics(Mode::Train).unwrap();
        for (x, y) in &batches[3..] {
            a.train_batch(x, y).unwrap();
        }
        let (step, first) = a.finish_metrics().unwrap().expect("a read was started");
        assert_eq!(step, 3);
        let (a1, a2) = (first, a.take_metrics(Mode::Train).unwrap());
        assert_eq!((a1.steps, a2.steps), (3, 2));
        assert_eq!(
            (a1.loss, a1.accuracy, a1.samples),
            (s1.loss, s1.accuracy, s1.samples)
        );
        assert_eq!(
            (a2.loss, a2.accuracy, a2.samples),
            (s2.loss, s2.accuracy, s2.samples)
        );
    }
);

// ---------------------------------------------------------------------------------------
// EarlyStopping case by case against Keras 3 (keras/src/callbacks/early_stopping.py and
// monitor_callback.py). Keras' rule per epoch, after `epoch < start_from_epoch` returns:
//   wait += 1
//   if best is None or op(current - min_delta, best):    # op: less (min) / greater (max)
//       best = current; best_epoch = epoch               # min mode: min_delta *= -1 first
//       if baseline is None or op(current - min_delta, baseline): wait = 0
//       return
//   if wait >= patience and epoch > 0: stop
// A comparison with NaN is false, so a NaN is never an improvement over a number, and no
// number is an improvement over a NaN best. `best` starts as None ("no value yet"), so the
// first monitored value is always taken, whatever it is.

#[test]
fn early_stopping_takes_a_first_nan_or_inf_as_keras() {
    // First value NaN, min, patience 2. e0: best None -> best = NaN (epoch 0), wait 0.
    // e1: wait 1, less(1.0, NaN) false, 1 < 2. e2: wait 2, less(0.9, NaN) false, stop.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(2),
            &[f64::NAN, 1.0, 0.9, 0.8, 0.7]
        ),
        (3, Some(0))
    );
    // First value +inf, min, patience 1. e0: best None -> best = inf (epoch 0), wait 0.
    // e1: wait 1, less(inf, inf) false, 1 >= 1 and epoch > 0: stop; the best epoch is 0.
    assert_eq!(
        script(
            EarlyStopping::new("loss").patience(1),
            &[f64::INFINITY, f64::INFINITY, f64::INFINITY]
        ),
        (2, Some(0))
    );
    // First +inf then finite values, min, patience 1: e1 less(5, inf) -> best 5 (epoch 1);
    // e2: wait 1, less(5, 5) false: stop.
    assert_eq!(
        script(
            EarlyStopping::new("loss").patience(1),
            &[f64::INFINITY, 5.0, 5.0, 5.0]
        ),
        (3, Some(1))
    );
    // Max mode, first value -inf: e0 best = -inf (epoch 0); e1 greater(-inf, -inf) false,
    // wait 1 >= 1: stop.
    assert_eq!(
        script(
            EarlyStopping::new("val_accuracy").patience(1),
            &[f64::NEG_INFINITY, f64::NEG_INFINITY, 0.5]
        ),
        (2, Some(0))
    );
    // A first NaN with a baseline 0.5, patience 1: e0 best = NaN, less(NaN, 0.5) false so
    // wait stays 1; e1: wait 2, less(0.4, NaN) false, 2 >= 1: stop at epoch 1, best epoch 0.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(1).baseline(0.5),
            &[f64::NAN, 0.4, 0.3]
        ),
        (2, Some(0))
    );
    // The first monitored epoch (start_from_epoch 1) is +inf: e1 best = inf (epoch 1);
    // e2: wait 1, less(inf, inf) false: stop.
    assert_eq!(
        script(
            EarlyStopping::new("loss").patience(1).start_from_epoch(1),
            &[1.0, f64::INFINITY, f64::INFINITY, 0.5]
        ),
        (3, Some(1))
    );
}

#[test]
fn early_stopping_middle_nan_baseline_min_delta_and_max_mode_as_keras() {
    // NaN in the middle, min, patience 1: e1 less(NaN, 1.0) false, wait 1 >= 1: stop.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(1),
            &[1.0, f64::NAN, 0.5]
        ),
        (2, Some(0))
    );
    // patience 2: e1 wait 1; e2 wait 2 but 0.5 < 1.0 improves (wait 0, best epoch 2);
    // e3 wait 1 (0.6 > 0.5); e4 wait 2: stop.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(2),
            &[1.0, f64::NAN, 0.5, 0.6, 0.7, 0.1]
        ),
        (5, Some(2))
    );
    // A baseline never beaten with steadily improving values: every epoch improves on the
    // best, so Keras returns before the patience check every time and never stops, although
    // wait grows to 5 (the best epoch follows the improvements).
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(3).baseline(0.5),
            &[0.9, 0.8, 0.7, 0.6, 0.55]
        ),
        (5, Some(4))
    );
    // A baseline never beaten with flat values: e0 best 0.9 (wait stays 1, baseline not
    // beaten), e1 wait 2, e2 wait 3 >= 3: stop.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss").patience(3).baseline(0.5),
            &[0.9, 0.9, 0.9, 0.9]
        ),
        (3, Some(0))
    );
    // min_delta 0.1, min, patience 1: e1 less(0.95 + 0.1, 1.0) false: stop.
    assert_eq!(
        script(
            EarlyStopping::new("loss").patience(1).min_delta(0.1),
            &[1.0, 0.95, 0.85]
        ),
        (2, Some(0))
    );
    // patience 2: e2 less(0.85 + 0.1, 1.0) true: best epoch 2. A negative min_delta is
    // taken as its absolute value (Keras: abs(min_delta)).
    assert_eq!(
        script(
            EarlyStopping::new("loss").patience(2).min_delta(-0.1),
            &[1.0, 0.95, 0.85]
        ),
        (3, Some(2))
    );
    // Max mode with min_delta 0.05: e1 greater(0.54 - 0.05, 0.5) false, stop.
    assert_eq!(
        script(
            EarlyStopping::new("val_loss")
                .mode(MonitorMode::Max)
                .patience(1)
                .min_delta(0.05),
            &[0.5, 0.54, 0.6]
        ),
        (2, Some(0))
    );
    // start_from_epoch 2, patience 0: e0, e1 not monitored (NaN ignored); e2 best 3.0;
    // e3: wait 1 >= 0 and no improvement: stop.
    assert_eq!(
        script(
            EarlyStopping::new("loss").start_from_epoch(2),
            &[f64::NAN, f64::NAN, 3.0, 3.0, 1.0]
        ),
        (4, Some(2))
    );
}

#[test]
fn auto_mode_refuses_a_metric_without_a_direction() {
    // Keras 3: "not able to automatically determine whether that metric should be maximized
    // or minimized". Throughput, the learning rate, the gradient norm and the time have no
    // direction of improvement.
    let (train, val) = (data(1, 64), data(2, 32));
    for m in ["samples_per_sec", "lr", "grad_norm", "seconds"] {
        let mut s = cpu_session(3);
        let mut es = EarlyStopping::new(m);
        let e = Trainer::new(cfg(2, None))
            .fit(&mut s, &train, Some(&val), &mut [&mut es])
            .expect_err(m)
            .to_string();
        assert!(e.contains(m) && e.contains("mode"), "{e}");
        let dir = tmp("auto-ck");
        let mut ck = ModelCheckpoint::best_only(&dir, m);
        let e = Trainer::new(cfg(2, None))
            .fit(&mut s, &train, Some(&val), &mut [&mut ck])
            .expect_err(m)
            .to_string();
        assert!(e.contains(m) && e.contains("mode"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
    // With an explicit mode they are accepted.
    let mut s = cpu_session(3);
    let mut es = EarlyStopping::new("samples_per_sec").mode(MonitorMode::Max);
    Trainer::new(cfg(1, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut es])
        .unwrap();
    // Losses are minimized and accuracies maximized, with or without the val_ prefix.
    for (m, vals, want) in [
        ("data_loss", [1.0, 2.0], (2, Some(0))),
        ("penalty", [1.0, 2.0], (2, Some(0))),
        ("accuracy", [2.0, 1.0], (2, Some(0))),
        ("val_accuracy", [1.0, 2.0], (2, Some(1))),
    ] {
        assert_eq!(script(EarlyStopping::new(m), &vals), want, "{m}");
    }
}

#[test]
fn restore_best_weights_when_the_epoch_budget_ends_first() {
    // Keras 3 restores the best epoch's weights at the end of training whether or not it
    // stopped early. With a constant learning rate monitored in min mode, the first epoch is
    // the best (later equal values are not improvements) and patience 100 never runs out.
    let (train, val) = (data(1, 96), data(2, 32));
    let mut es = EarlyStopping::new("lr")
        .mode(MonitorMode::Min)
        .patience(100)
        .restore_best_weights(true);
    let mut s = cpu_session(3);
    let h = Trainer::new(cfg(4, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut es])
        .unwrap();
    assert_eq!(h.epochs.len(), 4);
    assert_eq!(h.stopped_epoch, None);
    assert_eq!(h.best_epoch, Some(0));
    let mut r = cpu_session(3);
    Trainer::new(cfg(1, None))
        .fit(&mut r, &train, Some(&val), &mut [])
        .unwrap();
    assert_eq!(s.params().unwrap(), r.params().unwrap());
    assert_eq!(s.state().unwrap(), r.state().unwrap());
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One numbering in every file (Keras' History): the epoch column of metrics.csv and
/// steps.csv and the `epoch` of metrics.jsonl count from 0, as `History`; a checkpoint
/// file name keeps Keras' 1-based `{epoch}` (epoch-0002 holds the state after epochs 0
/// and 1).
#[test]
fn epochs_are_0_based_in_every_log_file() {
    let dir = tmp("epoch-numbers");
    let (train, val) = (data(5, 96), data(6, 32));
    let mut s = cpu_session(1);
    let ckdir = dir.join("ck");
    let mut ck = ModelCheckpoint::every(&ckdir, 2).keep_each(true);
    let h = Trainer::new(cfg(3, Some(dir.clone())))
        .fit(&mut s, &train, Some(&val), &mut [&mut ck])
        .unwrap();
    let epochs: Vec<u64> = h.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, [0, 1, 2]);
    let column = |file: &str| -> Vec<String> {
        let mut r = csv::Reader::from_path(dir.join(file)).unwrap();
        let i = r
            .headers()
            .unwrap()
            .iter()
            .position(|c| c == "epoch")
            .unwrap();
        r.records().map(|x| x.unwrap()[i].to_string()).collect()
    };
    assert_eq!(column("metrics.csv"), ["0", "1", "2"]);
    // Values recorded from f32 print in the f32's shortest form: the W-MLP SGD rate 0.05
    // (f32), not 0.05000000074505806.
    let mut r = csv::Reader::from_path(dir.join("metrics.csv")).unwrap();
    let lr = r.headers().unwrap().iter().position(|c| c == "lr").unwrap();
    assert_eq!(&r.records().next().unwrap().unwrap()[lr], "0.05");
    // 96 samples in batches of 32: 3 steps an epoch, fewer than log_every (4), so each
    // epoch's only metrics read is its end's: one steps.csv row per epoch, steps 3, 6, 9.
    assert_eq!(column("steps.csv"), ["0", "1", "2"]);
    let mut r = csv::Reader::from_path(dir.join("steps.csv")).unwrap();
    let step: Vec<String> = r.records().map(|x| x.unwrap()[0].to_string()).collect();
    assert_eq!(step, ["3", "6", "9"]);
    let jsonl = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let epochs: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [0, 1, 2]);
    assert!(
        jsonl.lines().next().unwrap().contains("\"lr\":0.05,"),
        "{jsonl}"
    );
    assert_eq!(
        files_in(&ckdir),
        ["epoch-0002.safetensors", "last.safetensors"]
    );
    let mut t = cpu_session(1);
    let (meta, _) = checkpoint::load(&ckdir.join("epoch-0002.safetensors"), &mut t).unwrap();
    let saved = shadeprop::train::History::from_json(&meta.history).unwrap();
    assert_eq!(saved.epochs.last().map(|e| e.epoch), Some(1));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The learning curves are redrawn after every epoch (before the callbacks see it), so a
/// run killed at any moment keeps curves up to its last epoch: with epochs that take far
/// longer than a drawing (a 0.25 s pause per step), each epoch's end finds a new
/// curves.svg, and no temporary file beside it.
#[cfg(feature = "plots")]
#[test]
fn curves_are_redrawn_after_every_epoch() {
    use shadeprop::train::callbacks::{Callback, Control};
    use shadeprop::train::{EpochLog, History};
    struct Watch {
        dir: std::path::PathBuf,
        seen: Vec<String>,
    }
    impl Callback for Watch {
        fn name(&self) -> &'static str {
            "watch"
        }
        fn on_batch_end(&mut self, _step: u64) -> shadeprop::Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(250));
            Ok(())
        }
        fn on_epoch_end(
            &mut self,
            _s: &mut Session,
            _log: &EpochLog,
            _h: &History,
        ) -> shadeprop::Result<Control> {
            let svg = std::fs::read_to_string(self.dir.join("curves.svg")).unwrap();
            let names: Vec<String> = std::fs::read_dir(&self.dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp"))
                .collect();
            assert!(names.is_empty(), "{names:?}");
            self.seen.push(svg);
            Ok(Control::default())
        }
    }
    let dir = tmp("curves-every-epoch");
    let (train, val) = (data(5, 96), data(6, 32));
    let mut s = cpu_session(1);
    let mut w = Watch {
        dir: dir.clone(),
        seen: vec![],
    };
    Trainer::new(cfg(3, Some(dir.clone())))
        .fit(&mut s, &train, Some(&val), &mut [&mut w])
        .unwrap();
    assert_eq!(w.seen.len(), 3);
    assert!(w.seen[0] != w.seen[1] && w.seen[1] != w.seen[2]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn keep_each_keeps_exactly_the_saved_epochs() {
    let (train, val) = (data(3, 64), data(4, 32));
    // Without keep_each: only last.safetensors, however many epochs.
    let dir = tmp("keep-none");
    let mut s = cpu_session(1);
    let mut ck = ModelCheckpoint::every(&dir, 1);
    Trainer::new(cfg(5, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut ck])
        .unwrap();
    assert_eq!(files_in(&dir), ["last.safetensors"]);
    // keep_each every 2 epochs over 5: epochs 2 and 4, and last.
    let dir2 = tmp("keep-each");
    let mut s = cpu_session(1);
    let mut ck = ModelCheckpoint::every(&dir2, 2).keep_each(true);
    Trainer::new(cfg(5, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut ck])
        .unwrap();
    assert_eq!(
        files_in(&dir2),
        [
            "epoch-0002.safetensors",
            "epoch-0004.safetensors",
            "last.safetensors"
        ]
    );
    for d in [dir, dir2] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn two_checkpoints_keep_their_own_state_across_a_resume() {
    // best_only on the learning rate in max mode, with an exponentially decaying rate
    // (gamma 0.5 per epoch): by hand, epoch 1 (1-based) has the highest rate and is the only
    // improvement, so best.safetensors must stay the one written after epoch 1, also after a
    // resume from last.safetensors (written every epoch by a second ModelCheckpoint).
    use shadeprop::optim::{Every, LrSchedule};
    let (train, val) = (data(5, 64), data(6, 32));
    let dir = tmp("two-ck");
    let session = || {
        let mut s = cpu_session(2);
        s.set_schedule(LrSchedule::Exponential {
            gamma: 0.5,
            every: Every::Epoch,
        })
        .unwrap();
        s
    };
    let checkpoints = || {
        let mut best = ModelCheckpoint::best_only(&dir, "lr");
        best.mode = MonitorMode::Max;
        (best, ModelCheckpoint::every(&dir, 1))
    };
    let mut s = session();
    let (mut best, mut last) = checkpoints();
    let h = Trainer::new(cfg(2, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut best, &mut last])
        .unwrap();
    let lr = h.metric("lr");
    assert!(lr[1] < lr[0], "{lr:?}");
    let epoch_of = |p: &std::path::Path| {
        let mut t = session();
        checkpoint::load(p, &mut t).unwrap().0.epoch
    };
    assert_eq!(epoch_of(&dir.join("best.safetensors")), 1);
    // Two states in the checkpoint, one per callback.
    let mut t = session();
    let (meta, _) = checkpoint::load(&dir.join("last.safetensors"), &mut t).unwrap();
    let states = meta.callbacks.as_object().unwrap();
    assert_eq!(states.len(), 2, "{states:?}");
    // Resume for epochs 3 and 4.
    let mut c = session();
    let (mut best, mut last) = checkpoints();
    Trainer::new(cfg(4, None))
        .resume(
            &dir.join("last.safetensors"),
            &mut c,
            &train,
            Some(&val),
            &mut [&mut best, &mut last],
        )
        .unwrap();
    assert_eq!(epoch_of(&dir.join("last.safetensors")), 4);
    assert_eq!(
        epoch_of(&dir.join("best.safetensors")),
        1,
        "best.safetensors overwritten at a worse epoch after the resume"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_checkpoint_with_one_state_per_kind_still_resumes() {
    // Checkpoints written before callbacks had their own keys hold one state per kind,
    // under the kind's name. A lone callback of that kind reads it: a best_only on the
    // learning rate (max mode) whose saved best (1e9) is above any rate writes no
    // best.safetensors after the resume.
    let (train, val) = (data(5, 64), data(6, 32));
    let dir = tmp("legacy-key");
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = cpu_session(2);
    Trainer::new(cfg(1, None))
        .fit(&mut s, &train, Some(&val), &mut [])
        .unwrap();
    let mut probe = cpu_session(2);
    let h = Trainer::new(cfg(1, None))
        .fit(&mut probe, &train, Some(&val), &mut [])
        .unwrap();
    let meta = checkpoint::Meta {
        epoch: 1,
        batch: 0,
        history: h.to_json(),
        callbacks: serde_json::json!({ "model_checkpoint": { "best": 1e9 } }),
        standardizer: None,
        preprocessing: None,
        partial: None,
    };
    let legacy = dir.join("legacy.safetensors");
    checkpoint::save(&legacy, &mut s, &meta, &[]).unwrap();
    let mut best = ModelCheckpoint::best_only(&dir, "lr");
    best.mode = MonitorMode::Max;
    let mut c = cpu_session(2);
    Trainer::new(cfg(3, None))
        .resume(&legacy, &mut c, &train, Some(&val), &mut [&mut best])
        .unwrap();
    assert!(!dir.join("best.safetensors").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// ReduceLROnPlateau follows Keras 3's rule epoch by epoch (values by hand: patience 2,
/// factor 0.5, cooldown 1, min_lr 0.01, from lr 0.1), and its state carries the reduced
/// rate across a resume.
#[test]
fn reduce_lr_on_plateau_follows_keras() {
    use shadeprop::train::callbacks::{Callback, ReduceLrOnPlateau};
    use shadeprop::train::history::{EpochLog, History};
    let session = || {
        Session::new(
            Box::new(Cpu::new()),
            Sequential::new(2).linear(2).build().unwrap(),
            Sgd {
                lr: 0.1,
                ..Sgd::default()
            },
            0,
            4,
        )
        .unwrap()
    };
    let mut s = session();
    let mut cb = ReduceLrOnPlateau::new("val_loss");
    cb.factor = 0.5;
    cb.patience = 2;
    cb.cooldown = 1;
    cb.min_lr = 0.01;
    cb.min_delta = 0.0;
    cb.on_train_begin(&mut s, &["val_loss".to_string()])
        .unwrap();
    let values = [
        1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95,
    ];
    let want = [
        0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.01, 0.01, 0.01,
    ];
    let h = History::default();
    for (e, (&v, &lr)) in values.iter().zip(&want).enumerate() {
        let mut log = EpochLog {
            epoch: e as u64,
            ..Default::default()
        };
        log.values.insert("val_loss".into(), v);
        cb.on_epoch_end(&mut s, &log, &h).unwrap();
        let got = s.optimizer().lr();
        assert!(
            (got - lr).abs() <= 1e-7,
            "epoch {e}: lr {got}, expected {lr}"
        );
    }
    // A fresh session given the saved state starts at the reduced rate.
    let state = cb.state();
    let mut t = session();
    let mut cb2 = ReduceLrOnPlateau::new("val_loss");
    cb2.load_state(&state).unwrap();
    cb2.on_train_begin(&mut t, &["val_loss".to_string()])
        .unwrap();
    assert_eq!(t.optimizer().lr(), s.optimizer().lr());
    // A factor of 1 or more is refused (as Keras does).
    let mut bad = ReduceLrOnPlateau::new("val_loss");
    bad.factor = 1.0;
    assert!(
        bad.on_train_begin(&mut t, &["val_loss".to_string()])
            .is_err()
    );
}

/// The cells of a CSV text but its timing columns (samples_per_sec, seconds).
fn without_timing(text: &str) -> Vec<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let keep: Vec<usize> = (0..rows[0].len())
        .filter(|&i| !matches!(&rows[0][i], "samples_per_sec" | "seconds"))
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&i| r[i].to_string()).collect())
        .collect()
}

/// CSVLogger: Keras' layout (0-based `epoch`, then the metrics in sorted order), values in
/// the shortest form, one row per finished epoch after a resume; `append` continues a
/// file; a bad separator is refused by name.
#[test]
fn csv_logger_writes_keras_rows_and_survives_resume() {
    use shadeprop::train::callbacks::CsvLogger;
    let d = tmp("csvlogger");
    let path = d.join("log.csv");
    let (train, val) = (data(1, 96), data(2, 32));
    let mut s = cpu_session(3);
    let mut logger = CsvLogger::new(&path);
    let h = Trainer::new(cfg(3, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut logger])
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let mut keys: Vec<String> = h.epochs[0].values.keys().cloned().collect();
    keys.sort();
    assert_eq!(header[0], "epoch");
    assert_eq!(&header[1..], &keys[..], "metrics in sorted order");
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(&r[0], i.to_string(), "0-based epochs as Keras writes them");
        let loss: f32 = r[header.iter().position(|k| k == "loss").unwrap()]
            .parse()
            .unwrap();
        // The shortest form of the f32 reads back to the recorded value exactly.
        assert_eq!(loss as f64, h.epochs[i].get("loss").unwrap(), "row {i}");
    }
    assert!(!text.contains("00000000"), "shortest form: {text}");

    // A run interrupted after 2 epochs (a checkpoint) and resumed keeps one row per epoch.
    let ck = d.join("ck.safetensors");
    let mut s = cpu_session(3);
    let mut logger = CsvLogger::new(&path);
    let mut saver = ModelCheckpoint::every(&d, 1);
    Trainer::new(cfg(2, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut logger, &mut saver])
        .unwrap();
    std::fs::copy(d.join("last.safetensors"), &ck).unwrap();
    let mut s = cpu_session(3);
    let mut logger = CsvLogger::new(&path);
    let mut saver = ModelCheckpoint::every(&d, 1);
    Trainer::new(cfg(3, None))
        .resume(
            &ck,
            &mut s,
            &train,
            Some(&val),
            &mut [&mut logger, &mut saver],
        )
        .unwrap();
    let again = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        without_timing(&again),
        without_timing(&text),
        "resumed: the same file as the run never stopped"
    );

    // append: a second run's rows follow without a second header.
    let mut s = cpu_session(3);
    let mut logger = CsvLogger::new(&path).append(true);
    Trainer::new(cfg(1, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut logger])
        .unwrap();
    let appended = std::fs::read_to_string(&path).unwrap();
    assert!(appended.starts_with(&again));
    assert_eq!(appended.lines().count(), again.lines().count() + 1);
    assert_eq!(appended.matches("epoch,").count(), 1);

    let mut s = cpu_session(3);
    let mut bad = CsvLogger::new(&path).separator(b'"');
    let e = Trainer::new(cfg(1, None))
        .fit(&mut s, &train, Some(&val), &mut [&mut bad])
        .unwrap_err()
        .to_string();
    assert!(e.contains("CSVLogger") && e.contains("separator"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Per-batch metrics reach callbacks at every device read: with `log_every = 1` once per
/// step with that step's own metrics, covering every step of every epoch once.
#[test]
fn callbacks_receive_metrics_at_every_read() {
    use shadeprop::session::Metrics;
    use shadeprop::train::callbacks::Callback;
    struct Seen(Vec<(u64, Metrics)>);
    impl Callback for Seen {
        fn name(&self) -> &'static str {
            "seen"
        }
        fn on_batch_metrics(&mut self, step: u64, m: &Metrics) -> shadeprop::Result<()> {
            self.0.push((step, *m));
            Ok(())
        }
    }
    let train = data(1, 100);
    for log_every in [1usize, 2] {
        let mut s = cpu_session(3);
        let mut seen = Seen(vec![]);
        let mut c = cfg(2, None);
        c.epoch.log_every = log_every;
        c.log_steps = false;
        Trainer::new(c)
            .fit(&mut s, &train, None, &mut [&mut seen])
            .unwrap();
        // 100 samples at batch 32: 4 steps per epoch, 8 in all.
        let steps: usize = seen.0.iter().map(|(_, m)| m.steps).sum();
        assert_eq!(steps, 8, "log_every {log_every}: every step once");
        let mut next = 0;
        for (step, m) in &seen.0 {
            next += m.steps as u64;
            assert_eq!(
                *step, next,
                "each read ends where the next one's steps begin"
            );
            assert!(m.loss.is_finite() && m.samples > 0);
        }
        if log_every == 1 {
            assert!(seen.0.iter().all(|(_, m)| m.steps == 1));
            assert_eq!(seen.0[3].1.samples, 4, "the short last batch: 100 − 3·32");
        }
    }
}

// A write killed between its create and its rename (`kill -9` during a checkpoint) leaves
// `.best.safetensors.tmp-<pid>-<n>`; the next run in that folder removes such files of
// processes that no longer run — in the checkpoint folder and the log folder — and
// nothing else: files of running processes (this one, pid 1), other names, folders.
#[test]
fn stale_temporary_files_are_removed_when_training_starts() {
    use std::path::Path;
    if !Path::new("/proc/self").exists() {
        eprintln!("SKIPPED (no /proc to tell whether a process runs)");
        return;
    }
    let dir = tmp("stale");
    let ck = dir.join("checkpoints");
    std::fs::create_dir_all(&ck).unwrap();
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let id = c.id();
        c.wait().unwrap();
        id
    };
    assert!(!Path::new(&format!("/proc/{dead}")).exists());
    let me = std::process::id();
    let stale = [
        ck.join(format!(".best.safetensors.tmp-{dead}-0")),
        ck.join(format!(".last.safetensors.tmp-{dead}-17")),
        dir.join(format!(".metrics.csv.tmp-{dead}-2")),
    ];
    let kept = [
        ck.join(format!(".best.safetensors.tmp-{me}-999999")),
        ck.join(".best.safetensors.tmp-1-0"),
        ck.join(format!("best.safetensors.tmp-{dead}-0")),
        ck.join(format!(".best.safetensors.tmp-{dead}-x")),
        ck.join(format!(".tmp-{dead}-1")),
        dir.join("notes.txt"),
    ];
    for f in stale.iter().chain(&kept) {
        std::fs::write(f, b"half a checkpoint").unwrap();
    }
    let folder = ck.join(format!(".d.tmp-{dead}-1"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut s = cpu_session(1);
    let mut every = ModelCheckpoint::every(&ck, 1);
    Trainer::new(cfg(1, Some(dir.clone())))
        .fit(&mut s, &data(3, 64), None, &mut [&mut every])
        .unwrap();
    for f in &stale {
        assert!(!f.exists(), "{} left behind", f.display());
    }
    for f in &kept {
        assert!(f.exists(), "{} removed", f.display());
    }
    assert!(folder.is_dir());
    assert!(ck.join("last.safetensors").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

// Soft binary cross-entropy targets in the validation set (0.5) train, but define no
// precision, recall, F1 or AUC: those are not recorded, and a callback monitoring one is
// refused before training instead of never seeing its metric (best checkpoint never
// written, early stopping never triggered).
#[test]
fn soft_validation_targets_record_no_f1_and_a_monitor_on_it_is_refused() {
    use shadeprop::data::Task;
    let g = Sequential::new(4)
        .linear(3)
        .loss(shadeprop::nn::Loss::BceWithLogits { pos_weight: None })
        .build()
        .unwrap();
    let x = rand_vec(11, 16 * 4);
    // (row + column) % 3 == 0: every column holds both classes.
    let hard: Vec<f32> = (0..16 * 3)
        .map(|i| ((i / 3 + i % 3) % 3 == 0) as u8 as f32)
        .collect();
    let mut soft = hard.clone();
    soft[5] = 0.5;
    let train = Dataset::for_task(Task::Multilabel, x.clone(), hard.clone(), 4, 3).unwrap();
    let val = Dataset::for_task(Task::Multilabel, x, soft, 4, 3).unwrap();
    let session = || Session::new(Box::new(Cpu::new()), g.clone(), Sgd::default(), 0, 16).unwrap();
    let fit = FitConfig {
        epochs: 2,
        epoch: EpochConfig {
            batch_size: 8,
            ..Default::default()
        },
        verbose: false,
        ..Default::default()
    };
    let h = Trainer::new(fit.clone())
        .fit(&mut session(), &train, Some(&val), &mut [])
        .unwrap();
    let last = h.epochs.last().unwrap();
    assert!(last.get("val_loss").is_some() && last.get("val_accuracy").is_some());
    assert!(last.get("val_f1_score").is_none() && last.get("val_auc").is_none());
    let mut es = EarlyStopping::new("val_f1_score").patience(0);
    let e = Trainer::new(fit.clone())
        .fit(&mut session(), &train, Some(&val), &mut [&mut es])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("monitor \"val_f1_score\" is not a recorded metric"),
        "{e}"
    );
    // With 0/1 targets the same monitor is recorded.
    let val01 = Dataset::for_task(Task::Multilabel, val.x.clone(), hard, 4, 3).unwrap();
    let h = Trainer::new(fit)
        .fit(&mut session(), &train, Some(&val01), &mut [&mut es])
        .unwrap();
    assert!(h.epochs[0].get("val_f1_score").is_some());
}

// ReduceLROnPlateau refuses a non-finite min_delta (as EarlyStopping does) and a min_lr
// that is not a finite rate >= 0, before training.
#[test]
fn reduce_lr_on_plateau_refuses_non_finite_settings() {
    use shadeprop::train::callbacks::ReduceLrOnPlateau;
    let train = data(3, 64);
    for (min_delta, min_lr, want) in [
        (f64::INFINITY, 0.0, "reduce_lr_on_plateau.min_delta = inf"),
        (f64::NAN, 0.0, "reduce_lr_on_plateau.min_delta = NaN"),
        (0.0, f32::INFINITY, "reduce_lr_on_plateau.min_lr = inf"),
        (0.0, -1.0, "reduce_lr_on_plateau.min_lr = -1"),
    ] {
        let mut r = ReduceLrOnPlateau::new("loss");
        r.min_delta = min_delta;
        r.min_lr = min_lr;
        let e = Trainer::new(cfg(1, None))
            .fit(&mut cpu_session(1), &train, None, &mut [&mut r])
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
}

// A NaN baseline in the library would be beaten by nothing: refused before training (None
// is no baseline); ±inf are baselines (mode min: +inf beaten by every value, −inf by none).
#[test]
fn early_stopping_refuses_a_nan_baseline_and_takes_infinite_ones() {
    let mut es = EarlyStopping::new("loss").baseline(f64::NAN);
    let e = Trainer::new(cfg(1, None))
        .fit(&mut cpu_session(1), &data(3, 64), None, &mut [&mut es])
        .unwrap_err()
        .to_string();
    assert!(e.contains("early_stopping.baseline = NaN"), "{e}");
    // Patience 2, one epoch without improvement (0.85): +inf is beaten by every value, so
    // each improvement restarts the counter (wait 1 at 0.85 < 2: all 5 epochs, best the
    // last); −inf is beaten by none, so the counter only grows (wait 4 at 0.85: stop after
    // 4 epochs, best the third).
    let values = [1.0, 0.9, 0.8, 0.85, 0.7];
    assert_eq!(
        script(
            EarlyStopping::new("loss")
                .patience(2)
                .baseline(f64::INFINITY),
            &values
        ),
        (5, Some(4))
    );
    assert_eq!(
        script(
            EarlyStopping::new("loss")
                .patience(2)
                .baseline(f64::NEG_INFINITY),
            &values
        ),
        (4, Some(2))
    );
}

/// A checkpoint's callback snapshots (early stopping's best weights, Adam's moments, batch
/// norm's statistics) load on a backend of another buffer layout: lavapipe aligns every
/// parameter (gaps between them), the CPU does not; the snapshot restored on the CPU is the
/// GPU's, value for value.
#[test]
fn callback_snapshots_load_on_a_backend_of_another_layout() {
    let Some(gpu) = gpu() else { return };
    let m = Sequential::new(7).linear(5).batch_norm().relu().linear(3);
    let mut g = Session::new(Box::new(gpu), m.build().unwrap(), Adam::default(), 3, 8).unwrap();
    let (x, y) = batch(1, 8, 7, 3);
    g.train_batch(&x, &y).unwrap();
    let best = g.snapshot().unwrap();
    g.train_batch(&x, &y).unwrap();
    let path = scratch_dir("callback-layout").join("c.safetensors");
    let cbs = [("early_stopping".to_string(), best.clone())];
    checkpoint::save(&path, &mut g, &Default::default(), &cbs).unwrap();
    let mut c = Session::new(
        Box::new(Cpu::new()),
        m.build().unwrap(),
        Adam::default(),
        3,
        8,
    )
    .unwrap();
    assert_ne!(
        g.layout().params_len,
        c.layout().params_len,
        "the two backends must lay parameters out differently for this test to mean anything"
    );
    let (_, snaps) = checkpoint::load(&path, &mut c).unwrap();
    c.restore(&snaps[0].1).unwrap();
    g.restore(&best).unwrap();
    assert_eq!(c.params().unwrap(), g.params().unwrap());
    assert_eq!(c.velocity().unwrap(), g.velocity().unwrap());
    assert_eq!(c.state().unwrap(), g.state().unwrap());
}
