//! Sweeps: grid and random search over any config field, planned into trial configs that
//! run here one after another or anywhere as separate `shadeprop train` commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::RunConfig;
use super::folder::{Swept, read_result, write};
use super::overrides::set_path;
use super::report::{Summary, merge};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// How a swept field takes its values: a TOML array (the values) or a table (the range).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged, try_from = "toml::Value")]
pub enum ParamSpec {
    /// Explicit values (grid search; random search picks among them).
    Values(Vec<toml::Value>),
    /// A range for random search.
    Range(RangeSpec),
}

/// Read as the form it has: an untagged enum would hide why a range is refused (a range of
/// three bounds, an unknown key) behind "did not match any variant".
impl TryFrom<toml::Value> for ParamSpec {
    type Error = String;
    fn try_from(v: toml::Value) -> std::result::Result<Self, String> {
        match v {
            toml::Value::Array(values) => Ok(ParamSpec::Values(values)),
            toml::Value::Table(t) => RangeSpec::deserialize(t)
                .map(ParamSpec::Range)
                .map_err(|e| e.message().to_string()),
            other => Err(format!(
                "a swept field takes a list of values or a range {{ log_uniform = [lo, hi] }} / {{ uniform = [lo, hi] }}, not {}",
                other.type_str()
            )),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    /// Log-uniform in [lo, hi] (learning rates, lambdas): exactly 2 bounds.
    #[serde(default, deserialize_with = "log_uniform")]
    pub log_uniform: Option<[f64; 2]>,
    /// Uniform in [lo, hi]: exactly 2 bounds.
    #[serde(default, deserialize_with = "uniform")]
    pub uniform: Option<[f64; 2]>,
}

fn log_uniform<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<[f64; 2]>, D::Error> {
    super::config::exactly(d, "log_uniform = [lo, hi]: exactly 2 bounds").map(Some)
}

fn uniform<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<[f64; 2]>, D::Error> {
    super::config::exactly(d, "uniform = [lo, hi]: exactly 2 bounds").map(Some)
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
    /// The folder that relative paths of `[base]` (and swept paths) are relative to: the
    /// sweep file's folder when read by [`SweepConfig::load`]; empty means the working
    /// directory.
    #[serde(skip)]
    pub dir: PathBuf,
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
    /// Read a sweep config (TOML); [`plan`] checks what it asks for.
    ///
    /// # Errors
    /// [`Error::Io`] for an unreadable file, [`Error::Config`] (naming the file) for
    /// malformed TOML or an unknown key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::fs::read_text(path, crate::fs::MAX_TEXT_BYTES)?;
        let mut sw: SweepConfig = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        sw.dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        Ok(sw)
    }
}

/// One planned trial.
#[derive(Clone, Debug)]
pub struct Trial {
    pub name: String,
    /// The swept fields and their values.
    pub params: BTreeMap<String, String>,
    /// How each swept field was drawn: `log_uniform`, `uniform` or `values`.
    pub sampling: BTreeMap<String, String>,
    pub config: RunConfig,
}

impl Trial {
    /// The swept fields of this trial, as its run records them.
    pub fn swept(&self) -> Swept {
        Swept {
            values: self.params.clone(),
            sampling: self.sampling.clone(),
        }
    }
}

/// How a field's values are drawn: `log_uniform`, `uniform` or `values`.
fn sampling(spec: &ParamSpec) -> &'static str {
    match spec {
        ParamSpec::Values(_) => "values",
        ParamSpec::Range(RangeSpec {
            log_uniform: Some(_),
            ..
        }) => "log_uniform",
        ParamSpec::Range(_) => "uniform",
    }
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
    const MAX_TRIALS: usize = 10_000;
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
                if acc.len().saturating_mul(vals.len()) > MAX_TRIALS {
                    return Err(bad(
                        format!("a grid of more than {MAX_TRIALS} trials (at {k})"),
                        "at most 10000 trials: fewer values, or method = \"random\" with trials",
                    ));
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
            if sw.trials == 0 || sw.trials > MAX_TRIALS {
                return Err(bad(
                    format!("trials = {}", sw.trials),
                    "1 ..= 10000 trials for random search",
                ));
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
    let drawn: BTreeMap<String, String> = sw
        .params
        .iter()
        .map(|(k, spec)| (k.clone(), sampling(spec).to_string()))
        .collect();
    let mut trials = vec![];
    for (i, a) in assignments.into_iter().enumerate() {
        let mut table = sw.base.clone();
        let mut params = BTreeMap::new();
        for (k, v) in a {
            params.insert(k.clone(), show(&v));
            set_path(&mut table, &k, v, "sweep parameter")?;
        }
        let name = format!("trial-{i:03}");
        let text = toml::to_string(&table).map_err(|e| Error::Config {
            path: PathBuf::from(&name),
            msg: e.to_string(),
        })?;
        let config =
            RunConfig::from_toml_in(&text, &sw.out.join(&name).join("config.toml"), &sw.dir)?;
        trials.push(Trial {
            name,
            params,
            sampling: drawn.clone(),
            config,
        });
    }
    Ok(trials)
}

/// Write every trial's config into `<out>/<trial>/config.toml` — its swept fields first, as
/// comment lines ([`Swept::header`]) that the `shadeprop train` command reads back into
/// the trial's `result.json` — and return the commands that run them one by one (any
/// scheduler can spread these over machines; then `shadeprop sweep merge` collects the
/// folders).
pub fn write_plan(sw: &SweepConfig, trials: &[Trial]) -> Result<Vec<String>> {
    // A trial folder that holds a run of other settings (another sweep's, or an unrelated
    // run) is never rewritten nor trained over: refused before anything is written.
    for t in trials {
        let dir = sw.out.join(&t.name);
        let held: Vec<&str> = super::run::RUN_FILES
            .iter()
            .copied()
            .filter(|f| dir.join(f).exists())
            .collect();
        if held.is_empty() {
            continue;
        }
        let stored = dir.join("config.toml");
        let diff = if stored.is_file() {
            RunConfig::load(&stored)?.differences(&t.config)
        } else {
            vec!["no config.toml".into()]
        };
        if !diff.is_empty() {
            return Err(Error::Hyperparameter {
                name: "sweep out",
                value: format!(
                    "{} holds a run ({}) of other settings than this sweep's {}: {}",
                    dir.display(),
                    held.join(", "),
                    t.name,
                    diff.join("; ")
                ),
                expected: "a sweep folder of this sweep's trials only: choose another `out`, or remove that folder",
            });
        }
    }
    let mut cmds = vec![];
    for t in trials {
        let dir = sw.out.join(&t.name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let text = t.swept().header() + &t.config.to_toml();
        write(&dir.join("config.toml"), &text)?;
        cmds.push(format!(
            "shadeprop train --config {0}/config.toml --out {0}",
            dir.display()
        ));
    }
    Ok(cmds)
}

/// Run every trial one after another, then merge. Run again, a sweep skips the trials that
/// finished (their `result.json` is there) and trains the others from the start.
pub fn run_sweep(sw: &SweepConfig, quiet: bool) -> Result<Summary> {
    let trials = plan(sw)?;
    write_plan(sw, &trials)?;
    for (i, t) in trials.iter().enumerate() {
        let dir = sw.out.join(&t.name);
        // A sweep run again goes on where it stopped: a finished trial (its result.json
        // written) is kept; an unfinished one is trained again from the start.
        let r = match read_result(&dir) {
            Ok(r) => {
                if !quiet {
                    println!(
                        "[{}/{}] {}: finished before, kept",
                        i + 1,
                        trials.len(),
                        t.name
                    );
                }
                r
            }
            Err(_) => {
                if !quiet {
                    println!(
                        "[{}/{}] {} {}: training…",
                        i + 1,
                        trials.len(),
                        t.name,
                        super::folder::show_params(&t.params)
                    );
                }
                super::run::train_with(
                    &t.config,
                    &dir,
                    t.swept(),
                    true,
                    &super::run::TrainOptions {
                        resume: None,
                        overwrite: true,
                    },
                )?
            }
        };
        if !quiet {
            let (k, tr, va) = if r.task == crate::task::Task::Regression {
                ("mae", r.train_mae, r.val_mae)
            } else {
                ("acc", r.train_accuracy, r.val_accuracy)
            };
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
            println!(
                "[{}/{}] {} {}: best at Epoch {}, train {k} {}, val {k} {}, gap {}, {:.1}s",
                i + 1,
                trials.len(),
                t.name,
                super::folder::show_params(&t.params),
                // Printed 1-based (k/N) as the progress lines; the table holds the 0-based epoch.
                r.best_epoch
                    .map_or("-".into(), |e| format!("{}/{}", e + 1, r.epochs_run)),
                f(tr),
                f(va),
                f(r.gap),
                r.seconds
            );
        }
    }
    let dirs: Vec<PathBuf> = trials.iter().map(|t| sw.out.join(&t.name)).collect();
    merge(&dirs, &sw.out, sw.baseline_error, sw.tolerance)
}
