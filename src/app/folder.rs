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
///
/// `best_epoch` and `stopped_epoch` are 0-based, as `epoch` in the history and the metrics
/// files (Keras' convention; the progress lines print epoch + 1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// The format of the file: [`RESULT_VERSION`]; 0 (absent) in files written before it
    /// existed, whose `best_epoch` and `stopped_epoch` counted from 1 ([`read_result`]
    /// converts them).
    #[serde(default)]
    pub version: u32,
    pub name: String,
    /// The swept fields and their values (empty for a single run).
    pub params: BTreeMap<String, String>,
    /// 0-based.
    pub best_epoch: Option<u64>,
    pub epochs_run: u64,
    /// 0-based.
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

/// The `result.json` format [`RunResult`] writes: 1 (or absent) counted `best_epoch` and
/// `stopped_epoch` from 1; 2 counts them from 0.
pub const RESULT_VERSION: u32 = 2;

/// The `result.json` of a run folder, in the current format ([`RESULT_VERSION`]): the
/// epochs of older files are converted to 0-based.
pub fn read_result(dir: &Path) -> Result<RunResult> {
    let path = dir.join("result.json");
    let text = crate::fs::read_text(&path, crate::fs::MAX_TEXT_BYTES)?;
    let r: RunResult = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.clone(),
        msg: format!("not a run result: {e}"),
    })?;
    Ok(upgrade(r))
}

/// A result read from a file of an older format, in the current one.
fn upgrade(mut r: RunResult) -> RunResult {
    if r.version < 2 {
        r.best_epoch = r.best_epoch.map(|e| e.saturating_sub(1));
        r.stopped_epoch = r.stopped_epoch.map(|e| e.saturating_sub(1));
    }
    r.version = RESULT_VERSION;
    r
}

/// The config saved beside a checkpoint (`<run>/config.toml` for `<run>/checkpoints/x`).
pub fn config_beside(checkpoint: &Path) -> Result<RunConfig> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A result.json written before the epochs counted from 0 (no `version`): its
    /// best_epoch 3 and stopped_epoch 5 were epoch + 1, so they read as 2 and 4.
    #[test]
    fn old_results_read_with_0_based_epochs() {
        let dir = std::env::temp_dir().join(format!("shadeprop-old-result-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = r#"{"name":"trial-000","params":{"model.dropout":"0.5"},"best_epoch":3,
            "epochs_run":5,"stopped_epoch":5,"train_loss":0.1,"train_accuracy":0.9,
            "val_loss":0.2,"val_accuracy":0.8,"gap":0.1,"seconds":1.0,"test_accuracy":null}"#;
        std::fs::write(dir.join("result.json"), old).unwrap();
        let r = read_result(&dir).unwrap();
        assert_eq!((r.best_epoch, r.stopped_epoch), (Some(2), Some(4)));
        assert_eq!(r.version, RESULT_VERSION);
        // A current file is read as written.
        std::fs::write(dir.join("result.json"), serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(read_result(&dir).unwrap(), r);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
