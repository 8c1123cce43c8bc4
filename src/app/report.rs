//! The merge of trial folders into one report: a table (CSV and Markdown), plots, the
//! single test-set evaluation of the chosen trial, and the diagnosis of the best and the
//! worst trials.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::config::RunConfig;
use super::diagnose::{Diagnosis, diagnose};
use super::eval::eval_checkpoint;
use super::folder::{RunResult, read_result, write};
use super::plot::{Colour, line_chart, scatter};
use crate::error::{Error, Result};
use crate::task::Task;
use crate::train::history::{csv_record, shortest};

/// What a merge produces.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Ranked by validation accuracy (regression: validation mean absolute error), best
    /// first; trials without a validation split last.
    pub results: Vec<RunResult>,
    /// The chosen trial's test accuracy (evaluated once, here); None for regression.
    pub test_accuracy: Option<f64>,
    /// The chosen trial's test mean absolute error (regression); None for classification.
    pub test_mae: Option<f64>,
    /// The diagnoses of the best and the worst trials: classification trials with a
    /// validation split only (they compare error rates).
    pub best: Option<Diagnosis>,
    pub worst: Option<Diagnosis>,
}

/// What the trials are ranked and plotted by.
#[derive(Clone, Copy, Debug)]
struct Objective {
    /// The metric's key in `metrics.jsonl` and the plots' file names.
    key: &'static str,
    /// For people.
    label: &'static str,
    higher_is_better: bool,
}

/// Validation accuracy, larger is better (classification).
const ACCURACY: Objective = Objective {
    key: "val_accuracy",
    label: "validation accuracy",
    higher_is_better: true,
};

/// Validation mean absolute error, smaller is better (regression).
const MAE: Objective = Objective {
    key: "val_mae",
    label: "validation MAE",
    higher_is_better: false,
};

impl Objective {
    /// Validation MAE for a sweep of regression runs, validation accuracy otherwise.
    fn of(results: &[(RunResult, PathBuf)]) -> Objective {
        if results.iter().any(|(r, _)| r.task == Task::Regression) {
            MAE
        } else {
            ACCURACY
        }
    }

    /// The trial's value (None without a validation split).
    fn value(self, r: &RunResult) -> Option<f64> {
        if self.higher_is_better {
            r.val_accuracy
        } else {
            r.val_mae
        }
    }

    /// Best first; trials without a value last.
    fn rank(self, a: &RunResult, b: &RunResult) -> Ordering {
        match (self.value(a), self.value(b)) {
            (Some(x), Some(y)) if self.higher_is_better => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

/// How the sweep drew field `key` (`log_uniform`, `uniform`, `values`), as the trials
/// record it; None for results that do not say (written before it was recorded).
fn sampling<'a>(trials: &[&'a RunResult], key: &str) -> Option<&'a str> {
    trials
        .iter()
        .find_map(|r| r.sampling.get(key))
        .map(String::as_str)
}

/// Whether the plot against a swept field has a log x axis: as the sweep declared the
/// field — drawn log-uniformly: yes (its values are positive); uniformly: no — and for a
/// value list, or results that do not say, when the values are positive and span more
/// than a decade.
fn log_axis(sampling: Option<&str>, xs: &[f64]) -> bool {
    let positive = xs.iter().all(|x| *x > 0.0);
    match sampling {
        Some("log_uniform") => positive,
        Some("uniform") => false,
        _ => {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            positive && hi / lo > 10.0
        }
    }
}

/// The swept field that colours the plot against `key`: of the other fields that take
/// more than one value among `trials`, the one with the fewest distinct values (the first
/// by name among equals); None when the sweep varies only `key`.
fn colour_key<'a>(key: &str, keys: &'a [String], trials: &[&RunResult]) -> Option<&'a str> {
    keys.iter()
        .filter(|k| *k != key)
        .map(|k| {
            let distinct: std::collections::BTreeSet<Option<&String>> =
                trials.iter().map(|r| r.params.get(k)).collect();
            (distinct.len(), k)
        })
        .filter(|(n, _)| *n > 1)
        .min_by_key(|(n, _)| *n)
        .map(|(_, k)| k.as_str())
}

