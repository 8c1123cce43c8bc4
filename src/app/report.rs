//! The merge of trial folders into one report: a table (CSV and Markdown), plots, the
//! single test-set evaluation of the chosen trial, and the diagnosis of the best and the
//! worst trials.

use std::path::{Path, PathBuf};

use super::config::RunConfig;
use super::diagnose::{Diagnosis, diagnose};
use super::eval::eval_checkpoint;
use super::folder::{RunResult, read_result, write};
use super::plot::{line_chart, scatter};
use crate::error::{Error, Result};
use crate::train::history::{csv_record, shortest};

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
            "val_loss",
            "val_accuracy",
            "gap",
            "seconds",
            "test_accuracy",
        ]
        .map(String::from),
    );
    let mut csv = csv_record(&header);
    let mut md = format!(
        "| trial | {} | best epoch (0-based) | train loss | train acc | val loss | val acc | gap | verdict | time (s) | test acc |\n|{}\n",
        keys.join(" | "),
        "---|".repeat(keys.len() + 10)
    );
    for (r, _) in &results {
        let vals: Vec<String> = keys
            .iter()
            .map(|k| r.params.get(k).cloned().unwrap_or_default())
            .collect();
        let test = r.test_accuracy.map_or(String::new(), |t| format!("{t:.4}"));
        let mut row = vec![r.name.clone()];
        row.extend(vals.iter().cloned());
        row.extend([
            r.best_epoch.map_or(String::new(), |e| e.to_string()),
            r.epochs_run.to_string(),
            shortest(r.train_loss),
            shortest(r.train_accuracy),
            shortest(r.val_loss),
            shortest(r.val_accuracy),
            shortest(r.gap),
            format!("{:.2}", r.seconds),
            r.test_accuracy.map_or(String::new(), shortest),
        ]);
        csv += &csv_record(&row);
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

/// Print what a sweep found: the chosen trial and its test accuracy, the diagnoses of the
/// best and the worst trials, and the files written into `out`.
pub fn print_summary(s: &Summary, out: &Path) {
    let (b, w) = (&s.results[0], &s.results[s.results.len() - 1]);
    println!(
        "\n{} trials; chosen {} {}: validation accuracy {:.4}, test accuracy {:.4} (evaluated once)",
        s.results.len(),
        b.name,
        super::folder::show_params(&b.params),
        b.val_accuracy,
        s.test_accuracy
    );
    println!(
        "\nbest trial {} {}:\n{}",
        b.name,
        super::folder::show_params(&b.params),
        s.best
    );
    println!(
        "\nworst trial {} {}:\n{}",
        w.name,
        super::folder::show_params(&w.params),
        s.worst
    );
    println!(
        "\nwrote {0}/results.csv, results.md, val_accuracy_vs_*.png, best_curves.png",
        out.display()
    );
}
