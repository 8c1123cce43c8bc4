//! `Trainer::fit`: epochs of training with validation, callbacks, checkpoints, metric logs
//! (CSV and JSON lines, written while training runs), learning curves, and exact resume.
//!
//! Recorded per epoch: `loss` (mean data loss over the epoch + the last step's penalty),
//! `data_loss`, `penalty`, `accuracy` (training mode: dropout on), `lr`, `grad_norm`
//! (pre-clip, last step), `samples_per_sec`, `seconds`, with validation data `val_loss` and
//! `val_accuracy` (inference mode), and with mixed precision `loss_scale` (after the
//! epoch) and `skipped_steps` (in total).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value};

use super::callbacks::{Callback, Control};
use super::checkpoint;
use super::epoch::{EpochConfig, Event, evaluate, train_epoch_with};
pub use super::history::{Direction, EVAL_METRICS, EpochLog, History, METRICS, metric_direction};
use super::history::{csv_columns, csv_record, csv_row, epoch_json, shortest};
#[cfg(feature = "plots")]
use super::plot;
use crate::data::{Dataset, Scaler};
use crate::error::{Error, Result};
use crate::session::{Metrics, Session, Snapshot};
use crate::task::Task;

/// How to fit.
#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: u64,
    pub epoch: EpochConfig,
    /// Keys the shuffling. None (the default): the session's seed ([`Session::seed`]),
    /// which also keys initialization and dropout, so one seed makes the whole run.
    pub seed: Option<u64>,
    /// Where metrics.csv, metrics.jsonl (and with `log_steps`, steps.csv) and the
    /// learning curves (curves.png, curves.svg) are written; None writes nothing.
    pub log_dir: Option<PathBuf>,
    /// Also log every metrics read within epochs (every `epoch.log_every` steps).
    pub log_steps: bool,
    /// Stored in checkpoints so that inference can apply it.
    pub standardizer: Option<Scaler>,
    /// Print one line per epoch (default on, as Keras' `verbose="auto"`; the progress bar
    /// within epochs is [`EpochConfig::progress`]).
    pub verbose: bool,
    /// Where a Ctrl-C writes its checkpoint (see [`super::interrupt`]); None: an interrupt
    /// stops without saving.
    pub interrupt_checkpoint: Option<PathBuf>,
    /// Whether each epoch's validation also computes the task's metrics from the
    /// predictions ([`crate::metrics::task_metrics`]: precision, recall, F1, AUC, top-5
    /// accuracy, MSE, RMSE, R²; one more inference pass over the validation set). None:
    /// on for binary, multi-label and regression, off for multiclass (whose accuracy the
    /// device already measures). Binary and multi-label validation targets that are not
    /// all 0 or 1 (soft targets) leave them off, with a note: precision, recall, F1 and AUC
    /// count 0/1 truths; they are then not recorded metrics, so a callback monitoring one
    /// is refused before training.
    pub task_metrics: Option<bool>,
    /// Stored in checkpoints so that prediction can read raw CSV rows (the fitted
    /// [`crate::data::tabular::Preprocessor`] as JSON).
    pub preprocessing: Option<serde_json::Value>,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 10,
            epoch: EpochConfig::default(),
            seed: None,
            log_dir: None,
            log_steps: false,
            standardizer: None,
            verbose: true,
            interrupt_checkpoint: None,
            task_metrics: None,
            preprocessing: None,
        }
    }
}

/// The checkpoint key of each callback: [`Callback::key`], numbered `#2`, `#3`, ... where
/// keys coincide (by position, so a resume with the same callbacks finds them).
fn callback_keys(callbacks: &[&mut dyn Callback]) -> Vec<String> {
    let mut keys: Vec<String> = vec![];
    for cb in callbacks {
        let k = cb.key();
        let n = keys
            .iter()
            .filter(|x| x.split('#').next() == Some(k.as_str()))
            .count();
        keys.push(if n == 0 { k } else { format!("{k}#{}", n + 1) });
    }
    keys
}

/// Every callback's state and device snapshot, by key.
fn callback_states(callbacks: &[&mut dyn Callback]) -> (Value, Vec<(String, Snapshot)>) {
    let keys = callback_keys(callbacks);
    let states: Map<String, Value> = callbacks
        .iter()
        .zip(&keys)
        .map(|(cb, k)| (k.clone(), cb.state()))
        .collect();
    let snaps = callbacks
        .iter()
        .zip(&keys)
        .filter_map(|(cb, k)| cb.snapshot().map(|sn| (k.clone(), sn.clone())))
        .collect();
    (Value::Object(states), snaps)
}

