//! The README's snippet: build a model, compile it for a backend, train on a toy problem.

use shadeprop::data::Dataset;
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;
use shadeprop::train::{EpochConfig, evaluate, train_epoch};

#[path = "common/exit.rs"]
mod exit;

fn main() -> std::process::ExitCode {
    exit::report(run())
}

fn run() -> shadeprop::Result<()> {
    // Two Gaussian blobs in 8 dimensions, classes 0 and 1.
    let rng = shadeprop::rng::Rng::new(1);
    let n = 512;
    let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let x: Vec<f32> = (0..n * 8)
        .map(|i| rng.normal(9, 0, i as u32) + 1.5 * y[i / 8])
        .collect();
    let data = Dataset {
        x,
        y,
        features: 8,
        classes: 2,
        ..Default::default()
    };
    let (train, val) = data.split(0.25, 0)?;

    // A hardware GPU if there is one, else the fast CPU backend ("gpu", "cpu", "cpu-ref"
    // force one).
    let (backend, why) = shadeprop::backend::open("auto")?;
    println!("{why}\nbackend: {}", backend.describe());

    let model = Sequential::new(8)
        .linear(32)
        .batch_norm()
        .relu()
        .dropout(0.2)
        .linear(2);
    let opt = Sgd::w_mlp(); // lr 0.05, momentum 0.9, wd 5e-4, clip 1.0
    let mut session = Session::new(
        backend,
        model.build()?,
        opt,
        /* seed */ 0,
        /* max batch */ 64,
    )?;

    let cfg = EpochConfig {
        batch_size: 64,
        ..Default::default()
    };
    for epoch in 0..5 {
        let st = train_epoch(&mut session, &train, &cfg, 0, epoch)?;
        let v = evaluate(&mut session, &val, 64)?;
        println!(
            "epoch {epoch}: train loss {:.3}, val accuracy {:.3}",
            st.metrics.loss, v.accuracy
        );
    }
    Ok(())
}
