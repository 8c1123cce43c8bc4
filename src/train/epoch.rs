//! The epoch loop over a [`Session`]: shuffled mini-batches (the short last batch included
//! unless `drop_last`), device metrics read without waiting, progress display, and
//! evaluation in inference mode.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::interrupt;
use crate::data::{Dataset, HeldOut};
use crate::error::{Error, Result};
use crate::plan::Mode;
use crate::session::{Metrics, Session};

/// How one epoch is run.
#[derive(Clone, Debug)]
pub struct EpochConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    /// Read device metrics every this many steps (the only waits in an epoch).
    pub log_every: usize,
    /// Show a progress bar (on standard error). Default: when standard error is a
    /// terminal, as Keras' `verbose="auto"`.
    pub progress: bool,
    /// Batches of this epoch already trained (resuming an interrupted epoch).
    pub skip_batches: usize,
    /// The metrics of those batches (resuming an interrupted epoch): the epoch's totals
    /// start from them, so it reports what an uninterrupted epoch would.
    pub carry: Option<Metrics>,
    /// The run's number of epochs, shown in the progress bar as Keras does ("Epoch k/N",
    /// k = the 0-based epoch + 1); None shows "Epoch k".
    pub epochs: Option<u64>,
}

impl Default for EpochConfig {
    fn default() -> Self {
        EpochConfig {
            batch_size: 128,
            shuffle: true,
            drop_last: false,
            log_every: 50,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            skip_batches: 0,
            carry: None,
            epochs: None,
        }
    }
}

/// The outcome of one training epoch.
#[derive(Clone, Copy, Debug)]
pub struct EpochStats {
    pub metrics: Metrics,
    pub seconds: f64,
    pub samples_per_sec: f64,
    /// Batches of the epoch done when it ended: all of them, or fewer after a Ctrl-C.
    pub batches_done: usize,
    pub interrupted: bool,
    /// Samples of a short last batch left out of this epoch because a batch-norm layer
    /// would have seen one value per channel in it (a last batch of one sample; see
    /// [`Session::trainable_batch`]). The order is reshuffled every epoch, so a
    /// different sample is left out each time.
    pub dropped_samples: usize,
}

fn bar(n: u64, show: bool, msg: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(n);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// What [`train_epoch_with`] reports while it runs.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A step is about to be submitted (steps taken so far).
    BatchBegin { step: u64 },
    /// A step was submitted (global step number after it).
    Batch { step: u64 },
    /// Device metrics were read: those of the steps since the previous read. Reads start
    /// every `log_every` steps and are collected, without waiting, `log_every` steps later;
    /// `step` is the step count at the start.
    Interval { step: u64, metrics: Metrics },
}

/// Train one epoch over `ds` in a seeded order (`seed`, `epoch`).
pub fn train_epoch(
    s: &mut Session,
    ds: &Dataset,
    cfg: &EpochConfig,
    seed: u64,
    epoch: u64,
) -> Result<EpochStats> {
    train_epoch_with(s, ds, cfg, seed, epoch, &mut |_| Ok(()))
}

