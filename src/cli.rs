//! What the `shadeprop` command does, as library functions (so that it is tested like the
//! rest): one training run from a [`RunConfig`] into an output folder, evaluation and
//! prediction from a checkpoint, sweeps (grid and random search over any config field),
//! and the merge of trial folders into one table, plots, a single test-set evaluation of the
//! chosen trial, and a bias/variance diagnosis.
//!
//! A run folder holds `config.toml` (every field), `metrics.csv` / `metrics.jsonl`,
//! `curves.png` / `.svg`, `checkpoints/best.safetensors` and `result.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{RunConfig, set_path};
use crate::data::folder::{FolderOptions, load_image_folder};
use crate::data::{Dataset, Standardizer, load_mnist};
use crate::diagnose::{Diagnosis, diagnose};
use crate::error::{Error, Result};
use crate::nn::Layer;
use crate::optim::LrSchedule;
use crate::rng::Rng;
use crate::session::{Metrics, Session};
use crate::train::callbacks::{Callback, EarlyStopping, ModelCheckpoint, TerminateOnNan};
use crate::train::fit::{FitConfig, Trainer};
use crate::train::{EpochConfig, evaluate};

/// Training, validation and test data of a config, standardized as the run needs.
pub struct Prepared {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    /// (channels, height, width)
    pub image: (usize, usize, usize),
    pub stdz: Standardizer,
}

/// Load the data of `cfg`: the training file split (seeded) into training and validation,
/// standardization fitted on the training split only and applied to all three (or, with
/// augmentation, done by the model's first layer after augmenting).
pub fn prepare(cfg: &RunConfig) -> Result<Prepared> {
    let d = &cfg.data;
    let (full, test, image) = match d.dataset.as_str() {
        "folder" => {
            check_image_size(cfg)?;
            let opts = FolderOptions {
                height: d.image_size[0] as u32,
                width: d.image_size[1] as u32,
                rgb: d.channels == 3,
            };
            let (all, _names) = load_image_folder(&d.dir, opts)?;
            // No separate test folder: hold out 10% of the images (seeded) as the test set.
            let (rest, test) = all.split(0.1, cfg.seed ^ 0x7e57)?;
            (rest, test, (d.channels, d.image_size[0], d.image_size[1]))
        }
        _ => {
            let image = idx_image(cfg)?;
            let (a, t) = load_mnist(&d.dir)?;
            (a, t, image)
        }
    };
    let full = if d.train_limit > 0 {
        full.take(d.train_limit)?
    } else {
        full
    };
    let (mut train, mut val) = full.split(d.val_fraction, cfg.seed)?;
    let mut test = test;
    let stdz = Standardizer::fit(&train)?;
    if cfg.augment.is_none() {
        stdz.apply(&mut train)?;
        stdz.apply(&mut val)?;
        stdz.apply(&mut test)?;
    }
    Ok(Prepared {
        train,
        val,
        test,
        image,
        stdz,
    })
}

/// The image size of the IDX files of `cfg` (1, rows, cols), read from their headers: the
/// training and test images must have one size, and the presets take 28×28; an error names
/// the file and both sizes.
fn idx_image(cfg: &RunConfig) -> Result<(usize, usize, usize)> {
    let (train, h, w) = crate::data::idx_image_size(&cfg.data.dir, "train")?;
    let (test, th, tw) = crate::data::idx_image_size(&cfg.data.dir, "t10k")?;
    if (th, tw) != (h, w) {
        return Err(Error::Idx {
            path: test,
            what: format!(
                "images are {th}×{tw}, but the training images ({}) are {h}×{w}",
                train.display()
            ),
        });
    }
    let preset = &cfg.model.preset;
    if preset != "mlp" && (h, w) != (28, 28) {
        return Err(Error::Idx {
            path: train,
            what: format!(
                "images are {h}×{w}, but model.preset {preset:?} takes 28×28 images (model.preset = \"mlp\" takes any size)"
            ),
        });
    }
    Ok((1, h, w))
}

