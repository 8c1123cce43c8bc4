//! Callbacks: hooks around training that can stop it, ask for checkpoints, and carry state
//! across a resume. [`EarlyStopping`] follows Keras' semantics exactly; [`ModelCheckpoint`]
//! asks the trainer to write a checkpoint; [`TerminateOnNan`] stops on a non-finite metric;
//! [`ReduceLrOnPlateau`] lowers the learning rate when a metric stalls; [`CsvLogger`]
//! writes every epoch's metrics to a CSV file.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::history::{EpochLog, History};
use crate::error::{Error, Result};
use crate::session::{Metrics, Session, Snapshot};

/// What a callback asks for at the end of an epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Control {
    /// Stop training after this epoch.
    pub stop: bool,
    /// Write a checkpoint (with every callback's state) to each of these paths.
    pub save: Vec<PathBuf>,
}

/// Hooks called by [`super::fit::Trainer`]. All have empty defaults.
pub trait Callback {
    /// A stable name of the kind of callback.
    fn name(&self) -> &'static str;
    /// The key of this callback's state and snapshot in checkpoints: stable across runs,
    /// derived from the configuration so that two callbacks of one kind keep their own
    /// state (the trainer also numbers keys that still coincide, by position). Defaults to
    /// [`Callback::name`].
    fn key(&self) -> String {
        self.name().to_string()
    }
    /// Check the configuration against the metrics the trainer will record.
    fn on_train_begin(&mut self, _s: &mut Session, _metrics: &[String]) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _s: &mut Session, _epoch: u64) -> Result<()> {
        Ok(())
    }
    /// Before every training step (`step` = steps taken so far).
    fn on_batch_begin(&mut self, _step: u64) -> Result<()> {
        Ok(())
    }
    /// After every training step (no device synchronization happens here).
    fn on_batch_end(&mut self, _step: u64) -> Result<()> {
        Ok(())
    }
    /// The training metrics of the steps since the previous read, at every device metrics
    /// read: every [`super::EpochConfig::log_every`] steps and at the end of each epoch
    /// (Keras passes running averages to `on_train_batch_end`; here the batches between
    /// two reads are averaged on the device, and `log_every = 1` gives every batch's own
    /// metrics at the cost of one wait per step). `step` is the global step count after
    /// the last of those steps; `m.steps` says how many they are.
    fn on_batch_metrics(&mut self, _step: u64, _m: &Metrics) -> Result<()> {
        Ok(())
    }
    fn on_epoch_end(&mut self, _s: &mut Session, _log: &EpochLog, _h: &History) -> Result<Control> {
        Ok(Control::default())
    }
    fn on_train_end(&mut self, _s: &mut Session, _h: &mut History) -> Result<()> {
        Ok(())
    }
    /// State carried in checkpoints.
    fn state(&self) -> Value {
        Value::Null
    }
    fn load_state(&mut self, _v: &Value) -> Result<()> {
        Ok(())
    }
    /// A device snapshot carried in checkpoints (EarlyStopping's best weights).
    fn snapshot(&self) -> Option<&Snapshot> {
        None
    }
    fn load_snapshot(&mut self, _s: Snapshot) {}
}

/// Whether a smaller or a larger monitored value is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMode {
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
    /// The metric's declared direction ([`super::history::metric_direction`], after removing a
    /// `val_` prefix), as Keras 3: losses are minimized, accuracies maximized, and a metric
    /// without a direction (throughput, learning rate, ...) is refused.
    Auto,
}

impl MonitorMode {
    /// Min or Max for `monitor`; Auto without a declared direction is an error naming the
    /// callback and the metric.
    pub fn resolve(self, monitor: &str, callback: &'static str) -> Result<MonitorMode> {
        use super::history::{Direction, metric_direction};
        match self {
            MonitorMode::Auto => match metric_direction(monitor) {
                Some(Direction::Down) => Ok(MonitorMode::Min),
                Some(Direction::Up) => Ok(MonitorMode::Max),
                None => Err(Error::Callback {
                    callback,
                    what: format!(
                        "monitor {monitor:?} with mode Auto: not able to automatically determine whether that metric should be maximized or minimized; pass mode Max (train.mode = \"max\") to keep the highest value or mode Min (\"min\") to keep the lowest"
                    ),
                }),
            },
            m => Ok(m),
        }
    }
}

