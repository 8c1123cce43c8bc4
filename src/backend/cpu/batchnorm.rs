//! CPU twins of `shaders/batchnorm.wgsl` (formulas there): batch norm over `x [M, C, S]`
//! (S = `spatial`, 0 reads as 1), per channel over the M·S values. The fast twins compute
//! the channels' sums in parallel, each in the reference's order, then the rows in
//! parallel: the same bits.

use super::par::per_channel;
use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::batchnorm::BatchNormParams;

/// Index in `[M, C, S]` of value `r` (`r = m·S + s`) of channel `c` out of `cc`.
fn at(r: usize, c: usize, cc: usize, s: usize) -> usize {
    ((r / s) * cc + c) * s + r % s
}

/// `y = γ·(x − mean)·invstd + β`, in this order.
#[inline]
fn normalize(x: f32, mean: f32, invstd: f32, gamma: f32, beta: f32) -> f32 {
    gamma * (x - mean) * invstd + beta
}

/// The mean of channel `j`'s `n` values and the sum of their squared deviations from
/// it, each summed in index order.
fn channel_stats(x: &[f32], n: usize, j: usize, c: usize, sp: usize) -> (f32, f32) {
    let mut s = 0f32;
    for r in 0..n {
        s += x[at(r, j, c, sp)];
    }
    let mean = s / n as f32;
    let mut v = 0f32;
    for r in 0..n {
        let d = x[at(r, j, c, sp)] - mean;
        v += d * d;
    }
    (mean, v)
}

/// From a channel's `(mean, v)` ([`channel_stats`]): its invstd `1/sqrt(v/n + eps)`,
/// stored with the mean in `saved`, and the running statistics' update
/// `r := (1 − momentum)·r + momentum·batch` (unbiased variance; skipped when the batch
/// statistics are not finite). `saved` and `running` are `[2C]`.
#[allow(clippy::too_many_arguments)]
fn finish_channel(
    j: usize,
    c: usize,
    n: usize,
    (mean, v): (f32, f32),
    eps: f32,
    mom: f32,
    saved: &mut [f32],
    running: &mut [f32],
) -> f32 {
    let var_b = v / n as f32;
    let invstd = 1.0 / (var_b + eps).sqrt();
    saved[j] = mean;
    saved[c + j] = invstd;
    let unbiased = if n > 1 { v / (n - 1) as f32 } else { var_b };
    if mean.is_finite() && v.is_finite() {
        running[j] = (1.0 - mom) * running[j] + mom * mean;
        running[c + j] = (1.0 - mom) * running[c + j] + mom * unbiased;
    }
    invstd
}

/// `(Σ dy, Σ dy·x̂)` of channel `j`, with `x̂ = (x − mean)·invstd`, in index order.
fn channel_grad_sums(
    x: &[f32],
    dy: &[f32],
    n: usize,
    j: usize,
    c: usize,
    sp: usize,
    (mean, invstd): (f32, f32),
) -> (f32, f32) {
    let (mut sdy, mut sdyx) = (0f32, 0f32);
    for r in 0..n {
        let i = at(r, j, c, sp);
        let xh = (x[i] - mean) * invstd;
        sdy += dy[i];
        sdyx += dy[i] * xh;
    }
    (sdy, sdyx)
}

/// One element of dx: `(invstd/n)·γ·(n·dy − Σdy − x̂·Σdy·x̂)` (`fm` = n as f32).
#[inline]
fn bn_dx(x: f32, dy: f32, mean: f32, invstd: f32, gamma: f32, fm: f32, sums: (f32, f32)) -> f32 {
    let (sdy, sdyx) = sums;
    let xh = (x - mean) * invstd;
    (invstd / fm) * gamma * (fm * dy - sdy - xh * sdyx)
}

/// [`Kernel::BnFwdTrain`](crate::kernels::Kernel::BnFwdTrain), [`BatchNormParams`]:
/// normalize with the batch statistics and update the running ones.
/// `ins = [x, γβ [2C]]`, `outs = [y, saved (mean, invstd) [2C], running (mean, var) [2C]]`.
pub fn bn_fwd_train(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let BatchNormParams {
        rows: m,
        channels: c,
        eps,
        momentum: mom,
        spatial,
    } = BatchNormParams::from_words(p);
    let sp = spatial.max(1);
    let n = m * sp;
    let (x, gb) = (ins[0], ins[1]);
    let (y, rest) = outs.split_at_mut(1);
    let (saved, running) = rest.split_at_mut(1);
    for j in 0..c {
        let (mean, v) = channel_stats(x, n, j, c, sp);
        let invstd = finish_channel(j, c, n, (mean, v), eps, mom, saved[0], running[0]);
        for r in 0..n {
            let i = at(r, j, c, sp);
            y[0][i] = normalize(x[i], mean, invstd, gb[j], gb[c + j]);
        }
    }
}

