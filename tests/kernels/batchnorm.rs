//! Batch norm (shaders/batchnorm.wgsl): training, evaluation and backward over [M, C] and
//! [M, C, S] (2-d), past llvmpipe's loop limit, and against its formula and finite
//! differences.

use super::*;
use shadeprop::kernels::batchnorm::BatchNormParams;

/// Batch norm over [rows, channels, spatial] with eps 1e-5 and momentum 0.1.
fn bn(rows: usize, channels: usize, spatial: usize) -> BatchNormParams {
    BatchNormParams {
        rows,
        channels,
        eps: 1e-5,
        momentum: 0.1,
        spatial,
    }
}

/// Running statistics (mean 0, variance 1) of `c` channels.
fn fresh_running(c: usize) -> Vec<f32> {
    [vec![0.0; c], vec![1.0; c]].concat()
}

#[test]
fn batchnorm_train_eval_backward() {
    let mut gs = gpus();
    for (m, c) in [(2usize, 3usize), (128, 512), (37, 65), (1, 4)] {
        let x: Vec<f32> = rand_vec(11, m * c).iter().map(|v| v * 3.0 + 1.0).collect();
        let gb = [rand_vec(12, c), rand_vec(13, c)].concat();
        let p = bn(m, c, 0);
        let outs = Case::new(Kernel::BnFwdTrain, p)
            .ins([x.clone(), gb.clone()])
            .outs([zeros(m * c), zeros(2 * c), fresh_running(c)])
            .tol(1e-4, 1e-4)
            .check(&mut gs);
        let run2 = [
            rand_vec(14, c),
            rand_vec(15, c).iter().map(|v| v.abs() + 0.5).collect(),
        ]
        .concat();
        Case::new(Kernel::BnFwdEval, p)
            .ins([x.clone(), gb.clone(), run2])
            .outs([zeros(m * c)])
            .tol(1e-5, 1e-5)
            .check(&mut gs);
        let dy = rand_vec(16, m * c);
        Case::new(Kernel::BnBwd, p)
            .ins([x, dy, gb, outs[1].clone()])
            .outs([zeros(m * c), zeros(2 * c)])
            .tol(1e-4, 1e-3)
            .check(&mut gs);
    }
}

#[test]
fn batchnorm2d_train_eval_backward() {
    let mut gs = gpus();
    for (m, c, sp) in [(2usize, 3usize, 6usize), (4, 32, 64), (1, 5, 9)] {
        let n = m * c * sp;
        let x: Vec<f32> = rand_vec(71, n).iter().map(|v| v * 2.0 - 0.3).collect();
        let gb = [rand_vec(72, c), rand_vec(73, c)].concat();
        let p = bn(m, c, sp);
        let fwd = Case::new(Kernel::BnFwdTrain, p)
            .ins([x.clone(), gb.clone()])
            .outs([zeros(n), zeros(2 * c), fresh_running(c)])
            .tol(1e-4, 1e-4)
            .check(&mut gs);
        // Each channel of the output has mean beta and std |gamma| over its M·S values.
        for j in 0..c {
            let vals: Vec<f32> = (0..m)
                .flat_map(|b| (0..sp).map(move |s| (b * c + j) * sp + s))
                .map(|i| fwd[0][i])
                .collect();
            let mean = vals.iter().sum::<f32>() / vals.len() as f32;
            assert!(
                (mean - gb[c + j]).abs() < 1e-4,
                "channel {j}: mean {mean} vs beta {}",
                gb[c + j]
            );
        }
        Case::new(Kernel::BnFwdEval, p)
            .ins([x.clone(), gb.clone(), fwd[2].clone()])
            .outs([zeros(n)])
            .tol(1e-5, 1e-5)
            .check(&mut gs);
        Case::new(Kernel::BnBwd, p)
            .ins([x, rand_vec(74, n), gb, fwd[1].clone()])
            .outs([zeros(n), zeros(2 * c)])
            .tol(1e-4, 1e-3)
            .check(&mut gs);
    }
}