/// Runs epochs, validation, callbacks, checkpoints and logs.
pub struct Trainer {
    pub cfg: FitConfig,
}

/// Append `text` (whole lines, each newline-terminated) to `path`.
fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

impl Trainer {
    /// A trainer with these settings and no callbacks.
    pub fn new(cfg: FitConfig) -> Self {
        Trainer { cfg }
    }

    /// Train from epoch 0.
    pub fn fit(
        &self,
        s: &mut Session,
        train: &Dataset,
        val: Option<&Dataset>,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        self.run(s, train, val, callbacks, History::default(), (0, None))
    }

    /// Continue a run from a checkpoint written by this trainer (parameters, optimizer
    /// state, step counter, callback states, history): the result is bit-identical to a
    /// run that was never interrupted.
    pub fn resume(
        &self,
        path: &Path,
        s: &mut Session,
        train: &Dataset,
        val: Option<&Dataset>,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let (meta, snaps) = checkpoint::load(path, s)?;
        let keys = callback_keys(callbacks);
        for (cb, key) in callbacks.iter_mut().zip(&keys) {
            // Checkpoints written before callbacks had their own keys stored one state per
            // kind, under its name: read that when this is the only callback of its kind.
            let alone = keys.iter().filter(|k| k.starts_with(cb.name())).count() == 1;
            let found =
                |k: &str| meta.callbacks.get(k).is_some() || snaps.iter().any(|(n, _)| n == k);
            let key = if !found(key) && alone && found(cb.name()) {
                cb.name()
            } else {
                key.as_str()
            };
            if let Some(v) = meta.callbacks.get(key) {
                cb.load_state(v)?;
            }
            if let Some((_, snap)) = snaps.iter().find(|(n, _)| n == key) {
                cb.load_snapshot(snap.clone());
            }
        }
        let history = History::from_json(&meta.history).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            what: "unreadable history".into(),
        })?;
        if history.epochs.len() as u64 != meta.epoch {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                what: format!(
                    "history has {} epochs, metadata says {}",
                    history.epochs.len(),
                    meta.epoch
                ),
            });
        }
        let carry = meta.partial.as_ref().map(|p| {
            let f = |k: &str| p[k].as_f64().unwrap_or(0.0) as f32;
            let n = |k: &str| p[k].as_u64().unwrap_or(0) as usize;
            (
                Metrics {
                    loss: f("loss"),
                    accuracy: f("accuracy"),
                    mae: f("mae"),
                    samples: n("samples"),
                    weight: f("weight"),
                    steps: n("steps"),
                    ..Default::default()
                },
                f("lr"),
            )
        });
        self.run(s, train, val, callbacks, history, (meta.batch, carry))
    }

    fn run(
        &self,
        s: &mut Session,
        train: &Dataset,
        val: Option<&Dataset>,
        callbacks: &mut [&mut dyn Callback],
        mut history: History,
        // Where a resumed run starts within its epoch: batches done, and their metrics
        // with the epoch's starting learning rate.
        (skip_batches, carry): (usize, Option<(Metrics, f32)>),
    ) -> Result<History> {
        let cfg = &self.cfg;
        if cfg.epochs == 0 {
            return Err(Error::Hyperparameter {
                name: "epochs",
                value: "0".into(),
                expected: ">= 1",
            });
        }
        // Bad data is named by its dataset row before the first step (one pass over each
        // set), not by its row in some shuffled batch epochs later.
        let task = s.graph().task();
        let outputs = s.graph().outputs();
        let mut task_metrics = cfg.task_metrics.unwrap_or(task != Task::Multiclass);
        for (what, ds) in [("training set", Some(train)), ("validation set", val)] {
            let Some(ds) = ds else { continue };
            ds.validate()
                .map_err(|e| e.in_data(&format!("the {what}"), |r| r))?;
            for (cols, vocab) in s.graph().token_columns() {
                crate::data::check_token_ids(
                    &ds.x,
                    ds.features,
                    cols,
                    vocab,
                    &format!("the {what}"),
                )?;
            }
            if ds.task != task || ds.width() != s.graph().targets() {
                return Err(Error::Shape {
                    context: format!("the {what}'s targets"),
                    got: vec![ds.width()],
                    expected: format!(
                        "a {task} dataset with {} target value(s) per sample, as the model's loss ({}) takes; the {what} is a {} dataset",
                        s.graph().targets(),
                        s.graph().loss_node().map_or("none", |(l, _)| l.name()),
                        ds.task
                    ),
                });
            }
            let f = s.graph().in_features();
            if ds.features != f {
                return Err(Error::Shape {
                    context: format!("the {what}'s samples"),
                    got: vec![ds.features],
                    expected: format!("{f} features, the model's input"),
                });
            }
        }
        // Soft targets (in [0, 1], as PyTorch's BCEWithLogitsLoss takes them) define no
        // precision, recall, F1 or AUC: those are not recorded rather than missing from
        // every epoch unnoticed (a callback monitoring one is then refused below).
        if task_metrics
            && matches!(task, Task::Binary | Task::Multilabel)
            && let Some(v) = val
            && let Some(i) = v.y.iter().position(|&t| t != 0.0 && t != 1.0)
        {
            task_metrics = false;
            if cfg.verbose {
                println!(
                    "note: validation metrics from predictions not recorded: the validation targets are soft ({} at row {}, column {}), and precision, recall, F1 and AUC need targets of 0 or 1",
                    v.y[i],
                    i / v.width(),
                    i % v.width()
                );
            }
        }
        let columns = csv_columns(task, outputs, val.is_some(), task_metrics);
        let mut names: Vec<String> = columns
            .iter()
            .filter(|c| val.is_some() || !c.starts_with("val_"))
            .cloned()
            .collect();
        names.sort();
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(s, &names)?;
        }
        // Logs are rewritten from the history, so a resumed run's files are whole.
        let logs = match &cfg.log_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
                crate::fs::remove_stale_temporaries(d)?;
                let (csv, jsonl) = (d.join("metrics.csv"), d.join("metrics.jsonl"));
                let header = std::iter::once("epoch").chain(columns.iter().map(String::as_str));
                crate::fs::write_atomic(&csv, csv_record(header).as_bytes())?;
                crate::fs::write_atomic(&jsonl, b"")?;
                for e in &history.epochs {
                    append(&csv, &csv_row(e, &columns))?;
                    append(&jsonl, &format!("{}\n", epoch_json(e)))?;
                }
                if cfg.log_steps && history.epochs.is_empty() {
                    crate::fs::write_atomic(
                        &d.join("steps.csv"),
                        csv_record(["step", "epoch", "loss", "accuracy", "grad_norm"]).as_bytes(),
                    )?;
                }
                Some((csv, jsonl, d.join("steps.csv")))
            }
            None => None,
        };
        if let Some(d) = cfg.interrupt_checkpoint.as_deref().and_then(Path::parent) {
            crate::fs::remove_stale_temporaries(d)?;
        }
        let start = history.epochs.len() as u64;
        let seed = cfg.seed.unwrap_or(s.seed());
        let mut metrics_note = false;
        let mut curves = Curves::default();
        for epoch in start..cfg.epochs {
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(s, epoch)?;
            }
            s.set_epoch(epoch);
            // A resumed epoch logs the rate it started with, before the interrupt.
            let lr = match carry {
                Some((_, lr)) if epoch == start => lr,
                _ => s.current_lr(),
            };
            let t0 = Instant::now();
            let mut hook = |ev: Event| -> Result<()> {
                match ev {
                    Event::BatchBegin { step } => {
                        for cb in callbacks.iter_mut() {
                            cb.on_batch_begin(step)?;
                        }
                    }
                    Event::Batch { step } => {
                        for cb in callbacks.iter_mut() {
                            cb.on_batch_end(step)?;
                        }
                    }
                    Event::Interval { step, metrics: m } => {
                        for cb in callbacks.iter_mut() {
                            cb.on_batch_metrics(step, &m)?;
                        }
                        if let (Some((_, _, steps)), true) = (&logs, cfg.log_steps) {
                            let f = |v: f32| shortest(v as f64);
                            append(
                                steps,
                                &csv_record([
                                    step.to_string(),
                                    epoch.to_string(),
                                    f(m.loss),
                                    f(m.accuracy),
                                    f(m.grad_norm),
                                ]),
                            )?;
                        }
                    }
                }
                Ok(())
            };
            let ecfg = EpochConfig {
                skip_batches: if epoch == start { skip_batches } else { 0 },
                carry: carry.filter(|_| epoch == start).map(|c| c.0),
                epochs: Some(cfg.epochs),
                ..cfg.epoch.clone()
            };
            let st = train_epoch_with(s, train, &ecfg, seed, epoch, &mut hook)?;
            if st.interrupted {
                self.curves(&history, &mut curves, true);
                let m = st.metrics;
                let partial = serde_json::json!({
                    "loss": m.loss, "accuracy": m.accuracy, "mae": m.mae,
                    "samples": m.samples, "weight": m.weight, "steps": m.steps, "lr": lr,
                });
                return Err(self.interrupted(
                    s,
                    callbacks,
                    &history,
                    (epoch, st.batches_done),
                    partial,
                )?);
            }
            if st.dropped_samples > 0 && epoch == start && cfg.verbose {
                println!(
                    "note: the last batch of each epoch ({} sample) is left out: batch norm needs more than 1 value per channel when training",
                    st.dropped_samples
                );
            }
            let m = st.metrics;
            let mut log = EpochLog {
                epoch,
                values: BTreeMap::new(),
            };
            let mut extra: Vec<(String, f64)> = vec![];
            let mut put = |k: &str, v: f64| {
                log.values.insert(k.into(), v);
            };
            put("loss", m.loss as f64 + m.penalty as f64);
            put("data_loss", m.loss as f64);
            put("penalty", m.penalty as f64);
            if task == Task::Regression {
                put("mae", m.mae as f64);
            } else {
                put("accuracy", m.accuracy as f64);
            }
            put("lr", lr as f64);
            put("grad_norm", m.grad_norm as f64);
            put("samples_per_sec", st.samples_per_sec);
            if s.layout().mixed.is_some() {
                put("loss_scale", m.loss_scale as f64);
                put("skipped_steps", m.skipped_steps as f64);
            }
            if let Some(v) = val {
                let vm = evaluate(s, v, cfg.epoch.batch_size)?;
                put("val_loss", vm.loss as f64);
                if task == Task::Regression {
                    put("val_mae", vm.mae as f64);
                } else {
                    put("val_accuracy", vm.accuracy as f64);
                }
                if task_metrics {
                    let p = s.predict_proba(&v.x)?;
                    // A metric the validation set cannot define (AUC with one class
                    // present, R² on one row) leaves this epoch's cells empty, said once;
                    // it does not end the training.
                    match crate::metrics::task_metrics(task, &p, &v.y, v.len(), outputs) {
                        Ok(ms) => {
                            extra.extend(ms.into_iter().map(|(k, x)| (format!("val_{k}"), x)))
                        }
                        Err(e) => {
                            if cfg.verbose && !metrics_note {
                                println!(
                                    "note: validation metrics from predictions not recorded: {e}"
                                );
                            }
                            metrics_note = true;
                        }
                    }
                }
            }
            put("seconds", t0.elapsed().as_secs_f64());
            // The device's val_accuracy / val_mae stay as measured.
            for (k, x) in extra {
                log.values.entry(k).or_insert(x);
            }
            history.epochs.push(log.clone());
            if let Some((csv, jsonl, _)) = &logs {
                append(csv, &csv_row(&log, &columns))?;
                append(jsonl, &format!("{}\n", epoch_json(&log)))?;
            }
            self.curves(&history, &mut curves, false);
            if cfg.verbose {
                let f = |k: &str| log.get(k).map_or("-".to_string(), |v| format!("{v:.4}"));
                let (acc, short) = if task == Task::Regression {
                    ("mae", "mae")
                } else {
                    ("accuracy", "acc")
                };
                // Keras' progress numbering: "Epoch k/N", k = epoch + 1 (the files keep
                // the 0-based epoch).
                println!(
                    "Epoch {}/{}  loss {} {short} {}  val_loss {} val_{short} {}  lr {:.4}  grad-norm {}  {:.0} samples/s  {:.1}s",
                    epoch + 1,
                    cfg.epochs,
                    f("loss"),
                    f(acc),
                    f("val_loss"),
                    f(&format!("val_{acc}")),
                    lr,
                    f("grad_norm"),
                    st.samples_per_sec,
                    st.seconds
                );
                if s.layout().mixed.is_some() {
                    println!(
                        "           loss scale {}, {} steps skipped so far (non-finite f16 gradients)",
                        m.loss_scale, m.skipped_steps
                    );
                }
            }
            let mut control = Control::default();
            for cb in callbacks.iter_mut() {
                let c = cb.on_epoch_end(s, &log, &history)?;
                control.stop |= c.stop;
                control.save.extend(c.save);
            }
            if !control.save.is_empty() {
                let (meta, snaps) = self.checkpoint_meta(callbacks, &history, epoch + 1, 0);
                for p in &control.save {
                    checkpoint::save(p, s, &meta, &snaps)?;
                }
            }
            if control.stop {
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(s, &mut history)?;
        }
        self.curves(&history, &mut curves, true);
        Ok(history)
    }

    /// Rewrite the learning curves (with a log folder) after every epoch, so that a killed
    /// run keeps them (each file is replaced atomically, never half-drawn), and always when
    /// `force`d (the end, an interrupt). One exception keeps tiny models from paying more
    /// for their plots than for their training: while drawing has taken more than a
    /// quarter of the run's time so far (epochs of a few milliseconds), an epoch's redraw
    /// is skipped, so the curves then trail by a few epochs until the end. A plot that
    /// fails (no usable font, a full disk) is a warning printed once: the history, the
    /// metrics files and the checkpoints never depend on it.
    /// Without the `plots` feature no curves are drawn.
    fn curves(&self, history: &History, state: &mut Curves, force: bool) {
        #[cfg(not(feature = "plots"))]
        let _ = (history, state, force);
        #[cfg(feature = "plots")]
        self.draw_curves(history, state, force);
    }

    #[cfg(feature = "plots")]
    fn draw_curves(&self, history: &History, state: &mut Curves, force: bool) {
        let Some(d) = &self.cfg.log_dir else { return };
        if !force && state.drawing > state.started.elapsed() / 4 {
            return;
        }
        let t0 = Instant::now();
        let drawn = plot::learning_curves(history, &d.join("curves.png"), &d.join("curves.svg"));
        state.drawing += t0.elapsed();
        if let Err(e) = drawn
            && !state.warned
        {
            eprintln!("warning: learning curves not drawn: {e}");
            state.warned = true;
        }
    }
}