/// Whether `current` improves on `reference` by more than `min_delta` (Keras 3's
/// `_is_improvement`): `reference` None ("no value yet") is always improved on, whatever
/// `current` is (NaN and ±inf included); a comparison with NaN is false.
fn improves(mode: MonitorMode, min_delta: f64, current: f64, reference: Option<f64>) -> bool {
    let d = min_delta.abs();
    match reference {
        None => true,
        Some(r) if mode == MonitorMode::Max => current - d > r,
        Some(r) => current + d < r,
    }
}

/// A monitored value in JSON: null for none, a number, or "NaN" / "inf" / "-inf" (JSON
/// numbers cannot be non-finite, and a NaN best must survive a resume as a NaN).
fn value_json(v: Option<f64>) -> Value {
    match v {
        None => Value::Null,
        Some(x) if x.is_finite() => json!(x),
        Some(x) => json!(x.to_string()),
    }
}

fn value_from_json(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// Keras' `EarlyStopping`, parameter for parameter:
/// - `monitor`: a recorded metric (`val_loss`, `val_accuracy`, `loss`, ...);
/// - `min_delta`: an improvement must beat the best by more than this;
/// - `patience`: epochs without improvement before stopping;
/// - `mode`: min / max / auto (from the name);
/// - `baseline`: the counter only restarts on epochs that also beat the baseline;
/// - `restore_best_weights`: at the end of training, put back the weights of the best
///   epoch (an in-memory snapshot of the device state);
/// - `start_from_epoch`: epochs before this one are not monitored (warm-up).
///
/// The rule per monitored epoch (Keras 3): wait += 1; if there is no best yet or current
/// improves on it (current − min_delta·sign beats best), best := current, and wait := 0
/// when there is no baseline or current also beats it; otherwise, if wait ≥ patience and
/// epoch > 0, stop. `best` starts as None, so the first monitored value is taken whatever
/// it is — a first NaN stays the best, as in Keras, since nothing compares better than NaN.
/// `patience` 0 stops at the first epoch without improvement.
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    pub monitor: String,
    pub min_delta: f64,
    pub patience: u64,
    pub mode: MonitorMode,
    pub baseline: Option<f64>,
    pub restore_best_weights: bool,
    pub start_from_epoch: u64,
    /// Progress, readable after training.
    pub wait: u64,
    pub best: Option<f64>,
    pub best_epoch: Option<u64>,
    pub stopped_epoch: Option<u64>,
    best_weights: Option<Snapshot>,
}

