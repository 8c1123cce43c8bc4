//! W-TAB (docs/benchmarks.md): small tabular models, where the fixed cost of a step
//! dominates. (a) L2 logistic regression 30 → 1 (BCE with logits) on scikit-learn's breast
//! cancer table, the first 455 rows standardized on themselves, full batch, SGD lr 0.1,
//! λ = 1 with the course scaling λ/(2m); (b) an MLP 2×64 (ReLU, dropout 0.2) on Palmer
//! penguins (one-hot island and sex, rows with a missing value dropped, standardized),
//! batch 32, SGD lr 0.05 momentum 0.9. Figures: training samples/s and µs per step
//! (median of `--runs` timed runs after a warm-up), per backend. `benches/peer_torch_tab.py`
//! measures the same models in PyTorch; `scripts/bench-tab.sh` runs both alternately and
//! prints the ratios.
//!
//!   cargo bench --bench tab -- [--backends cpu,gpu,cpu-ref] [--runs 5] [--steps 2000]
//!       [--json FILE]
//!
//! Needs `bash scripts/fetch-data.sh --tabular`.

use std::time::Instant;

#[path = "common/mem.rs"]
mod mem;
use mem::{peak_rss_mib, reset_peak_rss};

use shadeprop::data::tabular::{CsvSpec, Preprocessor, is_missing, read_table};
use shadeprop::data::{Dataset, Scaler, Task};
use shadeprop::graph::init::Init;
use shadeprop::nn::{Loss, Sequential};
use shadeprop::optim::{Regularizer, Sgd};
use shadeprop::session::Session;
use shadeprop::train::{EpochConfig, train_epoch};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (a)'s data: the first 455 rows of breast cancer, standardized per feature.
fn breast_cancer() -> Dataset {
    let spec = CsvSpec {
        path: "data/sklearn/breast_cancer.csv".into(),
        header: false,
        skip_rows: 1,
        target: vec!["30".into()],
        ..Default::default()
    };
    let t = read_table(&spec)
        .expect("data/sklearn/breast_cancer.csv: run scripts/fetch-data.sh --tabular");
    let rows: Vec<usize> = (0..455).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Binary, &rows).expect("fit");
    let mut d = pre.dataset(&t, &rows).expect("dataset");
    Scaler::fit_per_feature(&d)
        .expect("scaler")
        .apply(&mut d)
        .expect("scale");
    d
}

/// (b)'s data: penguins without the rows that miss a value, one-hot island and sex.
fn penguins() -> Dataset {
    let spec = CsvSpec {
        path: "data/palmerpenguins/penguins.csv".into(),
        target: vec!["species".into()],
        features: [
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex",
        ]
        .map(String::from)
        .to_vec(),
        categorical: vec!["island".into(), "sex".into()],
        ..Default::default()
    };
    let t = read_table(&spec)
        .expect("data/palmerpenguins/penguins.csv: run scripts/fetch-data.sh --tabular");
    let rows: Vec<usize> = (0..t.len())
        .filter(|&r| !t.rows[r].iter().any(|c| is_missing(c)))
        .collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &rows).expect("fit");
    let mut d = pre.dataset(&t, &rows).expect("dataset");
    Scaler::fit_per_feature(&d)
        .expect("scaler")
        .apply(&mut d)
        .expect("scale");
    d
}

struct Row {
    workload: &'static str,
    backend: String,
    batch: usize,
    steps: usize,
    samples_per_s: f64,
    us_per_step: f64,
    /// Peak resident memory of the process during this workload, MiB (Linux).
    peak_host_mib: Option<f64>,
}

fn measure(workload: &'static str, backend: &str, runs: usize, steps: usize) -> Row {
    reset_peak_rss();
    let (data, model, opt, batch, reg) = match workload {
        "w-tab-logreg" => {
            let d = breast_cancer();
            let m = Sequential::new(d.features)
                .linear_init(1, Init::Zeros)
                .loss(Loss::BceWithLogits { pos_weight: None });
            let opt = Sgd {
                lr: 0.1,
                momentum: 0.0,
                weight_decay: 0.0,
                clip_norm: None,
                ..Sgd::default()
            };
            let n = d.len();
            (d, m, opt, n, Some(Regularizer::l2(1.0)))
        }
        _ => {
            let d = penguins();
            let m = Sequential::new(d.features)
                .linear(64)
                .relu()
                .dropout(0.2)
                .linear(64)
                .relu()
                .dropout(0.2)
                .linear(3);
            let opt = Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 0.0,
                clip_norm: None,
                ..Sgd::default()
            };
            (d, m, opt, 32, None)
        }
    };
    let (b, _) = shadeprop::backend::open(backend).expect("backend");
    let name = b.describe();
    let mut s = Session::new(b, model.build().expect("model"), opt, 0, batch).expect("session");
    s.set_regularizer(reg).expect("regularizer");
    let cfg = EpochConfig {
        batch_size: batch,
        log_every: 50,
        ..Default::default()
    };
    let per_epoch = data.len().div_ceil(batch);
    let epochs = steps.div_ceil(per_epoch).max(1);
    // Warm-up: programs compiled, pages faulted in.
    for e in 0..3 {
        train_epoch(&mut s, &data, &cfg, 0, e).expect("warm-up");
    }
    let mut rates = vec![];
    let mut us = vec![];
    for r in 0..runs {
        let t0 = Instant::now();
        let mut samples = 0;
        for e in 0..epochs {
            samples += train_epoch(&mut s, &data, &cfg, 0, (3 + r * epochs + e) as u64)
                .expect("epoch")
                .metrics
                .samples;
        }
        s.sync().expect("sync");
        let t = t0.elapsed().as_secs_f64();
        rates.push(samples as f64 / t);
        us.push(t / (epochs * per_epoch) as f64 * 1e6);
    }
    Row {
        workload,
        backend: name,
        batch,
        steps: epochs * per_epoch,
        samples_per_s: median(rates),
        us_per_step: median(us),
        peak_host_mib: peak_rss_mib(),
    }
}

fn main() {
    let v: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| {
        v.iter()
            .position(|a| a == k)
            .and_then(|i| v.get(i + 1))
            .cloned()
    };
    let backends: Vec<String> = get("--backends")
        .unwrap_or_else(|| "cpu".into())
        .split(',')
        .map(String::from)
        .collect();
    let runs: usize = get("--runs").and_then(|x| x.parse().ok()).unwrap_or(5);
    let steps: usize = get("--steps").and_then(|x| x.parse().ok()).unwrap_or(2000);
    let mut rows = vec![];
    for b in &backends {
        for w in ["w-tab-logreg", "w-tab-mlp"] {
            rows.push(measure(w, b, runs, steps));
        }
    }
    println!("| workload | backend | batch | steps per run | samples/s | µs per step |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.1} |",
            r.workload, r.backend, r.batch, r.steps, r.samples_per_s, r.us_per_step
        );
    }
    if let Some(path) = get("--json") {
        let j: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "workload": r.workload, "backend": r.backend, "batch": r.batch,
                    "steps": r.steps, "samples_per_s": r.samples_per_s, "us_per_step": r.us_per_step,
                    "peak_host_mib": r.peak_host_mib,
                })
            })
            .collect();
        std::fs::write(&path, serde_json::to_string_pretty(&j).expect("json"))
            .expect("write --json");
    }
}
