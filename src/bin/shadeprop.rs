//! The `shadeprop` command: train, evaluate, predict, sweep, inspect adapters and diagnose
//! bias and variance. `shadeprop --help` and `shadeprop <command> --help` list the flags;
//! the config schema is documented in `src/app/config.rs` (and the README).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand, ValueEnum};
use shadeprop::app::{self, RunConfig};

#[derive(Parser)]
#[command(
    name = "shadeprop",
    version,
    about = "Train and regularize neural networks on the GPU (wgpu) or the CPU"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train one run from a config file into an output folder.
    Train {
        /// The run config (TOML); relative paths in it are relative to its folder.
        #[arg(long)]
        config: PathBuf,
        /// Output folder (config.toml, metrics, curves, checkpoints, result.json).
        #[arg(long, default_value = "runs/train")]
        out: PathBuf,
        /// Override a field, e.g. --set regularizer.lambda=0.1 (repeatable; TOML values).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print only errors and the final line (no summary, progress or epoch lines).
        #[arg(long)]
        quiet: bool,
        /// Continue the run in --out from this checkpoint (Ctrl-C writes
        /// <out>/checkpoints/interrupt.safetensors): bit-identical to a run never stopped.
        #[arg(long, value_name = "CHECKPOINT")]
        resume: Option<PathBuf>,
        /// Replace the run that --out holds (refused otherwise: a run never destroys another).
        #[arg(long)]
        overwrite: bool,
        /// Shortcut for --set backend=NAME: auto, gpu, cpu (the fast CPU kernels),
        /// cpu-ref (the reference kernels) or gpu:<matmul variant>.
        #[arg(long, value_name = "NAME", value_parser = parse_backend)]
        backend: Option<String>,
        /// Shortcut for --set train.epochs=N.
        #[arg(long, value_name = "N")]
        epochs: Option<u64>,
        /// Shortcut for --set train.batch=N (the mini-batch size).
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
        /// Shortcut for --set optimizer.lr=LR (the initial learning rate).
        #[arg(long, value_name = "LR", value_parser = parse_lr)]
        lr: Option<f64>,
        /// Shortcut for --set seed=N (initialization, dropout, shuffling and splits).
        #[arg(long, value_name = "N", value_parser = parse_seed)]
        seed: Option<u64>,
    },
    /// Loss and accuracy of a checkpoint on a split.
    Eval {
        /// A checkpoint of a run (e.g. <run>/checkpoints/best.safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The run's config (default: config.toml of the checkpoint's run folder).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The split to evaluate on.
        #[arg(long, value_enum, default_value_t = Split::Test)]
        split: Split,
        /// The backend to run on, instead of the run config's: auto, gpu, cpu, cpu-ref or
        /// gpu:<matmul variant>.
        #[arg(long, value_name = "NAME", value_parser = parse_backend)]
        backend: Option<String>,
    },
    /// Predictions: for the first images of the test split, or (`--input`) for the user's
    /// own data — CSV rows (runs on data.dataset = "csv"), an IDX image file or a folder of
    /// PNG/JPEG images (image runs) — scaled with the preprocessing stored in the
    /// checkpoint.
    Predict {
        /// A checkpoint of a run (e.g. <run>/checkpoints/best.safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The run's config (default: config.toml of the checkpoint's run folder).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The backend to run on, instead of the run config's: auto, gpu, cpu, cpu-ref or
        /// gpu:<matmul variant>.
        #[arg(long, value_name = "NAME", value_parser = parse_backend)]
        backend: Option<String>,
        /// Monte Carlo dropout: average T stochastic passes and report their spread.
        #[arg(long = "mc-dropout", value_name = "T")]
        mc_dropout: Option<usize>,
        /// Rows to predict (default: 10 test images; every row of --input). More than
        /// there are is an error.
        #[arg(long)]
        count: Option<usize>,
        /// Data to predict: a CSV file of raw rows for runs on data.dataset = "csv" (the
        /// feature columns by name; target columns may be absent), else an IDX image file
        /// or a folder of PNG/JPEG images (resized to the run's image size).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Where to write the predictions as CSV (with --input; default: print them).
        #[arg(long, requires = "input")]
        output: Option<PathBuf>,
        /// Lines of a CSV --input to skip before its header or first row (the training
        /// file's data.csv.skip_rows is not applied to it).
        #[arg(long, default_value_t = 0, requires = "input")]
        skip_rows: usize,
    },
    /// Write a checkpoint's weights as a file PyTorch's `load_state_dict(strict=True)` takes
    /// for the equivalent `nn.Sequential` (and `model.weights` of a run config takes back).
    Export {
        /// A checkpoint of a run (e.g. <run>/checkpoints/best.safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The run's config (default: config.toml of the checkpoint's run folder).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The backend to run on, instead of the run config's: auto, gpu, cpu, cpu-ref or
        /// gpu:<matmul variant>.
        #[arg(long, value_name = "NAME", value_parser = parse_backend)]
        backend: Option<String>,
        /// The weights file to write (safetensors).
        #[arg(long)]
        out: PathBuf,
    },
    /// Grid or random search (see `sweep merge` to collect folders run elsewhere).
    #[command(subcommand_negates_reqs = true)]
    Sweep {
        #[command(subcommand)]
        merge: Option<SweepCmd>,
        /// The sweep file (TOML: method, trials, out, [base], [params]).
        #[arg(long, required = true)]
        config: Option<PathBuf>,
        /// Only write the trial configs and print one `shadeprop train` command per trial.
        #[arg(long)]
        plan_only: bool,
        /// Print only errors and the summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Adapters wgpu finds (driver, subgroup sizes, compute limits, optional features),
    /// the GPU backend that opens, and what `--backend auto` picks.
    Info,
    /// Avoidable bias and variance of a run, and the recipe's next step.
    #[command(group(ArgGroup::new("source").required(true).args(["run", "train_error"])))]
    Diagnose {
        /// A run folder (with result.json).
        #[arg(long, conflicts_with_all = ["train_error", "val_error"])]
        run: Option<PathBuf>,
        /// Or the errors directly (fractions): the training error...
        #[arg(long, requires = "val_error")]
        train_error: Option<f64>,
        /// ...and the validation error.
        #[arg(long, requires = "train_error")]
        val_error: Option<f64>,
        /// Baseline (e.g. human-level) error, a fraction.
        #[arg(long, default_value_t = 0.0)]
        baseline: f64,
        /// A bias or variance above this fraction is high.
        #[arg(long, default_value_t = 0.02)]
        tolerance: f64,
    },
}