impl EarlyStopping {
    /// Keras' defaults for everything but the monitored metric.
    pub fn new(monitor: &str) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience: 0,
            mode: MonitorMode::Auto,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            best: None,
            best_epoch: None,
            stopped_epoch: None,
            best_weights: None,
        }
    }
    /// Epochs without improvement before stopping (Keras `patience`).
    pub fn patience(mut self, p: u64) -> Self {
        self.patience = p;
        self
    }
    /// The least change that counts as an improvement (Keras `min_delta`).
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d;
        self
    }
    /// Whether the monitored value should fall or rise (Keras `mode`).
    pub fn mode(mut self, m: MonitorMode) -> Self {
        self.mode = m;
        self
    }
    /// A value the monitor must beat before any epoch counts as an improvement (Keras
    /// `baseline`): any number, ±inf included (in mode Min, +inf is beaten by every finite
    /// value and −inf by none); NaN is refused when training begins.
    pub fn baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self
    }
    /// Restore the best epoch's weights when stopping (Keras `restore_best_weights`).
    pub fn restore_best_weights(mut self, r: bool) -> Self {
        self.restore_best_weights = r;
        self
    }
    /// Epochs to wait before monitoring starts (Keras `start_from_epoch`).
    pub fn start_from_epoch(mut self, e: u64) -> Self {
        self.start_from_epoch = e;
        self
    }

    /// The decision for one epoch's monitored value: `(improved, stop)`. Pure: this is
    /// what the scripted-sequence tests drive. Errors when mode Auto cannot resolve the
    /// monitored metric's direction.
    pub fn update(&mut self, epoch: u64, current: f64) -> Result<(bool, bool)> {
        if epoch < self.start_from_epoch {
            return Ok((false, false));
        }
        let mode = self.mode.resolve(&self.monitor, "EarlyStopping")?;
        self.wait += 1;
        if improves(mode, self.min_delta, current, self.best) {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            if self
                .baseline
                .is_none_or(|b| improves(mode, self.min_delta, current, Some(b)))
            {
                self.wait = 0;
            }
            return Ok((true, false));
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            return Ok((false, true));
        }
        Ok((false, false))
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &'static str {
        "early_stopping"
    }
    fn on_train_begin(&mut self, _s: &mut Session, metrics: &[String]) -> Result<()> {
        if !metrics.contains(&self.monitor) {
            return Err(Error::Callback {
                callback: "EarlyStopping",
                what: format!(
                    "monitor {:?} is not a recorded metric; expected one of {metrics:?}",
                    self.monitor
                ),
            });
        }
        if !(self.min_delta.is_finite()) {
            return Err(Error::Hyperparameter {
                name: "early_stopping.min_delta",
                value: self.min_delta.to_string(),
                expected: "a finite value",
            });
        }
        // A NaN baseline would be beaten by nothing, silently: None is "no baseline".
        if self.baseline.is_some_and(f64::is_nan) {
            return Err(Error::Hyperparameter {
                name: "early_stopping.baseline",
                value: "NaN".into(),
                expected: "a number (±inf included), or None for no baseline",
            });
        }
        self.mode.resolve(&self.monitor, "EarlyStopping")?;
        Ok(())
    }
    fn on_epoch_end(&mut self, s: &mut Session, log: &EpochLog, _h: &History) -> Result<Control> {
        let Some(current) = log.get(&self.monitor) else {
            return Ok(Control::default());
        };
        let (improved, stop) = self.update(log.epoch, current)?;
        // As Keras: the weights of every improvement, and those of the first monitored epoch
        // when none were kept yet (one snapshot of the same weights either way).
        if self.restore_best_weights
            && log.epoch >= self.start_from_epoch
            && (improved || self.best_weights.is_none())
        {
            self.best_weights = Some(s.snapshot()?);
        }
        Ok(Control { stop, save: vec![] })
    }
    fn on_train_end(&mut self, s: &mut Session, h: &mut History) -> Result<()> {
        h.stopped_epoch = self.stopped_epoch;
        h.best_epoch = self.best_epoch;
        if self.restore_best_weights
            && let Some(w) = &self.best_weights
        {
            // Only the weights and running statistics; the step counter keeps counting.
            s.restore_keeping_step(w)?;
        }
        Ok(())
    }
    fn state(&self) -> Value {
        json!({
            "wait": self.wait,
            "best": value_json(self.best),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        })
    }
    fn load_state(&mut self, v: &Value) -> Result<()> {
        let bad = || Error::Callback {
            callback: "EarlyStopping",
            what: format!("unreadable saved state {v}"),
        };
        self.wait = v["wait"].as_u64().ok_or_else(bad)?;
        self.best = value_from_json(&v["best"]);
        self.best_epoch = v["best_epoch"].as_u64();
        self.stopped_epoch = v["stopped_epoch"].as_u64();
        Ok(())
    }
    fn snapshot(&self) -> Option<&Snapshot> {
        self.best_weights.as_ref()
    }
    fn load_snapshot(&mut self, s: Snapshot) {
        self.best_weights = Some(s);
    }
}

/// Keras' `ModelCheckpoint`: with `save_best_only`, a checkpoint at every improvement of
/// the monitored metric (to `dir/best.safetensors`; the first monitored value is always an
/// improvement, as in Keras 3); otherwise every `every` epochs (to `dir/last.safetensors`,
/// and with `keep_each` also `dir/epoch-NNNN.safetensors`, one file per saved epoch).
/// As in Keras (which formats `{epoch}` in its file path with epoch + 1), `NNNN` and
/// `every` count epochs from 1: `every(dir, 5)` saves after the 5th, 10th, … epoch, whose
/// file is `epoch-0005.safetensors` (0-based epoch 4 in the history and the metrics files).
/// Writes are atomic. Its state (the best value) is keyed by its configuration
/// ([`Callback::key`]), so a `best_only` and an `every` checkpoint in one run keep their own.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    pub dir: PathBuf,
    pub monitor: String,
    pub mode: MonitorMode,
    pub save_best_only: bool,
    pub every: u64,
    pub keep_each: bool,
    best: Option<f64>,
}