/// `data.image_size` × `data.channels` of an image folder: one image's values must fit the
/// kernels' element counts and its bytes the host's memory, and a first layer on it must
/// be possible (at most 2^24 parameters), checked before any image is decoded.
fn check_image_size(cfg: &RunConfig) -> Result<()> {
    use crate::limits::{MAX_ELEMENTS, MAX_PARAMS, f32_bytes, host_memory_bytes, product};
    let d = &cfg.data;
    let f = product(&[d.channels, d.image_size[0], d.image_size[1]]);
    let bytes = f.and_then(f32_bytes);
    if f.is_none_or(|f| f > MAX_ELEMENTS || f >= MAX_PARAMS)
        || bytes.is_none_or(|b| b > host_memory_bytes())
    {
        return Err(Error::too_large(
            "data.image_size",
            format!("{:?} × {} channel(s)", d.image_size, d.channels),
            bytes,
            format!(
                "images whose values fit a first layer of at most 2^24 parameters (fewer than {MAX_PARAMS} values), and one image in the host's memory"
            ),
        ));
    }
    Ok(())
}

/// The parameter count of a `model.preset = "mlp"` config on `features` inputs and
/// `classes` outputs, checked: an error names `model.hidden` with the bytes when it would
/// exceed 2^24 parameters or overflow.
fn check_hidden(cfg: &RunConfig, features: usize, classes: usize) -> Result<()> {
    let m = &cfg.model;
    if m.preset != "mlp" {
        return Ok(());
    }
    let mut total = Some(0usize);
    let mut prev = features;
    for (i, &w) in m.hidden.iter().chain([&classes]).enumerate() {
        // Weights and bias, and on hidden layers with batch norm gamma and beta.
        let bn = if m.batch_norm && i < m.hidden.len() {
            2
        } else {
            0
        };
        total = total.and_then(|t| t.checked_add(prev.checked_add(1 + bn)?.checked_mul(w)?));
        prev = w;
    }
    if total.is_none_or(|t| t > crate::limits::MAX_PARAMS) {
        return Err(Error::too_large(
            "model.hidden",
            format!("{:?} on {features} inputs", m.hidden),
            total.and_then(crate::limits::f32_bytes),
            format!(
                "at most {} (2^24) parameters in the model",
                crate::limits::MAX_PARAMS
            ),
        ));
    }
    Ok(())
}

/// A session for `cfg` on its backend: the model (with the augmentation layer first when
/// configured), optimizer, regularizer and learning-rate schedule.
pub fn session(cfg: &RunConfig, p: &Prepared, announce: bool) -> Result<Session> {
    let (backend, why) = crate::backend::open(&cfg.backend)?;
    if announce {
        println!("{why}\nbackend: {}", backend.describe());
    }
    let (c, h, w) = p.image;
    check_hidden(cfg, c * h * w, p.train.classes.max(2))?;
    let mut model = cfg.model(p.image, p.train.classes.max(2))?;
    if let Some(aug) = cfg.augment(p.stdz.mean, p.stdz.std) {
        model.layers.insert(0, Layer::Augment(aug));
        model.image = Some(p.image);
    }
    let graph = model.build()?;
    let mut s = Session::with_precision(
        backend,
        graph,
        cfg.optimizer()?,
        cfg.seed,
        cfg.train.batch,
        cfg.precision(),
    )
    .map_err(|e| match e {
        // The session's maximum batch is this config's train.batch.
        Error::TooLarge {
            name,
            value,
            needs,
            expected,
        } if name == "max_batch" => Error::TooLarge {
            name: "train.batch".into(),
            value,
            needs,
            expected,
        },
        e => e,
    })?;
    s.set_regularizer(cfg.regularizer()?)?;
    if cfg.optimizer.schedule == "cosine" {
        s.set_schedule(LrSchedule::cosine_over_epochs(
            p.train.len(),
            cfg.train.batch,
            cfg.train.epochs,
        ))?;
    }
    Ok(s)
}

