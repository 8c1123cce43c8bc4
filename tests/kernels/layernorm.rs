//! Layer norm (shaders/layernorm.wgsl): forward and both backward kernels against the CPU
//! twins, past llvmpipe's loop limit, and against the formula (PyTorch's LayerNorm,
//! written out by hand in f64) and finite differences.

use super::*;
use shadeprop::kernels::layernorm::LayerNormParams;

fn ln(rows: usize, features: usize) -> LayerNormParams {
    LayerNormParams {
        rows,
        features,
        eps: 1e-5,
    }
}

#[test]
fn layernorm_forward_and_backward_match_the_cpu() {
    let mut gs = gpus();
    // 70,000 features: one invocation loops past 65,535 elements (in 16-wide steps).
    for (m, f) in [(1usize, 1usize), (2, 3), (37, 65), (128, 512), (3, 70_000)] {
        let x: Vec<f32> = rand_vec(21, m * f).iter().map(|v| v * 3.0 + 1.0).collect();
        let gb = [rand_vec(22, f), rand_vec(23, f)].concat();
        let p = ln(m, f);
        let outs = Case::new(Kernel::LnFwd, p)
            .ins([x.clone(), gb.clone()])
            .outs([zeros(m * f), zeros(2 * m)])
            .tol(1e-5, 1e-4)
            .check(&mut gs);
        let dy = rand_vec(24, m * f);
        Case::new(Kernel::LnBwdX, p)
            .ins([x.clone(), dy.clone(), gb, outs[1].clone()])
            .outs([zeros(m * f)])
            .tol(1e-4, 1e-3)
            .check(&mut gs);
        Case::new(Kernel::LnBwdParams, p)
            .ins([x, dy, outs[1].clone()])
            .outs([zeros(2 * f)])
            .tol(1e-4, 1e-3)
            .check(&mut gs);
    }
}

/// PyTorch's LayerNorm over the last dimension in f64: per row,
/// `γ·(x − μ)/sqrt(σ² + eps) + β` with the row's mean and biased variance.
fn ln_formula(x: &[f64], gb: &[f64], (m, f): (usize, usize)) -> Vec<f64> {
    let mut y = vec![0.0; m * f];
    for r in 0..m {
        let row = &x[r * f..(r + 1) * f];
        let mean = row.iter().sum::<f64>() / f as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / f as f64;
        for j in 0..f {
            y[r * f + j] = gb[j] * (row[j] - mean) / (var + 1e-5).sqrt() + gb[f + j];
        }
    }
    y
}

// The forward is the formula, and the backward (dx through the row statistics, dγ, dβ)
// the derivative of `Σ dy·y`: [`check_op`].
backend_test!(layernorm_is_its_formula_and_derivative, |b| {
    for (m, f) in [(1usize, 2usize), (3, 5), (16, 9), (2, 40)] {
        let p = ln(m, f);
        let fwd = |ins: &[Vec<f32>]| {
            Case::new(Kernel::LnFwd, p)
                .ins(ins)
                .outs([zeros(m * f), zeros(2 * m)])
        };
        let forward = |b: &mut dyn Backend, ins: &[Vec<f32>]| fwd(ins).run(b).remove(0);
        let backward = |b: &mut dyn Backend, ins: &[Vec<f32>], _: &[f32], dy: &[f32]| {
            let saved = fwd(ins).run(b).remove(1);
            let dx = Case::new(Kernel::LnBwdX, p)
                .ins([ins[0].clone(), dy.to_vec(), ins[1].clone(), saved.clone()])
                .outs([zeros(m * f)])
                .run(b)
                .remove(0);
            let dgb = Case::new(Kernel::LnBwdParams, p)
                .ins([ins[0].clone(), dy.to_vec(), saved])
                .outs([zeros(2 * f)])
                .run(b)
                .remove(0);
            vec![dx, dgb]
        };
        let formula = |ins: &[Vec<f64>]| ln_formula(&ins[0], &ins[1], (m, f));
        let op = Op {
            name: &format!("layer norm over [{m}, {f}]"),
            forward: &forward,
            backward: &backward,
            formula: &formula,
            wrt: &[0, 1],
            kinks: &[],
            fwd_tol: (1e-5, 1e-4),
            bwd_tol: (1e-4, 1e-3),
        };
        let x: Vec<f32> = rand_vec(91, m * f).iter().map(|v| v * 2.0 + 0.5).collect();
        let gb = [rand_vec(92, f), rand_vec(93, f)].concat();
        check_op(b.as_mut(), &op, &[x, gb], &rand_vec(94, m * f));
    }
});

/// By hand: the row (1, 2, 3, 4) has mean 2.5 and biased variance 1.25, so with γ = 1,
/// β = 0 it becomes (x − 2.5)/sqrt(1.25 + 1e-5); the saved statistics are (2.5, 1/σ).
#[test]
fn layernorm_of_a_row_by_hand() {
    let mut gs = gpus();
    let outs = Case::new(Kernel::LnFwd, ln(1, 4))
        .ins([
            vec![1.0, 2.0, 3.0, 4.0],
            vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        ])
        .outs([zeros(4), zeros(2)])
        .tol(1e-6, 1e-6)
        .check(&mut gs);
    let s = (1.25f64 + 1e-5).sqrt();
    let want: Vec<f32> = [-1.5, -0.5, 0.5, 1.5]
        .iter()
        .map(|v| (v / s) as f32)
        .collect();
    assert_close("normalized row", &outs[0], &want, 1e-6, 1e-6);
    assert_close("saved", &outs[1], &[2.5, (1.0 / s) as f32], 1e-6, 1e-6);
}
