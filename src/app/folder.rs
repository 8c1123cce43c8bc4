//! A run folder: it holds `config.toml` (every field), `metrics.csv` / `metrics.jsonl`,
//! `curves.png` / `.svg`, `checkpoints/best.safetensors` and `result.json` ([`RunResult`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::RunConfig;
use crate::error::{Error, Result};

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
    /// Validation error − training error (regression: validation MAE − training MAE).
    pub gap: f64,
    /// The run's task (`multiclass` in results written before tasks existed).
    #[serde(default)]
    pub task: crate::task::Task,
    /// Regression: the mean absolute error of the final weights (else absent).
    #[serde(default)]
    pub train_mae: Option<f64>,
    #[serde(default)]
    pub val_mae: Option<f64>,
    pub seconds: f64,
    /// Only for the one trial evaluated on the test set.
    pub test_accuracy: Option<f64>,
    /// The backend the run trained on ([`crate::backend::Backend::describe`]).
    #[serde(default)]
    pub backend: String,
    /// The kernel variants it chose ([`crate::backend::Backend::kernel_choices`]): they
    /// change speed only, never a result.
    #[serde(default)]
    pub kernel_choices: Vec<String>,
}

pub(super) fn write(path: &Path, text: &str) -> Result<()> {
    crate::fs::write_atomic(path, text.as_bytes())
}

/// The `result.json` of a run folder.
pub fn read_result(dir: &Path) -> Result<RunResult> {
    let path = dir.join("result.json");
    let text = crate::fs::read_text(&path, crate::fs::MAX_TEXT_BYTES)?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.clone(),
        msg: format!("not a run result: {e}"),
    })
}

/// The config saved beside a checkpoint (`<run>/config.toml` for `<run>/checkpoints/x`).
pub fn config_beside(checkpoint: &Path) -> Result<RunConfig> {
    if !checkpoint.is_file() {
        return Err(Error::io(
            checkpoint,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such checkpoint file (expected <run>/checkpoints/<name>.safetensors)",
            ),
        ));
    }
    let run = checkpoint
        .parent()
        .and_then(|d| d.parent())
        .unwrap_or(Path::new("."));
    let path = run.join("config.toml");
    if !path.is_file() {
        return Err(Error::Hyperparameter {
            name: "--config",
            value: format!("not given, and {} does not exist", path.display()),
            expected: "the run's config: pass --config FILE when the checkpoint is not in <run>/checkpoints/",
        });
    }
    RunConfig::load(&path)
}

/// A trial's swept values as `key=value` pairs, for people.
pub(super) fn show_params(p: &BTreeMap<String, String>) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The files of a run folder that no output of another command may replace.
const RUN_RECORDS: [&str; 5] = [
    "config.toml",
    "result.json",
    "metrics.csv",
    "metrics.jsonl",
    "steps.csv",
];

/// Refuse an output file (`flag` names the option) that would destroy something: one of
/// `inputs` (the data, checkpoint or config being read), anything but a regular file or a
/// new path (a directory, link, FIFO or device), a file of a run folder (its
/// `config.toml`, `result.json` or metrics) or inside a run's `checkpoints/` folder.
pub(crate) fn check_output(flag: &'static str, out: &Path, inputs: &[&Path]) -> Result<()> {
    let refuse = |expected: &'static str| {
        Err(Error::Hyperparameter {
            name: flag,
            value: out.display().to_string(),
            expected,
        })
    };
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(()); // a new path
    };
    if !meta.file_type().is_file() {
        return refuse("a regular file or a new path (not a link, directory, FIFO or device)");
    }
    let canon = std::fs::canonicalize(out).ok();
    if inputs.iter().any(|i| {
        std::fs::canonicalize(i)
            .ok()
            .is_some_and(|c| Some(&c) == canon.as_ref())
    }) {
        return refuse(
            "a file other than the ones this command reads (its input, the checkpoint, the run's data): it would replace them",
        );
    }
    let dir = canon.as_deref().and_then(Path::parent);
    let is_run = |d: &Path| RUN_RECORDS.iter().any(|f| d.join(f).is_file());
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if dir.is_some_and(|d| is_run(d) && RUN_RECORDS.contains(&name)) {
        return refuse("a path outside a run's records (config.toml, result.json, metrics)");
    }
    if dir.is_some_and(|d| {
        d.file_name().is_some_and(|n| n == "checkpoints") && d.parent().is_some_and(is_run)
    }) {
        return refuse(
            "a path outside a run's checkpoints/ folder (it would replace a checkpoint)",
        );
    }
    Ok(())
}