impl ModelCheckpoint {
    /// Save at every improvement of `monitor`.
    pub fn best_only(dir: impl Into<PathBuf>, monitor: &str) -> Self {
        ModelCheckpoint {
            dir: dir.into(),
            monitor: monitor.into(),
            mode: MonitorMode::Auto,
            save_best_only: true,
            every: 1,
            keep_each: false,
            best: None,
        }
    }
    /// Also keep one file per saved epoch (`every` checkpoints; otherwise only
    /// `last.safetensors` is kept).
    pub fn keep_each(mut self, k: bool) -> Self {
        self.keep_each = k;
        self
    }
    /// Save every `n` epochs.
    pub fn every(dir: impl Into<PathBuf>, n: u64) -> Self {
        ModelCheckpoint {
            dir: dir.into(),
            monitor: "loss".into(),
            mode: MonitorMode::Auto,
            save_best_only: false,
            every: n,
            keep_each: false,
            best: None,
        }
    }
}

impl Callback for ModelCheckpoint {
    fn name(&self) -> &'static str {
        "model_checkpoint"
    }
    fn key(&self) -> String {
        if self.save_best_only {
            format!("model_checkpoint:best:{}", self.monitor)
        } else {
            format!("model_checkpoint:every:{}", self.every)
        }
    }
    fn on_train_begin(&mut self, _s: &mut Session, metrics: &[String]) -> Result<()> {
        if self.every == 0 {
            return Err(Error::Hyperparameter {
                name: "model_checkpoint.every",
                value: "0".into(),
                expected: ">= 1",
            });
        }
        if self.save_best_only {
            if !metrics.contains(&self.monitor) {
                return Err(Error::Callback {
                    callback: "ModelCheckpoint",
                    what: format!(
                        "monitor {:?} is not a recorded metric; expected one of {metrics:?}",
                        self.monitor
                    ),
                });
            }
            self.mode.resolve(&self.monitor, "ModelCheckpoint")?;
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        // What a write killed before its rename left behind (a crash, `kill -9`).
        crate::fs::remove_stale_temporaries(&self.dir)?;
        Ok(())
    }
    fn on_epoch_end(&mut self, _s: &mut Session, log: &EpochLog, _h: &History) -> Result<Control> {
        let mut save = vec![];
        if self.save_best_only {
            if let Some(v) = log.get(&self.monitor) {
                let mode = self.mode.resolve(&self.monitor, "ModelCheckpoint")?;
                if improves(mode, 0.0, v, self.best) {
                    self.best = Some(v);
                    save.push(self.dir.join("best.safetensors"));
                }
            }
        } else if (log.epoch + 1).is_multiple_of(self.every) {
            if self.keep_each {
                save.push(
                    self.dir
                        .join(format!("epoch-{:04}.safetensors", log.epoch + 1)),
                );
            }
            save.push(self.dir.join("last.safetensors"));
        }
        Ok(Control { stop: false, save })
    }
    fn state(&self) -> Value {
        json!({ "best": value_json(self.best) })
    }
    fn load_state(&mut self, v: &Value) -> Result<()> {
        self.best = value_from_json(&v["best"]);
        Ok(())
    }
}

/// Stop with [`Error::NonFinite`] when any recorded metric of an epoch is NaN or infinite
/// (the step-level guard in `Session::take_metrics` catches the training loss and gradient
/// norm earlier). Checkpoints written before stay as they are.
#[derive(Clone, Debug, Default)]
pub struct TerminateOnNan;

impl Callback for TerminateOnNan {
    fn name(&self) -> &'static str {
        "terminate_on_nan"
    }
    fn on_epoch_end(&mut self, s: &mut Session, log: &EpochLog, _h: &History) -> Result<Control> {
        if let Some((k, v)) = log.values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!(
                    "{k} at the end of epoch {} (0-based; printed as Epoch {})",
                    log.epoch,
                    log.epoch + 1
                ),
                value: *v as f32,
                step: s.step(),
            });
        }
        Ok(Control::default())
    }
}

