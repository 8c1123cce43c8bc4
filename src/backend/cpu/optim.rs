//! CPU twins of `shaders/optim.wgsl`: SGD (reference and fast) and Adam / AdamW.

use crate::kernels::clip::ClipInfo;
use rayon::prelude::*;

use super::par::CHUNK;
use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::optim::{AdamParams, SgdParams};

/// One SGD element: from the weight `w`, velocity `v`, gradient and weight decay,
/// `g = s·grad + wd·w; v := mu·v + g; w := w − lr·v` (Nesterov: `w := w − lr·(g + mu·v)`).
/// Returns the new (w, v).
#[inline]
#[allow(clippy::too_many_arguments)]
fn sgd_step(
    w: f32,
    v: f32,
    grad: f32,
    wd: f32,
    s: f32,
    mu: f32,
    lr: f32,
    nesterov: bool,
) -> (f32, f32) {
    let gi = s * grad + wd * w;
    let v = mu * v + gi;
    let step = if nesterov { gi + mu * v } else { v };
    (w - lr * step, v)
}

/// [`Kernel::SgdUpdate`](crate::kernels::Kernel::SgdUpdate), [`SgdParams`]: SGD with
/// momentum and coupled weight decay (formulas in shaders/optim.wgsl), with the clip scale
/// s = clipinfo\[1\] and lr = clipinfo\[4\]; nothing changes when clipinfo\[3\] (skip) is
/// set. `ins = [grad [n], wd [n], clipinfo [8]]`, `outs = [w [n], v [n]]`.
pub fn sgd_update(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let info = ClipInfo::read(ins[2]);
    if info.skip != 0.0 {
        return;
    }
    let prm = SgdParams::from_words(p);
    let (wo, vo) = outs.split_at_mut(1);
    sgd_range(
        &prm,
        &info,
        ins,
        0,
        &mut wo[0][..prm.n],
        &mut vo[0][..prm.n],
    );
}

/// Elements `base..base + w.len()` of the SGD update: the one loop both twins run.
fn sgd_range(
    prm: &SgdParams,
    info: &ClipInfo,
    ins: &[&[f32]],
    base: usize,
    w: &mut [f32],
    v: &mut [f32],
) {
    let (grad, wd) = (ins[0], ins[1]);
    for (j, (w, v)) in w.iter_mut().zip(v.iter_mut()).enumerate() {
        let i = base + j;
        (*w, *v) = sgd_step(
            *w,
            *v,
            grad[i],
            wd[i],
            info.scale,
            prm.momentum,
            info.lr,
            prm.nesterov,
        );
    }
}

/// The fast twin of [`sgd_update`] (same operands), chunks in parallel.
pub fn sgd_update_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let info = ClipInfo::read(ins[2]);
    if info.skip != 0.0 {
        return;
    }
    let prm = SgdParams::from_words(p);
    let (wo, vo) = outs.split_at_mut(1);
    wo[0][..prm.n]
        .par_chunks_mut(CHUNK)
        .zip(vo[0][..prm.n].par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(ci, (wc, vc))| sgd_range(&prm, &info, ins, ci * CHUNK, wc, vc));
}

/// [`Kernel::AdamUpdate`](crate::kernels::Kernel::AdamUpdate), [`AdamParams`]: Adam /
/// AdamW (formulas in shaders/optim.wgsl), with the clip scale s = clipinfo\[1\] and
/// lr, bc1, bc2 = clipinfo\[4..7\]; nothing changes when clipinfo\[3\] (skip) is set.
/// `ins = [grad [n], wd [n], clipinfo [8]]`, `outs = [w [n], m1 [n], m2 [n]]`.
pub fn adam_update(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let info = ClipInfo::read(ins[2]);
    if info.skip != 0.0 {
        return;
    }
    let AdamParams {
        n,
        beta1: b1,
        beta2: b2,
        eps,
        decoupled,
    } = AdamParams::from_words(p);
    let (grad, wd, s) = (ins[0], ins[1], info.scale);
    let (lr, bc1, bc2) = (info.lr, info.bc1, info.bc2);
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
