//! CPU twins of `shaders/clip.wgsl`: gradient preparation (reference and fast), the
//! global-norm finalization and per-tensor clipping.

use rayon::prelude::*;

use super::par::CHUNK;
use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::clip::{ClipFinalizeParams, ClipTensorParams, GradPrepParams};

/// sign(x) with sign(0) = 0, as WGSL's `sign` (Rust's `signum` gives ±1 at zero).
pub fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The penalty value of one weight: `(a/2)·w² + b·|w|` (as `0.5·a·w·w + b·|w|`).
#[inline]
fn penalty(w: f32, a: f32, b: f32) -> f32 {
    0.5 * a * w * w + b * w.abs()
}

/// The unscale factor u of [`grad_prep`]: `1/S` (element 1 of the loss-scaling state
/// amp) with [`Globals::MIXED`], else 1.
fn unscale(gl: &Globals, scaling: &[f32]) -> f32 {
    if gl.flags & Globals::MIXED != 0 {
        scaling[1]
    } else {
        1.0
    }
}

/// [`Kernel::GradPrep`](crate::kernels::Kernel::GradPrep), [`GradPrepParams`]:
/// `g := clamp(g·u + a·w + b·sign(w), lo, hi)` (the clamp only with `clip_value`);
/// `partials = (Σ g², Σ (a/2)·w² + b·|w|)` per residue class `t mod parts`. Without
/// [`Globals::PENALTY`] in the globals' flags, w, a and b are not read
/// (`g := clamp(g·u, lo, hi)`, penalty 0). `u = 1/S` (element 1 of amp) with
/// [`Globals::MIXED`] (unscaling the loss-scaled gradient), else 1. Here the penalty
/// gradient is added to `g·u` as one sum, `g·u + (a·w + b·sign(w))`.
///
/// `ins = [w [n], a [n], b [n], amp [4]]`, `outs = [g [n], partials [2·parts]]`.
pub fn grad_prep(p: &[u32; 16], gl: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let GradPrepParams {
        n,
        parts,
        lo,
        hi,
        clip_value: clip,
    } = GradPrepParams::from_words(p);
    let penalty_on = gl.flags & Globals::PENALTY != 0;
    let inv = unscale(gl, ins[3]);
    let (w, a, b) = (ins[0], ins[1], ins[2]);
    // Walk the buffer contiguously; partial t still sums its elements i ≡ t (mod P) in
    // increasing i, exactly as the GPU invocation t does.
    let (s, pen) = outs.split_at_mut(1);
    let (g, part) = (&mut *s[0], &mut *pen[0]);
    part[..2 * parts].iter_mut().for_each(|v| *v = 0.0);
    for i in 0..n {
        let t = i % parts;
        let mut gi = g[i] * inv;
        if penalty_on {
            gi += a[i] * w[i] + b[i] * sign(w[i]);
            part[parts + t] += penalty(w[i], a[i], b[i]);
        }
        if clip {
            gi = gi.clamp(lo, hi);
        }
        g[i] = gi;
        part[t] += gi * gi;
    }
}

/// The fast twin of [`grad_prep`] (same operands): chunks of whole residue periods in
/// parallel; each chunk's partial sums are added in chunk order, so the result is
/// deterministic (and within rounding of the reference, which sums each residue class in
/// one pass). The penalty gradient is added left to right, `g·u + a·w + b·sign(w)`, as in
/// the WGSL.
pub fn grad_prep_fast(p: &[u32; 16], gl: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let GradPrepParams {
        n,
        parts,
        lo,
        hi,
        clip_value: clip,
    } = GradPrepParams::from_words(p);
    let penalty_on = gl.flags & Globals::PENALTY != 0;
    let inv = unscale(gl, ins[3]);
    let (w, a, b) = (ins[0], ins[1], ins[2]);
    let (s, pen) = outs.split_at_mut(1);
    let (g, part) = (&mut *s[0], &mut *pen[0]);
    // g·inv unscales a loss-scaled gradient (exact: 1/S is a power of two; inv = 1 in f32).
    // Chunks are whole rows of `parts` elements, so element j of a row belongs to partial j
    // (no division per element) and each row is one vectorizable pass.
    let chunk = parts * (CHUNK * 4).div_ceil(parts);
    let partials: Vec<Vec<f32>> = g[..n]
        .par_chunks_mut(chunk)
        .enumerate()
        .map(|(ci, gc)| {
            let mut acc = vec![0f32; 2 * parts];
            let (sq, pacc) = acc.split_at_mut(parts);
            for (ri, row) in gc.chunks_mut(parts).enumerate() {
                let base = ci * chunk + ri * parts;
                let sq = &mut sq[..row.len()];
                if penalty_on {
                    let (w, a, b) = (&w[base..], &a[base..], &b[base..]);
                    for (t, gv) in row.iter_mut().enumerate() {
                        let mut gi = *gv * inv + a[t] * w[t] + b[t] * sign(w[t]);
                        if clip {
                            gi = gi.clamp(lo, hi);
                        }
                        *gv = gi;
                        sq[t] += gi * gi;
                        pacc[t] += penalty(w[t], a[t], b[t]);
                    }
                } else if clip {
                    for (s, gv) in sq.iter_mut().zip(row.iter_mut()) {
                        *gv = (*gv * inv).clamp(lo, hi);
                        *s += *gv * *gv;
                    }
                } else if inv != 1.0 {
                    for (s, gv) in sq.iter_mut().zip(row.iter_mut()) {
                        *gv *= inv;
                        *s += *gv * *gv;
                    }
                } else {
                    for (s, gv) in sq.iter_mut().zip(row.iter()) {
                        *s += gv * gv;
                    }
                }
            }
            acc
        })
        .collect();
    part[..2 * parts].iter_mut().for_each(|v| *v = 0.0);
    for acc in partials {
        for (d, v) in part[..2 * parts].iter_mut().zip(acc) {
            *d += v;
        }
    }
}