/// What a run leaves in `result.json`: errors are those of the best epoch's weights
/// (restored), the training error measured in inference mode (no dropout), as the
/// bias/variance analysis wants.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub name: String,
    /// The swept fields and their values (empty for a single run).
    pub params: BTreeMap<String, String>,
    pub best_epoch: Option<u64>,
    pub epochs_run: u64,
    pub stopped_epoch: Option<u64>,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Validation error − training error.
    pub gap: f64,
    pub seconds: f64,
    /// Only for the one trial evaluated on the test set.
    pub test_accuracy: Option<f64>,
}

fn write(path: &Path, text: &str) -> Result<()> {
    crate::train::checkpoint::write_atomic(path, text.as_bytes())
}

/// Train `cfg` into `out` (created). `params` names the swept values (for sweeps).
pub fn train(
    cfg: &RunConfig,
    out: &Path,
    params: BTreeMap<String, String>,
    quiet: bool,
) -> Result<RunResult> {
    cfg.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write(&out.join("config.toml"), &cfg.to_toml())?;
    let p = prepare(cfg)?;
    let mut s = session(cfg, &p, !quiet)?;
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
        seed: cfg.seed,
        log_dir: Some(out.to_path_buf()),
        log_steps: false,
        standardizer: Some(p.stdz.into()),
        interrupt_checkpoint: Some(out.join("checkpoints").join("interrupt.safetensors")),
        verbose: !quiet,
    };
    let val = (!p.val.is_empty()).then_some(&p.val);
    let t = &cfg.train;
    let mut early = EarlyStopping::new(&t.monitor)
        .patience(t.patience)
        .min_delta(t.min_delta)
        .mode(cfg.monitor_mode())
        .restore_best_weights(t.restore_best_weights)
        .start_from_epoch(t.start_from_epoch);
    if t.baseline.is_finite() {
        early = early.baseline(t.baseline);
    }
    let mut best = ModelCheckpoint::best_only(out.join("checkpoints"), &t.monitor);
    best.mode = cfg.monitor_mode();
    let mut nan = TerminateOnNan;
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut nan, &mut best];
    if t.early_stopping {
        callbacks.insert(0, &mut early);
    }
    let t0 = Instant::now();
    let h = Trainer::new(fit).fit(&mut s, &p.train, val, &mut callbacks)?;
    let seconds = t0.elapsed().as_secs_f64();
    // Errors of the final weights (the best epoch's when restored), in inference mode.
    let tr = evaluate(&mut s, &p.train, 1000)?;
    let va = if p.val.is_empty() {
        Metrics::default()
    } else {
        evaluate(&mut s, &p.val, 1000)?
    };
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
        gap: (1.0 - va.accuracy as f64) - (1.0 - tr.accuracy as f64),
        seconds,
        test_accuracy: None,
    };
    write(
        &out.join("result.json"),
        &serde_json::to_string_pretty(&r).unwrap_or_default(),
    )?;
    Ok(r)
}

/// The `result.json` of a run folder.
pub fn read_result(dir: &Path) -> Result<RunResult> {
    let path = dir.join("result.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.clone(),
        msg: format!("not a run result: {e}"),
    })
}

/// A session with the weights of `checkpoint`, and the data of `cfg`.
pub fn restore(cfg: &RunConfig, checkpoint: &Path) -> Result<(Session, Prepared)> {
    let p = prepare(cfg)?;
    let mut s = session(cfg, &p, false)?;
    crate::train::checkpoint::load(checkpoint, &mut s)?;
    Ok((s, p))
}

