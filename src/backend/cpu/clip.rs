//! CPU twins of `shaders/clip.wgsl`.

use crate::backend::{Globals, pf};

/// partials[t] = Σ_{i ≡ t mod P} g_i². ins = [g], outs = [partials]; p0 = n, p1 = P
pub fn sumsq_partials(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (n, parts) = (p[0] as usize, p[1] as usize);
    for t in 0..parts {
        let mut s = 0f32;
        let mut i = t;
        while i < n {
            s += ins[0][i] * ins[0][i];
            i += parts;
        }
        outs[0][t] = s;
    }
}

/// (norm, scale) with scale = min(1, max_norm / (norm + 1e-6)), or 1 when max_norm <= 0.
/// ins = [partials], outs = [clipinfo]; p0 = P, p1 = max_norm
pub fn clip_finalize(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let parts = p[0] as usize;
    let max_norm = pf(p, 1);
    let s: f32 = ins[0][..parts].iter().fold(0.0, |a, &b| a + b);
    let norm = s.sqrt();
    outs[0][0] = norm;
    outs[0][1] = if max_norm > 0.0 {
        (max_norm / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
}
