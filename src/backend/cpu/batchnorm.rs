//! CPU twins of `shaders/batchnorm.wgsl` (formulas there). Input [M, C, S], S = p4 (0 = 1).

fn at(r: usize, c: usize, cc: usize, s: usize) -> usize {
    ((r / s) * cc + c) * s + r % s
}

use crate::backend::{Globals, pf};

/// ins = [x, gb], outs = [y, saved, running]; p0 = M, p1 = C, p2 = eps, p3 = momentum
pub fn bn_fwd_train(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, c) = (p[0] as usize, p[1] as usize);
    let (eps, mom) = (pf(p, 2), pf(p, 3));
    let sp = (p[4] as usize).max(1);
    let n = m * sp;
    let (x, gb) = (ins[0], ins[1]);
    for j in 0..c {
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
        let var_b = v / n as f32;
        let invstd = 1.0 / (var_b + eps).sqrt();
        for r in 0..n {
            let i = at(r, j, c, sp);
            outs[0][i] = gb[j] * (x[i] - mean) * invstd + gb[c + j];
        }
        outs[1][j] = mean;
        outs[1][c + j] = invstd;
        let unbiased = if n > 1 { v / (n - 1) as f32 } else { var_b };
        if mean.is_finite() && v.is_finite() {
            outs[2][j] = (1.0 - mom) * outs[2][j] + mom * mean;
            outs[2][c + j] = (1.0 - mom) * outs[2][c + j] + mom * unbiased;
        }
    }
}

/// ins = [x, gb, running], outs = [y]; p0 = M, p1 = C, p2 = eps
pub fn bn_fwd_eval(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, c) = (p[0] as usize, p[1] as usize);
    let eps = pf(p, 2);
    let (x, gb, run) = (ins[0], ins[1], ins[2]);
    let sp = (p[4] as usize).max(1);
    for i in 0..m * c * sp {
        let j = (i / sp) % c;
        let invstd = 1.0 / (run[c + j] + eps).sqrt();
        outs[0][i] = gb[j] * (x[i] - run[j]) * invstd + gb[c + j];
    }
}

/// ins = [x, dy, gb, saved], outs = [dx, dgb]; p0 = M, p1 = C
pub fn bn_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, c) = (p[0] as usize, p[1] as usize);
    let (x, dy, gb, saved) = (ins[0], ins[1], ins[2], ins[3]);
    let sp = (p[4] as usize).max(1);
    let n = m * sp;
    let fm = n as f32;
    for j in 0..c {
        let (mean, invstd, g) = (saved[j], saved[c + j], gb[j]);
        let (mut sdy, mut sdyx) = (0f32, 0f32);
        for r in 0..n {
            let i = at(r, j, c, sp);
            let xh = (x[i] - mean) * invstd;
            sdy += dy[i];
            sdyx += dy[i] * xh;
        }
        for r in 0..n {
            let i = at(r, j, c, sp);
            let xh = (x[i] - mean) * invstd;
            outs[0][i] = (invstd / fm) * g * (fm * dy[i] - sdy - xh * sdyx);
        }
        outs[1][j] = sdyx;
        outs[1][c + j] = sdy;
    }
}
