//! End to end on real MNIST on the GPU backend: one epoch of W-MLP reaches >= 95% test
//! accuracy. Needs data/mnist (scripts/fetch-data.sh); in CI (SHADEPROP_REQUIRE_GPU=1)
//! missing data or a missing adapter fail the test.

mod common;
use common::*;
use shadeprop::data::{Standardizer, load_mnist};
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;
use shadeprop::train::{EpochConfig, evaluate, train_epoch};

#[test]
fn w_mlp_one_epoch_on_mnist_reaches_95_percent() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let (mut train, mut test) = match load_mnist(&dir) {
        Ok(d) => d,
        Err(e) => {
            assert!(
                std::env::var("SHADEPROP_REQUIRE_GPU").is_err(),
                "MNIST missing in CI: {e}"
            );
            eprintln!("SKIPPED (no MNIST; run scripts/fetch-data.sh): {e}");
            return;
        }
    };
    let Some(gpu) = gpu() else { return };
    let st = Standardizer::fit(&train).unwrap();
    st.apply(&mut train).unwrap();
    st.apply(&mut test).unwrap();
    let opt = Sgd::w_mlp();
    let mut s = Session::new(
        Box::new(gpu),
        Sequential::w_mlp(0.5).build().unwrap(),
        opt,
        0,
        128,
    )
    .unwrap();
    let stats = train_epoch(&mut s, &train, &EpochConfig::default(), 0, 0).unwrap();
    let t = evaluate(&mut s, &test, 128).unwrap();
    eprintln!(
        "1 epoch: train loss {:.4}, {:.0} samples/s; test accuracy {:.4}",
        stats.metrics.loss, stats.samples_per_sec, t.accuracy
    );
    assert_eq!(t.samples, 10_000);
    assert!(
        t.accuracy >= 0.95,
        "test accuracy {} after one epoch",
        t.accuracy
    );
}
