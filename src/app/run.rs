//! One training run from a [`RunConfig`] into an output folder: early stopping, the best
//! checkpoint, logs and curves, and the errors of the final weights in `result.json`.

use std::path::Path;
use std::time::Instant;

use super::config::RunConfig;
use super::folder::{RunResult, Swept, write};
use super::prepare::{prepare, session};
use crate::error::{Error, Result};
use crate::session::Metrics;
use crate::train::callbacks::{
    Callback, EarlyStopping, ModelCheckpoint, ReduceLrOnPlateau, TerminateOnNan,
};
use crate::train::fit::{FitConfig, Trainer};
use crate::train::{EpochConfig, evaluate};

/// How [`train_with`] treats the output folder and where it starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainOptions {
    /// Continue from this checkpoint (written by an interrupt or at an epoch's end): the
    /// run goes on exactly where it stopped, bit-identical to one never interrupted.
    pub resume: Option<std::path::PathBuf>,
    /// Replace a finished or interrupted run in the output folder instead of refusing.
    pub overwrite: bool,
}

/// An exclusive advisory lock on `<folder>/.shadeprop.lock` (`File::try_lock`), held for
/// the run and released by the system when the process ends, whatever the way; the file
/// is removed when the run ends normally.
struct FolderLock {
    path: std::path::PathBuf,
    _file: std::fs::File,
}

