//! CPU twins of `shaders/clip.wgsl`.

use crate::backend::{Globals, pf};

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

/// g := clamp(g·u + a·w + b·sign(w), min, max); partials = (Σ g², Σ (a/2)·w² + b·|w|) per
/// residue class t mod P. ins = [w, a, b, amp], outs = [g, partials]; p0 = n, p1 = P,
/// p2 = min, p3 = max, p4 = clip by value. Without [`Globals::PENALTY`] in the globals'
/// flags, w, a and b are not read (g := clamp(g·u, min, max), penalty 0). u = 1/S =
/// amp\[1\] with [`Globals::MIXED`] (unscaling the loss-scaled gradient), else 1.
pub fn grad_prep(p: &[u32; 16], gl: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (n, parts) = (p[0] as usize, p[1] as usize);
    let (lo, hi, clip) = (pf(p, 2), pf(p, 3), p[4] == 1);
    let penalty = gl.flags & Globals::PENALTY != 0;
    let inv = if gl.flags & Globals::MIXED != 0 {
        ins[3][1]
    } else {
        1.0
    };
    let (w, a, b) = (ins[0], ins[1], ins[2]);
    // Walk the buffer contiguously; partial t still sums its elements i ≡ t (mod P) in
    // increasing i, exactly as the GPU invocation t does.
    let (s, pen) = outs.split_at_mut(1);
    let (g, part) = (&mut *s[0], &mut *pen[0]);
    part[..2 * parts].iter_mut().for_each(|v| *v = 0.0);
    for i in 0..n {
        let t = i % parts;
        let mut gi = g[i] * inv;
        if penalty {
            gi += a[i] * w[i] + b[i] * sign(w[i]);
            part[parts + t] += 0.5 * a[i] * w[i] * w[i] + b[i] * w[i].abs();
        }
        if clip {
            gi = gi.clamp(lo, hi);
        }
        g[i] = gi;
        part[t] += gi * gi;
    }
}

/// (norm, scale, penalty, skip) with scale = min(1, max_norm / (norm + 1e-6)), or 1 when
/// max_norm <= 0; with [`Globals::MIXED`], the dynamic loss scale update of
/// shaders/clip.wgsl. ins = [partials], outs = [clipinfo, with amp at p7]; p0 = P,
/// p1 = max_norm, p2 = growth interval, p3 = growth, p4 = 1/growth, p5 = backoff,
/// p6 = 1/backoff, p7 = offset of amp, p8 = update amp (training steps only)
pub fn clip_finalize(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let parts = p[0] as usize;
    let max_norm = pf(p, 1);
    let (mut s, mut pen) = (0f32, 0f32);
    for i in 0..parts {
        s += ins[0][i];
        pen += ins[0][parts + i];
    }
    if g.flags & Globals::MIXED != 0 {
        let (info, amp) = outs[0].split_at_mut(p[7] as usize);
        let update = p[8] == 1;
        if !s.is_finite() {
            info[1] = 0.0;
            info[3] = 1.0;
            if !update {
                return;
            }
            amp[0] *= pf(p, 5);
            amp[1] *= pf(p, 6);
            amp[2] = 0.0;
            amp[3] += 1.0;
            return;
        }
        if update {
            amp[2] += 1.0;
        }
        if update && amp[2] >= p[2] as f32 {
            amp[2] = 0.0;
            if amp[0] < 1e30 {
                amp[0] *= pf(p, 3);
                amp[1] *= pf(p, 4);
            }
        }
    }
    let norm = s.sqrt();
    outs[0][0] = norm;
    outs[0][1] = if max_norm > 0.0 {
        (max_norm / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    outs[0][2] = pen;
    outs[0][3] = 0.0;
}

/// g := min(1, max_norm / (sqrt(stats[1]) + 1e-6))·g. ins = [stats], outs = [g];
/// p0 = n, p1 = max_norm
pub fn clip_tensor(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let n = p[0] as usize;
    let s = (pf(p, 1) / (ins[0][1].sqrt() + 1e-6)).min(1.0);
    for v in outs[0][..n].iter_mut() {
        *v *= s;
    }
}