/// Keras' `ReduceLROnPlateau`: when `monitor` has not improved for `patience` epochs,
/// multiply the learning rate by `factor` (not below `min_lr`), then wait `cooldown`
/// epochs before counting again. Keras 3's rule per epoch: in cooldown, count it down and
/// reset the wait; if current improves on the best (`current < best − min_delta` for Min,
/// `current > best + min_delta` for Max), best := current and wait := 0; otherwise, out
/// of cooldown, wait += 1 and at `patience` the rate becomes `max(lr·factor, min_lr)`
/// (when lr > min_lr), cooldown restarts and wait := 0. With a per-step schedule the
/// schedule's base rate is what is reduced. The reduced rate, the best value and the
/// counters are carried in checkpoints, so a resumed run reduces exactly as one never
/// stopped.
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    pub monitor: String,
    pub factor: f32,
    pub patience: u64,
    pub mode: MonitorMode,
    pub min_delta: f64,
    pub cooldown: u64,
    pub min_lr: f32,
    best: Option<f64>,
    wait: u64,
    cooldown_counter: u64,
    /// The rate set by the last reduction (re-applied on resume).
    lr: Option<f32>,
}

impl ReduceLrOnPlateau {
    /// Keras' defaults: factor 0.1, patience 10, mode auto, min_delta 1e-4, cooldown 0,
    /// min_lr 0.
    pub fn new(monitor: &str) -> Self {
        ReduceLrOnPlateau {
            monitor: monitor.into(),
            factor: 0.1,
            patience: 10,
            mode: MonitorMode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            best: None,
            wait: 0,
            cooldown_counter: 0,
            lr: None,
        }
    }

    /// The factor the rate is multiplied by, in (0, 1).
    pub fn factor(mut self, factor: f32) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before a reduction.
    pub fn patience(mut self, patience: u64) -> Self {
        self.patience = patience;
        self
    }

    /// Min, max or the metric's own direction.
    pub fn mode(mut self, mode: MonitorMode) -> Self {
        self.mode = mode;
        self
    }

    /// The least change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// Epochs after a reduction before counting again.
    pub fn cooldown(mut self, cooldown: u64) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The rate never goes below this.
    pub fn min_lr(mut self, min_lr: f32) -> Self {
        self.min_lr = min_lr;
        self
    }
}

