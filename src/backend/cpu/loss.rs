//! CPU twins of `shaders/loss.wgsl` (formulas there and in [`crate::kernels::loss`]):
//! binary cross-entropy with logits and the regression losses, in the WGSL's order of
//! operations.

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::loss::{BceParams, RegressionParams};

/// log(1 + x) accurate for small x, as `log1p_` in the WGSL (Goldberg's trick).
fn log1p(x: f32) -> f32 {
    let u = 1.0 + x;
    if u == 1.0 {
        return x;
    }
    u.ln() * (x / (u - 1.0))
}

/// `max(x, 0) + log1p(e^{−|x|})`.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + log1p((-x.abs()).exp())
}

/// σ(x) without overflow.
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn loss_scale(g: &Globals, ins: &[&[f32]]) -> f32 {
    if g.flags & Globals::MIXED != 0 {
        ins[2][0]
    } else {
        1.0
    }
}

/// A row whose target is invalid: NaN loss, metric 0, zero gradient.
fn invalid_row(outs: &mut [&mut [f32]], r: usize, k: usize, sw: f32) {
    outs[0][r * k..r * k + k].fill(0.0);
    outs[1][3 * r] = f32::NAN;
    outs[1][3 * r + 1] = 0.0;
    outs[1][3 * r + 2] = sw;
}

/// [`Kernel::BceWithLogits`](crate::kernels::Kernel::BceWithLogits), [`BceParams`].
/// `ins = [z [M, K], label rows [M, K + 2], amp [4], pos_weight [K]]`,
/// `outs = [dz [M, K], rowstats [M, 3]]`.
pub fn bce_logits(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let BceParams {
        rows: m,
        outputs: k,
        width: lw,
        pos_weighted,
    } = BceParams::from_words(p);
    let amp = loss_scale(g, ins);
    for r in 0..m {
        let row = &ins[1][r * lw..r * lw + lw];
        let (sw, scale) = (row[lw - 2], row[lw - 1] * amp);
        let per = scale / k as f32;
        let (mut loss, mut ok, mut bad) = (0f32, 0f32, false);
        for c in 0..k {
            let t = row[c];
            let z = ins[0][r * k + c];
            if !(0.0..=1.0).contains(&t) {
                bad = true;
            }
            let pw = if pos_weighted { ins[3][c] } else { 1.0 };
            loss += pw * t * softplus(-z) + (1.0 - t) * softplus(z);
            outs[0][r * k + c] = per * (sigmoid(z) * (pw * t + 1.0 - t) - pw * t);
            if (z > 0.0) == (t > 0.5) {
                ok += 1.0;
            }
        }
        if bad {
            invalid_row(outs, r, k, sw);
            continue;
        }
        outs[1][3 * r] = sw * (loss / k as f32);
        outs[1][3 * r + 1] = if loss.is_finite() { ok / k as f32 } else { 0.0 };
        outs[1][3 * r + 2] = sw;
    }
}

/// [`Kernel::RegressionLoss`](crate::kernels::Kernel::RegressionLoss),
/// [`RegressionParams`]. `ins = [z [M, T], label rows [M, T + 2], amp [4]]`,
/// `outs = [dz [M, T], rowstats [M, 3]]`.
pub fn regression_loss(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let RegressionParams {
        rows: m,
        outputs: t_n,
        width: lw,
        kind,
        delta,
    } = RegressionParams::from_words(p);
    let amp = loss_scale(g, ins);
    for r in 0..m {
        let row = &ins[1][r * lw..r * lw + lw];
        let (sw, scale) = (row[lw - 2], row[lw - 1] * amp);
        let per = scale / t_n as f32;
        let (mut loss, mut abs_err, mut bad) = (0f32, 0f32, false);
        for c in 0..t_n {
            let t = row[c];
            if !t.is_finite() {
                bad = true;
            }
            let d = ins[0][r * t_n + c] - t;
            let a = d.abs();
            // WGSL's sign(0) is 0; Rust's signum(0.0) is 1.
            let sign = if d > 0.0 {
                1.0
            } else if d < 0.0 {
                -1.0
            } else {
                0.0
            };
            let (l, dl) = match kind {
                0 => (d * d, 2.0 * d),
                1 => (a, sign),
                _ if a < delta => (0.5 * d * d, d),
                _ => (delta * (a - 0.5 * delta), delta * sign),
            };
            loss += l;
            abs_err += a;
            outs[0][r * t_n + c] = per * dl;
        }
        if bad {
            invalid_row(outs, r, t_n, sw);
            continue;
        }
        outs[1][3 * r] = sw * (loss / t_n as f32);
        outs[1][3 * r + 1] = abs_err / t_n as f32;
        outs[1][3 * r + 2] = sw;
    }
}
