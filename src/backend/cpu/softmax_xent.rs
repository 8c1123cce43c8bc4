//! CPU twins of `shaders/softmax_xent.wgsl` (formulas there): the loss and its gradient,
//! and the accumulation of the per-row statistics.

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::elementwise::Len;
use crate::kernels::softmax_xent::SoftmaxXentParams;

/// [`Kernel::SoftmaxXent`](crate::kernels::Kernel::SoftmaxXent), [`SoftmaxXentParams`]:
/// the gradient is scaled by `scale` (times the loss scale, element 0 of amp, with
/// [`Globals::MIXED`]). `ins = [logits [M, C], labels [M], amp [4]]`,
/// `outs = [dlogits [M, C], rowstats [M, 2] (loss, correct)]`.
pub fn softmax_xent(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let SoftmaxXentParams {
        rows: m,
        classes: c,
        scale,
    } = SoftmaxXentParams::from_words(p);
    let scale = scale
        * if g.flags & Globals::MIXED != 0 {
            ins[2][0]
        } else {
            1.0
        };
    for r in 0..m {
        let z = &ins[0][r * c..r * c + c];
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
        let y = ins[1][r];
        if !(y >= 0.0 && y < c as f32 && y.fract() == 0.0) {
            outs[0][r * c..r * c + c].fill(0.0);
            outs[1][2 * r] = f32::NAN;
            outs[1][2 * r + 1] = 0.0;
            continue;
        }
        let y = y as usize;
        for j in 0..c {
            let pj = (z[j] - mx).exp() / s;
            outs[0][r * c + j] = scale * (pj - if j == y { 1.0 } else { 0.0 });
        }
        // Cancellation-free: ln Σ exp(z − max) − (z_y − max); the max is never added back.
        let loss = s.ln() - (z[y] - mx);
        outs[1][2 * r] = loss;
        // A row whose loss is not finite (a NaN or infinite logit) is never counted correct.
        outs[1][2 * r + 1] = if arg == y && loss.is_finite() {
            1.0
        } else {
            0.0
        };
    }
}

/// [`Kernel::MetricsAccum`](crate::kernels::Kernel::MetricsAccum), [`Len`] (`n` = M
/// rows): `acc += (Σ loss, Σ correct, M, 1)`. `ins = [rowstats [M, 2]]`,
/// `outs = [acc [4]]`.
pub fn metrics_accum(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Len { n: m } = Len::from_words(p);
    let (mut l, mut c) = (0f32, 0f32);
    for r in 0..m {
        l += ins[0][2 * r];
        c += ins[0][2 * r + 1];
    }
    outs[0][0] += l;
    outs[0][1] += c;
    outs[0][2] += m as f32;
    outs[0][3] += 1.0;
}
