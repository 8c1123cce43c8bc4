//! Binary cross-entropy with logits and the regression losses (shaders/loss.wgsl) against
//! their CPU twins: random rows, sample weights, pos_weight, every regression kind, the
//! mixed-precision loss scale, and logits up to ±1e8.

use super::softmax_xent::label_rows;
use super::*;
use shadeprop::kernels::loss::{BceParams, RegressionParams};

#[test]
fn bce_with_logits_matches_the_cpu_twin() {
    let mut gs = gpus();
    for (m, k) in [(1usize, 1usize), (65, 1), (33, 7)] {
        let mut z: Vec<f32> = rand_vec(31, m * k).iter().map(|v| v * 6.0).collect();
        // Extreme logits: the log-sigmoid form stays finite.
        z[0] = 1e8;
        if z.len() > 1 {
            z[1] = -1e8;
        }
        let t: Vec<f32> = rand_vec(32, m * k)
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i % 5 == 4 {
                    v.abs()
                } else {
                    (*v > 0.0) as u8 as f32
                }
            })
            .collect();
        let sw: Vec<f32> = rand_vec(33, m).iter().map(|v| v.abs() * 3.0).collect();
        let pw: Vec<f32> = rand_vec(34, k).iter().map(|v| v.abs() * 4.0).collect();
        for (weighted, sampled) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = BceParams {
                rows: m,
                outputs: k,
                width: k + 2,
                pos_weighted: weighted,
            };
            let labels = label_rows(&t, k, sampled.then_some(&sw[..]));
            for flags in [0, Globals::MIXED] {
                let w = if weighted { pw.clone() } else { vec![0.0; 4] };
                let out = Case::new(Kernel::BceWithLogits, p)
                    .ins([
                        z.clone(),
                        labels.clone(),
                        vec![512.0, 1.0 / 512.0, 0.0, 0.0],
                        w,
                    ])
                    .outs([zeros(m * k), zeros(3 * m)])
                    .globals(Globals { flags, ..g0() })
                    .tol(1e-6, 1e-5)
                    .check(&mut gs);
                assert!(out[1].iter().all(|v| v.is_finite()), "{:?}", &out[1]);
            }
        }
    }
}

#[test]
fn regression_losses_match_the_cpu_twin() {
    let mut gs = gpus();
    for (m, t_n) in [(1usize, 1usize), (70, 1), (17, 3)] {
        let z: Vec<f32> = rand_vec(41, m * t_n).iter().map(|v| v * 3.0).collect();
        let mut t: Vec<f32> = rand_vec(42, m * t_n).iter().map(|v| v * 3.0).collect();
        // An exact hit: the MAE and Huber gradients are 0 there (sign(0) = 0).
        t[0] = z[0];
        let sw: Vec<f32> = rand_vec(43, m).iter().map(|v| v.abs()).collect();
        for (kind, delta) in [(0u32, 0.0f32), (1, 0.0), (2, 1.0), (2, 0.25)] {
            for sampled in [false, true] {
                let p = RegressionParams {
                    rows: m,
                    outputs: t_n,
                    width: t_n + 2,
                    kind,
                    delta,
                };
                let labels = label_rows(&t, t_n, sampled.then_some(&sw[..]));
                for flags in [0, Globals::MIXED] {
                    Case::new(Kernel::RegressionLoss, p)
                        .ins([
                            z.clone(),
                            labels.clone(),
                            vec![256.0, 1.0 / 256.0, 0.0, 0.0],
                        ])
                        .outs([zeros(m * t_n), zeros(3 * m)])
                        .globals(Globals { flags, ..g0() })
                        .tol(1e-6, 1e-5)
                        .check(&mut gs);
                }
            }
        }
    }
}
