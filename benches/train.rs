//! W-MLP, W-CNN, W-STEP and W-LSTM (docs/benchmarks.md) on each backend asked for: training
//! samples/s (median of `--runs` epochs, each timed from its first upload to a sync after
//! its last step), seconds per epoch, peak host memory, the plan's buffer bytes against the
//! sum of all its tensors, dispatches per step, and for W-STEP the microseconds per step.
//! Prints a Markdown table and writes `<out>/<adapter>.md` and `.json` per backend, so that
//! figures can be compared across commits.
//!
//!   cargo bench --bench train -- [--backends cpu,gpu,cpu-ref] [--workloads w-mlp,w-cnn,w-step,w-lstm]
//!       [--runs 3] [--steps N (0 = the full epoch)] [--cnn-steps N] [--profile]
//!       [--batch 128] [--precision f32|mixed] [--out benches/results]
//!
//! An epoch is the 54,000-image training split of the examples (batch 128: 422 steps);
//! `--steps` shortens every epoch to N batches and `--cnn-steps` only W-CNN's (seconds per
//! epoch are then extrapolated, and the table says so); `--profile` prints the time per
//! kernel (on the GPU each dispatch is then submitted and waited for on its own, so a
//! profiled run's throughput is not representative). `--batch` changes W-MLP's and W-CNN's
//! batch (the learning rate scaled linearly, 0.05 · batch / 128) and adds `-batchN` to the
//! results' file names; `--precision mixed` trains with f16 matmul operands and dynamic loss
//! scaling (`Precision::mixed()`) and adds `-mixed`.

use std::path::PathBuf;

#[path = "common/mem.rs"]
mod mem;
use mem::{peak_rss_mib, reset_peak_rss};

use shadeprop::backend::Backend;
use shadeprop::backend::cpu::Cpu;
use shadeprop::data::{Dataset, Standardizer, load_mnist};
use shadeprop::nn::augment::Augment;
use shadeprop::nn::{Layer, Sequential};
use shadeprop::optim::{Adam, Optimizer, Precision, Sgd};
use shadeprop::session::Session;
use shadeprop::train::{EpochConfig, train_epoch};