/// Loss and accuracy of a checkpoint on a split (`train`, `val` or `test`).
pub fn eval_checkpoint(cfg: &RunConfig, checkpoint: &Path, split: &str) -> Result<Metrics> {
    let (mut s, p) = restore(cfg, checkpoint)?;
    let ds = match split {
        "train" => &p.train,
        "val" => &p.val,
        "test" => &p.test,
        other => {
            return Err(Error::Hyperparameter {
                name: "split",
                value: other.into(),
                expected: "train, val or test",
            });
        }
    };
    if ds.is_empty() {
        return Err(Error::Empty {
            what: format!("the {split} split of {}", cfg.data.dir.display()),
            expected: match split {
                "val" => "a validation split (data.val_fraction > 0) with at least one image",
                _ => "at least one image to evaluate",
            }
            .into(),
        });
    }
    evaluate(&mut s, ds, 1000)
}

/// The config saved beside a checkpoint (`<run>/config.toml` for `<run>/checkpoints/x`).
pub fn config_beside(checkpoint: &Path) -> Result<RunConfig> {
    let run = checkpoint
        .parent()
        .and_then(|d| d.parent())
        .unwrap_or(Path::new("."));
    RunConfig::load(&run.join("config.toml"))
}

// ---------------------------------------------------------------------------------------
// Sweeps

/// How a swept field takes its values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ParamSpec {
    /// Explicit values (grid search; random search picks among them).
    Values(Vec<toml::Value>),
    /// A range for random search.
    Range(RangeSpec),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    /// Log-uniform in [lo, hi] (learning rates, lambdas).
    pub log_uniform: Option<[f64; 2]>,
    /// Uniform in [lo, hi].
    pub uniform: Option<[f64; 2]>,
}

/// A sweep file: a base run config, the method, and the fields to vary.
///
/// ```toml
/// method = "grid"            # grid | random
/// trials = 9                 # random: how many
/// seed = 0                   # random: which draws
/// out = "runs/sweep"
/// baseline_error = 0.0       # for the diagnosis (e.g. human-level error)
/// tolerance = 0.02           # a bias or variance above this is "high"
///
/// [base]                     # a run config (same schema as `shadeprop train`)
/// data.train_limit = 5000
///
/// [params]
/// "regularizer.lambda" = [0.0, 1.0, 10.0]
/// "model.dropout" = [0.0, 0.25, 0.5]
/// "optimizer.lr" = { log_uniform = [0.001, 0.1] }   # random search only
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    #[serde(default = "grid")]
    pub method: String,
    #[serde(default)]
    pub trials: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "sweep_out")]
    pub out: PathBuf,
    #[serde(default)]
    pub baseline_error: f64,
    #[serde(default = "tolerance")]
    pub tolerance: f64,
    #[serde(default)]
    pub base: toml::Table,
    pub params: BTreeMap<String, ParamSpec>,
}

fn grid() -> String {
    "grid".into()
}
fn sweep_out() -> PathBuf {
    PathBuf::from("runs/sweep")
}
fn tolerance() -> f64 {
    0.02
}

impl SweepConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    }
}