/// A split of a run's data.
#[derive(Clone, Copy, ValueEnum)]
enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// `--backend`: one of the backend names, checked before anything runs.
/// A seed as a run config holds it: TOML integers are signed 64-bit.
fn parse_seed(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(v) if v <= i64::MAX as u64 => Ok(v),
        _ => Err(format!("expected an integer in 0 ..= {}", i64::MAX)),
    }
}

/// A learning rate as an f32 holds it: finite, above 0, at most f32::MAX.
fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= f32::MAX as f64 => Ok(v),
        _ => Err(format!(
            "expected a number above 0 and at most {:e}",
            f32::MAX
        )),
    }
}

fn parse_backend(s: &str) -> Result<String, String> {
    let ok = matches!(s, "auto" | "gpu" | "cpu" | "cpu-ref")
        || s.strip_prefix("gpu:").is_some_and(|v| !v.is_empty());
    if ok {
        Ok(s.to_string())
    } else {
        Err("expected auto, gpu, cpu, cpu-ref or gpu:<matmul variant>".into())
    }
}

#[derive(Subcommand)]
enum SweepCmd {
    /// Collect finished trial folders into one table and plots; evaluate the chosen trial
    /// on the test set.
    Merge {
        /// The folder for the report (results.csv, results.md, plots).
        #[arg(long)]
        out: PathBuf,
        /// Baseline (e.g. human-level) error for the diagnosis, a fraction.
        #[arg(long, default_value_t = 0.0)]
        baseline: f64,
        /// A bias or variance above this fraction is high.
        #[arg(long, default_value_t = 0.02)]
        tolerance: f64,
        /// Trial folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}

fn run(cmd: Cmd) -> shadeprop::Result<()> {
    match cmd {
        Cmd::Train {
            config,
            out,
            set,
            quiet,
            resume,
            overwrite,
            backend,
            epochs,
            batch,
            lr,
            seed,
        } => {
            // The shortcuts are overrides like --set, applied after it.
            let mut set = set;
            let quoted = |v: String| format!("{v:?}");
            set.extend(backend.map(|b| format!("backend={}", quoted(b))));
            set.extend(epochs.map(|n| format!("train.epochs={n}")));
            set.extend(batch.map(|n| format!("train.batch={n}")));
            set.extend(lr.map(|v| format!("optimizer.lr={v:?}")));
            set.extend(seed.map(|n| format!("seed={n}")));
            let cfg = app::load_with_overrides(&config, &set)?;
            // Ctrl-C stops after the current step and writes the interrupt checkpoint.
            if let Err(e) = shadeprop::train::interrupt::install_sigint_handler() {
                eprintln!("warning: {e}");
            }
            let opts = app::TrainOptions { resume, overwrite };
            // A planned sweep trial's config names its swept fields (comment lines written
            // by `sweep --plan-only`): its result.json records them.
            let mut swept = app::Swept::read(&config)?;
            // An override of a swept field (--set, or a shortcut) is the value that runs.
            for (k, v) in set.iter().filter_map(|s| s.split_once('=')) {
                let k = k.trim();
                if swept.values.contains_key(k) {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|x| x.strip_suffix('"'))
                        .unwrap_or(v);
                    swept.values.insert(k.to_string(), v.to_string());
                }
            }
            let r = match app::train_with(&cfg, &out, swept, quiet, &opts) {
                Err(shadeprop::Error::Interrupted { step, checkpoint }) => {
                    eprintln!(
                        "interrupted at step {step}; the state is in {}; continue with:\n  shadeprop train --config {} --out {} --resume {}",
                        checkpoint.display(),
                        out.join("config.toml").display(),
                        out.display(),
                        checkpoint.display()
                    );
                    std::process::exit(130);
                }
                r => r?,
            };
            let (k, tr, va) = if r.task == shadeprop::task::Task::Regression {
                ("mae", r.train_mae, r.val_mae)
            } else {
                ("acc", r.train_accuracy, r.val_accuracy)
            };
            // "-" for what the run does not have (no validation split).
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
            println!(
                "best at Epoch {}: train loss {:.4} {k} {}, validation loss {} {k} {} (inference mode); wrote {}",
                // As the progress lines print it (k/N, k = epoch + 1); result.json holds
                // the 0-based epoch.
                r.best_epoch
                    .map_or("-".into(), |e| format!("{}/{}", e + 1, r.epochs_run)),
                r.train_loss,
                f(tr),
                f(r.val_loss),
                f(va),
                out.display()
            );
        }
        Cmd::Eval {
            checkpoint,
            config,
            split,
            backend,
        } => {
            let split = split.name();
            let mut cfg = match config {
                Some(c) => RunConfig::load(&c)?,
                None => app::config_beside(&checkpoint)?,
            };
            if let Some(b) = backend {
                cfg.backend = b;
            }
            let r = app::eval_report(&cfg, &checkpoint, split)?;
            let m = r.metrics;
            if cfg.task == shadeprop::task::Task::Regression {
                println!(
                    "{split}: loss {:.4} mae {:.4} ({} samples)",
                    m.loss, m.mae, m.samples
                );
            } else {
                println!(
                    "{split}: loss {:.4} accuracy {:.4} ({} samples)",
                    m.loss, m.accuracy, m.samples
                );
            }
            for (k, v) in &r.task_metrics {
                println!("  {k} {v:.4}");
            }
            if let Some(cm) = &r.confusion {
                let name = |i: usize| {
                    r.class_names
                        .as_ref()
                        .and_then(|n| n.get(i).cloned())
                        .unwrap_or_else(|| i.to_string())
                };
                let w = (0..cm.len())
                    .map(|i| name(i).len())
                    .max()
                    .unwrap_or(1)
                    .max(6);
                println!("confusion matrix (rows: true class, columns: predicted)");
                let head: Vec<String> = (0..cm.len()).map(|i| format!("{:>w$}", name(i))).collect();
                println!("{:>w$} {}", "", head.join(" "));
                for (i, row) in cm.iter().enumerate() {
                    let cells: Vec<String> = row.iter().map(|c| format!("{c:>w$}")).collect();
                    println!("{:>w$} {}", name(i), cells.join(" "));
                }
            }
        }
        Cmd::Predict {
            checkpoint,
            config,
            mc_dropout,
            count,
            input,
            output,
            skip_rows,
            backend,
        } => {
            let mut cfg = match config {
                Some(c) => RunConfig::load(&c)?,
                None => app::config_beside(&checkpoint)?,
            };
            if let Some(b) = backend {
                cfg.backend = b;
            }
            if let Some(input) = input {
                let p = if cfg.data.dataset == "csv" {
                    app::predict_csv(
                        &cfg,
                        &checkpoint,
                        &input,
                        output.as_deref(),
                        count,
                        mc_dropout,
                        skip_rows,
                    )?
                } else {
                    app::predict_images(
                        &cfg,
                        &checkpoint,
                        &input,
                        output.as_deref(),
                        count,
                        mc_dropout,
                    )?
                };
                match &output {
                    Some(o) => println!("{} rows predicted into {}", p.rows, o.display()),
                    None => {
                        // The CSV the file would hold (the csv crate quotes a class name
                        // with a comma). Through a pipe that closes early (`| head`), stop
                        // quietly instead of panicking on the broken pipe.
                        let mut out = csv::Writer::from_writer(std::io::stdout().lock());
                        let rows = std::iter::once(&p.header).chain(&p.lines);
                        for l in rows {
                            if out.write_record(l).is_err() {
                                break;
                            }
                        }
                        let _ = out.flush();
                    }
                }
                return Ok(());
            }
            if output.is_some() {
                return Err(shadeprop::Error::Hyperparameter {
                    name: "--output",
                    value: "set without --input".into(),
                    expected: "--output with --input FILE.csv (test images are printed)",
                });
            }
            let count = count.unwrap_or(10);
            if count == 0 {
                return Err(shadeprop::Error::Hyperparameter {
                    name: "--count",
                    value: "0".into(),
                    expected: ">= 1 images to predict",
                });
            }
            let (mut s, p) = app::restore(&cfg, &checkpoint)?;
            if p.test.is_empty() {
                return Err(shadeprop::Error::Empty {
                    what: format!("the test split of {}", cfg.data.dir.display()),
                    expected: "at least one image to predict".into(),
                });
            }
            if count > p.test.len() {
                return Err(shadeprop::Error::Hyperparameter {
                    name: "--count",
                    value: format!("{count} (the test split holds {})", p.test.len()),
                    expected: "at most the number of test samples",
                });
            }
            let n = count;
            let x = &p.test.x[..n * p.test.features];
            // What the task predicts (softmax, sigmoid or values), and its spread under MC
            // dropout.
            let task = s.graph().task();
            let k = s.graph().outputs();
            let (probs, std) = match mc_dropout {
                Some(t) => {
                    let mc = app::mc_dropout(&mut s, x, t)?;
                    let sd: Vec<f32> = mc.var.iter().map(|v| v.sqrt()).collect();
                    (mc.mean, Some(sd))
                }
                None => (s.predict_proba(x)?, None),
            };
            let names = p
                .preprocessing
                .as_ref()
                .and_then(|pp| pp.class_names.clone());
            let name = |c: f32| {
                names
                    .as_ref()
                    .and_then(|n| n.get(c as usize).cloned())
                    .unwrap_or_else(|| format!("{c}"))
            };
            let list = |v: &[f32]| {
                let cells: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
                format!("[{}]", cells.join(", "))
            };
            let classes = shadeprop::session::classes_from(task, &probs, k, 0.5).ok();
            let spread = mc_dropout.map_or(String::new(), |t| format!("  ({t} MC dropout passes)"));
            match task {
                shadeprop::task::Task::Multiclass | shadeprop::task::Task::Binary => {
                    println!(
                        "row  target  predicted  p(predicted){}{spread}",
                        if std.is_some() { "  std" } else { "" }
                    );
                }
                _ => println!(
                    "row  target  predicted{}{spread}",
                    if std.is_some() { "  std" } else { "" }
                ),
            }
            for i in 0..n {
                let row = &probs[i * k..(i + 1) * k];
                let sd = std.as_ref().map(|v| &v[i * k..(i + 1) * k]);
                let target = p.test.target_row(i);
                match task {
                    shadeprop::task::Task::Multiclass => {
                        let c = classes.as_ref().map_or(0.0, |c| c[i]);
                        let j = c as usize;
                        let extra = sd.map_or(String::new(), |sd| format!("  {:.4}", sd[j]));
                        println!(
                            "{i:3}  {}  {}  {:.4}{extra}",
                            name(target[0]),
                            name(c),
                            row[j]
                        );
                    }
                    shadeprop::task::Task::Binary => {
                        let c = classes.as_ref().map_or(0.0, |c| c[i]);
                        let extra = sd.map_or(String::new(), |sd| format!("  {:.4}", sd[0]));
                        // p(predicted class): p for class 1, 1 − p for class 0.
                        let pc = if c > 0.5 { row[0] } else { 1.0 - row[0] };
                        println!("{i:3}  {}  {}  {pc:.4}{extra}", name(target[0]), name(c));
                    }
                    _ => {
                        let pred = match (&classes, task) {
                            (Some(c), shadeprop::task::Task::Multilabel) => {
                                format!("{} p {}", list(&c[i * k..(i + 1) * k]), list(row))
                            }
                            _ => list(row),
                        };
                        let extra = sd.map_or(String::new(), |sd| format!("  {}", list(sd)));
                        println!("{i:3}  {}  {pred}{extra}", list(target));
                    }
                }
            }
        }
        Cmd::Export {
            checkpoint,
            config,
            out,
            backend,
        } => {
            let mut cfg = match config {
                Some(c) => RunConfig::load(&c)?,
                None => app::config_beside(&checkpoint)?,
            };
            if let Some(b) = backend {
                cfg.backend = b;
            }
            let info = app::export_weights(&cfg, &checkpoint, &out)?;
            println!("wrote {}: the state_dict of", out.display());
            println!("nn.Sequential(");
            for m in info["architecture"]["torch"]
                .as_array()
                .into_iter()
                .flatten()
            {
                println!("    {},", m.as_str().unwrap_or_default());
            }
            println!(")");
        }
        Cmd::Sweep {
            merge,
            config,
            plan_only,
            quiet,
        } => match merge {
            Some(SweepCmd::Merge {
                out,
                baseline,
                tolerance,
                dirs,
            }) => {
                let s = app::merge(&dirs, &out, baseline, tolerance)?;
                app::print_summary(&s, &out);
            }
            None => {
                // clap requires --config without the merge subcommand.
                let path = config.ok_or_else(|| shadeprop::Error::Hyperparameter {
                    name: "--config",
                    value: "missing".into(),
                    expected: "a sweep file (shadeprop sweep --config sweep.toml)",
                })?;
                let sw = app::SweepConfig::load(&path)?;
                if plan_only {
                    let trials = app::plan(&sw)?;
                    for c in app::write_plan(&sw, &trials)? {
                        println!("{c}");
                    }
                    let dirs: Vec<String> = trials
                        .iter()
                        .map(|t| sw.out.join(&t.name).display().to_string())
                        .collect();
                    println!(
                        "then: shadeprop sweep merge --out {} {}",
                        sw.out.display(),
                        dirs.join(" ")
                    );
                } else {
                    let s = app::run_sweep(&sw, quiet)?;
                    app::print_summary(&s, &sw.out);
                }
            }
        },
        Cmd::Info => {
            let adapters = shadeprop::backend::list_adapters();
            if adapters.is_empty() {
                println!("no wgpu adapter found (install e.g. mesa-vulkan-drivers for lavapipe)");
            }
            if !adapters.is_empty() {
                print!("{}", shadeprop::backend::describe_adapters());
            }
            match shadeprop::backend::gpu::Gpu::new() {
                Ok(g) => {
                    let l = g.limits();
                    println!(
                        "default GPU backend: {}",
                        shadeprop::backend::Backend::describe(&g)
                    );
                    println!(
                        "limits of the opened device: max_buffer_size {} B, max_storage_buffer_binding_size {} B, max_compute_workgroup_size_x {}, max_compute_invocations_per_workgroup {}, max_compute_workgroups_per_dimension {}",
                        l.max_buffer_size,
                        l.max_storage_buffer_binding_size,
                        l.max_compute_workgroup_size_x,
                        l.max_compute_invocations_per_workgroup,
                        l.max_compute_workgroups_per_dimension
                    );
                    println!("report: {}", g.report());
                    let (file, remembered) = g.remembered_matmul_choices();
                    match file {
                        Some(f) => println!(
                            "matmul variants remembered for this adapter and driver ({}): {}",
                            f.display(),
                            if let Some(why) = g.remembered_file_ignored() {
                                why.to_string()
                            } else if remembered.is_empty() {
                                "none yet".to_string()
                            } else {
                                remembered.len().to_string()
                            }
                        ),
                        None => println!("matmul variants: no cache folder, nothing remembered"),
                    }
                    for (class, variant) in remembered {
                        println!("  {class}: {variant}");
                    }
                }
                Err(e) => println!("GPU backend unavailable: {e}"),
            }
            let (_, why) = shadeprop::backend::open("auto")?;
            println!("{why}");
        }
        Cmd::Diagnose {
            run,
            train_error,
            val_error,
            baseline,
            tolerance,
        } => {
            // clap's group: --run, or both errors.
            let d = match (run, train_error, val_error) {
                (Some(dir), _, _) => app::diagnose_run(&dir, baseline, tolerance)?,
                (None, Some(t), Some(v)) => app::diagnose(t, v, baseline, tolerance)?,
                _ => {
                    return Err(shadeprop::Error::Hyperparameter {
                        name: "diagnose",
                        value: "neither --run nor both errors".into(),
                        expected: "--run DIR, or --train-error F and --val-error F",
                    });
                }
            };
            println!("{d}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
