//! The `shadeprop` command: every config error names the key or value and exits non-zero;
//! a small sweep runs end to end (real MNIST, CPU backend) and writes its table and plots;
//! the diagnosis follows the lectures' rules.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shadeprop"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("NODEVICE_SELECT", "1");
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shadeprop-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run with a config text; expect failure with every `needles` in stderr.
fn fails_with(args: &[&str], config: Option<(&Path, &str)>, needles: &[&str]) {
    if let Some((p, text)) = config {
        std::fs::write(p, text).unwrap();
    }
    let out = bin().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded; stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} not in stderr:\n{err}");
    }
}

#[test]
fn config_errors_name_the_key_and_value() {
    let d = tmp("errors");
    let cfg = d.join("run.toml");
    let c = cfg.to_str().unwrap();
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let train = ["train", "--config", c, "--out", o, "--quiet"];
    // Unknown keys, at the top and inside a table.
    fails_with(
        &train,
        Some((&cfg, "sede = 1\n")),
        &["unknown field", "sede"],
    );
    fails_with(
        &train,
        Some((&cfg, "[optimizer]\nlearning_rate = 0.1\n")),
        &["unknown field", "learning_rate"],
    );
    // Wrong types.
    fails_with(
        &train,
        Some((&cfg, "[train]\nepochs = \"ten\"\n")),
        &["epochs"],
    );
    // Values out of range or not among the choices.
    fails_with(
        &train,
        Some((&cfg, "[model]\ndropout = 1.5\n")),
        &["model.dropout", "1.5", "[0, 1)"],
    );
    fails_with(
        &train,
        Some((&cfg, "[optimizer]\nkind = \"rmsprop\"\n")),
        &["optimizer.kind", "rmsprop", "sgd, adam or adamw"],
    );
    fails_with(
        &train,
        Some((&cfg, "[optimizer]\nlr = -1.0\n")),
        &["lr", "-1"],
    );
    fails_with(
        &train,
        Some((&cfg, "[train]\nprecision = \"f16\"\n")),
        &["train.precision", "f16", "f32 or mixed"],
    );
    fails_with(
        &train,
        Some((&cfg, "[regularizer]\nkind = \"l2\"\nlambda = -3.0\n")),
        &["lambda", "-3"],
    );
    fails_with(
        &train,
        Some((&cfg, "[train]\nmonitor = \"val_f1\"\n")),
        &["train.monitor", "val_f1"],
    );
    fails_with(
        &train,
        Some((
            &cfg,
            "[model]\npreset = \"w-mlp\"\n[augment]\npreset = \"w-cnn\"\n",
        )),
        &["augment", "image model"],
    );
    // --set goes through the same checks.
    std::fs::write(&cfg, "").unwrap();
    fails_with(
        &["train", "--config", c, "--out", o, "--set", "train.batch=0"],
        None,
        &["train.batch", ">= 1"],
    );
    fails_with(
        &["train", "--config", c, "--out", o, "--set", "model.widht=3"],
        None,
        &["unknown field", "widht"],
    );
    // A missing file names the path.
    fails_with(
        &["train", "--config", "no/such.toml", "--out", o],
        None,
        &["no/such.toml"],
    );
    // Sweeps: an unknown swept key, ranges in a grid, an unknown method.
    let sw = d.join("sweep.toml");
    let s = sw.to_str().unwrap();
    let base = format!("out = \"{}\"\n", d.join("sw").display());
    fails_with(
        &["sweep", "--config", s, "--plan-only"],
        Some((
            &sw,
            &format!("{base}[params]\n\"regularizer.lamda\" = [0.0, 1.0]\n"),
        )),
        &["unknown field", "lamda"],
    );
    fails_with(
        &["sweep", "--config", s, "--plan-only"],
        Some((
            &sw,
            &format!("{base}[params]\n\"optimizer.lr\" = {{ log_uniform = [0.001, 0.1] }}\n"),
        )),
        &["grid search", "random"],
    );
    fails_with(
        &["sweep", "--config", s, "--plan-only"],
        Some((
            &sw,
            &format!("{base}method = \"bayes\"\n[params]\n\"model.dropout\" = [0.1]\n"),
        )),
        &["bayes", "grid or random"],
    );
    // Diagnose: errors outside [0, 1], missing arguments.
    fails_with(
        &["diagnose", "--train-error", "1.4", "--val-error", "0.1"],
        None,
        &["train_error", "1.4"],
    );
    fails_with(&["diagnose"], None, &["--run DIR"]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn random_search_plans_log_uniform_values_and_prints_one_command_per_trial() {
    let d = tmp("plan");
    let sw = d.join("sweep.toml");
    std::fs::write(
        &sw,
        format!(
            "method = \"random\"\ntrials = 5\nseed = 3\nout = \"{}\"\n[params]\n\"optimizer.lr\" = {{ log_uniform = [0.001, 0.1] }}\n\"model.dropout\" = [0.0, 0.5]\n",
            d.join("sw").display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["sweep", "--config", sw.to_str().unwrap(), "--plan-only"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("shadeprop train --config").count(),
        5,
        "{text}"
    );
    assert!(text.contains("shadeprop sweep merge"), "{text}");
    let mut lrs = vec![];
    for t in 0..5 {
        let c = shadeprop::config::RunConfig::load(
            &d.join("sw")
                .join(format!("trial-{t:03}"))
                .join("config.toml"),
        )
        .unwrap();
        assert!(
            (0.001..=0.1).contains(&c.optimizer.lr),
            "{}",
            c.optimizer.lr
        );
        assert!(c.model.dropout == 0.0 || c.model.dropout == 0.5);
        lrs.push(c.optimizer.lr);
    }
    lrs.dedup();
    assert!(lrs.len() > 1, "random search drew one value: {lrs:?}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn diagnose_follows_the_lectures_table() {
    for (t, v, want) in [
        ("0.01", "0.12", "verdict: high variance"),
        ("0.14", "0.15", "verdict: high bias\n"),
        ("0.14", "0.21", "verdict: high bias and high variance"),
        ("0.005", "0.01", "verdict: low bias, low variance"),
    ] {
        let out = bin()
            .args(["diagnose", "--train-error", t, "--val-error", v])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(want), "{t}/{v}: {text}");
    }
}

/// A 2 × 2 grid on 800 MNIST images, 3 epochs each, on the CPU: trial folders, the merged
/// table with one test evaluation, plots, and a diagnosis of the best and worst trials.
#[test]
fn a_small_sweep_runs_end_to_end() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    assert!(
        data.join("train-images-idx3-ubyte").exists()
            || data.join("train-images-idx3-ubyte.gz").exists(),
        "MNIST missing: run scripts/fetch-data.sh"
    );
    let d = tmp("sweep");
    let sw = d.join("sweep.toml");
    std::fs::write(
        &sw,
        format!(
            "out = \"{}\"\n[base]\nbackend = \"cpu\"\ndata = {{ dir = \"{}\", train_limit = 800, val_fraction = 0.25 }}\nmodel = {{ preset = \"mlp\", hidden = [32] }}\nregularizer = {{ kind = \"l2\" }}\ntrain = {{ epochs = 3, batch = 64 }}\n[params]\n\"regularizer.lambda\" = [0.0, 5.0]\n\"model.dropout\" = [0.0, 0.5]\n",
            d.join("sw").display(),
            data.display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["sweep", "--config", sw.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("4 trials; chosen trial-"), "{text}");
    assert!(
        text.contains("best trial") && text.contains("worst trial"),
        "{text}"
    );
    let dir = d.join("sw");
    for f in [
        "results.csv",
        "results.md",
        "val_accuracy_vs_regularizer_lambda.png",
        "val_accuracy_vs_model_dropout.png",
        "best_curves.png",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    // Exactly one trial carries a test accuracy.
    let with_test = csv.lines().skip(1).filter(|l| !l.ends_with(',')).count();
    assert_eq!(with_test, 1, "{csv}");
    // Each trial folder is a complete run: merge can redo the table from the folders.
    let trials: Vec<String> = (0..4)
        .map(|t| dir.join(format!("trial-{t:03}")).display().to_string())
        .collect();
    let merged = d.join("merged");
    let mut args = vec![
        "sweep".to_string(),
        "merge".into(),
        "--out".into(),
        merged.display().to_string(),
    ];
    args.extend(trials);
    let out = bin().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(merged.join("results.csv")).unwrap(),
        csv
    );
    // And a trial's checkpoint evaluates by itself.
    let ck = dir.join("trial-000/checkpoints/best.safetensors");
    let out = bin()
        .args([
            "eval",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--split",
            "val",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("val: loss"));
    let _ = std::fs::remove_dir_all(d);
}
