//! One training run from a [`RunConfig`] into an output folder: early stopping, the best
//! checkpoint, logs and curves, and the errors of the final weights in `result.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::config::RunConfig;
use super::folder::{RunResult, write};
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

/// The files a run writes in its folder; one of them present means the folder holds a run
/// (a `config.toml` alone is a planned trial, `sweep --plan-only`, not a run).
const RUN_FILES: [&str; 7] = [
    "result.json",
    "metrics.csv",
    "metrics.jsonl",
    "curves.png",
    "curves.svg",
    "checkpoints",
    "steps.csv",
];

/// Train `cfg` into `out` (created). `params` names the swept values (for sweeps). A
/// folder that already holds a run is refused ([`train_with`]).
pub fn train(
    cfg: &RunConfig,
    out: &Path,
    params: BTreeMap<String, String>,
    quiet: bool,
) -> Result<RunResult> {
    train_with(cfg, out, params, quiet, &TrainOptions::default())
}

/// [`train`] with options: a run never destroys another — an output folder that holds a
/// run (its metrics, curves, checkpoints or `result.json`) is refused unless
/// `overwrite` (which removes those files first) or `resume` (which continues that run).
/// A config that does not validate leaves nothing behind.
pub fn train_with(
    cfg: &RunConfig,
    out: &Path,
    params: BTreeMap<String, String>,
    quiet: bool,
    opts: &TrainOptions,
) -> Result<RunResult> {
    cfg.validate()?;
    let held: Vec<&str> = RUN_FILES
        .iter()
        .copied()
        .filter(|f| out.join(f).exists())
        .collect();
    if !held.is_empty() && opts.resume.is_none() {
        if !opts.overwrite {
            return Err(Error::Hyperparameter {
                name: "--out",
                value: format!("{} (it holds a run: {})", out.display(), held.join(", ")),
                expected: "a folder without a run; pass --overwrite to replace that run, or --resume CHECKPOINT to continue it",
            });
        }
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
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    // Files a write killed before its rename left (a crash, `kill -9`); the checkpoint
    // folder's are removed by its callbacks.
    crate::fs::remove_stale_temporaries(out)?;
    write(&out.join("config.toml"), &cfg.to_toml())?;
    let p = prepare(cfg)?;
    let mut s = session(cfg, &p, !quiet)?;
    if !quiet {
        let mut model = cfg.model(p.image, p.outputs())?;
        if let Some(aug) = cfg.augment(p.stdz.mean, p.stdz.std) {
            model.layers.insert(0, crate::nn::Layer::Augment(aug));
        }
        print!("{}", model.summary());
    }
    if let Some(w) = &cfg.model.weights {
        crate::train::checkpoint::load_weights(w, &mut s)?;
        if !quiet {
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
    let mut reduce = ReduceLrOnPlateau::new(&t.monitor);
    reduce.factor = t.reduce_lr_factor;
    reduce.patience = t.reduce_lr_patience;
    reduce.cooldown = t.reduce_lr_cooldown;
    reduce.min_lr = t.reduce_lr_min_lr;
    reduce.min_delta = t.min_delta;
    reduce.mode = cfg.monitor_mode();
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
    let va = if p.val.is_empty() {
        Metrics::default()
    } else {
        evaluate(&mut s, &p.val, 1000)?
    };
    let regression = cfg.task == crate::task::Task::Regression;
    let r = RunResult {
        name: out
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned()),
        params,
        best_epoch: h.best_epoch.map(|e| e + 1),
        epochs_run: h.epochs.len() as u64,
        stopped_epoch: h.stopped_epoch.map(|e| e + 1),
        train_loss: tr.loss as f64,
        train_accuracy: tr.accuracy as f64,
        val_loss: va.loss as f64,
        val_accuracy: va.accuracy as f64,
        gap: if regression {
            (va.mae - tr.mae) as f64
        } else {
            (1.0 - va.accuracy as f64) - (1.0 - tr.accuracy as f64)
        },
        task: cfg.task,
        train_mae: regression.then_some(tr.mae as f64),
        val_mae: regression.then_some(va.mae as f64),
        seconds,
        test_accuracy: None,
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
