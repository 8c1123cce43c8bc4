//! CPU twin of `shaders/dropout.wgsl`.

use crate::backend::{Globals, pf};
use crate::rng::dropout_keep;

/// y_i = x_i · scale if keep(seed, stream, step, i) else 0, with keep decided by the shared
/// Threefry generator. p0 = n, p1 = threshold, p2 = scale, p3 = stream
pub fn dropout(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let n = p[0] as usize;
    let scale = pf(p, 2);
    for i in 0..n {
        let group = (p[4] as usize).max(1);
        let keep = dropout_keep(g.seed(), p[3], g.step, (i / group) as u32, p[1]);
        outs[0][i] = if keep { ins[0][i] * scale } else { 0.0 };
    }
}

/// Fused ReLU then dropout: y = dropout(max(x, 0)) (the mask of [`dropout`]); the ReLU
/// output is not kept. ins = [x], outs = [y]; parameters as [`dropout`].
pub fn relu_dropout(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let n = p[0] as usize;
    let scale = pf(p, 2);
    let group = (p[4] as usize).max(1);
    for i in 0..n {
        let r = ins[0][i].max(0.0);
        let keep = dropout_keep(g.seed(), p[3], g.step, (i / group) as u32, p[1]);
        outs[0][i] = if keep { r * scale } else { 0.0 };
    }
}

/// Fused backward of ReLU then dropout from the forward output y = m·s·max(x, 0):
/// dx = m·s·[x > 0]·dy = s·[y > 0]·dy (y > 0 exactly when the mask kept the element and
/// x > 0, as s ≥ 1; with s = 0 both are 0), so no mask is regenerated. ins = [y, dy],
/// outs = [dx]; parameters as [`dropout`] (p0 and the scale p2 used).
pub fn dropout_relu_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let n = p[0] as usize;
    let scale = pf(p, 2);
    for i in 0..n {
        outs[0][i] = if ins[0][i] > 0.0 {
            ins[1][i] * scale
        } else {
            0.0
        };
    }
}
