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
/// files (Keras' convention; the progress lines print epoch + 1). A quantity the run does
/// not have is absent (`null` in the file), never 0: a run without a validation split has
/// no `val_loss`, `val_accuracy`, `val_mae` or `gap`; a regression run has no accuracy, a
/// classification run no mean absolute error.
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
    /// How the sweep drew each swept field ([`Swept::sampling`]; absent for a single run
    /// and in results written before it was recorded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sampling: BTreeMap<String, String>,
    /// 0-based.
    pub best_epoch: Option<u64>,
    pub epochs_run: u64,
    /// 0-based.
    pub stopped_epoch: Option<u64>,
    pub train_loss: f64,
    /// Classification only.
    pub train_accuracy: Option<f64>,
    /// With a validation split only.
    pub val_loss: Option<f64>,
    /// Classification with a validation split only.
    pub val_accuracy: Option<f64>,
    /// Validation error − training error (regression: validation MAE − training MAE);
    /// with a validation split only.
    pub gap: Option<f64>,
    /// The run's task (`multiclass` in results written before tasks existed).
    #[serde(default)]
    pub task: crate::task::Task,
    /// Regression: the mean absolute error of the final weights (else absent).
    #[serde(default)]
    pub train_mae: Option<f64>,
    #[serde(default)]
    pub val_mae: Option<f64>,
    pub seconds: f64,
    /// Only for the one trial evaluated on the test set (classification).
    pub test_accuracy: Option<f64>,
    /// Only for the one trial evaluated on the test set (regression).
    #[serde(default)]
    pub test_mae: Option<f64>,
    /// The backend the run trained on ([`crate::backend::Backend::describe`]).
    #[serde(default)]
    pub backend: String,
    /// The kernel variants it chose ([`crate::backend::Backend::kernel_choices`]): they
    /// change speed only, never a result.
    #[serde(default)]
    pub kernel_choices: Vec<String>,
}

/// A trial's swept fields: their values and how the sweep drew them. A planned trial's
/// `config.toml` starts with them as comment lines ([`Swept::header`]), so that the
/// `shadeprop train` command that runs the trial records them in its `result.json`
/// ([`Swept::read`]), and the config written into the run folder keeps them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Swept {
    /// Field (dotted path) → value as TOML writes it (`0.01`, `[128, 64]`; a string
    /// without quotes).
    pub values: BTreeMap<String, String>,
    /// Field → how its values were drawn: `log_uniform` or `uniform` (random search over
    /// a range), `values` (a list).
    pub sampling: BTreeMap<String, String>,
}

const SWEEP: &str = "# sweep: ";
const SAMPLING: &str = "# sweep sampling: ";

impl Swept {
    /// The comment lines a trial's config starts with: `# sweep: <field> = <value>` and
    /// `# sweep sampling: <field> = <log_uniform|uniform|values>`.
    pub fn header(&self) -> String {
        let line = |prefix: &str, k: &str, v: &str| {
            // A comment is one line: a string value with a line break keeps it as a space.
            format!("{prefix}{k} = {}\n", v.replace(['\n', '\r'], " "))
        };
        let mut text = String::new();
        for (k, v) in &self.values {
            text += &line(SWEEP, k, v);
        }
        for (k, v) in &self.sampling {
            text += &line(SAMPLING, k, v);
        }
        text
    }

    /// The swept fields a config's text names in its [`Swept::header`] lines (none for a
    /// config that is no planned trial).
    pub fn parse(text: &str) -> Swept {
        let mut s = Swept::default();
        for l in text.lines() {
            let (map, rest) = if let Some(rest) = l.strip_prefix(SWEEP) {
                (&mut s.values, rest)
            } else if let Some(rest) = l.strip_prefix(SAMPLING) {
                (&mut s.sampling, rest)
            } else {
                continue;
            };
            if let Some((k, v)) = rest.split_once(" = ") {
                map.insert(k.trim().to_string(), v.trim_end().to_string());
            }
        }
        s
    }