struct Args {
    backends: Vec<String>,
    workloads: Vec<String>,
    runs: usize,
    steps: usize,
    cnn_steps: Option<usize>,
    batch: usize,
    profile: bool,
    precision: Precision,
    out: PathBuf,
    data: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        backends: vec!["cpu".into(), "gpu".into()],
        workloads: vec!["w-mlp".into(), "w-cnn".into(), "w-step".into()],
        runs: 3,
        steps: 0,
        cnn_steps: None,
        batch: 128,
        profile: false,
        precision: Precision::F32,
        out: PathBuf::from("benches/results"),
        data: PathBuf::from("data/mnist"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let list = |s: &str| s.split(',').map(|x| x.trim().to_string()).collect();
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--backends" => a.backends = list(&val),
            "--workloads" => a.workloads = list(&val),
            "--runs" => a.runs = val.parse().expect("--runs: an integer"),
            "--steps" => a.steps = val.parse().expect("--steps: an integer"),
            "--cnn-steps" => a.cnn_steps = Some(val.parse().expect("--cnn-steps: an integer")),
            "--batch" => a.batch = val.parse().expect("--batch: an integer >= 1"),
            "--out" => a.out = PathBuf::from(val),
            "--precision" => a.precision = val.parse().unwrap_or_else(|e| panic!("{e}")),
            "--data" => a.data = PathBuf::from(val),
            "--profile" => {
                a.profile = true;
                i += 1;
                continue;
            }
            // cargo bench passes --bench to the binary.
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    a.runs = a.runs.max(1);
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Row {
    workload: String,
    precision: &'static str,
    backend: String,
    adapter: String,
    batch: usize,
    steps_per_run: usize,
    runs: usize,
    samples_per_s: f64,
    seconds_per_epoch: f64,
    us_per_step: f64,
    dispatches_per_step: usize,
    plan_bytes: usize,
    tensor_bytes: usize,
    backend_bytes: u64,
    peak_host_mib: Option<f64>,
    startup_ms: f64,
}

fn open(name: &str, profile: bool) -> (Box<dyn Backend>, String) {
    if profile && (name == "cpu" || name == "cpu-ref") {
        let c = if name == "cpu" {
            Cpu::fast()
        } else {
            Cpu::new()
        };
        let b: Box<dyn Backend> = Box::new(c.profiled());
        let d = b.describe();
        return (b, d);
    }
    if profile && name == "gpu" {
        let g = shadeprop::backend::gpu::Gpu::new().expect("gpu").profiled();
        let d = g.describe();
        return (Box::new(g), d);
    }
    let (b, _) = shadeprop::backend::open(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let d = b.describe();
    (b, d)
}

/// The training split the examples use (90% of MNIST's training set) and its
/// standardizer; nothing else of MNIST stays in memory.
fn train_split(a: &Args) -> (Dataset, Standardizer) {
    let (full, _test) = load_mnist(&a.data).unwrap_or_else(|e| {
        panic!("{e}: fetch MNIST first (bash scripts/fetch-data.sh)");
    });
    let (train, _val) = full.split(0.1, 0).expect("split");
    let stdz = Standardizer::fit(&train).expect("standardizer");
    (train, stdz)
}

/// One workload on one backend. The data is loaded here and only what the workload
/// reads stays resident while it is measured (one copy of the images, as the PyTorch
/// peer holds), so that the peak host memory compares like with like.
fn run(a: &Args, workload: &str, backend: &str) -> Option<Row> {
    let (train, stdz) = train_split(a);
    let stdz = &stdz;
    let bs = a.batch.max(1);
    let (model, batch, full_steps) = match workload {
        "w-mlp" => (Sequential::w_mlp(0.5), bs, train.len().div_ceil(bs)),
        "w-cnn" => {
            let mut m = Sequential::w_cnn(0.5);
            m.layers
                .insert(0, Layer::Augment(Augment::w_cnn(stdz.mean, stdz.std)));
            (m, bs, train.len().div_ceil(bs))
        }
        // W-MLP with batch 1 and hidden width 16: host overhead.
        "w-step" => (
            Sequential::new(784)
                .linear(16)
                .batch_norm()
                .relu()
                .dropout(0.5)
                .linear(16)
                .batch_norm()
                .relu()
                .dropout(0.5)
                .linear(10),
            // Batch 2, the smallest batch batch norm trains on (one value per channel is
            // refused, as PyTorch refuses it).
            2,
            2000,
        ),
        // Row-wise sequential MNIST: LSTM(128) with recurrent dropout 0.25 → Linear 10.
        "w-lstm" => (Sequential::w_lstm(0.25), bs, train.len().div_ceil(bs)),
        other => panic!("unknown workload {other}"),
    };
    let want = match (workload, a.cnn_steps) {
        ("w-cnn", Some(n)) => n,
        _ => a.steps,
    };
    let steps = if want > 0 {
        want.min(full_steps)
    } else {
        full_steps
    };
    let mut data = if steps * batch >= train.len() {
        train
    } else {
        let subset = train.take(steps * batch).expect("subset");
        drop(train);
        subset
    };
    if workload != "w-cnn" {
        stdz.apply(&mut data).expect("standardize");
    }
    reset_peak_rss();
    let t_open = std::time::Instant::now();
    let (b, adapter) = open(backend, a.profile);
    let g = model.build().expect("model");
    let tensor_bytes: usize = g.tensors.iter().map(|t| t.shape.numel(batch) * 4).sum();
    // Linear learning-rate scaling for larger batches (Goyal et al. 2017).
    let opt: Optimizer = if workload == "w-lstm" {
        // Adam lr 1e-3 with global-norm clipping at 1.0 (the sequential_mnist example).
        Adam {
            clip_norm: Some(1.0),
            ..Adam::default()
        }
        .into()
    } else {
        Sgd {
            lr: Sgd::w_mlp().lr * batch as f32 / 128.0,
            ..Sgd::w_mlp()
        }
        .into()
    };
    let mut s = Session::with_precision(b, g, opt, 0, batch, a.precision).expect("session");
    let plan_bytes = s.layout().total_bytes(s.graph());
    let dispatches = s.dispatches_per_step(batch).expect("program");
    // Adapter, device, pipelines (from the pipeline cache when warm), buffers, programs.
    let startup_ms = t_open.elapsed().as_secs_f64() * 1e3;
    let cfg = EpochConfig {
        batch_size: batch,
        log_every: 50,
        ..Default::default()
    };
    // Warm-up: a few steps build every pipeline and fault in every page.
    let warm = data
        .take((8 * batch).min(data.len()))
        .expect("warm-up subset");
    train_epoch(&mut s, &warm, &cfg, 0, 0).expect("warm-up");
    let mut rates = vec![];
    let mut secs = vec![];
    for r in 0..a.runs {
        let st = train_epoch(&mut s, &data, &cfg, 0, r as u64 + 1).expect("epoch");
        rates.push(st.samples_per_sec);
        secs.push(st.seconds);
    }
    let t = median(secs);
    let rate = median(rates);
    if a.profile {
        let times = s.backend().kernel_times();
        let total: f64 = times.iter().map(|x| x.2).sum();
        println!("\n{workload} on {adapter}: time per kernel");
        for (k, n, sec) in times.iter().take(15) {
            println!(
                "  {k:40} {n:8} calls {:9.3} s {:5.1}%",
                sec,
                100.0 * sec / total
            );
        }
    }
    Some(Row {
        workload: workload.into(),
        precision: a.precision.name(),
        backend: backend.into(),
        adapter,
        batch,
        steps_per_run: steps,
        runs: a.runs,
        samples_per_s: rate,
        seconds_per_epoch: if steps == full_steps {
            t
        } else {
            t * full_steps as f64 / steps as f64
        },
        us_per_step: t / steps as f64 * 1e6,
        dispatches_per_step: dispatches,
        plan_bytes,
        tensor_bytes,
        backend_bytes: s.backend().allocated_bytes(),
        peak_host_mib: peak_rss_mib(),
        startup_ms,
    })
}

fn table(rows: &[&Row]) -> String {
    let mut s = String::from(
        "| workload | backend | precision | batch | steps/run | samples/s | s/epoch | µs/step | dispatches/step | plan MiB | tensors MiB | peak host MiB | start-up ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mib = |b: f64| b / (1 << 20) as f64;
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.1}{} | {:.0} | {} | {:.1} | {:.1} | {} | {:.0} |\n",
            r.workload,
            r.backend,
            r.precision,
            r.batch,
            r.steps_per_run,
            r.samples_per_s,
            r.seconds_per_epoch,
            if r.workload != "w-step" && r.steps_per_run * r.batch < 54_000 {
                " (extrapolated)"
            } else {
                ""
            },
            r.us_per_step,
            r.dispatches_per_step,
            mib(r.plan_bytes as f64),
            mib(r.tensor_bytes as f64),
            r.peak_host_mib.map_or("-".into(), |m| format!("{m:.0}")),
            r.startup_ms,
        );
    }
    s
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').chars().take(60).collect()
}

fn main() {
    let a = args();
    let mut rows = vec![];
    for backend in &a.backends {
        for w in &a.workloads {
            eprintln!("running {w} on {backend}...");
            if let Some(r) = run(&a, w, backend) {
                rows.push(r);
            }
        }
    }
    let all: Vec<&Row> = rows.iter().collect();
    println!("\n{}", table(&all));
    std::fs::create_dir_all(&a.out).expect("results folder");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    for backend in &a.backends {
        let mine: Vec<&Row> = rows.iter().filter(|r| &r.backend == backend).collect();
        let Some(first) = mine.first() else { continue };
        let mut name = slug(&format!("{}-{}", backend, first.adapter));
        if a.batch != 128 {
            name.push_str(&format!("-batch{}", a.batch));
        }
        if let Precision::Mixed(_) = a.precision {
            name.push_str("-mixed");
        }
        let md = format!(
            "# Training benchmarks: {}\n\nbackend `{}`, commit {commit}, release build, {} threads; \
             medians of {} runs; written by `cargo bench --bench train`.\n\n{}",
            first.adapter,
            backend,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            a.runs,
            table(&mine)
        );
        let json = serde_json::json!({
            "adapter": first.adapter,
            "backend": backend,
            "commit": commit,
            "rows": mine.iter().map(|r| serde_json::json!({
                "workload": r.workload,
                "precision": r.precision,
                "batch": r.batch,
                "steps_per_run": r.steps_per_run,
                "runs": r.runs,
                "samples_per_s": r.samples_per_s,
                "seconds_per_epoch": r.seconds_per_epoch,
                "us_per_step": r.us_per_step,
                "dispatches_per_step": r.dispatches_per_step,
                "plan_bytes": r.plan_bytes,
                "tensor_bytes": r.tensor_bytes,
                "backend_bytes": r.backend_bytes,
                "peak_host_mib": r.peak_host_mib,
                "startup_ms": r.startup_ms,
            })).collect::<Vec<_>>(),
        });
        let base = a.out.join(&name);
        std::fs::write(base.with_extension("md"), md).expect("write md");
        std::fs::write(
            base.with_extension("json"),
            serde_json::to_string_pretty(&json).expect("json"),
        )
        .expect("write json");
        println!("wrote {}.md and .json", base.display());
    }
}