/// Batch norm over 70,000 positions per channel, past llvmpipe's 65,535 loop steps (the
/// kernels unroll by 16): training forward and backward.
#[test]
fn batchnorm_past_65535_positions_is_complete() {
    let mut gs = gpus();
    let (mb, c, sp) = (70usize, 2usize, 1000usize);
    let x = rand_vec(32, mb * c * sp);
    let gb = [rand_vec(33, c), rand_vec(34, c)].concat();
    let p = bn(mb, c, sp);
    let saved = Case::new(Kernel::BnFwdTrain, p)
        .ins([x.clone(), gb.clone()])
        .outs([zeros(mb * c * sp), zeros(2 * c), fresh_running(c)])
        .tol(1e-4, 1e-3)
        .check(&mut gs)
        .remove(1);
    let dy = rand_vec(35, mb * c * sp);
    Case::new(Kernel::BnBwd, p)
        .ins([x, dy, gb, saved])
        .outs([zeros(mb * c * sp), zeros(2 * c)])
        .tol(1e-3, 1e-3)
        .check(&mut gs);
}

/// Training batch norm over `x [m, c, sp]` in f64: `γ·(x − μ)/sqrt(σ² + eps) + β` per
/// channel, with the batch's mean and biased variance.
fn bn_formula(x: &[f64], gb: &[f64], (m, c, sp): (usize, usize, usize)) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for j in 0..c {
        let at: Vec<usize> = (0..m)
            .flat_map(|b| (0..sp).map(move |s| (b * c + j) * sp + s))
            .collect();
        let count = at.len() as f64;
        let mean = at.iter().map(|&i| x[i]).sum::<f64>() / count;
        let var = at.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / count;
        for &i in &at {
            y[i] = gb[j] * (x[i] - mean) / (var + 1e-5).sqrt() + gb[c + j];
        }
    }
    y
}

// Batch norm in training, 1-d and 2-d: the forward is the formula, and the backward
// (dx through the batch statistics, dγ, dβ) the derivative of `Σ dy·y`: [`check_op`].
backend_test!(batchnorm_is_its_formula_and_derivative, |b| {
    for (m, c, sp) in [(2usize, 3usize, 1usize), (16, 5, 1), (3, 4, 6), (1, 2, 9)] {
        let n = m * c * sp;
        let p = bn(m, c, if sp == 1 { 0 } else { sp });
        let train = |ins: &[Vec<f32>]| {
            Case::new(Kernel::BnFwdTrain, p).ins(ins).outs([
                zeros(n),
                zeros(2 * c),
                fresh_running(c),
            ])
        };
        let forward = |b: &mut dyn Backend, ins: &[Vec<f32>]| train(ins).run(b).remove(0);
        let backward = |b: &mut dyn Backend, ins: &[Vec<f32>], _: &[f32], dy: &[f32]| {
            let saved = train(ins).run(b).remove(1);
            Case::new(Kernel::BnBwd, p)
                .ins([ins[0].clone(), dy.to_vec(), ins[1].clone(), saved])
                .outs([zeros(n), zeros(2 * c)])
                .run(b)
        };
        let formula = |ins: &[Vec<f64>]| bn_formula(&ins[0], &ins[1], (m, c, sp));
        let op = Op {
            name: &format!("batch norm over [{m}, {c}, {sp}]"),
            forward: &forward,
            backward: &backward,
            formula: &formula,
            wrt: &[0, 1],
            kinks: &[],
            fwd_tol: (1e-5, 1e-4),
            bwd_tol: (1e-4, 1e-3),
        };
        let x: Vec<f32> = rand_vec(81, n).iter().map(|v| v * 2.0 + 0.5).collect();
        let gb = [rand_vec(82, c), rand_vec(83, c)].concat();
        check_op(b.as_mut(), &op, &[x, gb], &rand_vec(84, n));
    }
});
