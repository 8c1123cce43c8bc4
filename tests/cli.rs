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

/// Run with a config text; expect failure with every `needles` in stderr. Returns the
/// exit status.
fn fails_with(args: &[&str], config: Option<(&Path, &str)>, needles: &[&str]) -> Option<i32> {
    if let Some((p, text)) = config {
        std::fs::write(p, text).unwrap();
    }
    let out = bin().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded; stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} not in stderr:\n{err}");
    }
    out.status.code()
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
        Some((
            &cfg,
            "[optimizer]\nwarmup_steps = 10\nwarmup_start_factor = 0.0\n",
        )),
        &[
            "optimizer.warmup_start_factor",
            "0",
            "0 < start_factor <= 1",
        ],
    );
    // Checked before any data is read, under the key the user wrote.
    for (text, key) in [
        (
            "[model]\npreset = \"w-cnn\"\n[augment]\nzoom = 0.9999\n",
            "augment.zoom",
        ),
        (
            "[model]\npreset = \"w-cnn\"\n[augment]\nnoise_std = inf\n",
            "augment.noise_std",
        ),
        (
            "[model]\npreset = \"w-cnn\"\n[augment]\ncutout = 100000\n",
            "augment.cutout",
        ),
        ("[train]\nmin_delta = inf\n", "train.min_delta"),
    ] {
        fails_with(&train, Some((&cfg, text)), &[key]);
    }
    fails_with(
        &train,
        Some((&cfg, "[train]\nreduce_lr_factor = 1.5\n")),
        &["train.reduce_lr_factor", "1.5", "0 < factor < 1"],
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
    fails_with(&["diagnose"], None, &["--run", "--train-error"]);
    let _ = std::fs::remove_dir_all(d);
}