    /// [`Swept::parse`] of the config file at `path`.
    pub fn read(path: &Path) -> Result<Swept> {
        Ok(Swept::parse(&crate::fs::read_text(
            path,
            crate::fs::MAX_TEXT_BYTES,
        )?))
    }
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
    let r = upgrade(r);
    // Numbers outside their domain (an edited or foreign file) would rank trials wrongly.
    let accuracies = [
        ("train_accuracy", r.train_accuracy),
        ("val_accuracy", r.val_accuracy),
        ("test_accuracy", r.test_accuracy),
    ];
    let losses = [
        ("train_loss", Some(r.train_loss)),
        ("val_loss", r.val_loss),
        ("train_mae", r.train_mae),
        ("val_mae", r.val_mae),
        ("test_mae", r.test_mae),
    ];
    let bad = accuracies
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| !(0.0..=1.0).contains(&v)))
        .map(|(k, v)| (k, v, "an accuracy in [0, 1]"))
        .chain(
            losses
                .iter()
                .filter(|(_, v)| v.is_some_and(|v| !(v >= 0.0)))
                .map(|(k, v)| (k, v, "a loss or error >= 0 (or absent)")),
        )
        .next();
    if let Some((k, v, expected)) = bad {
        return Err(Error::Config {
            path,
            msg: format!("{k} = {}: expected {expected}", v.unwrap_or(f64::NAN)),
        });
    }
    Ok(r)
}

/// A result read from a file of an older format, in the current one: epochs counted from
/// 1 become 0-based; the 0 written where a quantity did not exist (a regression run's
/// accuracies; every validation number of a run without a validation split, recognizable
/// by a validation loss and accuracy or MAE of exactly 0, which a real validation set
/// cannot give together) becomes absent.
fn upgrade(mut r: RunResult) -> RunResult {
    if r.version < 2 {
        r.best_epoch = r.best_epoch.map(|e| e.saturating_sub(1));
        r.stopped_epoch = r.stopped_epoch.map(|e| e.saturating_sub(1));
        let regression = r.task == crate::task::Task::Regression;
        if regression {
            r.train_accuracy = None;
            r.val_accuracy = None;
            r.test_accuracy = None;
        }
        let score = if regression {
            r.val_mae
        } else {
            r.val_accuracy
        };
        if r.val_loss == Some(0.0) && score == Some(0.0) {
            r.val_loss = None;
            r.val_accuracy = None;
            r.val_mae = None;
            r.gap = None;
        }
    }
    r.version = RESULT_VERSION;
    r
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A result.json written before the epochs counted from 0 (no `version`): its
    /// best_epoch 3 and stopped_epoch 5 were epoch + 1, so they read as 2 and 4.
    #[test]
    fn swept_fields_round_trip_through_the_config_header() {
        let s = Swept {
            values: [
                ("model.hidden", "[128, 64]"),
                ("optimizer.lr", "0.0123"),
                ("model.activation", "relu"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            sampling: [("optimizer.lr", "log_uniform"), ("model.hidden", "values")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let text = format!("{}seed = 0\n[model]\nhidden = [128, 64]\n", s.header());
        assert!(
            text.starts_with("# sweep: model.activation = relu\n"),
            "{text}"
        );
        assert_eq!(Swept::parse(&text), s);
        assert_eq!(Swept::parse("seed = 0\n"), Swept::default());
    }

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
        assert_eq!(
            (r.val_loss, r.val_accuracy, r.gap),
            (Some(0.2), Some(0.8), Some(0.1))
        );
        // The zeros written where a number did not exist: a regression run's accuracies,
        // the validation numbers of a run without a validation split.
        let regression = r#"{"name":"r","params":{},"best_epoch":1,"epochs_run":2,
            "stopped_epoch":null,"train_loss":0.5,"train_accuracy":0.0,"val_loss":0.7,
            "val_accuracy":0.0,"gap":0.1,"task":"regression","train_mae":0.4,"val_mae":0.5,
            "seconds":1.0,"test_accuracy":null}"#;
        std::fs::write(dir.join("result.json"), regression).unwrap();
        let g = read_result(&dir).unwrap();
        assert_eq!((g.train_accuracy, g.val_accuracy), (None, None));
        assert_eq!(
            (g.val_loss, g.val_mae, g.gap),
            (Some(0.7), Some(0.5), Some(0.1))
        );
        let no_val = r#"{"name":"n","params":{},"best_epoch":1,"epochs_run":2,
            "stopped_epoch":null,"train_loss":0.5,"train_accuracy":0.9,"val_loss":0.0,
            "val_accuracy":0.0,"gap":0.9,"seconds":1.0,"test_accuracy":null}"#;
        std::fs::write(dir.join("result.json"), no_val).unwrap();
        let n = read_result(&dir).unwrap();
        assert_eq!((n.val_loss, n.val_accuracy, n.gap), (None, None, None));
        assert_eq!(n.train_accuracy, Some(0.9));
        // A current file is read as written.
        std::fs::write(dir.join("result.json"), serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(read_result(&dir).unwrap(), r);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
