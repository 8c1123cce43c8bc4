//! Initializers: sampled weights have the intended mean and variance; zeros/constant are
//! exactly that; draws do not depend on the backend (they are made on the host).

use shadeprop::backend::cpu::Cpu;
use shadeprop::nn::Sequential;
use shadeprop::nn::init::{Dist, Fan, Init};
use shadeprop::optim::Sgd;
use shadeprop::rng::Rng;
use shadeprop::session::Session;

fn moments(v: &[f32]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let maxabs = v.iter().fold(0f64, |a, &x| a.max((x as f64).abs()));
    (mean, var, maxabs)
}

#[test]
fn schemes_have_the_intended_variance() {
    let rng = Rng::new(3);
    let (fi, fo) = (784usize, 512usize);
    let n = fi * fo;
    let avg = (fi + fo) as f64 / 2.0;
    let cases: Vec<(Init, f64, Option<f64>)> = vec![
        // (scheme, intended variance, uniform bound r when the scheme is uniform)
        (
            Init::He {
                dist: Dist::Normal,
                fan: Fan::In,
                gain: 1.0,
            },
            2.0 / fi as f64,
            None,
        ),
        (
            Init::He {
                dist: Dist::Uniform,
                fan: Fan::In,
                gain: 1.0,
            },
            2.0 / fi as f64,
            Some((6.0 / fi as f64).sqrt()),
        ),
        (
            Init::He {
                dist: Dist::Normal,
                fan: Fan::Out,
                gain: 1.0,
            },
            2.0 / fo as f64,
            None,
        ),
        (
            Init::Xavier {
                dist: Dist::Normal,
                gain: 1.0,
            },
            1.0 / avg,
            None,
        ),
        (
            Init::Xavier {
                dist: Dist::Uniform,
                gain: 1.0,
            },
            1.0 / avg,
            Some((3.0 / avg).sqrt()),
        ),
        (
            Init::Xavier {
                dist: Dist::Uniform,
                gain: 2.0,
            },
            4.0 / avg,
            Some(2.0 * (3.0 / avg).sqrt()),
        ),
        (
            Init::Normal {
                mean: 0.0,
                std: 0.05,
            },
            0.0025,
            None,
        ),
        (
            Init::Uniform {
                low: -0.1,
                high: 0.1,
            },
            0.01 / 3.0,
            Some(0.1),
        ),
    ];
    for (k, (init, var, bound)) in cases.into_iter().enumerate() {
        let w = init.sample(&rng, k as u32, n, fi, fo);
        let (m, v, maxabs) = moments(&w);
        let sd = var.sqrt();
        // Standard error of the mean is sd/sqrt(n) ≈ sd/634; allow 5 of them.
        assert!(m.abs() < 5.0 * sd / (n as f64).sqrt(), "{init:?}: mean {m}");
        assert!(
            (v / var - 1.0).abs() < 0.02,
            "{init:?}: variance {v}, intended {var}"
        );
        if let Some(r) = bound {
            assert!(
                maxabs <= r * (1.0 + 1e-6) && maxabs > 0.99 * r,
                "{init:?}: max |w| {maxabs}, bound {r}"
            );
        }
    }
    assert!(
        Init::Zeros
            .sample(&rng, 0, 10, 5, 2)
            .iter()
            .all(|&x| x == 0.0)
    );
    assert!(
        Init::Constant(0.5)
            .sample(&rng, 0, 10, 5, 2)
            .iter()
            .all(|&x| x == 0.5)
    );
    // Same seed, same draws; another seed, other draws.
    let a = Init::HE_NORMAL.sample(&Rng::new(1), 0, 100, 10, 10);
    assert_eq!(a, Init::HE_NORMAL.sample(&Rng::new(1), 0, 100, 10, 10));
    assert_ne!(a, Init::HE_NORMAL.sample(&Rng::new(2), 0, 100, 10, 10));
    assert!(
        Init::Uniform {
            low: 1.0,
            high: 0.0
        }
        .validate()
        .is_err()
    );
}

/// Orthogonal initialization (PyTorch's `orthogonal_`, Keras' `Orthogonal`): a tall
/// matrix gets orthonormal columns, a wide one orthonormal rows, times the gain — checked
/// against the identity; seeds and parameters draw different matrices; a bad gain is
/// named. An LSTM's recurrent weights take it through `RnnOpts::recurrent_init`.
#[test]
fn orthogonal_init_is_orthonormal() {
    use shadeprop::graph::{RnnCell, RnnOpts};
    // Σ_k m[a·sa + k·sk]·m[b·sa + k·sk] for a, b < n: the Gram matrix of rows or columns.
    let gram_is = |m: &[f32], n: usize, len: usize, sa: usize, sk: usize, g2: f64, what: &str| {
        for a in 0..n {
            for b in 0..n {
                let d: f64 = (0..len)
                    .map(|k| m[a * sa + k * sk] as f64 * m[b * sa + k * sk] as f64)
                    .sum();
                let want = if a == b { g2 } else { 0.0 };
                assert!(
                    (d - want).abs() < 1e-5,
                    "{what}: Gram[{a}][{b}] = {d}, expected {want}"
                );
            }
        }
    };
    let o = Init::Orthogonal { gain: 1.5 };
    // Tall [12, 5]: the 5 columns (stride 5 between rows) are orthonormal times 1.5.
    let tall = o.sample(&Rng::new(3), 0, 60, 12, 5);
    gram_is(&tall, 5, 12, 1, 5, 2.25, "tall");
    // Wide [5, 12]: the 5 rows are.
    let wide = o.sample(&Rng::new(3), 0, 60, 5, 12);
    gram_is(&wide, 5, 12, 12, 1, 2.25, "wide");
    // Square: both.
    let sq = Init::Orthogonal { gain: 1.0 }.sample(&Rng::new(4), 2, 49, 7, 7);
    gram_is(&sq, 7, 7, 1, 7, 1.0, "square columns");
    gram_is(&sq, 7, 7, 7, 1, 1.0, "square rows");
    assert_ne!(tall, o.sample(&Rng::new(5), 0, 60, 12, 5), "another seed");
    assert_ne!(
        tall,
        o.sample(&Rng::new(3), 1, 60, 12, 5),
        "another parameter"
    );
    for gain in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let e = Init::Orthogonal { gain }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("init.gain"), "{e}");
    }
    // W_hh of an LSTM, stored [H, 4H] (PyTorch's [4H, H] transposed): its H rows are
    // orthonormal, as Keras' recurrent kernel [H, 4H] is.
    let h = 6;
    let m = Sequential::sequence(4, 3)
        .rnn(RnnOpts {
            recurrent_init: Some(Init::Orthogonal { gain: 1.0 }),
            ..RnnOpts::new(RnnCell::Lstm, h)
        })
        .last_step()
        .linear(2);
    let mut s = Session::new(
        Box::new(Cpu::new()),
        m.build().unwrap(),
        Sgd::default(),
        9,
        4,
    )
    .unwrap();
    let params = s.params().unwrap();
    let w_hh = &params
        .iter()
        .find(|(n, _)| n == "0.weight_hh_l0")
        .unwrap()
        .1;
    gram_is(w_hh, h, 4 * h, 4 * h, 1, 1.0, "W_hh rows");
    // W_ih keeps PyTorch's default, U(±1/√H).
    let w_ih = &params
        .iter()
        .find(|(n, _)| n == "0.weight_ih_l0")
        .unwrap()
        .1;
    assert!(w_ih.iter().all(|v| v.abs() <= 1.0 / (h as f32).sqrt()));
}