// A fixed-size array in a config takes exactly its length: `data.image_size = [8, 8, 3]`
// is not [8, 8], nor is [4, 5, 6, 7] or [8]; the error names the key. The same for a
// sweep's ranges (`log_uniform = [lo, hi]`, `uniform`) and for `--set`.
#[test]
fn fixed_size_arrays_in_configs_take_exactly_their_length() {
    use shadeprop::app::{RunConfig, SweepConfig};
    let origin = Path::new("run.toml");
    for v in ["[8, 8, 3]", "[4, 5, 6, 7]", "[8]", "[]"] {
        let e = RunConfig::from_toml(&format!("[data]\nimage_size = {v}\n"), origin)
            .err()
            .unwrap_or_else(|| panic!("image_size = {v} accepted"))
            .to_string();
        assert!(
            e.contains("image_size") && e.contains("[height, width]"),
            "{v}: {e}"
        );
    }
    let ok = RunConfig::from_toml("[data]\nimage_size = [8, 6]\n", origin).unwrap();
    assert_eq!(ok.data.image_size, [8, 6]);
    let d = tmp("arrays");
    let sweep = d.join("sweep.toml");
    for range in ["log_uniform = [0.001, 0.1, 1.0]", "uniform = [0.5]"] {
        std::fs::write(
            &sweep,
            format!(
                "method = \"random\"\ntrials = 2\n[params]\n\"optimizer.lr\" = {{ {range} }}\n"
            ),
        )
        .unwrap();
        let e = SweepConfig::load(&sweep)
            .err()
            .unwrap_or_else(|| panic!("{range} accepted"))
            .to_string();
        assert!(
            e.contains("optimizer.lr") && e.contains("[lo, hi]"),
            "{range}: {e}"
        );
    }
    // On the command line.
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, "").unwrap();
    let e = shadeprop::app::load_with_overrides(&cfg, &["data.image_size=[8, 8, 3]".into()])
        .expect_err("--set data.image_size=[8, 8, 3] accepted")
        .to_string();
    assert!(
        e.contains("image_size") && e.contains("[height, width]"),
        "{e}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

// optimizer.clip_value = inf was taken while clip_norm = inf was refused: one rule now
// (finite, 0 = off), named by the config key; train.min_delta the same.
#[test]
fn infinite_clipping_and_min_delta_are_refused_by_key() {
    use shadeprop::app::RunConfig;
    for (text, key) in [
        (
            "[optimizer]\nclip_value = inf\n",
            "optimizer.clip_value = inf",
        ),
        (
            "[optimizer]\nclip_norm = inf\n",
            "optimizer.clip_norm = inf",
        ),
        (
            "[optimizer]\nclip_value = nan\n",
            "optimizer.clip_value = NaN",
        ),
        ("[train]\nmin_delta = inf\n", "train.min_delta = inf"),
    ] {
        let e = RunConfig::from_toml(text, Path::new("run.toml"))
            .err()
            .unwrap_or_else(|| panic!("{text:?} accepted"))
            .to_string();
        assert!(e.contains(key) && e.contains("finite"), "{e}");
    }
    let ok = RunConfig::from_toml("[optimizer]\nclip_value = 0.5\n", Path::new("run.toml"));
    assert!(ok.is_ok(), "{ok:?}");
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
        let c = shadeprop::app::RunConfig::load(
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
    // Exactly one trial carries a test accuracy; none a test MAE (classification).
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let h = r.headers().unwrap().clone();
    let (acc, mae) = (
        h.iter().position(|c| c == "test_accuracy").unwrap(),
        h.iter().position(|c| c == "test_mae").unwrap(),
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(
        rows.iter().filter(|r| !r[acc].is_empty()).count(),
        1,
        "{csv}"
    );
    assert!(rows.iter().all(|r| r[mae].is_empty()), "{csv}");
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

/// A list-valued swept field (`model.hidden = [16, 8]`) holds commas: results.csv quotes it,
/// so every row has the header's fields (it had one more per comma) and the value reads
/// back whole; the metrics files are CSV a csv reader takes too.
#[test]
fn a_list_valued_sweep_parameter_is_one_csv_field() {
    let d = tmp("sweep-list");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let sw = d.join("sweep.toml");
    std::fs::write(
        &sw,
        format!(
            "out = \"{}\"\n[base]\nbackend = \"cpu\"\ndata = {{ dir = \"{}\", val_fraction = 0.25 }}\nmodel = {{ preset = \"mlp\", batch_norm = false }}\ntrain = {{ epochs = 1, batch = 8 }}\n[params]\n\"model.hidden\" = [[16, 8], [8]]\n",
            d.join("sw").display(),
            data.display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["sweep", "--config", sw.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = csv::Reader::from_path(d.join("sw/results.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    assert_eq!(&header[1], "model.hidden");
    assert_eq!(header.len(), 14);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let mut hidden: Vec<&str> = rows.iter().map(|x| &x[1]).collect();
    hidden.sort();
    assert_eq!(hidden, ["[16, 8]", "[8]"]);
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
    }
    let mut m = csv::Reader::from_path(d.join("sw/trial-000/metrics.csv")).unwrap();
    let n = m.headers().unwrap().len();
    assert!(m.records().all(|x| x.unwrap().len() == n));
    std::fs::remove_dir_all(d).unwrap();
}

/// `sweep --plan-only` prints one `shadeprop train` command per trial; run as printed,
/// each trial's result.json carries its swept values and how they were drawn (the train
/// command rewrote config.toml without them, and recorded none), and the merged table has
/// them in its parameter columns.
#[test]
fn planned_trials_run_by_hand_record_their_swept_values() {
    let d = tmp("plan-params");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let sw = d.join("sweep.toml");
    std::fs::write(
        &sw,
        format!(
            "method = \"random\"\ntrials = 2\nseed = 1\nout = \"{}\"\n[base]\nbackend = \"cpu\"\ndata = {{ dir = \"{}\", val_fraction = 0.25 }}\nmodel = {{ preset = \"mlp\", batch_norm = false }}\ntrain = {{ epochs = 1, batch = 8 }}\n[params]\n\"optimizer.lr\" = {{ log_uniform = [0.001, 0.1] }}\n\"model.hidden\" = [[16, 8], [8]]\n",
            d.join("sw").display(),
            data.display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["sweep", "--config", sw.to_str().unwrap(), "--plan-only"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let commands: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("shadeprop train "))
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(commands.len(), 2, "{text}");
    let mut dirs = vec![];
    for (t, args) in commands.iter().enumerate() {
        let mut c = bin();
        c.args(args).arg("--quiet");
        // The second trial run with its rate overridden: the value that ran is recorded.
        if t == 1 {
            c.args(["--lr", "0.0625"]);
        }
        let st = c.output().unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let dir = d.join("sw").join(format!("trial-{t:03}"));
        let r = shadeprop::app::read_result(&dir).unwrap();
        let cfg = shadeprop::app::RunConfig::load(&dir.join("config.toml")).unwrap();
        // The values are the trial's: its config's learning rate and hidden sizes.
        assert_eq!(
            r.params.keys().collect::<Vec<_>>(),
            ["model.hidden", "optimizer.lr"],
            "{r:?}"
        );
        assert_eq!(
            r.params["optimizer.lr"].parse::<f32>().unwrap(),
            cfg.optimizer.lr
        );
        if t == 1 {
            assert_eq!(r.params["optimizer.lr"], "0.0625");
        }
        let hidden: Vec<String> = cfg.model.hidden.iter().map(|h| h.to_string()).collect();
        assert_eq!(r.params["model.hidden"], format!("[{}]", hidden.join(", ")));
        assert_eq!(r.sampling["optimizer.lr"], "log_uniform");
        assert_eq!(r.sampling["model.hidden"], "values");
        // The run folder's config still names them.
        let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(text.starts_with("# sweep: model.hidden = ["), "{text}");
        dirs.push(dir.display().to_string());
    }
    let merged = d.join("merged");
    let out = bin()
        .args(["sweep", "merge", "--out", merged.to_str().unwrap()])
        .args(&dirs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = csv::Reader::from_path(merged.join("results.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    assert_eq!((&h[1], &h[2]), ("model.hidden", "optimizer.lr"));
    // The rate (log-uniform: a log axis), coloured by the hidden sizes; the lists are no
    // numbers to plot against.
    assert!(merged.join("val_accuracy_vs_optimizer_lr.png").exists());
    assert!(!merged.join("val_accuracy_vs_model_hidden.png").exists());
    for row in r.records() {
        let row = row.unwrap();
        assert!(!row[1].is_empty() && !row[2].is_empty(), "{row:?}");
    }
    std::fs::remove_dir_all(d).unwrap();
}

/// What a run does not have is absent from result.json (null) and empty in results.csv,
/// not 0: a regression sweep's runs have no accuracy (they are ranked by validation MAE,
/// the chosen one gets a test MAE), a run without a validation split has no validation
/// numbers (and no diagnosis).
#[test]
fn numbers_a_run_does_not_have_are_absent_not_0() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = tmp("absent");
    // A regression sweep: 2 trials on the diabetes table.
    let sw = d.join("sweep.toml");
    std::fs::write(
        &sw,
        format!(
            "out = \"{}\"\n[base]\ntask = \"regression\"\nbackend = \"cpu\"\n[base.data]\ndataset = \"csv\"\n[base.data.csv]\npath = \"{}\"\ntarget_file = \"{}\"\ndelimiter = \"whitespace\"\nheader = false\ntarget = [\"target\"]\n[base.model]\npreset = \"mlp\"\nhidden = [4]\nbatch_norm = false\ndropout = 0.0\n[base.train]\nepochs = 2\nmonitor = \"val_mae\"\n[params]\n\"optimizer.lr\" = [0.001, 0.01]\n",
            d.join("reg").display(),
            root.join("data/sklearn/diabetes_data_raw.csv.gz").display(),
            root.join("data/sklearn/diabetes_target.csv.gz").display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["sweep", "--config", sw.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("test MAE") && text.contains("no diagnosis"),
        "{text}"
    );
    let json = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
    };
    let r = json(&d.join("reg/trial-000"));
    for k in ["train_accuracy", "val_accuracy", "test_accuracy"] {
        assert!(r[k].is_null(), "{k}: {r}");
    }
    for k in ["train_mae", "val_mae", "val_loss", "gap"] {
        assert!(r[k].as_f64().is_some(), "{k}: {r}");
    }
    let mut csv = csv::Reader::from_path(d.join("reg/results.csv")).unwrap();
    let h = csv.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for k in ["train_accuracy", "val_accuracy", "test_accuracy"] {
            assert_eq!(&row[col(k)], "", "{k}: {row:?}");
        }
    }
    // Ranked by validation MAE, lowest first; the first (chosen) has the test MAE.
    let mae: Vec<f64> = rows
        .iter()
        .map(|r| r[col("val_mae")].parse().unwrap())
        .collect();
    assert!(mae[0] <= mae[1], "{mae:?}");
    assert!(
        rows[0][col("test_mae")].parse::<f64>().is_ok(),
        "{:?}",
        rows[0]
    );
    assert_eq!(&rows[1][col("test_mae")], "");

    // A classification run without a validation split.
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("noval.toml");
    std::fs::write(
        &cfg,
        small_config(&data, "monitor = \"loss\"\n")
            .replace("val_fraction = 0.25", "val_fraction = 0.0"),
    )
    .unwrap();
    let run = d.join("noval");
    train_ok(&cfg, &run);
    let r = json(&run);
    for k in ["val_loss", "val_accuracy", "val_mae", "gap", "train_mae"] {
        assert!(r[k].is_null(), "{k}: {r}");
    }
    assert!(r["train_accuracy"].as_f64().is_some(), "{r}");
    fails_with(
        &["diagnose", "--run", run.to_str().unwrap()],
        None,
        &["validation split"],
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// Write an IDX file of unsigned bytes.
fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    std::fs::write(path, b).unwrap();
}

/// A small MNIST-format folder: `n_train` and `n_test` images of `side`×`side` (test images
/// `test_side`), deterministic pixels, labels 0..9.
fn fake_idx(dir: &Path, n_train: u32, n_test: u32, side: u32, test_side: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n, s) in [("train", n_train, side), ("t10k", n_test, test_side)] {
        let px: Vec<u8> = (0..n * s * s).map(|i| (i * 37 % 251) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            &[n, s, s],
            &px,
        );
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            &[n],
            &labels,
        );
    }
}

/// A run config on `data` with a small MLP on the reference CPU backend, plus `extra` TOML.
/// `shadeprop train --config cfg --out out_dir --quiet`, which must succeed.
fn train_ok(cfg: &Path, out_dir: &Path) {
    let out = bin()
        .args(["train", "--config", cfg.to_str().unwrap(), "--out"])
        .arg(out_dir)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn small_config(data: &Path, extra: &str) -> String {
    format!(
        "backend = \"cpu\"\n[data]\ndir = \"{}\"\nval_fraction = 0.25\n[model]\npreset = \"mlp\"\nhidden = [8]\nbatch_norm = false\ndropout = 0.0\n[train]\nepochs = 1\nbatch = 8\n{extra}",
        data.display()
    )
}

/// Fails with exit status 1 (a named error), not an abort (134) or a panic (101).
fn refused(args: &[&str], config: (&Path, &str), needles: &[&str]) {
    let code = fails_with(args, Some(config), needles);
    assert_eq!(code, Some(1), "{args:?}: exit status");
}

#[test]
fn sizes_that_cannot_be_allocated_are_named_errors() {
    let d = tmp("sizes");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("run.toml");
    let (c, o) = (cfg.to_str().unwrap(), d.join("out"));
    let train = [
        "train",
        "--config",
        c,
        "--out",
        o.to_str().unwrap(),
        "--quiet",
    ];
    // A hidden width of 10^12: 784·10^12 weights.
    let text = small_config(&data, "").replace("hidden = [8]", "hidden = [1000000000000]");
    refused(
        &train,
        (&cfg, &text),
        &["model.hidden", "1000000000000", "bytes"],
    );
    // 2^62: the weight count 784·2^62 wraps to 0 in 64-bit arithmetic.
    let text = small_config(&data, "").replace("hidden = [8]", "hidden = [4611686018427387904]");
    refused(
        &train,
        (&cfg, &text),
        &["model.hidden", "4611686018427387904"],
    );
    // A batch of 10^12.
    let text = small_config(&data, "").replace("batch = 8", "batch = 1000000000000");
    refused(
        &train,
        (&cfg, &text),
        &["train.batch", "1000000000000", "bytes"],
    );
    // An image folder resized to 100000×100000.
    let folder = d.join("folder");
    std::fs::create_dir_all(folder.join("a")).unwrap();
    std::fs::create_dir_all(folder.join("b")).unwrap();
    for k in ["a", "b"] {
        image::GrayImage::from_pixel(4, 4, image::Luma([9u8]))
            .save(folder.join(k).join("0.png"))
            .unwrap();
    }
    let text = format!(
        "backend = \"cpu\"\n[data]\ndataset = \"folder\"\ndir = \"{}\"\nimage_size = [100000, 100000]\n[model]\npreset = \"mlp\"\nhidden = [8]\n",
        folder.display()
    );
    refused(
        &train,
        (&cfg, &text),
        &["data.image_size", "100000", "bytes"],
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn idx_images_of_another_size_name_the_file_and_both_sizes() {
    let d = tmp("idx-size");
    let cfg = d.join("run.toml");
    let (c, o) = (cfg.to_str().unwrap(), d.join("out"));
    let train = [
        "train",
        "--config",
        c,
        "--out",
        o.to_str().unwrap(),
        "--quiet",
    ];
    // 32×32 images into the 28×28 W-MLP.
    let big = d.join("big");
    fake_idx(&big, 40, 10, 32, 32);
    let text = small_config(&big, "").replace("preset = \"mlp\"", "preset = \"w-mlp\"");
    refused(
        &train,
        (&cfg, &text),
        &["train-images-idx3-ubyte", "32×32", "28×28"],
    );
    // Test images of another size than the training images.
    let mixed = d.join("mixed");
    fake_idx(&mixed, 40, 10, 28, 32);
    refused(
        &train,
        (&cfg, &small_config(&mixed, "")),
        &["t10k-images-idx3-ubyte", "32×32", "28×28"],
    );
    // An MLP takes its input size from the file: 32×32 images train.
    std::fs::write(&cfg, small_config(&big, "")).unwrap();
    let out = bin().args(train).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn predict_count_0_and_eval_on_0_images_are_named_errors() {
    let d = tmp("empty-test");
    let data = d.join("data");
    fake_idx(&data, 40, 0, 28, 28);
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, small_config(&data, "")).unwrap();
    let out_dir = d.join("out");
    train_ok(&cfg, &out_dir);
    let ck = out_dir.join("checkpoints").join("best.safetensors");
    let ck = ck.to_str().unwrap();
    fails_with(
        &["eval", "--checkpoint", ck, "--split", "test"],
        None,
        &["test", "0 "],
    );
    fails_with(
        &["predict", "--checkpoint", ck, "--count", "0"],
        None,
        &["--count", "0"],
    );
    fails_with(&["predict", "--checkpoint", ck], None, &["test", "0 "]);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn an_augment_table_without_preset_means_none() {
    use shadeprop::app::RunConfig;
    let c = RunConfig::from_toml(
        "[model]\npreset = \"w-cnn\"\n[augment]\nrotation = 5.0\n",
        Path::new("run.toml"),
    )
    .unwrap();
    assert_eq!(c.augment.unwrap().preset, "none");
}

#[test]
fn patience_0_stops_at_the_first_epoch_without_improvement() {
    // With lr 1e-30 (no momentum, decay or dropout) no weight changes in f32 (w − 1e-30·g
    // rounds to w; the biases move by ~1e-31, far below the logits' rounding), so val_loss
    // is the same every epoch. Keras, patience 0: epoch 1 sets the best, epoch 2 does not
    // improve and wait 1 >= 0: stop after 2 epochs.
    let d = tmp("patience0");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("run.toml");
    let extra = "patience = 0\n[optimizer]\nlr = 1e-30\nmomentum = 0.0\nweight_decay = 0.0\nclip_norm = 0.0\nschedule = \"constant\"\n";
    let run = |text: String| {
        std::fs::write(&cfg, text.replace("epochs = 1", "epochs = 4")).unwrap();
        let out_dir = d.join("out");
        // Each run its own folder: a folder holding a run is refused.
        let _ = std::fs::remove_dir_all(&out_dir);
        train_ok(&cfg, &out_dir);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("result.json")).unwrap())
                .unwrap();
        (r["epochs_run"].as_u64(), r["best_epoch"].as_u64())
    };
    // best_epoch is 0-based (the first epoch).
    assert_eq!(run(small_config(&data, extra)), (Some(2), Some(0)));
    // Early stopping off is its own key: all 4 epochs run.
    let off = small_config(&data, &format!("early_stopping = false\n{extra}"));
    assert_eq!(run(off).0, Some(4));
    std::fs::remove_dir_all(d).unwrap();
}

/// One epoch numbering: 0-based in metrics.csv, metrics.jsonl and result.json (Keras'
/// History), 1-based "Epoch k/N" in what is printed. The run of
/// `patience_0_stops_at_the_first_epoch_without_improvement` (val_loss constant): epoch 0
/// is the best, epoch 1 does not improve and stops the run.
#[test]
fn epochs_count_from_0_in_files_and_from_1_when_printed() {
    let d = tmp("epochs");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("run.toml");
    let extra = "patience = 0\n[optimizer]\nlr = 1e-30\nmomentum = 0.0\nweight_decay = 0.0\nclip_norm = 0.0\nschedule = \"constant\"\n";
    std::fs::write(
        &cfg,
        small_config(&data, extra).replace("epochs = 1", "epochs = 4"),
    )
    .unwrap();
    let run = d.join("out");
    let out = bin()
        .args(["train", "--config", cfg.to_str().unwrap(), "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in ["Epoch 1/4 ", "Epoch 2/4 ", "best at Epoch 1/2:"] {
        assert!(text.contains(want), "{want:?} not printed:\n{text}");
    }
    assert!(!text.contains("Epoch 3/4"), "{text}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["best_epoch"], 0);
    assert_eq!(r["stopped_epoch"], 1);
    assert_eq!(r["epochs_run"], 2);
    let mut csv = csv::Reader::from_path(run.join("metrics.csv")).unwrap();
    assert_eq!(&csv.headers().unwrap()[0], "epoch");
    let epochs: Vec<String> = csv.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(epochs, ["0", "1"]);
    let jsonl = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let epochs: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [0, 1]);
    std::fs::remove_dir_all(d).unwrap();
}

// train.baseline: nan is no baseline; ±inf is a baseline like any other (Keras takes any
// float). The weights never change (lr 1e-30, as above), so val_loss is the same every
// epoch. Keras' rule by hand, patience 2: without a baseline, epoch 1 sets the best
// (wait 0), epochs 2 and 3 do not improve (wait 1, 2): stop after 3. With baseline −inf
// (mode min: never beaten) epoch 1 improves on "no best" but does not beat the baseline,
// so wait stays 1; epoch 2: wait 2 >= 2, stop after 2. With +inf every value beats it: 3.
#[test]
fn an_infinite_baseline_is_a_baseline_and_nan_is_none() {
    let d = tmp("baseline");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("run.toml");
    let run = |baseline: &str| {
        let extra = format!(
            "patience = 2\nbaseline = {baseline}\n[optimizer]\nlr = 1e-30\nmomentum = 0.0\nweight_decay = 0.0\nclip_norm = 0.0\nschedule = \"constant\"\n"
        );
        std::fs::write(
            &cfg,
            small_config(&data, &extra).replace("epochs = 1", "epochs = 6"),
        )
        .unwrap();
        let out_dir = d.join("out");
        let _ = std::fs::remove_dir_all(&out_dir);
        train_ok(&cfg, &out_dir);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("result.json")).unwrap())
                .unwrap();
        r["epochs_run"].as_u64()
    };
    assert_eq!(run("nan"), Some(3));
    assert_eq!(run("-inf"), Some(2));
    assert_eq!(run("inf"), Some(3));
    std::fs::remove_dir_all(d).unwrap();
}

/// Temporary files a killed write left (`.best.safetensors.tmp-<pid>-<n>`, its process
/// gone) are removed when a run resumes in that folder, in the run folder and in its
/// checkpoint folder; other files stay.
#[test]
fn a_resumed_run_removes_the_temporary_files_a_killed_write_left() {
    if !Path::new("/proc/self").exists() {
        eprintln!("SKIPPED (no /proc to tell whether a process runs)");
        return;
    }
    let d = tmp("stale");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, small_config(&data, "")).unwrap();
    let out_dir = d.join("out");
    train_ok(&cfg, &out_dir);
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let id = c.id();
        c.wait().unwrap();
        id
    };
    let ck = out_dir.join("checkpoints");
    let stale = [
        ck.join(format!(".best.safetensors.tmp-{dead}-3")),
        out_dir.join(format!(".config.toml.tmp-{dead}-0")),
    ];
    let other = out_dir.join("notes.tmp-1-2");
    for f in stale.iter().chain([&other]) {
        std::fs::write(f, b"partial").unwrap();
    }
    // The run's own settings; the run finished, so --overwrite.
    let out = bin()
        .args(["train", "--config", cfg.to_str().unwrap(), "--out"])
        .arg(&out_dir)
        .arg("--resume")
        .arg(ck.join("best.safetensors"))
        .args(["--quiet", "--overwrite"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in &stale {
        assert!(!f.exists(), "{} left behind", f.display());
    }
    assert!(other.exists());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn the_idx_image_size_is_read_from_plain_and_gzip_headers() {
    use std::io::Write;
    let d = tmp("idx-dims");
    fake_idx(&d, 3, 2, 5, 5);
    let (p, h, w) = shadeprop::data::idx_image_size(&d, "train").unwrap();
    assert_eq!(
        (p.file_name().unwrap().to_str().unwrap(), h, w),
        ("train-images-idx3-ubyte", 5, 5)
    );
    // Gzip-compressed, 7×9 images.
    let mut body = vec![0, 0, 0x08, 3];
    for v in [1u32, 7, 9] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    body.extend_from_slice(&[0; 63]);
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    gz.write_all(&body).unwrap();
    std::fs::remove_file(d.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
    let (p, h, w) = shadeprop::data::idx_image_size(&d, "t10k").unwrap();
    assert_eq!(
        (p.extension().unwrap().to_str().unwrap(), h, w),
        ("gz", 7, 9)
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// The training path reads an IDX file's header first (its image size): a wrong magic is
/// refused there exactly as the whole-file reader refuses it (`magic starts 12 34,
/// expected 00 00`), not read as 0x78 = 120 dimensions; the same for the element type and
/// 0 dimensions, plain or gzip-compressed, and by `shadeprop train` itself.
#[test]
fn the_training_path_checks_the_idx_magic_as_predict_does() {
    use std::io::Write;
    let d = tmp("idx-magic");
    for (magic, want) in [
        (
            [0x12, 0x34, 0x56, 0x78],
            "magic starts 12 34, expected 00 00",
        ),
        ([0, 0, 0x09, 3], "element type 0x09, expected 0x08"),
        ([0, 0, 0x08, 0], "0 dimensions, expected at least 1"),
    ] {
        for gz in [false, true] {
            fake_idx(&d, 3, 2, 5, 5);
            let mut body = magic.to_vec();
            body.extend_from_slice(&[1u8; 600]);
            let p = d.join("train-images-idx3-ubyte");
            if gz {
                let mut enc = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
                enc.write_all(&body).unwrap();
                std::fs::remove_file(&p).unwrap();
                std::fs::write(d.join("train-images-idx3-ubyte.gz"), enc.finish().unwrap())
                    .unwrap();
            } else {
                std::fs::write(&p, &body).unwrap();
            }
            let header = shadeprop::data::idx_image_size(&d, "train")
                .unwrap_err()
                .to_string();
            let whole = shadeprop::data::load_idx_pair(&d, "train")
                .unwrap_err()
                .to_string();
            for e in [&header, &whole] {
                assert!(
                    e.starts_with("IDX file") && e.contains(want),
                    "gz {gz}: {e}"
                );
            }
            let _ = std::fs::remove_file(d.join("train-images-idx3-ubyte.gz"));
        }
    }
    // From the command line.
    fake_idx(&d, 3, 2, 5, 5);
    std::fs::write(
        d.join("train-images-idx3-ubyte"),
        [0x12, 0x34, 0x56, 0x78, 0, 0],
    )
    .unwrap();
    let cfg = d.join("run.toml");
    let out = d.join("out");
    refused(
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        (&cfg, &small_config(&d, "")),
        &[
            "train-images-idx3-ubyte",
            "magic starts 12 34, expected 00 00",
        ],
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// The tabular path end to end on the penguins table (CPU): `task`, `[loss]` and
/// `[data.csv]` in a run config, training with one-hot columns and imputed NA values,
/// validation task metrics in metrics.csv, evaluation on the held-out rows, and
/// `predict --input` on raw rows (NA included, target column absent) written to a CSV;
/// `--count` beyond the rows and a config that does not fit the task are refused.
#[test]
fn a_tabular_run_trains_evaluates_and_predicts_from_raw_rows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("data/palmerpenguins/penguins.csv");
    assert!(
        csv.exists(),
        "penguins missing: run scripts/fetch-data.sh --tabular"
    );
    let d = tmp("tabular");
    let out = d.join("run");
    let text = std::fs::read_to_string(root.join("configs/penguins.toml"))
        .unwrap()
        .replace("epochs = 100", "epochs = 30")
        .replace("backend = \"auto\"", "backend = \"cpu\"")
        .replace("../data/", &format!("{}/data/", root.display()));
    let cfg = d.join("penguins.toml");
    std::fs::write(&cfg, &text).unwrap();
    let st = bin()
        .args([
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let header = metrics.lines().next().unwrap();
    for col in [
        "val_accuracy",
        "val_precision",
        "val_recall",
        "val_f1_score",
    ] {
        assert!(header.split(',').any(|c| c == col), "{col} not in {header}");
    }
    let ck = out.join("checkpoints/best.safetensors");
    let ev = bin()
        .args([
            "eval",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--split",
            "test",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&ev.stdout);
    assert!(
        ev.status.success(),
        "{s} {}",
        String::from_utf8_lossy(&ev.stderr)
    );
    // "test: loss L accuracy A (69 samples)": 20% of 344 rows.
    let acc: f64 = s
        .split("accuracy ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(acc >= 0.9, "test accuracy {acc}: {s}");
    assert!(s.contains("(69 samples)"), "{s}");

    // Raw rows without the species column; the 4th has NA everywhere (imputed).
    let rows = d.join("rows.csv");
    std::fs::write(
        &rows,
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n\
         Torgersen,39.1,18.7,181,3750,male,2007\n\
         Biscoe,46.1,13.2,211,4500,female,2007\n\
         Dream,46.5,17.9,192,3500,female,2007\n\
         Torgersen,NA,NA,NA,NA,NA,2007\n",
    )
    .unwrap();
    let preds = d.join("preds.csv");
    let p = bin()
        .args([
            "predict",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--input",
            rows.to_str().unwrap(),
            "--output",
            preds.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let written = std::fs::read_to_string(&preds).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "row,predicted,p(Adelie),p(Chinstrap),p(Gentoo)");
    assert_eq!(lines.len(), 5, "{written}");
    // The three rows are an Adelie, a Gentoo and a Chinstrap of the file (rows 1, 153
    // and 277 of penguins.csv); the probabilities of each row sum to 1.
    let predicted: Vec<&str> = lines[1..4]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(predicted, ["Adelie", "Gentoo", "Chinstrap"], "{written}");
    for l in &lines[1..] {
        let s: f64 = l
            .split(',')
            .skip(2)
            .map(|v| v.parse::<f64>().unwrap())
            .sum();
        assert!((s - 1.0).abs() < 1e-5, "{l}");
    }
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--input",
            rows.to_str().unwrap(),
            "--count",
            "5",
        ],
        None,
        &["--count", "5", "4 rows"],
    );
    // A category never seen in training is named with its line and column.
    std::fs::write(&rows, "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\nAtlantis,39,18,181,3750,male\n").unwrap();
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--input",
            rows.to_str().unwrap(),
        ],
        None,
        &["line 2", "island", "Atlantis", "not seen"],
    );
    // Configs that do not fit: a regression loss for a multiclass task, a csv run
    // without its table, a binary task on images.
    let bad = d.join("bad.toml");
    let o = d.join("bad-out");
    let train = [
        "train",
        "--config",
        bad.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--quiet",
    ];
    fails_with(
        &train,
        Some((&bad, &format!("{text}\n[loss]\nkind = \"mse\"\n"))),
        &["loss.kind", "mse"],
    );
    fails_with(
        &train,
        Some((
            &bad,
            "task = \"binary\"\n[data]\ndataset = \"csv\"\n[model]\npreset = \"mlp\"\n",
        )),
        &["data.csv"],
    );
    fails_with(
        &train,
        Some((&bad, "task = \"binary\"\n")),
        &["task", "multiclass for image datasets"],
    );
}

/// Files the user names must be regular files: a FIFO without a writer and /dev/zero as a
/// config, a checkpoint or a CSV input are refused at once with the path named (before
/// this, `predict --input FIFO` blocked forever and `--input /dev/zero` read 1 GiB first).
#[test]
fn fifos_and_devices_are_refused_not_read() {
    let d = tmp("fifo");
    let fifo = d.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success(),
        "mkfifo"
    );
    let f = fifo.to_str().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = root.join("configs/penguins.toml");
    let c = cfg.to_str().unwrap();
    let o = d.join("out");
    // A real checkpoint for the --input case: two epochs of the penguins config.
    let run = d.join("run");
    let st = bin()
        .args([
            "train",
            "--config",
            c,
            "--out",
            run.to_str().unwrap(),
            "--quiet",
        ])
        .args(["--set", "train.epochs=2", "--set", "backend=cpu"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let ck = run.join("checkpoints/best.safetensors");
    let k = ck.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["train", "--config", f, "--out", o.to_str().unwrap()],
        vec![
            "train",
            "--config",
            "/dev/zero",
            "--out",
            o.to_str().unwrap(),
        ],
        vec!["eval", "--checkpoint", f, "--config", c],
        vec![
            "predict",
            "--checkpoint",
            "/dev/zero",
            "--config",
            c,
            "--input",
            c,
        ],
        vec!["predict", "--checkpoint", f, "--config", c, "--input", c],
        vec!["predict", "--checkpoint", k, "--input", f],
        vec!["predict", "--checkpoint", k, "--input", "/dev/zero"],
    ];
    for args in cases {
        let mut child = bin()
            .args(&args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed().as_secs() > 20 {
                let _ = child.kill();
                panic!("{args:?} still running after 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{args:?} succeeded");
        assert!(
            err.contains("not a regular file") || err.contains("more than"),
            "{args:?}: {err}"
        );
    }
}

/// `shadeprop export` writes the weights of a run as a state_dict (the keys of the
/// equivalent nn.Sequential it prints), and `model.weights` starts another run from them;
/// weights of another model are refused with the differences listed.
#[test]
fn export_and_initial_weights_round_trip_through_the_command_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = root.join("configs/penguins.toml");
    let c = cfg.to_str().unwrap();
    let d = tmp("export");
    let run = d.join("run");
    let set = ["--set", "train.epochs=3", "--set", "backend=cpu"];
    let st = bin()
        .args([
            "train",
            "--config",
            c,
            "--out",
            run.to_str().unwrap(),
            "--quiet",
        ])
        .args(set)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let w = d.join("w.safetensors");
    let ck = run.join("checkpoints/best.safetensors");
    let ex = bin()
        .args([
            "export",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--out",
            w.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ex.stdout);
    assert!(
        ex.status.success(),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    assert!(
        text.contains("Linear(9, 64, bias=True)") && text.contains("Linear(64, 3, bias=True)"),
        "{text}"
    );
    let bytes = std::fs::read(&w).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut keys: Vec<String> = st.names().into_iter().map(String::from).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "0.bias", "0.weight", "3.bias", "3.weight", "6.bias", "6.weight"
        ]
    );
    // A second run starts from those weights: its first epoch is already as good.
    let run2 = d.join("run2");
    let st = bin()
        .args([
            "train",
            "--config",
            c,
            "--out",
            run2.to_str().unwrap(),
            "--quiet",
        ])
        .args(["--set", "train.epochs=1", "--set", "backend=cpu"])
        .args(["--set", &format!("model.weights=\"{}\"", w.display())])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let m = std::fs::read_to_string(run2.join("metrics.csv")).unwrap();
    let m1 = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let val_loss = |csv: &str, row: usize| -> f64 {
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let i = header.iter().position(|h| *h == "val_loss").unwrap();
        csv.lines()
            .nth(row)
            .unwrap()
            .split(',')
            .nth(i)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(val_loss(&m, 1) < val_loss(&m1, 1), "{m}\n{m1}");
    // The weights into another model: refused, differences listed.
    fails_with(
        &[
            "train",
            "--config",
            c,
            "--out",
            d.join("run3").to_str().unwrap(),
            "--quiet",
            "--set",
            "model.hidden=[8]",
            "--set",
            &format!("model.weights=\"{}\"", w.display()),
        ],
        None,
        &[
            "does not fit this model",
            "\"0.weight\": shape [64, 9], expected [8, 9]",
        ],
    );
}

/// `shadeprop train` on W-MLP (3,000 MNIST images, the reference CPU backend) into `out`.
fn wmlp_train(out: &Path, extra: &[&str]) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = bin();
    c.args([
        "train",
        "--config",
        root.join("configs/w-mlp.toml").to_str().unwrap(),
    ])
    .args(["--out", out.to_str().unwrap(), "--quiet"])
    .args(["--set", "data.train_limit=3000", "--set", "train.epochs=5"])
    .args(["--set", "train.batch=64", "--set", "backend=cpu-ref"])
    .args(["--set", "train.early_stopping=false"])
    .args(extra);
    c
}

/// metrics.csv without its timing columns (samples_per_sec, seconds).
fn metrics_without_timing(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !matches!(header[i], "samples_per_sec" | "seconds"))
        .collect();
    text.lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i].to_string()).collect()
        })
        .collect()
}

/// Ctrl-C (SIGINT) during `shadeprop train` writes the interrupt checkpoint and the curves
/// and exits 130 naming the resume command; `--resume` finishes the run bit-identical to
/// one never interrupted (every logged loss and accuracy, and result.json's). A finished
/// run's folder is refused as `--out` unless `--overwrite`.
#[test]
fn ctrl_c_then_resume_is_bit_identical_and_runs_never_overwrite_each_other() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    assert!(
        data.join("train-images-idx3-ubyte").exists()
            || data.join("train-images-idx3-ubyte.gz").exists(),
        "MNIST missing: run scripts/fetch-data.sh"
    );
    let d = tmp("ctrlc");
    let (a, b) = (d.join("a"), d.join("b"));
    let st = wmlp_train(&a, &[]).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    // Interrupted once its first epoch is logged.
    let mut child = wmlp_train(&b, &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let logged = std::fs::read_to_string(b.join("metrics.csv"))
            .map(|t| t.lines().count() >= 2)
            .unwrap_or(false);
        if logged {
            break;
        }
        assert!(t0.elapsed().as_secs() < 300, "no epoch logged in 300 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the interrupt"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let ck = b.join("checkpoints/interrupt.safetensors");
    assert!(ck.exists() && err.contains("--resume"), "{err}");
    assert!(
        b.join("curves.png").exists(),
        "curves written at the interrupt"
    );
    assert!(!b.join("result.json").exists());

    // Without --resume or --overwrite, the folder is refused and nothing in it changes.
    let before = std::fs::read(&ck).unwrap();
    let refused = wmlp_train(&b, &[]).output().unwrap();
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && e.contains("holds a run") && e.contains("--overwrite"),
        "{e}"
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before);

    let st = wmlp_train(&b, &["--resume", ck.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(metrics_without_timing(&a), metrics_without_timing(&b));
    let result = |dir: &Path| -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap())
                .unwrap();
        for k in ["seconds", "name"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(result(&a), result(&b));

    // A finished run is refused too; --overwrite replaces it.
    let refused = wmlp_train(&a, &["--set", "train.epochs=1"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let st = wmlp_train(&a, &["--set", "train.epochs=1", "--overwrite"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(
        metrics_without_timing(&a).len(),
        2,
        "one epoch: the old rows are gone"
    );
}

/// The curves use an embedded font; a font that fails (SHADEPROP_FONT pointing at a file
/// that is not one) only costs the plot, with a warning: the run, its metrics, checkpoint
/// and result.json are all written.
#[test]
fn a_plot_that_fails_is_a_warning_not_a_lost_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = tmp("font");
    let run = d.join("run");
    let st = penguins_train(&run, 3)
        .env("SHADEPROP_FONT", root.join("Cargo.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(st.status.success(), "{err}");
    assert!(err.contains("warning: learning curves not drawn"), "{err}");
    for f in ["result.json", "metrics.csv", "checkpoints/best.safetensors"] {
        assert!(run.join(f).exists(), "{f}");
    }
    // Without it, the embedded font draws them.
    let run2 = d.join("run2");
    let st = penguins_train(&run2, 3)
        .env_remove("SHADEPROP_FONT")
        .output()
        .unwrap();
    assert!(st.status.success());
    assert!(std::fs::metadata(run2.join("curves.png")).unwrap().len() > 10_000);
}

/// `predict --input` reads the user's rows with the training file's delimiter and header
/// rule but not its `skip_rows` (that describes the training file): three raw rows give
/// three predictions (the first was silently dropped before); the training file itself
/// needs `--skip-rows 1`.
#[test]
fn predict_input_does_not_skip_the_users_first_row() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("data/sklearn/breast_cancer.csv");
    assert!(csv.exists(), "run scripts/fetch-data.sh --tabular");
    let d = tmp("skiprows");
    let run = train_breast_cancer(&d, &csv, 2);
    // Lines 2-4 of the file, without the target column.
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<String> = text
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect();
    let input = d.join("rows.csv");
    std::fs::write(&input, rows.join("\n") + "\n").unwrap();
    let ck = run.join("checkpoints/best.safetensors");
    let predict = |args: &[&str]| {
        let out = bin()
            .args(["predict", "--checkpoint", ck.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).lines().count() - 1
    };
    assert_eq!(predict(&["--input", input.to_str().unwrap()]), 3);
    assert_eq!(
        predict(&["--input", csv.to_str().unwrap(), "--skip-rows", "1"]),
        569
    );
}

/// Found by breaking the command line: `predict` without `--input` took a softmax over a
/// binary run's single output (every row "p 1.0000", always class 0); `predict --input`
/// with another task's config printed logits as probabilities; `--output` equal to
/// `--input` replaced the user's rows. Each now follows the task or is refused.
#[test]
fn predict_follows_the_task_and_never_replaces_its_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("data/sklearn/breast_cancer.csv");
    assert!(csv.exists(), "run scripts/fetch-data.sh --tabular");
    let d = tmp("predict-task");
    let text = breast_cancer_config(&csv, 5);
    let run = train_breast_cancer(&d, &csv, 5);
    let ck = run.join("checkpoints/best.safetensors");
    let out = bin()
        .args([
            "predict",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--count",
            "20",
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both classes are predicted among 20 test rows, with probabilities of the predicted
    // class in [0.5, 1].
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 20, "{printed}");
    let predicted: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[2]).collect();
    assert_eq!(predicted.len(), 2, "{printed}");
    for r in &rows {
        let p: f64 = r[3].parse().unwrap();
        assert!((0.5..=1.0).contains(&p), "{printed}");
    }
    // Another task's config: refused, naming both.
    let other = d.join("other.toml");
    std::fs::write(
        &other,
        text.replace("task = \"binary\"", "task = \"multiclass\""),
    )
    .unwrap();
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--config",
            other.to_str().unwrap(),
            "--input",
            csv.to_str().unwrap(),
            "--skip-rows",
            "1",
        ],
        None,
        &["binary task", "multiclass"],
    );
    // --output = --input: refused, the input unchanged.
    let copy = d.join("rows.csv");
    std::fs::copy(&csv, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--input",
            copy.to_str().unwrap(),
            "--skip-rows",
            "1",
            "--output",
            copy.to_str().unwrap(),
        ],
        None,
        &["--output", "other than the ones this command reads"],
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

/// `train.monitor` must name a metric the run records (a regression run has no accuracy:
/// monitoring it silently disabled early stopping and the best checkpoint); the task's own
/// validation metrics are accepted for tables.
#[test]
fn the_monitor_must_be_a_metric_the_run_records() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = tmp("monitor");
    let cfg = d.join("reg.toml");
    let o = d.join("out");
    let text = |monitor: &str| {
        format!(
            "task = \"regression\"\nbackend = \"cpu\"\n[data]\ndataset = \"csv\"\n[data.csv]\npath = \"{}\"\ntarget_file = \"{}\"\ndelimiter = \"whitespace\"\nheader = false\ntarget = [\"target\"]\n[model]\npreset = \"mlp\"\nhidden = [4]\nbatch_norm = false\ndropout = 0.0\n[optimizer]\nlr = 0.001\n[train]\nepochs = 2\nmonitor = \"{monitor}\"\n",
            root.join("data/sklearn/diabetes_data_raw.csv.gz").display(),
            root.join("data/sklearn/diabetes_target.csv.gz").display()
        )
    };
    let train = [
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--quiet",
    ];
    fails_with(
        &train,
        Some((&cfg, &text("val_accuracy"))),
        &["train.monitor", "val_mae", "val_r2_score"],
    );
    assert!(!o.exists(), "a refused config leaves nothing behind");
    std::fs::write(&cfg, text("val_r2_score")).unwrap();
    let st = bin().args(train).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// A binary run config on scikit-learn's breast-cancer table (its first line skipped,
/// columns named by index, "30" the target): a small MLP on the CPU for `epochs`.
fn breast_cancer_config(csv: &Path, epochs: usize) -> String {
    format!(
        "task = \"binary\"\nbackend = \"cpu\"\n[data]\ndataset = \"csv\"\n[data.csv]\npath = \"{}\"\nheader = false\nskip_rows = 1\ntarget = [\"30\"]\n[model]\npreset = \"mlp\"\nhidden = [8]\nbatch_norm = false\ndropout = 0.0\n[train]\nepochs = {epochs}\nbatch = 32\n",
        csv.display()
    )
}

/// `shadeprop train` of configs/penguins.toml into `out` for `epochs`, on the CPU, quiet.
fn penguins_train(out: &Path, epochs: usize) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = bin();
    c.args([
        "train",
        "--config",
        root.join("configs/penguins.toml").to_str().unwrap(),
    ])
    .args(["--out", out.to_str().unwrap(), "--quiet"])
    .args([
        "--set",
        &format!("train.epochs={epochs}"),
        "--set",
        "backend=cpu",
    ]);
    c
}

/// Train [`breast_cancer_config`] into `<d>/run` (which must succeed); the run folder.
fn train_breast_cancer(d: &Path, csv: &Path, epochs: usize) -> PathBuf {
    let cfg = d.join("bc.toml");
    std::fs::write(&cfg, breast_cancer_config(csv, epochs)).unwrap();
    let run = d.join("run");
    train_ok(&cfg, &run);
    run
}

/// An override that breaks the config is named as the override (it pointed at a line of
/// the merged text, which is no file the user has).
#[test]
fn set_errors_name_the_override() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = root.join("configs/penguins.toml");
    let o = tmp("set").join("out");
    let err = fails_with(
        &[
            "train",
            "--config",
            c.to_str().unwrap(),
            "--out",
            o.to_str().unwrap(),
            "--set",
            "optimizer.learning_rate=0.1",
        ],
        None,
        &[
            "with --set optimizer.learning_rate=0.1",
            "unknown field `learning_rate`",
        ],
    );
    assert_eq!(err, Some(1));
    assert!(!o.exists());
}

fn stdout_of(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn config_paths_are_relative_to_the_config_file_and_set_paths_to_the_working_directory() {
    let d = tmp("relative");
    fake_idx(&d.join("data"), 40, 10, 28, 28);
    std::fs::create_dir_all(d.join("configs")).unwrap();
    let cfg = d.join("configs").join("run.toml");
    std::fs::write(&cfg, small_config(Path::new("../data"), "")).unwrap();
    // Run from another working directory: the data are found next to the config.
    let out_dir = d.join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_shadeprop"))
        .current_dir("/")
        .env("NODEVICE_SELECT", "1")
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The run's saved config holds the path absolute, so it works from anywhere.
    let saved = std::fs::read_to_string(out_dir.join("config.toml")).unwrap();
    let want = format!("dir = \"{}\"", d.join("configs").join("../data").display());
    assert!(saved.contains(&want), "{want:?} not in:\n{saved}");
    let ck = out_dir.join("checkpoints").join("best.safetensors");
    let r = Command::new(env!("CARGO_BIN_EXE_shadeprop"))
        .current_dir("/tmp")
        .env("NODEVICE_SELECT", "1")
        .args(["eval", "--split", "test", "--checkpoint"])
        .arg(&ck)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // `--set data.dir=...` is relative to the working directory: from d, "data" is there,
    // from d/configs it is not.
    let o2 = d.join("out2");
    let ok = Command::new(env!("CARGO_BIN_EXE_shadeprop"))
        .current_dir(&d)
        .env("NODEVICE_SELECT", "1")
        .args(["train", "--quiet", "--set", "data.dir=data", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&o2)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_shadeprop"))
        .current_dir(d.join("configs"))
        .env("NODEVICE_SELECT", "1")
        .args(["train", "--quiet", "--set", "data.dir=data", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(d.join("out3"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains(&d.join("configs").join("data").display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn eval_and_predict_use_the_checkpoints_standardization_not_a_refit() {
    let d = tmp("stored");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, small_config(&data, "")).unwrap();
    let out_dir = d.join("out");
    train_ok(&cfg, &out_dir);
    let ck = out_dir.join("checkpoints").join("best.safetensors");
    let ck = ck.to_str().unwrap();
    let before = stdout_of(&["eval", "--checkpoint", ck, "--split", "test"]);
    let preds = stdout_of(&["predict", "--checkpoint", ck, "--count", "3"]);
    // The training images change after training (the test images do not): a refit would
    // standardize the test images differently; the stored standardization does not.
    let px: Vec<u8> = (0..40 * 28 * 28).map(|i| (i % 3 * 120) as u8).collect();
    write_idx(&data.join("train-images-idx3-ubyte"), &[40, 28, 28], &px);
    let after = stdout_of(&["eval", "--checkpoint", ck, "--split", "test"]);
    assert_eq!(before, after);
    assert_eq!(
        preds,
        stdout_of(&["predict", "--checkpoint", ck, "--count", "3"])
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// Read a predictions CSV with the csv crate: header and rows.
fn read_preds(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(p).unwrap();
    let h = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (h, rows)
}

#[test]
fn predict_reads_idx_files_and_image_folders() {
    let d = tmp("predict-images");
    let data = d.join("data");
    fake_idx(&data, 60, 12, 28, 28);
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, small_config(&data, "")).unwrap();
    let out_dir = d.join("out");
    train_ok(&cfg, &out_dir);
    let ck = out_dir.join("checkpoints").join("best.safetensors");
    let ck = ck.to_str().unwrap();
    // A table is not an image file: named as such.
    let table = d.join("rows.csv");
    std::fs::write(&table, "a,b\n1,2\n").unwrap();
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck,
            "--input",
            table.to_str().unwrap(),
        ],
        None,
        &["--input", "a table", "IDX image file or a folder"],
    );
    // An IDX image file: every image, or the first --count.
    let idx = data.join("t10k-images-idx3-ubyte");
    let csv1 = d.join("idx.csv");
    let all = [
        "predict",
        "--checkpoint",
        ck,
        "--input",
        idx.to_str().unwrap(),
    ];
    stdout_of(&[&all[..], &["--output", csv1.to_str().unwrap()]].concat());
    let (h, rows) = read_preds(&csv1);
    let mut want = vec!["row".to_string(), "predicted".into()];
    want.extend((0..10).map(|c| format!("p({c})")));
    assert_eq!(h, want);
    assert_eq!(rows.len(), 12);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], (i + 1).to_string());
        let p: Vec<f64> = r[2..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{r:?}");
        // The predicted class is the most probable one.
        let best = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(r[1], best.to_string());
    }
    let csv3 = d.join("idx3.csv");
    stdout_of(
        &[
            &all[..],
            &["--count", "3", "--output", csv3.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(read_preds(&csv3).1[..], rows[..3]);
    fails_with(
        &[&all[..], &["--count", "13"]].concat(),
        None,
        &["--count", "13", "12 images"],
    );
    // The same images as PNG files in a folder (one sub-folder too): the same predictions.
    let imgs = d.join("imgs");
    std::fs::create_dir_all(imgs.join("sub")).unwrap();
    let px: Vec<u8> = (0..12u32 * 28 * 28).map(|i| (i * 37 % 251) as u8).collect();
    for i in 0..3usize {
        let img = image::GrayImage::from_raw(28, 28, px[i * 784..(i + 1) * 784].to_vec()).unwrap();
        let name = if i == 2 {
            "sub/c.png".to_string()
        } else {
            format!("{}.png", ["a", "b"][i])
        };
        img.save(imgs.join(name)).unwrap();
    }
    let csv4 = d.join("folder.csv");
    stdout_of(&[
        "predict",
        "--checkpoint",
        ck,
        "--input",
        imgs.to_str().unwrap(),
        "--output",
        csv4.to_str().unwrap(),
    ]);
    let (h4, rows4) = read_preds(&csv4);
    assert_eq!(h4[..3], ["row", "file", "predicted"]);
    let files: Vec<&str> = rows4.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(files, ["a.png", "b.png", "sub/c.png"]);
    for (r4, r) in rows4.iter().zip(&rows) {
        assert_eq!(r4[2], r[1]);
        for (a, b) in r4[3..].iter().zip(&r[2..]) {
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((a - b).abs() <= 1e-6, "{r4:?} vs {r:?}");
        }
    }
    // Not images: named errors.
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck,
            "--input",
            empty.to_str().unwrap(),
        ],
        None,
        &["image", "no .png/.jpg"],
    );
    std::fs::write(empty.join("x.png"), b"not a png").unwrap();
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck,
            "--input",
            empty.to_str().unwrap(),
        ],
        None,
        &["x.png", "cannot decode"],
    );
    let labels = data.join("t10k-labels-idx1-ubyte");
    fails_with(
        &[
            "predict",
            "--checkpoint",
            ck,
            "--input",
            labels.to_str().unwrap(),
        ],
        None,
        &["IDX", "dimensions [12]"],
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn flags_are_checked_by_the_parser_with_their_value_lists() {
    // Value lists in the errors and in --help.
    fails_with(
        &["eval", "--checkpoint", "x", "--split", "tset"],
        None,
        &["tset", "train", "val", "test"],
    );
    fails_with(
        &["train", "--config", "x.toml", "--backend", "cuda"],
        None,
        &["cuda", "auto, gpu, cpu, cpu-ref or gpu:<matmul variant>"],
    );
    let help = stdout_of(&["train", "--help"]);
    for flag in [
        "--backend",
        "--epochs",
        "--batch",
        "--lr",
        "--seed",
        "--resume",
        "--overwrite",
    ] {
        assert!(help.contains(flag), "{flag} not in train --help:\n{help}");
    }
    // Combinations: --output needs --input; diagnose takes --run or both errors.
    fails_with(
        &["predict", "--checkpoint", "x", "--output", "p.csv"],
        None,
        &["--input"],
    );
    fails_with(
        &["diagnose", "--train-error", "0.1"],
        None,
        &["--val-error"],
    );
    fails_with(
        &[
            "diagnose",
            "--run",
            "r",
            "--train-error",
            "0.1",
            "--val-error",
            "0.1",
        ],
        None,
        &["--run", "cannot be used with"],
    );
    fails_with(&["sweep"], None, &["--config"]);
}

#[test]
fn train_shortcuts_override_the_config() {
    let d = tmp("shortcuts");
    let data = d.join("data");
    fake_idx(&data, 40, 10, 28, 28);
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, small_config(&data, "")).unwrap();
    let out_dir = d.join("out");
    let c = cfg.to_str().unwrap();
    let o = out_dir.to_str().unwrap();
    stdout_of(&[
        "train",
        "--config",
        c,
        "--out",
        o,
        "--quiet",
        "--backend",
        "cpu-ref",
        "--epochs",
        "2",
        "--batch",
        "4",
        "--lr",
        "0.125",
        "--seed",
        "7",
    ]);
    let saved = std::fs::read_to_string(out_dir.join("config.toml")).unwrap();
    for want in [
        "backend = \"cpu-ref\"",
        "epochs = 2",
        "batch = 4",
        "lr = 0.125",
        "seed = 7",
    ] {
        assert!(saved.contains(want), "{want:?} not in\n{saved}");
    }
    std::fs::remove_dir_all(d).unwrap();
}

/// The lr column of a run's metrics.csv, one value per epoch.
fn lr_column(dir: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let i = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "lr")
        .unwrap();
    rdr.records()
        .map(|r| r.unwrap()[i].parse().unwrap())
        .collect()
}

/// Linear warm-up and ReduceLROnPlateau from the run config, seen in the learning rate
/// each epoch starts with (expected values by hand).
#[test]
fn warmup_and_reduce_lr_on_plateau_from_the_config() {
    let d = tmp("lr-control");
    // Warm-up over more updates than the run takes: epoch 0 starts at lr·start_factor,
    // later epochs part of the way to lr.
    let out = d.join("warmup");
    let st = penguins_train(&out, 3)
        .args([
            "--set",
            "optimizer.schedule=constant",
            "--set",
            "optimizer.lr=0.02",
        ])
        .args(["--set", "optimizer.warmup_steps=100000"])
        .args(["--set", "optimizer.warmup_start_factor=0.25"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let lr = lr_column(&out);
    assert_eq!(lr.len(), 3);
    assert!((lr[0] - 0.005).abs() < 1e-9, "{lr:?}");
    assert!(lr[1] > lr[0] && lr[2] > lr[1] && lr[2] < 0.0051, "{lr:?}");
    // ReduceLROnPlateau with patience 1 and a min_delta no epoch can beat: the rate halves
    // at the end of every epoch after the first.
    let out = d.join("plateau");
    let st = penguins_train(&out, 4)
        .args([
            "--set",
            "optimizer.schedule=constant",
            "--set",
            "optimizer.lr=0.02",
        ])
        .args([
            "--set",
            "train.early_stopping=false",
            "--set",
            "train.min_delta=1000",
        ])
        .args([
            "--set",
            "train.reduce_lr_factor=0.5",
            "--set",
            "train.reduce_lr_patience=1",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let lr = lr_column(&out);
    let want = [0.02, 0.02, 0.01, 0.005];
    for (g, w) in lr.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{lr:?} against {want:?}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A run folder is never damaged by a command that cannot run: a resume with other
/// settings or into a finished run, an `--overwrite` whose config fails on the data, a
/// second process training into the same folder, an `--out` that is a file, a run that
/// fails before training (no folder left behind), and outputs of `export` / `predict`
/// aimed at a run's checkpoint, records or data.
#[test]
fn run_folders_survive_every_refused_command() {
    let d = tmp("folder-safety");
    let run = d.join("run");
    let st = penguins_train(&run, 3).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let cfg = run.join("config.toml");
    let best = run.join("checkpoints/best.safetensors");
    let snapshot = |p: &Path| std::fs::read(p).unwrap();
    let (cfg0, best0, result0) = (
        snapshot(&cfg),
        snapshot(&best),
        snapshot(&run.join("result.json")),
    );
    let unchanged = |what: &str| {
        assert_eq!(snapshot(&cfg), cfg0, "{what}: config.toml changed");
        assert_eq!(snapshot(&best), best0, "{what}: best.safetensors changed");
        assert_eq!(
            snapshot(&run.join("result.json")),
            result0,
            "{what}: result.json changed"
        );
    };
    let resume = |extra: &[&str]| {
        let mut c = bin();
        c.args([
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
        .args(["--quiet", "--resume", best.to_str().unwrap()])
        .args(extra);
        c.output().unwrap()
    };
    // A finished run is not resumed without --overwrite.
    let o = resume(&[]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("finished run"), "{e}");
    unchanged("resume into a finished run");
    // Other settings than the run's are refused, each named.
    let o = resume(&["--overwrite", "--lr", "0.5", "--set", "model.dropout=0.2"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("optimizer.lr") && e.contains("model.dropout"),
        "{e}"
    );
    unchanged("resume with other settings");
    // --overwrite with a config that fails on its data keeps the old run whole.
    let o = penguins_train(&run, 3)
        .args(["--overwrite", "--set", "data.csv.path=\"/nonexistent.csv\""])
        .output()
        .unwrap();
    assert!(!o.status.success());
    unchanged("an --overwrite that cannot start");
    // A second process training into the folder is refused while the first holds it.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(run.join(".shadeprop.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let o = penguins_train(&run, 3).arg("--overwrite").output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("another shadeprop process"),
        "{e}"
    );
    unchanged("a second process");
    drop(lock);
    // --out naming a file, and a run that fails before training: nothing written.
    let file = d.join("afile.txt");
    std::fs::write(&file, "keep").unwrap();
    let o = penguins_train(&file, 1).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("not a folder"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    let fresh = d.join("never");
    let o = penguins_train(&fresh, 1)
        .args(["--set", "data.csv.target=[\"no_such_column\"]"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!fresh.exists(), "a run that cannot start leaves no folder");
    // export / predict outputs onto a run's checkpoint, records or data are refused.
    let export = |out: &Path| {
        bin()
            .args(["export", "--checkpoint", best.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    for target in [best.clone(), cfg.clone(), run.join("result.json")] {
        let o = export(&target);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && e.contains("--out"),
            "{}: {e}",
            target.display()
        );
    }
    unchanged("export onto the run");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/palmerpenguins/penguins.csv");
    let rows = d.join("rows.csv");
    std::fs::copy(&csv, &rows).unwrap();
    let o = bin()
        .args(["predict", "--checkpoint", best.to_str().unwrap()])
        .args([
            "--input",
            rows.to_str().unwrap(),
            "--output",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--output"), "{e}");
    // The same resume with the run's own settings goes on.
    let o = resume(&["--overwrite"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}

/// A config given as a bare file name resolves its relative paths against the working
/// directory, so the run's saved config.toml holds absolute paths.
#[test]
fn a_bare_config_file_name_resolves_paths_against_the_working_directory() {
    let d = tmp("bare-name");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("data/palmerpenguins/penguins.csv"),
        d.join("p.csv"),
    )
    .unwrap();
    let text = std::fs::read_to_string(root.join("configs/penguins.toml"))
        .unwrap()
        .replace("../data/palmerpenguins/penguins.csv", "p.csv");
    std::fs::write(d.join("bare.toml"), text).unwrap();
    let o = bin()
        .current_dir(&d)
        .args(["train", "--config", "bare.toml", "--out", "run", "--quiet"])
        .args(["--epochs", "1", "--backend", "cpu"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let saved = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    let want = std::path::absolute(d.join("p.csv")).unwrap();
    assert!(saved.contains(want.to_str().unwrap()), "{saved}");
    // And eval finds the data from anywhere, on the backend asked for.
    let o = bin()
        .args(["eval", "--backend", "cpu-ref", "--checkpoint"])
        .arg(d.join("run/checkpoints/best.safetensors"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A checkpoint that does not exist is named as such.
    let o = bin()
        .args(["eval", "--checkpoint"])
        .arg(d.join("run/checkpoints/nope.safetensors"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("no such checkpoint file"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// One target column may be named by a string as well as a list (`--set
/// data.csv.target=species`); anything else is named.
#[test]
fn a_single_target_column_may_be_a_string() {
    let d = tmp("target-string");
    let o = penguins_train(&d.join("run"), 1)
        .args(["--set", "data.csv.target=species"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = penguins_train(&d.join("bad"), 1)
        .args(["--set", "data.csv.target=3"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("a column name or a list of column names"),
        "{e}"
    );
    // A line break in a value cannot smuggle in another key.
    let o = penguins_train(&d.join("nl"), 1)
        .args(["--set", "train.epochs=1\nseed=5"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("one line"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Monte Carlo dropout on a model without dropout is refused (its spread would be 0, read
/// as certainty), and values the run config cannot hold are refused by the parser.
#[test]
fn mc_dropout_needs_dropout_and_shortcut_values_fit_the_config() {
    let d = tmp("mc-no-dropout");
    let run = d.join("run");
    let o = penguins_train(&run, 1)
        .args([
            "--set",
            "model.dropout=0.0",
            "--set",
            "model.input_dropout=0.0",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .args(["predict", "--checkpoint"])
        .arg(run.join("checkpoints/best.safetensors"))
        .args(["--mc-dropout", "3"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("no dropout layer"), "{e}");
    for (flag, value, needle) in [
        (
            "--seed",
            "18446744073709551615",
            "0 ..= 9223372036854775807",
        ),
        ("--lr", "1e39", "at most"),
        ("--lr", "nan", "above 0"),
    ] {
        let o = penguins_train(&d.join("x"), 1)
            .args([flag, value])
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {e}");
        assert!(e.contains(needle), "{flag} {value}: {e}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// `predict --input` of the wrong kind names what the run's model takes: a table for an
/// image run, a folder for a table run.
#[test]
fn predict_input_of_the_wrong_kind_is_named() {
    let d = tmp("wrong-input");
    let run = d.join("run");
    let o = penguins_train(&run, 1).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .args(["predict", "--checkpoint"])
        .arg(run.join("checkpoints/best.safetensors"))
        .arg("--input")
        .arg(&d)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("a CSV file of raw rows"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A sweep never trains over nor rewrites a trial folder holding a run of other settings;
/// sweeps past 10000 trials are refused before planning them; `sweep merge` refuses a
/// folder given twice and a result.json with an accuracy outside [0, 1].
#[test]
fn sweeps_keep_other_runs_and_refuse_what_cannot_be_merged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = tmp("sweep-guard");
    let out = d.join("sw");
    let sweep = |lrs: &str, extra: &str| {
        let sw = d.join("s.toml");
        std::fs::write(
            &sw,
            format!(
                "out = \"{}\"\n{extra}[base]\nbackend = \"cpu\"\n[base.data]\ndataset = \"csv\"\n[base.data.csv]\npath = \"{}\"\ntarget = \"species\"\ncategorical = [\"island\", \"sex\"]\nfeatures = [\"island\", \"bill_length_mm\", \"bill_depth_mm\", \"flipper_length_mm\", \"body_mass_g\", \"sex\"]\nmissing = \"impute\"\n[base.model]\npreset = \"mlp\"\nhidden = [8]\nbatch_norm = false\n[base.train]\nepochs = 1\n[params]\n\"optimizer.lr\" = {lrs}\n",
                out.display(),
                root.join("data/palmerpenguins/penguins.csv").display()
            ),
        )
        .unwrap();
        bin()
            .args(["sweep", "--config", sw.to_str().unwrap(), "--quiet"])
            .output()
            .unwrap()
    };
    let o = sweep("[0.01, 0.02]", "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let trial = out.join("trial-000");
    let before = std::fs::read(trial.join("config.toml")).unwrap();
    // Another sweep into the same folder: refused, the trial untouched.
    let o = sweep("[0.5, 0.6]", "");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("optimizer.lr"), "{e}");
    assert_eq!(std::fs::read(trial.join("config.toml")).unwrap(), before);
    // Too many trials.
    let o = sweep("[0.01]", "method = \"random\"\ntrials = 100000000\n");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("1 ..= 10000"), "{e}");
    // merge: a folder twice, then an accuracy that cannot be.
    let t = trial.to_str().unwrap();
    let m = d.join("merged");
    let o = bin()
        .args(["sweep", "merge", "--out", m.to_str().unwrap(), t, t])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("given twice"), "{e}");
    let rj = trial.join("result.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rj).unwrap()).unwrap();
    v["val_accuracy"] = serde_json::json!(7.5);
    std::fs::write(&rj, v.to_string()).unwrap();
    let o = bin()
        .args(["sweep", "merge", "--out", m.to_str().unwrap(), t])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("val_accuracy = 7.5"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