/// [`train_epoch`] with a hook called after every step and every metrics read.
pub fn train_epoch_with(
    s: &mut Session,
    ds: &Dataset,
    cfg: &EpochConfig,
    seed: u64,
    epoch: u64,
    hook: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<EpochStats> {
    let bsz = cfg.batch_size;
    if bsz == 0 {
        return Err(Error::Hyperparameter {
            name: "batch_size",
            value: "0".into(),
            expected: ">= 1",
        });
    }
    if cfg.drop_last && bsz > ds.len() {
        return Err(Error::Hyperparameter {
            name: "batch_size",
            value: bsz.to_string(),
            expected: "<= the dataset size with drop_last",
        });
    }
    ds.check_shape()?;
    let order = ds.epoch_order(seed, epoch, cfg.shuffle);
    s.set_epoch(epoch);
    let mut n_batches = if cfg.drop_last {
        ds.len() / bsz
    } else {
        ds.len().div_ceil(bsz)
    };
    // A last batch a batch-norm layer cannot train on (one value per channel) is left
    // out, as drop_last would (PyTorch refuses it with an error).
    let mut dropped_samples = 0;
    let rest = ds.len() % bsz;
    if !cfg.drop_last && rest > 0 && s.trainable_batch(rest).is_err() {
        n_batches -= 1;
        dropped_samples = rest;
    }
    if n_batches == 0 {
        return Err(Error::Empty {
            what: format!(
                "an epoch over the training set ({} sample(s) at batch {bsz}{})",
                ds.len(),
                if dropped_samples > 0 {
                    ", the only batch left out: batch norm needs more than 1 value per channel"
                } else {
                    ""
                }
            ),
            expected: "at least one batch to train on".into(),
        });
    }
    // Printed as Keras prints it: 1-based.
    let label = match cfg.epochs {
        Some(n) => format!("Epoch {}/{n}", epoch + 1),
        None => format!("Epoch {}", epoch + 1),
    };
    let pb = bar(n_batches as u64, cfg.progress, &label);
    let f = ds.features;
    let tw = ds.width();
    let (mut xb, mut yb) = (Vec::with_capacity(bsz * f), Vec::with_capacity(bsz * tw));
    let mut wb = Vec::with_capacity(if ds.weights.is_some() { bsz } else { 0 });
    let t0 = Instant::now();
    let mut total = cfg.carry.unwrap_or_default();
    let merge = |t: &mut Metrics, m: Metrics| {
        let n = (t.samples + m.samples).max(1) as f32;
        let w = (t.weight + m.weight).max(f32::MIN_POSITIVE);
        t.loss = (t.loss * t.weight + m.loss * m.weight) / w;
        t.accuracy = (t.accuracy * t.samples as f32 + m.accuracy * m.samples as f32) / n;
        t.mae = (t.mae * t.samples as f32 + m.mae * m.samples as f32) / n;
        t.samples += m.samples;
        t.weight += m.weight;
        t.steps += m.steps;
        t.grad_norm = m.grad_norm;
        t.penalty = m.penalty;
        t.loss_scale = m.loss_scale;
        t.skipped_steps = m.skipped_steps;
    };
    let mut batches_done = n_batches;
    let mut interrupted = false;
    for bi in cfg.skip_batches.min(n_batches)..n_batches {
        if interrupt::interrupted() {
            batches_done = bi;
            interrupted = true;
            break;
        }
        let idx = &order[bi * bsz..((bi + 1) * bsz).min(ds.len())];
        xb.clear();
        yb.clear();
        wb.clear();
        for &i in idx {
            xb.extend_from_slice(&ds.x[i * f..(i + 1) * f]);
            yb.extend_from_slice(&ds.y[i * tw..(i + 1) * tw]);
            if let Some(w) = &ds.weights {
                wb.push(w[i]);
            }
        }
        hook(Event::BatchBegin { step: s.step() })?;
        // A bad label or input is named by its row in the dataset, not in the batch.
        let w = ds.weights.as_ref().map(|_| &wb[..]);
        s.train_batch_weighted(&xb, &yb, w)
            .map_err(|e| e.in_data("the training set", |r| idx[r]))?;
        hook(Event::Batch { step: s.step() })?;
        if (bi + 1) % cfg.log_every.max(1) == 0 {
            // Asynchronous: collect the read started one interval ago (long done), then
            // start the next one; the device never waits for the host here.
            if let Some((step, m)) = s.finish_metrics()? {
                merge(&mut total, m);
                hook(Event::Interval { step, metrics: m })?;
                pb.set_message(format!(
                    "{label} loss {:.4} acc {:.4} {:.0} samples/s",
                    total.loss,
                    total.accuracy,
                    total.samples as f64 / t0.elapsed().as_secs_f64()
                ));
            }
            s.start_metrics(Mode::Train)?;
        }
        pb.inc(1);
    }
    if let Some((step, m)) = s.finish_metrics()? {
        merge(&mut total, m);
        hook(Event::Interval { step, metrics: m })?;
    }
    let m = s.take_metrics(Mode::Train)?; // waits for the last step
    merge(&mut total, m);
    if m.steps > 0 {
        hook(Event::Interval {
            step: s.step(),
            metrics: m,
        })?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    Ok(EpochStats {
        metrics: total,
        seconds,
        samples_per_sec: total.samples as f64 / seconds,
        batches_done,
        interrupted,
        dropped_samples,
    })
}

/// Evaluate (inference mode) over the whole dataset in order, in batches of at most
/// `batch_size` (and at most the session's maximum batch).
pub fn evaluate(s: &mut Session, ds: &Dataset, batch_size: usize) -> Result<Metrics> {
    if batch_size == 0 {
        return Err(Error::Hyperparameter {
            name: "batch_size",
            value: "0".into(),
            expected: ">= 1",
        });
    }
    ds.check_shape()?;
    if ds.is_empty() {
        return Err(Error::Empty {
            what: "the dataset to evaluate".into(),
            expected: "at least one sample (an accuracy over 0 samples means nothing)".into(),
        });
    }
    let batch_size = batch_size.min(s.layout().max_batch);
    // Non-finite parameters or running statistics would give a wrong answer silently (a
    // ReLU maps NaN to 0): named here, once per evaluation (one readback).
    s.check_finite_parameters()?;
    let (f, tw) = (ds.features, ds.width());
    for start in (0..ds.len()).step_by(batch_size) {
        let end = (start + batch_size).min(ds.len());
        let w = ds.weights.as_ref().map(|w| &w[start..end]);
        s.eval_batch_weighted(&ds.x[start * f..end * f], &ds.y[start * tw..end * tw], w)
            .map_err(|e| e.in_data("the evaluated set", |r| start + r))?;
    }
    s.take_metrics(Mode::Eval)
}

/// Evaluate a held-out test set once, as [`evaluate`] (consumes the test set, so it cannot
/// be evaluated twice by accident).
pub fn evaluate_held_out(s: &mut Session, held_out: HeldOut, batch_size: usize) -> Result<Metrics> {
    evaluate(s, &held_out.into_dataset(), batch_size)
}
