//! Vanishing and exploding gradients made visible: Session::probe reports per-layer
//! activation and gradient statistics computed on the device.

mod common;
use common::*;
use shadeprop::backend::Backend;
use shadeprop::nn::Sequential;
use shadeprop::nn::init::Init;
use shadeprop::optim::Sgd;
use shadeprop::session::{ProbeReport, Session};

fn deep(init: Init) -> Sequential {
    let mut m = Sequential::new(16);
    for _ in 0..6 {
        m = m.linear_init(16, init).sigmoid();
    }
    m.linear_init(4, init)
}

/// A probe of the deep sigmoid network with small weights on one backend.
fn vanishing_probe(backend: Box<dyn Backend>) -> ProbeReport {
    let (x, y) = batch(1, 32, 16, 4);
    let mut s = Session::new(
        backend,
        deep(Init::Normal {
            mean: 0.0,
            std: 0.1,
        })
        .build()
        .unwrap(),
        Sgd::default(),
        2,
        32,
    )
    .unwrap();
    let before = s.params().unwrap();
    let r = s.probe(&x, &y).unwrap();
    assert_eq!(s.params().unwrap(), before, "a probe does not update");
    r
}

backend_test!(probe_shows_vanishing_gradients, |backend| {
    let r = vanishing_probe(backend);
    assert_eq!(r.activations.len(), 13);
    assert_eq!(r.activations[1].name, "1.sigmoid");
    assert_eq!(r.gradients.len(), 14);
    assert_eq!(r.gradients[0].name, "0.weight");
    // Sigmoid layers with small weights: the gradient shrinks by about 4× per layer, so
    // the first layer's weight gradient is orders of magnitude below the last one's.
    let (first, last) = (r.gradients[0].norm, r.gradients[12].norm);
    eprintln!(
        "weight-gradient norms by layer: {:?}",
        r.gradients
            .iter()
            .step_by(2)
            .map(|g| g.norm)
            .collect::<Vec<_>>()
    );
    assert!(first < last / 100.0, "first {first} last {last}");
    // Sigmoid outputs sit near 0.5 with small spread.
    assert!((r.activations[1].mean - 0.5).abs() < 0.05 && r.activations[1].std < 0.1);
});

/// The probe's statistics on every backend are the CPU reference's.
#[test]
fn probe_reports_match_across_backends() {
    let reports: Vec<(String, ProbeReport)> = backends()
        .into_iter()
        .map(|b| (b.describe(), vanishing_probe(b)))
        .collect();
    let want = &reports[0].1;
    for (what, got) in &reports[1..] {
        for (a, b) in want
            .gradients
            .iter()
            .zip(&got.gradients)
            .chain(want.activations.iter().zip(&got.activations))
        {
            assert!(
                (a.norm - b.norm).abs() <= 1e-6 + 1e-3 * a.norm,
                "{}: {} vs {} on {what}",
                a.name,
                a.norm,
                b.norm
            );
            assert!(
                (a.zero_fraction - b.zero_fraction).abs() < 1e-6,
                "{}: zero fraction on {what}",
                a.name
            );
        }
    }
}

backend_test!(probe_counts_dead_units_and_dropped_activations, |backend| {
    let m = Sequential::new(8).linear(32).relu().dropout(0.5).linear(3);
    let (x, y) = batch(5, 16, 8, 3);
    let mut s = Session::new(backend, m.build().unwrap(), Sgd::default(), 1, 16).unwrap();
    let r = s.probe(&x, &y).unwrap();
    let (relu, drop) = (&r.activations[1], &r.activations[2]);
    assert_eq!(
        (relu.name.as_str(), drop.name.as_str()),
        ("1.relu", "2.dropout")
    );
    // About half the ReLU outputs are 0 with He init; dropout zeroes about half of the rest.
    assert!(
        relu.zero_fraction > 0.3 && relu.zero_fraction < 0.7,
        "{relu:?}"
    );
    assert!(drop.zero_fraction > relu.zero_fraction + 0.15, "{drop:?}");
});