impl Callback for ReduceLrOnPlateau {
    fn name(&self) -> &'static str {
        "reduce_lr_on_plateau"
    }

    fn on_train_begin(&mut self, s: &mut Session, metrics: &[String]) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::Callback {
                callback: "ReduceLROnPlateau",
                what: format!(
                    "factor {}: expected 0 < factor < 1 (Keras refuses factor >= 1)",
                    self.factor
                ),
            });
        }
        if !self.min_delta.is_finite() {
            return Err(Error::Hyperparameter {
                name: "reduce_lr_on_plateau.min_delta",
                value: self.min_delta.to_string(),
                expected: "a finite value",
            });
        }
        if !(self.min_lr >= 0.0 && self.min_lr.is_finite()) {
            return Err(Error::Hyperparameter {
                name: "reduce_lr_on_plateau.min_lr",
                value: self.min_lr.to_string(),
                expected: "a finite rate >= 0",
            });
        }
        if !metrics.contains(&self.monitor) {
            return Err(Error::Callback {
                callback: "ReduceLROnPlateau",
                what: format!(
                    "monitor {:?} is not recorded (recorded: {})",
                    self.monitor,
                    metrics.join(", ")
                ),
            });
        }
        self.mode = self.mode.resolve(&self.monitor, "ReduceLROnPlateau")?;
        if let Some(lr) = self.lr {
            s.set_lr(lr)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, s: &mut Session, log: &EpochLog, _h: &History) -> Result<Control> {
        let Some(current) = log.get(&self.monitor) else {
            return Ok(Control::default());
        };
        let d = self.min_delta.abs();
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        let better = match (self.best, self.mode) {
            (None, _) => true,
            (Some(b), MonitorMode::Max) => current > b + d,
            (Some(b), _) => current < b - d,
        };
        if better {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = s.optimizer().lr();
                if old > self.min_lr {
                    let new = (old * self.factor).max(self.min_lr);
                    s.set_lr(new)?;
                    self.lr = Some(new);
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(Control::default())
    }

    fn state(&self) -> Value {
        json!({
            "best": value_json(self.best),
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "lr": self.lr,
        })
    }

    fn load_state(&mut self, v: &Value) -> Result<()> {
        self.best = value_from_json(&v["best"]);
        self.wait = v["wait"].as_u64().unwrap_or(0);
        self.cooldown_counter = v["cooldown_counter"].as_u64().unwrap_or(0);
        self.lr = v["lr"].as_f64().map(|x| x as f32);
        Ok(())
    }
}

/// Keras' `CSVLogger`: one row per epoch with `epoch` (0-based, as Keras writes it) and
/// every metric of the epoch, columns in sorted order fixed by the first row (a metric
/// missing later is written `NA`, as Keras does), through the `csv` crate, values in the
/// shortest form that reads back to the same number.
///
/// Without `append` (the default) the file is rewritten whole from the run's
/// [`History`] after every epoch, atomically (a temporary file renamed over it), so a
/// killed or resumed run leaves exactly one row per finished epoch. With `append`, rows
/// are appended after what the file already holds (Keras' `append=True`: a new run
/// continues an old file; no header when the file is not empty).
#[derive(Clone, Debug)]
pub struct CsvLogger {
    pub path: PathBuf,
    pub separator: u8,
    pub append: bool,
    columns: Option<Vec<String>>,
}

impl CsvLogger {
    /// A logger writing `path` with `,` between fields, rewriting the file (Keras'
    /// defaults).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger {
            path: path.into(),
            separator: b',',
            append: false,
            columns: None,
        }
    }

    /// The field separator (one byte, e.g. `b';'` or `b'\t'`).
    pub fn separator(mut self, sep: u8) -> Self {
        self.separator = sep;
        self
    }

    /// Append to the file instead of rewriting it.
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    fn row(&self, log: &EpochLog, columns: &[String]) -> Vec<String> {
        std::iter::once(log.epoch.to_string())
            .chain(columns.iter().map(|k| {
                log.get(k)
                    .map_or("NA".to_string(), super::history::shortest)
            }))
            .collect()
    }

    fn encode(&self, rows: &[Vec<String>]) -> Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.separator)
            .from_writer(vec![]);
        for r in rows {
            w.write_record(r)
                .map_err(|e| Error::io(&self.path, e.into()))?;
        }
        w.into_inner()
            .map_err(|e| Error::io(&self.path, std::io::Error::other(e.to_string())))
    }
}

impl Callback for CsvLogger {
    fn name(&self) -> &'static str {
        "csv_logger"
    }

    fn key(&self) -> String {
        format!("csv_logger:{}", self.path.display())
    }

    fn on_train_begin(&mut self, _s: &mut Session, _metrics: &[String]) -> Result<()> {
        if self.separator == b'"' || self.separator == b'\n' || self.separator == b'\r' {
            return Err(Error::Callback {
                callback: "CSVLogger",
                what: format!(
                    "separator {:?}: expected a byte other than a quote or a line break",
                    self.separator as char
                ),
            });
        }
        if let Some(d) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            crate::fs::remove_stale_temporaries(d)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _s: &mut Session, log: &EpochLog, h: &History) -> Result<Control> {
        let columns = self
            .columns
            .get_or_insert_with(|| {
                h.epochs
                    .first()
                    .unwrap_or(log)
                    .values
                    .keys()
                    .cloned()
                    .collect()
            })
            .clone();
        let header: Vec<String> = std::iter::once("epoch".to_string())
            .chain(columns.iter().cloned())
            .collect();
        if self.append {
            let fresh = std::fs::metadata(&self.path).map_or(true, |m| m.len() == 0);
            let mut rows = vec![];
            if fresh {
                rows.push(header);
            }
            rows.push(self.row(log, &columns));
            let bytes = self.encode(&rows)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| Error::io(&self.path, e))?;
            std::io::Write::write_all(&mut f, &bytes).map_err(|e| Error::io(&self.path, e))?;
        } else {
            let rows: Vec<Vec<String>> = std::iter::once(header)
                .chain(h.epochs.iter().map(|e| self.row(e, &columns)))
                .collect();
            crate::fs::write_atomic(&self.path, &self.encode(&rows)?)?;
        }
        Ok(Control::default())
    }

    fn state(&self) -> Value {
        json!({ "columns": self.columns })
    }

    fn load_state(&mut self, v: &Value) -> Result<()> {
        self.columns = v["columns"].as_array().map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        });
        Ok(())
    }
}
