//! Initializers: sampled weights have the intended mean and variance; zeros/constant are
//! exactly that; draws do not depend on the backend (they are made on the host).

use shadeprop::nn::init::{Dist, Fan, Init};
use shadeprop::rng::Rng;

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