/// The fast twin of [`bn_fwd_train`] (same operands): channel statistics in parallel
/// (each summed in the reference's order, so the same bits), then the normalization by
/// rows in parallel.
pub fn bn_fwd_train_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    use rayon::prelude::*;
    let BatchNormParams {
        rows: m,
        channels: c,
        eps,
        momentum: mom,
        spatial,
    } = BatchNormParams::from_words(p);
    let sp = spatial.max(1);
    let n = m * sp;
    let (x, gb) = (ins[0], ins[1]);
    let stats = per_channel(c, |j| channel_stats(x, n, j, c, sp));
    let (y, rest) = outs.split_at_mut(1);
    let (saved, running) = rest.split_at_mut(1);
    let mut coef = vec![(0f32, 0f32); c];
    for (j, &st) in stats.iter().enumerate() {
        let invstd = finish_channel(j, c, n, st, eps, mom, saved[0], running[0]);
        coef[j] = (st.0, invstd);
    }
    y[0][..m * c * sp]
        .par_chunks_mut(c * sp)
        .enumerate()
        .for_each(|(mi, row)| {
            let xr = &x[mi * c * sp..][..c * sp];
            for (i, o) in row.iter_mut().enumerate() {
                let j = i / sp;
                let (mean, invstd) = coef[j];
                *o = normalize(xr[i], mean, invstd, gb[j], gb[c + j]);
            }
        });
}

/// [`Kernel::BnFwdEval`](crate::kernels::Kernel::BnFwdEval), [`BatchNormParams`]:
/// normalize with the running statistics (`momentum` is not read).
/// `ins = [x, γβ [2C], running (mean, var) [2C]]`, `outs = [y]`.
pub fn bn_fwd_eval(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let BatchNormParams {
        rows: m,
        channels: c,
        eps,
        spatial,
        ..
    } = BatchNormParams::from_words(p);
    let (x, gb, run) = (ins[0], ins[1], ins[2]);
    let sp = spatial.max(1);
    for i in 0..m * c * sp {
        let j = (i / sp) % c;
        let invstd = 1.0 / (run[c + j] + eps).sqrt();
        outs[0][i] = normalize(x[i], run[j], invstd, gb[j], gb[c + j]);
    }
}

/// [`Kernel::BnBwd`](crate::kernels::Kernel::BnBwd), [`BatchNormParams`] (`rows`,
/// `channels`, `spatial` read): dx, dγ and dβ from the saved batch statistics.
/// `ins = [x, dy, γβ [2C], saved (mean, invstd) [2C]]`, `outs = [dx, dγβ [2C]]`.
pub fn bn_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let BatchNormParams {
        rows: m,
        channels: c,
        spatial,
        ..
    } = BatchNormParams::from_words(p);
    let (x, dy, gb, saved) = (ins[0], ins[1], ins[2], ins[3]);
    let sp = spatial.max(1);
    let n = m * sp;
    let fm = n as f32;
    for j in 0..c {
        let (mean, invstd, g) = (saved[j], saved[c + j], gb[j]);
        let sums = channel_grad_sums(x, dy, n, j, c, sp, (mean, invstd));
        for r in 0..n {
            let i = at(r, j, c, sp);
            outs[0][i] = bn_dx(x[i], dy[i], mean, invstd, g, fm, sums);
        }
        outs[1][j] = sums.1;
        outs[1][c + j] = sums.0;
    }
}

/// The fast twin of [`bn_bwd`] (same operands): channel sums in parallel (reference
/// order), then dx by rows in parallel.
pub fn bn_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    use rayon::prelude::*;
    let BatchNormParams {
        rows: m,
        channels: c,
        spatial,
        ..
    } = BatchNormParams::from_words(p);
    let (x, dy, gb, saved) = (ins[0], ins[1], ins[2], ins[3]);
    let sp = spatial.max(1);
    let n = m * sp;
    let fm = n as f32;
    let sums = per_channel(c, |j| {
        channel_grad_sums(x, dy, n, j, c, sp, (saved[j], saved[c + j]))
    });
    let (dx, dgb) = outs.split_at_mut(1);
    for (j, &(sdy, sdyx)) in sums.iter().enumerate() {
        dgb[0][j] = sdyx;
        dgb[0][c + j] = sdy;
    }
    dx[0][..m * c * sp]
        .par_chunks_mut(c * sp)
        .enumerate()
        .for_each(|(mi, row)| {
            let base = mi * c * sp;
            for (i, o) in row.iter_mut().enumerate() {
                let j = i / sp;
                let (mean, invstd, g) = (saved[j], saved[c + j], gb[j]);
                *o = bn_dx(x[base + i], dy[base + i], mean, invstd, g, fm, sums[j]);
            }
        });
}
