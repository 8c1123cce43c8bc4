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

/// clipinfo = (norm, scale, penalty, skip, lr, bc1, bc2, skipped steps) with
/// scale = min(1, max_norm / (norm + 1e-6)), or 1 when max_norm <= 0; a non-finite
/// gradient sets skip and (on training steps) counts a skipped step; lr and Adam's bias
/// corrections at the count of applied updates; with [`Globals::MIXED`], the dynamic loss
/// scale update. Formulas in shaders/clip.wgsl. ins = [partials], outs = [clipinfo, with
/// amp at p7]; p0 = P, p1 = max_norm, p2 = growth interval, p3 = growth, p4 = 1/growth,
/// p5 = backoff, p6 = 1/backoff, p7 = offset of amp, p8 = training step, p9 = beta1,
/// p10 = beta2
pub fn clip_finalize(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let parts = p[0] as usize;
    let max_norm = pf(p, 1);
    let update = p[8] == 1;
    let (mut s, mut pen) = (0f32, 0f32);
    for i in 0..parts {
        s += ins[0][i];
        pen += ins[0][parts + i];
    }
    let mixed = g.flags & Globals::MIXED != 0;
    let (info, amp) = outs[0].split_at_mut(p[7] as usize);
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
            amp[2] = 0.0;
            // Never below 1 (shaders/clip.wgsl): a skip at S = 1 is no overflow.
            if amp[0] > 1.0 {
                amp[0] = (amp[0] * pf(p, 5)).max(1.0);
                amp[1] = (amp[1] * pf(p, 6)).min(1.0);
                amp[3] += 1.0;
            }
        }
        return;
    }
    if mixed && update {
        amp[2] += 1.0;
        if amp[2] >= p[2] as f32 {
            amp[2] = 0.0;
            // S · growth <= 1e30, as in shaders/clip.wgsl (no intermediate overflows).
            if amp[0] <= 1e30 * pf(p, 4) {
                amp[0] *= pf(p, 3);
                amp[1] *= pf(p, 4);
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
    info[5] = 1.0 - powi(pf(p, 9), t0 + 1);
    info[6] = 1.0 - powi(pf(p, 10), t0 + 1);
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
/// globals' per-step schedule (formulas in shaders/clip.wgsl).
pub fn scheduled_lr(g: &Globals, t0: u32) -> f32 {
    match g.sched_kind {
        1 => g.lr * powi(g.sched_x, t0 / g.sched_n.max(1)),
        2 => g.lr * powi(g.sched_x, t0),
        3 => {
            let n = g.sched_n.max(1);
            let x = t0.min(n) as f32 / n as f32;
            g.sched_x + (g.lr - g.sched_x) * (1.0 + (std::f32::consts::PI * x).cos()) * 0.5
        }
        _ => g.lr,
    }
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