/// One planned trial.
#[derive(Clone, Debug)]
pub struct Trial {
    pub name: String,
    pub params: BTreeMap<String, String>,
    pub config: RunConfig,
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The trials of a sweep, each config checked (an unknown swept key is an error here,
/// before anything runs).
pub fn plan(sw: &SweepConfig) -> Result<Vec<Trial>> {
    let bad = |value: String, expected: &'static str| Error::Hyperparameter {
        name: "sweep",
        value,
        expected,
    };
    if sw.params.is_empty() {
        return Err(bad("no [params]".into(), "at least one swept field"));
    }
    let mut assignments: Vec<Vec<(String, toml::Value)>> = vec![];
    match sw.method.as_str() {
        "grid" => {
            let mut acc: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
            for (k, spec) in &sw.params {
                let ParamSpec::Values(vals) = spec else {
                    return Err(bad(
                        format!("{k} is a range"),
                        "explicit value lists for grid search (ranges need method = \"random\")",
                    ));
                };
                if vals.is_empty() {
                    return Err(bad(format!("{k} = []"), "at least one value"));
                }
                acc = acc
                    .into_iter()
                    .flat_map(|a| {
                        vals.iter().map(move |v| {
                            let mut a = a.clone();
                            a.push((k.clone(), v.clone()));
                            a
                        })
                    })
                    .collect();
            }
            assignments = acc;
        }
        "random" => {
            if sw.trials == 0 {
                return Err(bad("trials = 0".into(), "trials >= 1 for random search"));
            }
            let rng = Rng::new(sw.seed);
            for t in 0..sw.trials {
                let mut a = vec![];
                for (pi, (k, spec)) in sw.params.iter().enumerate() {
                    let u = rng.uniform(7, pi as u32, t as u32) as f64;
                    let v = match spec {
                        ParamSpec::Values(vals) if !vals.is_empty() => {
                            // An exact integer draw (no bias towards some values).
                            let i = rng.below(7, pi as u32, t as u32, vals.len() as u32);
                            vals[i as usize].clone()
                        }
                        ParamSpec::Values(_) => {
                            return Err(bad(format!("{k} = []"), "at least one value"));
                        }
                        ParamSpec::Range(RangeSpec {
                            log_uniform: Some([lo, hi]),
                            uniform: None,
                        }) if *lo > 0.0 && hi >= lo => {
                            toml::Value::Float((lo.ln() + u * (hi.ln() - lo.ln())).exp())
                        }
                        ParamSpec::Range(RangeSpec {
                            uniform: Some([lo, hi]),
                            log_uniform: None,
                        }) if hi >= lo => toml::Value::Float(lo + u * (hi - lo)),
                        _ => {
                            return Err(bad(
                                format!("{k}: {spec:?}"),
                                "a list of values, { log_uniform = [lo > 0, hi >= lo] } or { uniform = [lo, hi >= lo] }",
                            ));
                        }
                    };
                    a.push((k.clone(), v));
                }
                assignments.push(a);
            }
        }
        other => return Err(bad(format!("method = {other:?}"), "grid or random")),
    }
    let mut trials = vec![];
    for (i, a) in assignments.into_iter().enumerate() {
        let mut table = sw.base.clone();
        let mut params = BTreeMap::new();
        for (k, v) in a {
            params.insert(k.clone(), show(&v));
            set_path(&mut table, &k, v)?;
        }
        let name = format!("trial-{i:03}");
        let text = toml::to_string(&table).map_err(|e| Error::Config {
            path: PathBuf::from(&name),
            msg: e.to_string(),
        })?;
        let config = RunConfig::from_toml(&text, &sw.out.join(&name).join("config.toml"))?;
        trials.push(Trial {
            name,
            params,
            config,
        });
    }
    Ok(trials)
}

/// Write every trial's config into `<out>/<trial>/config.toml` and return the commands
/// that run them one by one (any scheduler can spread these over machines; then
/// `shadeprop sweep merge` collects the folders).
pub fn write_plan(sw: &SweepConfig, trials: &[Trial]) -> Result<Vec<String>> {
    let mut cmds = vec![];
    for t in trials {
        let dir = sw.out.join(&t.name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut text = String::new();
        for (k, v) in &t.params {
            text += &format!("# sweep: {k} = {v}\n");
        }
        text += &t.config.to_toml();
        write(&dir.join("config.toml"), &text)?;
        cmds.push(format!(
            "shadeprop train --config {0}/config.toml --out {0}",
            dir.display()
        ));
    }
    Ok(cmds)
}

/// Run every trial one after another, then merge.
pub fn run_sweep(sw: &SweepConfig, quiet: bool) -> Result<Summary> {
    let trials = plan(sw)?;
    write_plan(sw, &trials)?;
    for (i, t) in trials.iter().enumerate() {
        let dir = sw.out.join(&t.name);
        let r = train(&t.config, &dir, t.params.clone(), true)?;
        if !quiet {
            println!(
                "[{}/{}] {} {:?}: best epoch {}, train acc {:.4}, val acc {:.4}, gap {:.4}, {:.1}s",
                i + 1,
                trials.len(),
                t.name,
                t.params,
                r.best_epoch.map_or("-".into(), |e| e.to_string()),
                r.train_accuracy,
                r.val_accuracy,
                r.gap,
                r.seconds
            );
        }
    }
    let dirs: Vec<PathBuf> = trials.iter().map(|t| sw.out.join(&t.name)).collect();
    merge(&dirs, &sw.out, sw.baseline_error, sw.tolerance)
}

/// What a merge produces.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Sorted by validation accuracy, best first.
    pub results: Vec<RunResult>,
    /// The chosen trial's test accuracy (evaluated once, here).
    pub test_accuracy: f64,
    pub best: Diagnosis,
    pub worst: Diagnosis,
}

/// Collect finished trial folders (each with `result.json`, `config.toml` and
/// `checkpoints/best.safetensors`) into `<out>/results.csv`, `results.md`,
/// `val_accuracy_vs_<param>.png` and `best_curves.png`; evaluate the trial with the best
/// validation accuracy on the test set (once); diagnose the best and the worst trials.
pub fn merge(dirs: &[PathBuf], out: &Path, baseline: f64, tol: f64) -> Result<Summary> {
    let mut results: Vec<(RunResult, PathBuf)> = vec![];
    for d in dirs {
        results.push((read_result(d)?, d.clone()));
    }
    if results.is_empty() {
        return Err(Error::Hyperparameter {
            name: "sweep merge",
            value: "no folders".into(),
            expected: "at least one trial folder",
        });
    }
    results.sort_by(|a, b| b.0.val_accuracy.total_cmp(&a.0.val_accuracy));
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    // The chosen trial, on the test set: the only test evaluation of the sweep.
    let (best_r, best_dir) = results[0].clone();
    let cfg = RunConfig::load(&best_dir.join("config.toml"))?;
    let test = eval_checkpoint(
        &cfg,
        &best_dir.join("checkpoints").join("best.safetensors"),
        "test",
    )?;
    results[0].0.test_accuracy = Some(test.accuracy as f64);
    let diag = |r: &RunResult| {
        diagnose(
            (1.0 - r.train_accuracy).clamp(0.0, 1.0),
            (1.0 - r.val_accuracy).clamp(0.0, 1.0),
            baseline,
            tol,
        )
    };
    let best = diag(&best_r)?;
    let worst = diag(&results[results.len() - 1].0)?;
    let keys: Vec<String> = results
        .iter()
        .flat_map(|(r, _)| r.params.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // Table: CSV and Markdown.
    let mut csv = format!(
        "trial,{},best_epoch,epochs_run,train_loss,train_accuracy,val_loss,val_accuracy,gap,seconds,test_accuracy\n",
        keys.join(",")
    );
    let mut md = format!(
        "| trial | {} | best epoch | train loss | train acc | val loss | val acc | gap | verdict | time (s) | test acc |\n|{}\n",
        keys.join(" | "),
        "---|".repeat(keys.len() + 10)
    );
    for (r, _) in &results {
        let vals: Vec<String> = keys
            .iter()
            .map(|k| r.params.get(k).cloned().unwrap_or_default())
            .collect();
        let test = r.test_accuracy.map_or(String::new(), |t| format!("{t:.4}"));
        csv += &format!(
            "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.2},{}\n",
            r.name,
            vals.join(","),
            r.best_epoch.map_or(String::new(), |e| e.to_string()),
            r.epochs_run,
            r.train_loss,
            r.train_accuracy,
            r.val_loss,
            r.val_accuracy,
            r.gap,
            r.seconds,
            test
        );
        md += &format!(
            "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {:.1} | {} |\n",
            r.name,
            vals.join(" | "),
            r.best_epoch.map_or("-".into(), |e| e.to_string()),
            r.train_loss,
            r.train_accuracy,
            r.val_loss,
            r.val_accuracy,
            r.gap,
            diag(r)?.verdict,
            r.seconds,
            if test.is_empty() { "-".into() } else { test }
        );
    }
    md += &format!(
        "\nChosen trial: {} (best validation accuracy); test accuracy {:.4}, evaluated once.\n\n\
         Best trial: {}\n\nWorst trial ({}): {}\n",
        best_r.name,
        test.accuracy,
        best.to_string().replace('\n', "; "),
        results[results.len() - 1].0.name,
        worst.to_string().replace('\n', "; ")
    );
    write(&out.join("results.csv"), &csv)?;
    write(&out.join("results.md"), &md)?;
    // Plots.
    for k in &keys {
        let pts: Vec<(f64, f64)> = results
            .iter()
            .filter_map(|(r, _)| Some((r.params.get(k)?.parse::<f64>().ok()?, r.val_accuracy)))
            .collect();
        if pts.len() >= 2 {
            let file = out.join(format!("val_accuracy_vs_{}.png", k.replace('.', "_")));
            scatter(&file, k, &pts)?;
        }
    }
    let mut curves = vec![];
    for (r, d) in results.iter().take(3) {
        let path = d.join("metrics.jsonl");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let pts: Vec<(f64, f64)> = text
                .lines()
                .filter_map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).ok()?;
                    Some((v["epoch"].as_f64()?, v["val_accuracy"].as_f64()?))
                })
                .collect();
            curves.push((format!("{} {:?}", r.name, r.params), pts));
        }
    }
    if !curves.is_empty() {
        line_chart(&out.join("best_curves.png"), &curves)?;
    }
    Ok(Summary {
        results: results.into_iter().map(|(r, _)| r).collect(),
        test_accuracy: test.accuracy as f64,
        best,
        worst,
    })
}