/// [`Kernel::ClipFinalize`](crate::kernels::Kernel::ClipFinalize),
/// [`ClipFinalizeParams`]: clipinfo = (norm, scale, penalty, skip, lr, bc1, bc2, skipped
/// steps) with `scale = min(1, max_norm / (norm + 1e-6))`, or 1 when `max_norm` ≤ 0; a
/// non-finite gradient sets skip and (on training steps, `update`) counts a skipped step;
/// lr and Adam's bias corrections at the count of applied updates; with
/// [`Globals::MIXED`], the dynamic loss scale update. Formulas in shaders/clip.wgsl.
///
/// `ins = [partials [2·parts]]`, `outs = [clipinfo [8] … amp [4] at amp_offset]`.
pub fn clip_finalize(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let ClipFinalizeParams {
        parts,
        max_norm,
        growth_interval,
        growth,
        inv_growth,
        backoff,
        inv_backoff,
        amp_offset,
        update,
        beta1,
        beta2,
    } = ClipFinalizeParams::from_words(p);
    let (mut s, mut pen) = (0f32, 0f32);
    for i in 0..parts {
        s += ins[0][i];
        pen += ins[0][parts + i];
    }
    let mixed = g.flags & Globals::MIXED != 0;
    let (info, scaling) = outs[0].split_at_mut(amp_offset);
    if !s.is_finite() {
        if !mixed {
            info[0] = s.sqrt();
            info[2] = pen;
        }
        info[1] = 0.0;
        info[3] = 1.0;
        if !update {
            return;
        }
        info[7] += 1.0;
        if mixed {
            scaling[2] = 0.0;
            // Never below 1 (shaders/clip.wgsl): a skip at S = 1 is no overflow.
            if scaling[0] > 1.0 {
                scaling[0] = (scaling[0] * backoff).max(1.0);
                scaling[1] = (scaling[1] * inv_backoff).min(1.0);
                scaling[3] += 1.0;
            }
        }
        return;
    }
    if mixed && update {
        scaling[2] += 1.0;
        if scaling[2] >= growth_interval as f32 {
            scaling[2] = 0.0;
            // S · growth <= 1e30, as in shaders/clip.wgsl (no intermediate overflows).
            if scaling[0] <= 1e30 * inv_growth {
                scaling[0] *= growth;
                scaling[1] *= inv_growth;
            }
        }
    }
    let norm = s.sqrt();
    info[0] = norm;
    info[1] = if max_norm > 0.0 {
        (max_norm / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    info[2] = pen;
    info[3] = 0.0;
    let skipped = info[7] as u32;
    let t0 = g.step.saturating_sub(skipped);
    info[4] = scheduled_lr(g, t0);
    info[5] = 1.0 - powi(beta1, t0 + 1);
    info[6] = 1.0 - powi(beta2, t0 + 1);
}

/// x^n by binary exponentiation in f32 multiplies, the same sequence as `powi` in
/// shaders/clip.wgsl (so both backends give the same bits).
pub fn powi(x: f32, n: u32) -> f32 {
    let (mut r, mut b, mut e) = (1f32, x, n);
    loop {
        if e & 1 != 0 {
            r *= b;
        }
        e >>= 1;
        if e == 0 {
            return r;
        }
        b *= b;
    }
}

/// The learning rate of the update with index `t0` (updates applied before it) under the
/// globals' per-step schedule and linear warm-up (formulas in shaders/clip.wgsl).
pub fn scheduled_lr(g: &Globals, t0: u32) -> f32 {
    let lr = match g.sched_kind {
        1 => g.lr * powi(g.sched_x, t0 / g.sched_n.max(1)),
        2 => g.lr * powi(g.sched_x, t0),
        3 => {
            let n = g.sched_n.max(1);
            let x = t0.min(n) as f32 / n as f32;
            g.sched_x + (g.lr - g.sched_x) * (1.0 + (std::f32::consts::PI * x).cos()) * 0.5
        }
        _ => g.lr,
    };
    if g.warmup_steps > 0 {
        let w = g.warmup_start;
        lr * (w + (1.0 - w) * (t0.min(g.warmup_steps) as f32 / g.warmup_steps as f32))
    } else {
        lr
    }
}

/// [`Kernel::ClipTensor`](crate::kernels::Kernel::ClipTensor), [`ClipTensorParams`]:
/// `g := min(1, max_norm / (sqrt(stats[1]) + 1e-6))·g`. `ins = [stats [4]]`,
/// `outs = [g [n]]`.
pub fn clip_tensor(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let ClipTensorParams { n, max_norm } = ClipTensorParams::from_words(p);
    let s = (max_norm / (ins[0][1].sqrt() + 1e-6)).min(1.0);
    for v in outs[0][..n].iter_mut() {
        *v *= s;
    }
}
