//! The one-pass kernels of shaders/elementwise.wgsl: activations forward and backward
//! (equal on every backend, and equal to their formulas and derivatives), add, the bias
//! gradient (also past llvmpipe's loop limit).

use super::*;
use shadeprop::backend::Act;
use shadeprop::kernels::elementwise::{BiasGradParams, Len};

/// Random inputs in [-4, 4), where the activations are neither linear nor saturated.
fn act_input(n: usize) -> Vec<f32> {
    rand_vec(n as u64, n).iter().map(|v| v * 4.0).collect()
}

#[test]
fn activations_forward_and_backward() {
    let mut gs = gpus();
    for act in [Act::Relu, Act::Tanh, Act::Sigmoid] {
        for n in [1usize, 255, 1000, 70_001] {
            let x = act_input(n);
            let y = Case::new(Kernel::ActFwd(act), Len { n })
                .ins([x])
                .outs([zeros(n)])
                .tol(1e-6, 1e-5)
                .check(&mut gs)
                .remove(0);
            let dy = rand_vec(n as u64 + 9, n);
            Case::new(Kernel::ActBwd(act), Len { n })
                .ins([y, dy])
                .outs([zeros(n)])
                .tol(1e-6, 1e-5)
                .check(&mut gs);
        }
    }
}

// Each activation's forward is its formula and its backward (from y) the derivative
// of the formula, on odd lengths: [`check_op`].
backend_test!(activations_are_their_formulas_and_derivatives, |b| {
    // (activation, formula, kinks)
    type Form = (Act, fn(f64) -> f64, &'static [f64]);
    let forms: [Form; 3] = [
        (Act::Relu, |x| x.max(0.0), &[0.0]),
        (Act::Tanh, f64::tanh, &[]),
        (Act::Sigmoid, |x| 1.0 / (1.0 + (-x).exp()), &[]),
    ];
    for (act, f, kinks) in forms {
        for n in [1usize, 255, 1000, 70_001] {
            let forward = |b: &mut dyn Backend, ins: &[Vec<f32>]| {
                Case::new(Kernel::ActFwd(act), Len { n })
                    .ins(ins)
                    .outs([zeros(n)])
                    .run(b)
                    .remove(0)
            };
            let backward = |b: &mut dyn Backend, _: &[Vec<f32>], y: &[f32], dy: &[f32]| {
                Case::new(Kernel::ActBwd(act), Len { n })
                    .ins([y.to_vec(), dy.to_vec()])
                    .outs([zeros(n)])
                    .run(b)
            };
            let formula = |ins: &[Vec<f64>]| -> Vec<f64> { ins[0].iter().map(|&x| f(x)).collect() };
            let op = Op {
                name: &format!("{act:?} over {n}"),
                forward: &forward,
                backward: &backward,
                formula: &formula,
                wrt: &[0],
                kinks,
                fwd_tol: (1e-6, 1e-5),
                bwd_tol: (1e-6, 1e-4),
            };
            check_op(b.as_mut(), &op, &[act_input(n)], &rand_vec(n as u64 + 9, n));
        }
    }
});

#[test]
fn add_and_bias_grad() {
    let mut gs = gpus();
    for (m, n) in [(1usize, 1usize), (7, 13), (128, 512), (300, 3)] {
        Case::new(Kernel::Add, Len { n: m * n })
            .ins([rand_vec(1, m * n), rand_vec(2, m * n)])
            .outs([zeros(m * n)])
            .tol(0.0, 1e-6)
            .check(&mut gs);
        Case::new(Kernel::BiasGrad, BiasGradParams { rows: m, cols: n })
            .ins([rand_vec(3, m * n)])
            .outs([zeros(n)])
            .tol(1e-5, 1e-5)
            .check(&mut gs);
    }
}

/// Reductions longer than 65535 steps: llvmpipe (lavapipe) silently stops an invocation's
/// loops after 65535 iterations in all, so the kernels unroll their data-dependent loops by
/// 16. Bias gradient over 70,000 rows (conv1 of W-CNN has 73,728). Batch norm and the
/// matmul past the limit are in their families' files.
#[test]
fn bias_grad_past_65535_rows_is_complete() {
    let mut gs = gpus();
    let (m, n) = (70_000usize, 3usize);
    Case::new(Kernel::BiasGrad, BiasGradParams { rows: m, cols: n })
        .ins([rand_vec(31, m * n)])
        .outs([zeros(n)])
        .tol(1e-3, 1e-4)
        .check(&mut gs);
}