/// A value for the CSV table: [`shortest`], empty when the trial does not have it.
fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), shortest)
}

/// A value for the Markdown table: 4 decimals, `-` when the trial does not have it.
fn shown(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Collect finished trial folders (each with `result.json`, `config.toml` and
/// `checkpoints/best.safetensors`) into `<out>/results.csv`, `results.md`,
/// `val_accuracy_vs_<param>.png` (regression: `val_mae_vs_<param>.png`) and
/// `best_curves.png`; evaluate the trial with the best validation accuracy (regression:
/// the lowest validation MAE) on the test set (once); diagnose the best and the worst
/// trials (classification with a validation split). A number a trial does not have (no
/// validation split; accuracy of a regression run) is an empty cell in `results.csv` and
/// `-` in `results.md`.
pub fn merge(dirs: &[PathBuf], out: &Path, baseline: f64, tol: f64) -> Result<Summary> {
    // The same folder twice would count one trial as two.
    let mut seen = std::collections::BTreeSet::new();
    for d in dirs {
        let key = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        if !seen.insert(key) {
            return Err(Error::Hyperparameter {
                name: "sweep merge",
                value: format!("{} (given twice)", d.display()),
                expected: "each trial folder once",
            });
        }
    }
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
    let objective = Objective::of(&results);
    results.sort_by(|a, b| objective.rank(&a.0, &b.0));
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    // The chosen trial, on the test set: the only test evaluation of the sweep.
    let (best_dir, best_task) = (results[0].1.clone(), results[0].0.task);
    let cfg = RunConfig::load(&best_dir.join("config.toml"))?;
    let test = eval_checkpoint(
        &cfg,
        &best_dir.join("checkpoints").join("best.safetensors"),
        "test",
    )?;
    let regression = best_task == Task::Regression;
    results[0].0.test_accuracy = (!regression).then_some(test.accuracy as f64);
    results[0].0.test_mae = regression.then_some(test.mae as f64);
    let diag = |r: &RunResult| -> Result<Option<Diagnosis>> {
        match (r.train_accuracy, r.val_accuracy) {
            (Some(tr), Some(va)) => Ok(Some(diagnose(
                (1.0 - tr).clamp(0.0, 1.0),
                (1.0 - va).clamp(0.0, 1.0),
                baseline,
                tol,
            )?)),
            _ => Ok(None),
        }
    };
    let best = diag(&results[0].0)?;
    let worst = diag(&results[results.len() - 1].0)?;
    let keys: Vec<String> = results
        .iter()
        .flat_map(|(r, _)| r.params.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // Table: CSV (the csv crate: a list-valued parameter such as `[128, 64]` is one
    // quoted field) and Markdown.
    let mut header = vec!["trial".to_string()];
    header.extend(keys.iter().cloned());
    header.extend(
        [
            "best_epoch",
            "epochs_run",
            "train_loss",
            "train_accuracy",
            "train_mae",
            "val_loss",
            "val_accuracy",
            "val_mae",
            "gap",
            "seconds",
            "test_accuracy",
            "test_mae",
        ]
        .map(String::from),
    );
    let mut csv = csv_record(&header);
    // The Markdown table shows the task's metric: accuracy, or MAE for regression.
    type Get = fn(&RunResult) -> Option<f64>;
    let (m, train_m, val_m, test_m): (&str, Get, Get, Get) = if objective.higher_is_better {
        (
            "acc",
            |r| r.train_accuracy,
            |r| r.val_accuracy,
            |r| r.test_accuracy,
        )
    } else {
        ("mae", |r| r.train_mae, |r| r.val_mae, |r| r.test_mae)
    };
    let mut md = format!(
        "| trial | {} | best epoch (0-based) | train loss | train {m} | val loss | val {m} | gap | verdict | time (s) | test {m} |\n|{}\n",
        keys.join(" | "),
        "---|".repeat(keys.len() + 10)
    );
    for (r, _) in &results {
        let vals: Vec<String> = keys
            .iter()
            .map(|k| r.params.get(k).cloned().unwrap_or_default())
            .collect();
        let mut row = vec![r.name.clone()];
        row.extend(vals.iter().cloned());
        row.extend([
            r.best_epoch.map_or(String::new(), |e| e.to_string()),
            r.epochs_run.to_string(),
            shortest(r.train_loss),
            cell(r.train_accuracy),
            cell(r.train_mae),
            cell(r.val_loss),
            cell(r.val_accuracy),
            cell(r.val_mae),
            cell(r.gap),
            format!("{:.2}", r.seconds),
            cell(r.test_accuracy),
            cell(r.test_mae),
        ]);
        csv += &csv_record(&row);
        md += &format!(
            "| {} | {} | {} | {:.4} | {} | {} | {} | {} | {} | {:.1} | {} |\n",
            r.name,
            vals.join(" | "),
            r.best_epoch.map_or("-".into(), |e| e.to_string()),
            r.train_loss,
            shown(train_m(r)),
            shown(r.val_loss),
            shown(val_m(r)),
            shown(r.gap),
            diag(r)?.map_or("-".into(), |d| d.verdict.to_string()),
            r.seconds,
            shown(test_m(r))
        );
    }
    let verdict = |d: &Option<Diagnosis>| {
        d.as_ref().map_or(
            "no diagnosis (it compares classification error rates on a validation split)".into(),
            |d| d.to_string().replace('\n', "; "),
        )
    };
    md += &format!(
        "\nChosen trial: {} (best {}); test {m} {}, evaluated once.\n\n\
         Best trial: {}\n\nWorst trial ({}): {}\n",
        results[0].0.name,
        objective.label,
        shown(test_m(&results[0].0)),
        verdict(&best),
        results[results.len() - 1].0.name,
        verdict(&worst)
    );
    write(&out.join("results.csv"), &csv)?;
    write(&out.join("results.md"), &md)?;
    // Plots.
    let trials: Vec<&RunResult> = results.iter().map(|(r, _)| r).collect();
    for k in &keys {
        let (pts, shown): (Vec<(f64, f64)>, Vec<&RunResult>) = trials
            .iter()
            .filter_map(|r| {
                Some((
                    (r.params.get(k)?.parse::<f64>().ok()?, objective.value(r)?),
                    *r,
                ))
            })
            .unzip();
        if pts.len() >= 2 {
            let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
            let log = log_axis(sampling(&trials, k), &xs);
            let colour = colour_key(k, &keys, &shown).map(|c| Colour {
                key: c,
                values: shown
                    .iter()
                    .map(|r| r.params.get(c).cloned().unwrap_or_default())
                    .collect(),
                log: sampling(&trials, c) == Some("log_uniform"),
            });
            let file = out.join(format!("{}_vs_{}.png", objective.key, k.replace('.', "_")));
            scatter(&file, k, objective.label, log, &pts, colour.as_ref())?;
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
                    Some((v["epoch"].as_f64()?, v[objective.key].as_f64()?))
                })
                .collect();
            curves.push((format!("{} {:?}", r.name, r.params), pts));
        }
    }
    if !curves.is_empty() {
        line_chart(&out.join("best_curves.png"), objective.label, &curves)?;
    }
    Ok(Summary {
        results: results.into_iter().map(|(r, _)| r).collect(),
        test_accuracy: (!regression).then_some(test.accuracy as f64),
        test_mae: regression.then_some(test.mae as f64),
        best,
        worst,
    })
}

/// Print what a sweep found: the chosen trial and its test score, the diagnoses of the
/// best and the worst trials, and the files written into `out`.
pub fn print_summary(s: &Summary, out: &Path) {
    let (b, w) = (&s.results[0], &s.results[s.results.len() - 1]);
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let (score, test) = match s.test_mae {
        Some(mae) => (
            format!("validation MAE {}", f(b.val_mae)),
            format!("test MAE {}", f(Some(mae))),
        ),
        None => (
            format!("validation accuracy {}", f(b.val_accuracy)),
            format!("test accuracy {}", f(s.test_accuracy)),
        ),
    };
    println!(
        "\n{} trials; chosen {} {}: {score}, {test} (evaluated once)",
        s.results.len(),
        b.name,
        super::folder::show_params(&b.params),
    );
    let diagnosis = |d: &Option<Diagnosis>| {
        d.as_ref().map_or(
            "no diagnosis (it compares classification error rates on a validation split)"
                .to_string(),
            |d| d.to_string(),
        )
    };
    println!(
        "\nbest trial {} {}:\n{}",
        b.name,
        super::folder::show_params(&b.params),
        diagnosis(&s.best)
    );
    println!(
        "\nworst trial {} {}:\n{}",
        w.name,
        super::folder::show_params(&w.params),
        diagnosis(&s.worst)
    );
    let metric = if s.test_mae.is_some() {
        "val_mae"
    } else {
        "val_accuracy"
    };
    println!(
        "\nwrote {0}/results.csv, results.md, {metric}_vs_*.png, best_curves.png",
        out.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_sampling_decides_the_log_axis() {
        // Log-uniform over less than a decade: still a log axis (the heuristic said no).
        assert!(log_axis(Some("log_uniform"), &[0.01, 0.02, 0.05]));
        // Uniform over two decades: linear (the heuristic said log).
        assert!(!log_axis(Some("uniform"), &[1.0, 50.0, 100.0]));
        // A value list, or results that do not say: positive and over a decade.
        assert!(log_axis(Some("values"), &[0.001, 0.01, 0.1]));
        assert!(log_axis(None, &[0.001, 0.1]));
        assert!(!log_axis(None, &[0.0, 1.0, 10.0]));
        assert!(!log_axis(None, &[1.0, 5.0]));
        // A non-positive value cannot go on a log axis, whatever was declared.
        assert!(!log_axis(Some("log_uniform"), &[0.0, 0.1]));
    }

    #[test]
    fn the_colour_is_the_other_field_with_the_fewest_values() {
        let trial = |kv: &[(&str, &str)]| RunResult {
            version: super::super::folder::RESULT_VERSION,
            name: "t".into(),
            params: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sampling: Default::default(),
            best_epoch: None,
            epochs_run: 1,
            stopped_epoch: None,
            train_loss: 0.0,
            train_accuracy: None,
            val_loss: None,
            val_accuracy: None,
            gap: None,
            task: Task::Multiclass,
            train_mae: None,
            val_mae: None,
            seconds: 0.0,
            test_accuracy: None,
            test_mae: None,
            backend: String::new(),
            kernel_choices: vec![],
        };
        let rs = [
            trial(&[
                ("lr", "0.1"),
                ("dropout", "0.0"),
                ("seed", "1"),
                ("act", "relu"),
            ]),
            trial(&[
                ("lr", "0.01"),
                ("dropout", "0.5"),
                ("seed", "1"),
                ("act", "tanh"),
            ]),
            trial(&[
                ("lr", "0.001"),
                ("dropout", "0.2"),
                ("seed", "1"),
                ("act", "relu"),
            ]),
        ];
        let trials: Vec<&RunResult> = rs.iter().collect();
        let keys: Vec<String> = ["act", "dropout", "lr", "seed"].map(String::from).to_vec();
        // act has 2 values, dropout 3, seed 1 (not varied): act colours lr's plot.
        assert_eq!(colour_key("lr", &keys, &trials), Some("act"));
        assert_eq!(colour_key("act", &keys, &trials), Some("dropout"));
        // One swept field: no colour.
        assert_eq!(colour_key("lr", &["lr".to_string()], &trials), None);
    }
}
