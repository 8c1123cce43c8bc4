//! The regularization tour: W-MLP variants trained on a small MNIST subset (so overfitting
//! is visible) for the same budget, one technique at a time, then combined. Prints and
//! writes (runs/tour/tour.csv, runs/tour/tour.md) train accuracy, validation accuracy,
//! the gap, the penalty, and the fraction of near-zero weights — whatever the result.
//!
//!   cargo run --release --example regularization_tour -- [--backend auto|gpu|cpu|cpu-ref] [--train 2000] [--epochs 30]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use shadeprop::backend::Backend;
use shadeprop::data::{Dataset, Standardizer, load_mnist};
use shadeprop::graph::LinearOpts;
use shadeprop::nn::Sequential;
use shadeprop::optim::{Regularizer, Sgd};
use shadeprop::session::Session;
use shadeprop::train::{EpochConfig, evaluate, train_epoch};

struct Variant {
    name: &'static str,
    model: Sequential,
    penalty: Option<Regularizer>,
}

fn mlp(bn: bool, dropout: f32, dropconnect: f32) -> Sequential {
    let mut m = Sequential::new(784);
    for _ in 0..2 {
        m = m.linear_with(LinearOpts {
            dropconnect,
            ..LinearOpts::new(512)
        });
        if bn {
            m = m.batch_norm();
        }
        m = m.relu();
        if dropout > 0.0 {
            m = m.dropout(dropout);
        }
    }
    m.linear(10)
}

fn variants() -> Vec<Variant> {
    vec![
        Variant {
            name: "none",
            model: mlp(false, 0.0, 0.0),
            penalty: None,
        },
        Variant {
            name: "L2 (lambda/2m)·‖W‖², lambda = 1",
            model: mlp(false, 0.0, 0.0),
            penalty: Some(Regularizer::l2(1.0)),
        },
        Variant {
            name: "L1 (lambda/2m)·‖W‖₁, lambda = 0.1",
            model: mlp(false, 0.0, 0.0),
            penalty: Some(Regularizer::l1(0.1)),
        },
        Variant {
            name: "elastic net lambda = 1e-3, beta = 0.5",
            model: mlp(false, 0.0, 0.0),
            penalty: Some(Regularizer::ElasticNet {
                lambda: 1e-3,
                beta: 0.5,
            }),
        },
        Variant {
            name: "dropout 0.5",
            model: mlp(false, 0.5, 0.0),
            penalty: None,
        },
        Variant {
            name: "DropConnect 0.5",
            model: mlp(false, 0.0, 0.5),
            penalty: None,
        },
        Variant {
            name: "batch norm",
            model: mlp(true, 0.0, 0.0),
            penalty: None,
        },
        Variant {
            name: "L2 + dropout + batch norm",
            model: mlp(true, 0.5, 0.0),
            penalty: Some(Regularizer::l2(1.0)),
        },
    ]
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: cannot parse {v:?}"))
        })
        .unwrap_or(default)
}

#[path = "common/exit.rs"]
mod exit;

fn main() -> std::process::ExitCode {
    exit::report(run())
}

fn run() -> shadeprop::Result<()> {
    let backend_name: String = arg("--backend", "auto".to_string());
    let n_train: usize = arg("--train", 2000);
    let epochs: u64 = arg("--epochs", 30);
    let seed: u64 = arg("--seed", 0);
    let data: PathBuf = arg(
        "--data",
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")),
    );
    let out: PathBuf = arg("--out", PathBuf::from("runs/tour"));

    let (full, _test) = load_mnist(&data)?;
    // A small training subset and a 10,000-image validation set, both from the training file.
    let (rest, train) = full.split(n_train as f32 / full.len() as f32, seed)?;
    let mut train: Dataset = train;
    let mut val = rest.take(10_000)?;
    let st = Standardizer::fit(&train)?;
    st.apply(&mut train)?;
    st.apply(&mut val)?;
    let open = || -> shadeprop::Result<Box<dyn Backend>> {
        Ok(shadeprop::backend::open(&backend_name)?.0)
    };
    let (first, why) = shadeprop::backend::open(&backend_name)?;
    println!("{why}\nbackend: {}", first.describe());
    drop(first);
    println!(
        "{} training images, {} validation images, {epochs} epochs of batch 128, SGD lr 0.05 momentum 0.9, clip 1.0\n",
        train.len(),
        val.len()
    );

    let mut md = String::from(
        "| variant | train acc | val acc | gap | penalty | weights with abs < 1e-3 | s |\n|---|---|---|---|---|---|---|\n",
    );
    // The csv crate quotes a variant name that holds a comma.
    let mut csv = csv::Writer::from_writer(vec![]);
    let csv_err = |e: csv::Error| shadeprop::Error::Io {
        path: "tour.csv".into(),
        source: std::io::Error::other(e),
    };
    csv.write_record([
        "variant",
        "train_accuracy",
        "val_accuracy",
        "gap",
        "penalty",
        "near_zero_fraction",
        "seconds",
    ])
    .map_err(csv_err)?;
    for v in variants() {
        let t0 = Instant::now();
        let opt = Sgd {
            lr: 0.05,
            momentum: 0.9,
            clip_norm: Some(1.0),
            ..Sgd::default()
        };
        let mut s = Session::new(open()?, v.model.build()?, opt, seed, 128)?;
        s.set_regularizer(v.penalty)?;
        let cfg = EpochConfig {
            batch_size: 128,
            ..Default::default()
        };
        let mut penalty = 0.0;
        for e in 0..epochs {
            penalty = train_epoch(&mut s, &train, &cfg, seed, e)?.metrics.penalty;
        }
        // Accuracies in inference mode on both sets.
        let tr = evaluate(&mut s, &train, 128)?;
        let va = evaluate(&mut s, &val, 128)?;
        let weights: Vec<f32> = s
            .params()?
            .into_iter()
            .filter(|(n, _)| n.ends_with(".weight") && !n.contains('+'))
            .flat_map(|(_, w)| w)
            .collect();
        let near = weights.iter().filter(|w| w.abs() < 1e-3).count() as f64 / weights.len() as f64;
        let secs = t0.elapsed().as_secs_f64();
        let gap = tr.accuracy - va.accuracy;
        println!(
            "{:<40} train {:.4}  val {:.4}  gap {:+.4}  penalty {:.4}  near-zero {:5.1}%  {:.0}s",
            v.name,
            tr.accuracy,
            va.accuracy,
            gap,
            penalty,
            100.0 * near,
            secs
        );
        let _ = writeln!(
            md,
            "| {} | {:.4} | {:.4} | {:+.4} | {:.4} | {:.1}% | {:.0} |",
            v.name,
            tr.accuracy,
            va.accuracy,
            gap,
            penalty,
            100.0 * near,
            secs
        );
        csv.write_record([
            v.name.to_string(),
            tr.accuracy.to_string(),
            va.accuracy.to_string(),
            gap.to_string(),
            penalty.to_string(),
            near.to_string(),
            format!("{secs:.1}"),
        ])
        .map_err(csv_err)?;
    }
    std::fs::create_dir_all(&out).map_err(|e| shadeprop::Error::Io {
        path: out.clone(),
        source: e,
    })?;
    let csv = String::from_utf8(
        csv.into_inner()
            .map_err(|e| csv_err(e.into_error().into()))?,
    )
    .unwrap_or_default();
    for (name, text) in [("tour.md", &md), ("tour.csv", &csv)] {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| shadeprop::Error::Io {
            path: p.clone(),
            source: e,
        })?;
    }
    println!("\nwrote {}/tour.md and tour.csv", out.display());
    Ok(())
}
