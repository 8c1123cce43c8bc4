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

/// Fused ReLU then dropout: outs[0] = r = max(x, 0), outs[1] = dropout(r) (the mask of
/// [`dropout`]). ins = [x]; parameters as [`dropout`].
pub fn relu_dropout(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let n = p[0] as usize;
    let scale = pf(p, 2);
    let group = (p[4] as usize).max(1);
    let (r_out, y_out) = outs.split_at_mut(1);
    for i in 0..n {
        let r = ins[0][i].max(0.0);
        r_out[0][i] = r;
        let keep = dropout_keep(g.seed(), p[3], g.step, (i / group) as u32, p[1]);
        y_out[0][i] = if keep { r * scale } else { 0.0 };
    }
}

/// Fused backward of ReLU then dropout: dx = [r > 0] · dropout(dy). ins = [r, dy],
/// outs = [dx]; parameters as [`dropout`].
pub fn dropout_relu_bwd(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let n = p[0] as usize;
    let scale = pf(p, 2);
    let group = (p[4] as usize).max(1);
    for i in 0..n {
        let keep = dropout_keep(g.seed(), p[3], g.step, (i / group) as u32, p[1]);
        outs[0][i] = if keep && ins[0][i] > 0.0 {
            ins[1][i] * scale
        } else {
            0.0
        };
    }
}
