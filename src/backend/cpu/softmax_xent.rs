//! CPU twins of `shaders/softmax_xent.wgsl` (formulas there): the loss and its gradient,
//! and the accumulation of the per-row statistics.

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::elementwise::Len;
use crate::kernels::softmax_xent::SoftmaxXentParams;

/// [`Kernel::SoftmaxXent`](crate::kernels::Kernel::SoftmaxXent), [`SoftmaxXentParams`]:
/// the gradient is scaled by the row's factor g (times the loss scale, element 0 of amp,
/// with [`Globals::MIXED`]). `ins = [logits [M, C], label rows [M, L], amp [4], class
/// weights [C]]`, `outs = [dlogits [M, C], rowstats [M, 3] (s·loss, correct, s·w_y)]`.
pub fn softmax_xent(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let SoftmaxXentParams {
        rows: m,
        classes: c,
        width: lw,
        smoothing: eps,
        weighted,
    } = SoftmaxXentParams::from_words(p);
    let amp = if g.flags & Globals::MIXED != 0 {
        ins[2][0]
    } else {
        1.0
    };
    let cw = |j: usize| if weighted { ins[3][j] } else { 1.0 };
    for r in 0..m {
        let z = &ins[0][r * c..r * c + c];
        let row = &ins[1][r * lw..r * lw + lw];
        let (sw, scale) = (row[lw - 2], row[lw - 1] * amp);
        let (mut mx, mut arg) = (z[0], 0);
        for (j, &v) in z.iter().enumerate().skip(1) {
            if v > mx {
                mx = v;
                arg = j;
            }
        }
        let s: f32 = z.iter().map(|&v| (v - mx).exp()).sum();
        // A label that is not a class index (the session refuses these before) gives a
        // NaN loss and a zero gradient row, never an access outside the row.
        let y = row[0];
        if !(y >= 0.0 && y < c as f32 && y.fract() == 0.0) {
            outs[0][r * c..r * c + c].fill(0.0);
            outs[1][3 * r] = f32::NAN;
            outs[1][3 * r + 1] = 0.0;
            outs[1][3 * r + 2] = sw;
            continue;
        }
        let y = y as usize;
        let (loss, wy) = if eps == 0.0 && !weighted {
            for j in 0..c {
                let pj = (z[j] - mx).exp() / s;
                outs[0][r * c + j] = scale * (pj - if j == y { 1.0 } else { 0.0 });
            }
            // Cancellation-free: ln Σ exp(z − max) − (z_y − max); the max is never added back.
            (s.ln() - (z[y] - mx), 1.0)
        } else {
            let wy = cw(y);
            let (mut w_all, mut wz) = (0f32, 0f32);
            for j in 0..c {
                w_all += cw(j);
                wz += cw(j) * (z[j] - mx);
            }
            let ls = s.ln();
            let k = eps / c as f32;
            for j in 0..c {
                let pj = (z[j] - mx).exp() / s;
                let hard = (1.0 - eps) * wy * (pj - if j == y { 1.0 } else { 0.0 });
                outs[0][r * c + j] = scale * (hard + k * (w_all * pj - cw(j)));
            }
            (
                (1.0 - eps) * wy * (ls - (z[y] - mx)) + k * (w_all * ls - wz),
                wy,
            )
        };
        outs[1][3 * r] = sw * loss;
        // A row whose loss is not finite (a NaN or infinite logit) is never counted correct.
        outs[1][3 * r + 1] = if arg == y && loss.is_finite() {
            1.0
        } else {
            0.0
        };
        outs[1][3 * r + 2] = sw * wy;
    }
}

/// [`Kernel::MetricsAccum`](crate::kernels::Kernel::MetricsAccum), [`Len`] (`n` = M
/// rows): `acc += (Σ s·loss, Σ metric, M, 1, Σ weight)`. `ins = [rowstats [M, 3]]`,
/// `outs = [acc [5]]`.
pub fn metrics_accum(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Len { n: m } = Len::from_words(p);
    let (mut l, mut c, mut w) = (0f32, 0f32, 0f32);
    for r in 0..m {
        l += ins[0][3 * r];
        c += ins[0][3 * r + 1];
        w += ins[0][3 * r + 2];
    }
    outs[0][0] += l;
    outs[0][1] += c;
    outs[0][2] += m as f32;
    outs[0][3] += 1.0;
    outs[0][4] += w;
}