fn plot_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |what| Error::Plot {
        path: path.to_path_buf(),
        what,
    }
}

/// Validation accuracy against one swept parameter (log₁₀ axis when the values are
/// positive and span more than a decade).
fn scatter(path: &Path, key: &str, pts: &[(f64, f64)]) -> Result<()> {
    crate::train::plot::ensure_font().map_err(plot_err(path))?;
    let lo = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let log = lo > 0.0 && hi / lo > 10.0;
    let xs: Vec<(f64, f64)> = pts
        .iter()
        .map(|&(x, y)| (if log { x.log10() } else { x }, y))
        .collect();
    let (x0, x1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (y0, y1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let pad = ((x1 - x0) * 0.05).max(1e-3);
    let ypad = ((y1 - y0) * 0.1).max(1e-3);
    let e = |x: String| plot_err(path)(x);
    let root = BitMapBackend::new(path, (640, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("validation accuracy vs {key}"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0 - pad..x1 + pad, (y0 - ypad)..(y1 + ypad))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(if log {
            format!("log10({key})")
        } else {
            key.to_string()
        })
        .y_desc("val accuracy")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    chart
        .draw_series(xs.iter().map(|&p| Circle::new(p, 5, BLUE.filled())))
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// Validation accuracy per epoch of a few trials.
fn line_chart(path: &Path, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    crate::train::plot::ensure_font().map_err(plot_err(path))?;
    let e = |x: String| plot_err(path)(x);
    let all = curves.iter().flat_map(|c| c.1.iter());
    let (mut x1, mut y0, mut y1) = (1f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !y0.is_finite() {
        return Ok(());
    }
    let root = BitMapBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("validation accuracy of the best trials", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x1 + 1.0, (y0 - 0.005)..(y1 + 0.005))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("val accuracy")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let colors = [BLUE, RED, GREEN];
    for (i, (label, pts)) in curves.iter().enumerate() {
        let c = colors[i % 3];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(|x| e(x.to_string()))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// The diagnosis of one run folder (its `result.json`).
pub fn diagnose_run(dir: &Path, baseline: f64, tol: f64) -> Result<Diagnosis> {
    let r = read_result(dir)?;
    diagnose(
        (1.0 - r.train_accuracy).clamp(0.0, 1.0),
        (1.0 - r.val_accuracy).clamp(0.0, 1.0),
        baseline,
        tol,
    )
}
