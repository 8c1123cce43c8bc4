//! CPU twin of `shaders/optim.wgsl`.

use crate::backend::{Globals, pf};

/// SGD with momentum and coupled weight decay (formulas in shaders/optim.wgsl):
/// g = s·dJ/dw + wd_i·w; v = mu·v + g; w := w - lr·v (Nesterov: w := w - lr·(g + mu·v)).
/// ins = [grad, wd, clipinfo], outs = [w, v]; p0 = n, p1 = mu, p2 = nesterov. Nothing
/// changes when clipinfo\[3\] (skip) is set; lr = clipinfo\[4\].
pub fn sgd_update(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    if ins[2][3] != 0.0 {
        return;
    }
    let n = p[0] as usize;
    let mu = pf(p, 1);
    let nesterov = p[2] == 1;
    let (grad, wd, s) = (ins[0], ins[1], ins[2][1]);
    for i in 0..n {
        let w = outs[0][i];
        let gi = s * grad[i] + wd[i] * w;
        let v = mu * outs[1][i] + gi;
        outs[1][i] = v;
        let step = if nesterov { gi + mu * v } else { v };
        outs[0][i] = w - ins[2][4] * step;
    }
}

/// Adam / AdamW (formulas in shaders/optim.wgsl). ins = [grad, wd, clipinfo],
/// outs = [w, m1, m2]; p0 = n, p1 = b1, p2 = b2, p3 = eps, p4 = decoupled; lr, bc1, bc2 =
/// clipinfo\[4..7\].
pub fn adam_update(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    if ins[2][3] != 0.0 {
        return;
    }
    let n = p[0] as usize;
    let (b1, b2, eps, decoupled) = (pf(p, 1), pf(p, 2), pf(p, 3), p[4] == 1);
    let (grad, wd, s) = (ins[0], ins[1], ins[2][1]);
    let (lr, bc1, bc2) = (ins[2][4], ins[2][5], ins[2][6]);
    for i in 0..n {
        let w = outs[0][i];
        let mut gi = s * grad[i];
        if !decoupled {
            gi += wd[i] * w;
        }
        let m1 = b1 * outs[1][i] + (1.0 - b1) * gi;
        let m2 = b2 * outs[2][i] + (1.0 - b2) * gi * gi;
        outs[1][i] = m1;
        outs[2][i] = m2;
        let mut step = (m1 / bc1) / ((m2 / bc2).sqrt() + eps);
        if decoupled {
            step += wd[i] * w;
        }
        outs[0][i] = w - lr * step;
    }
}