impl FolderLock {
    fn take(dir: &Path) -> Result<Self> {
        let path = dir.join(".shadeprop.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(FolderLock { path, _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Hyperparameter {
                name: "--out",
                value: format!(
                    "{} (another shadeprop process is training into it)",
                    dir.display()
                ),
                expected: "a folder no other run is writing",
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The files a run writes in its folder; one of them present means the folder holds a run
/// (a `config.toml` alone is a planned trial, `sweep --plan-only`, not a run).
pub(super) const RUN_FILES: [&str; 7] = [
    "result.json",
    "metrics.csv",
    "metrics.jsonl",
    "curves.png",
    "curves.svg",
    "checkpoints",
    "steps.csv",
];

/// Train `cfg` into `out` (created). `swept` names a sweep trial's swept fields (empty
/// otherwise): they go into `result.json` and, as comment lines, into the run folder's
/// `config.toml`. A folder that already holds a run is refused ([`train_with`]).
pub fn train(cfg: &RunConfig, out: &Path, swept: Swept, quiet: bool) -> Result<RunResult> {
    train_with(cfg, out, swept, quiet, &TrainOptions::default())
}

/// [`train`] with options: a run never destroys another — an output folder that holds a
/// run (its metrics, curves, checkpoints or `result.json`) is refused unless
/// `overwrite` (which removes those files first) or `resume` (which continues that run).
/// A config that does not validate leaves nothing behind.
pub fn train_with(
    cfg: &RunConfig,
    out: &Path,
    swept: Swept,
    quiet: bool,
    opts: &TrainOptions,
) -> Result<RunResult> {
    cfg.validate()?;
    if out.exists() && !out.is_dir() {
        return Err(Error::Hyperparameter {
            name: "--out",
            value: format!("{} (a file, not a folder)", out.display()),
            expected: "a folder for the run (created when missing)",
        });
    }
    let held: Vec<&str> = RUN_FILES
        .iter()
        .copied()
        .filter(|f| out.join(f).exists())
        .collect();
    let stored = out.join("config.toml");
    match &opts.resume {
        // Continuing a run: never one that finished, and only with its own settings (a
        // resume is bit-identical to the run never stopped only then).
        Some(ck) => {
            if out.join("result.json").exists() && !opts.overwrite {
                return Err(Error::Hyperparameter {
                    name: "--resume",
                    value: format!(
                        "{} into {}, which holds a finished run (result.json)",
                        ck.display(),
                        out.display()
                    ),
                    expected: "an interrupted run to continue; pass --overwrite to train the finished one on from the checkpoint",
                });
            }
            if !held.is_empty() && stored.is_file() {
                let diff = RunConfig::load(&stored)?.differences(cfg);
                if !diff.is_empty() {
                    return Err(Error::Hyperparameter {
                        name: "--resume",
                        value: format!(
                            "{} with settings other than the run's own ({}): {}",
                            ck.display(),
                            stored.display(),
                            diff.join("; ")
                        ),
                        expected: "the run's config unchanged: --config <run>/config.toml without overrides (or a new run in another --out)",
                    });
                }
            }
        }
        None if !held.is_empty() && !opts.overwrite => {
            return Err(Error::Hyperparameter {
                name: "--out",
                value: format!("{} (it holds a run: {})", out.display(), held.join(", ")),
                expected: "a folder without a run; pass --overwrite to replace that run, or --resume CHECKPOINT to continue it",
            });
        }
        None => {}
    }
    let created = !out.exists();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    // One run at a time in a folder: a lock the system releases when the process ends,
    // however it ends.
    let lock = FolderLock::take(out)?;
    // Files a write killed before its rename left (a crash, `kill -9`); the checkpoint
    // folder's are removed by its callbacks.
    crate::fs::remove_stale_temporaries(out)?;
    // Everything that can fail for the config, the data or the checkpoint, before the
    // folder changes: a run that cannot start leaves the folder as it was.
    let early = (|| -> Result<_> {
        let p = prepare(cfg)?;
        let mut s = session(cfg, &p, !quiet)?;
        if let Some(w) = &cfg.model.weights {
            crate::train::checkpoint::load_weights(w, &mut s)?;
        }
        if let Some(ck) = &opts.resume {
            crate::train::checkpoint::load(ck, &mut s)?;
        }
        Ok((p, s))
    })();
    let (p, mut s) = match early {
        Ok(x) => x,
        Err(e) => {
            drop(lock);
            if created {
                let _ = std::fs::remove_dir_all(out);
            }
            return Err(e);
        }
    };
    if opts.overwrite && opts.resume.is_none() {
        for f in held {
            let p = out.join(f);
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(|e| Error::io(&p, e))?;
        }
    }
    if opts.resume.is_none() || !stored.is_file() {
        write(&stored, &(swept.header() + &cfg.to_toml()))?;
    }
    if !quiet {
        let mut model = cfg.model(p.image, p.outputs())?;
        if let Some(aug) = cfg.augment(p.stdz.mean, p.stdz.std) {
            model.layers.insert(0, crate::nn::Layer::Augment(aug));
        }
        print!("{}", model.summary());
        if let Some(w) = &cfg.model.weights {
            println!("initial weights from {}", w.display());
        }
    }
    if !quiet {
        println!(
            "data: {} train / {} validation / {} test",
            p.train.len(),
            p.val.len(),
            p.test.len()
        );
    }
    let fit = FitConfig {
        epochs: cfg.train.epochs,
        epoch: EpochConfig {
            batch_size: cfg.train.batch,
            log_every: cfg.train.log_every,
            progress: !quiet,
            ..Default::default()
        },
        seed: Some(cfg.seed),
        log_dir: Some(out.to_path_buf()),
        log_steps: false,
        standardizer: Some(p.scaler.clone()),
        interrupt_checkpoint: Some(out.join("checkpoints").join("interrupt.safetensors")),
        verbose: !quiet,
        // Tabular validation sets are small: every task gets its metrics from predictions
        // (precision, recall, F1, AUC, R², …); image runs keep the default (multiclass:
        // the device's accuracy only, no extra pass over the validation images).
        task_metrics: (cfg.data.dataset == "csv").then_some(true),
        preprocessing: p.preprocessing.as_ref().map(|pp| pp.to_json()),
    };
    let val = (!p.val.is_empty()).then_some(&p.val);
    let t = &cfg.train;
    let mut early = EarlyStopping::new(&t.monitor)
        .patience(t.patience)
        .min_delta(t.min_delta)
        .mode(cfg.monitor_mode())
        .restore_best_weights(t.restore_best_weights)
        .start_from_epoch(t.start_from_epoch);
    // NaN means no baseline; ±inf is a baseline like any other (Keras takes any float).
    if !t.baseline.is_nan() {
        early = early.baseline(t.baseline);
    }
    let mut best = ModelCheckpoint::best_only(out.join("checkpoints"), &t.monitor);
    best.mode = cfg.monitor_mode();
    let mut nan = TerminateOnNan;
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut nan, &mut best];
    if t.early_stopping {
        callbacks.insert(0, &mut early);
    }
    let mut reduce = ReduceLrOnPlateau::new(&t.monitor)
        .factor(t.reduce_lr_factor)
        .patience(t.reduce_lr_patience)
        .cooldown(t.reduce_lr_cooldown)
        .min_lr(t.reduce_lr_min_lr)
        .min_delta(t.min_delta)
        .mode(cfg.monitor_mode());
    if t.reduce_lr_factor > 0.0 {
        callbacks.push(&mut reduce);
    }
    let t0 = Instant::now();
    let trainer = Trainer::new(fit);
    let h = match &opts.resume {
        Some(ck) => trainer.resume(ck, &mut s, &p.train, val, &mut callbacks)?,
        None => trainer.fit(&mut s, &p.train, val, &mut callbacks)?,
    };
    let seconds = t0.elapsed().as_secs_f64();
    // Errors of the final weights (the best epoch's when restored), in inference mode.
    let tr = evaluate(&mut s, &p.train, 1000)?;
    // No validation split, no validation numbers (absent, not 0).
    let va = if p.val.is_empty() {
        None
    } else {
        Some(evaluate(&mut s, &p.val, 1000)?)
    };
    let regression = cfg.task == crate::task::Task::Regression;
    // Accuracy is a classification metric, the mean absolute error a regression one.
    let acc = |m: &Metrics| (!regression).then_some(m.accuracy as f64);
    let mae = |m: &Metrics| regression.then_some(m.mae as f64);
    let r = RunResult {
        version: super::folder::RESULT_VERSION,
        name: out
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned()),
        params: swept.values,
        sampling: swept.sampling,
        best_epoch: h.best_epoch,
        epochs_run: h.epochs.len() as u64,
        stopped_epoch: h.stopped_epoch,
        train_loss: tr.loss as f64,
        train_accuracy: acc(&tr),
        val_loss: va.map(|v| v.loss as f64),
        val_accuracy: va.as_ref().and_then(acc),
        // Computed in f32, the precision of the measurements, so that it prints short.
        gap: va.map(|v| {
            if regression {
                (v.mae - tr.mae) as f64
            } else {
                // (1 − val accuracy) − (1 − train accuracy)
                (tr.accuracy - v.accuracy) as f64
            }
        }),
        task: cfg.task,
        train_mae: mae(&tr),
        val_mae: va.as_ref().and_then(mae),
        seconds,
        test_accuracy: None,
        test_mae: None,
        backend: s.backend().describe(),
        kernel_choices: s.backend().kernel_choices(),
    };
    if !quiet {
        for c in &r.kernel_choices {
            println!("kernel variant: {c}");
        }
    }
    write(
        &out.join("result.json"),
        &serde_json::to_string_pretty(&r).unwrap_or_default(),
    )?;
    Ok(r)
}