/// When the run started, how long drawing its curves has taken, and whether a failure was
/// reported.
#[cfg_attr(not(feature = "plots"), allow(dead_code))]
struct Curves {
    started: Instant,
    drawing: std::time::Duration,
    warned: bool,
}

impl Default for Curves {
    fn default() -> Self {
        Curves {
            started: Instant::now(),
            drawing: std::time::Duration::ZERO,
            warned: false,
        }
    }
}

impl Trainer {
    /// Save the state at the interrupted step (if configured) and build the error.
    fn interrupted(
        &self,
        s: &mut Session,
        callbacks: &[&mut dyn Callback],
        history: &History,
        (epoch, batch): (u64, usize),
        partial: Value,
    ) -> Result<Error> {
        let Some(path) = &self.cfg.interrupt_checkpoint else {
            return Ok(Error::Interrupted {
                step: s.step(),
                checkpoint: PathBuf::from("(not saved)"),
            });
        };
        let (mut meta, snaps) = self.checkpoint_meta(callbacks, history, epoch, batch);
        meta.partial = Some(partial);
        checkpoint::save(path, s, &meta, &snaps)?;
        Ok(Error::Interrupted {
            step: s.step(),
            checkpoint: path.clone(),
        })
    }

    /// The checkpoint metadata after `epoch` epochs and `batch` batches of the next (the
    /// history, every callback's state, the standardizer) and every callback's device
    /// snapshot: what both an epoch-end save and an interrupt save write.
    fn checkpoint_meta(
        &self,
        callbacks: &[&mut dyn Callback],
        history: &History,
        epoch: u64,
        batch: usize,
    ) -> (checkpoint::Meta, Vec<(String, Snapshot)>) {
        let (states, snaps) = callback_states(callbacks);
        let meta = checkpoint::Meta {
            epoch,
            batch,
            history: history.to_json(),
            callbacks: states,
            standardizer: self.cfg.standardizer.clone(),
            preprocessing: self.cfg.preprocessing.clone(),
            partial: None,
        };
        (meta, snaps)
    }
}
