//! CPU twins of `shaders/layernorm.wgsl` (formulas there): layer norm over the rows of
//! `x [M, F]`, each sum in index order as the WGSL kernel takes it.

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::layernorm::LayerNormParams;

/// [`crate::kernels::Kernel::LnFwd`]: `ins = [x, γβ]`, `outs = [y, saved [M, 2]]`.
pub fn ln_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let LayerNormParams {
        rows,
        features: f,
        eps,
    } = LayerNormParams::from_words(p);
    let (x, gb) = (ins[0], ins[1]);
    for m in 0..rows {
        let row = &x[m * f..(m + 1) * f];
        let mut s = 0f32;
        for &v in row {
            s += v;
        }
        let mean = s / f as f32;
        let mut v = 0f32;
        for &xv in row {
            let d = xv - mean;
            v += d * d;
        }
        let invstd = 1.0 / (v / f as f32 + eps).sqrt();
        for j in 0..f {
            outs[0][m * f + j] = gb[j] * (row[j] - mean) * invstd + gb[f + j];
        }
        outs[1][2 * m] = mean;
        outs[1][2 * m + 1] = invstd;
    }
}

/// [`crate::kernels::Kernel::LnBwdX`]: `ins = [x, dy, γβ, saved]`, `outs = [dx]`.
pub fn ln_bwd_x(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let LayerNormParams {
        rows, features: f, ..
    } = LayerNormParams::from_words(p);
    let (x, dy, gb, saved) = (ins[0], ins[1], ins[2], ins[3]);
    for m in 0..rows {
        let o = m * f;
        let (mean, invstd) = (saved[2 * m], saved[2 * m + 1]);
        let (mut sg, mut sgx) = (0f32, 0f32);
        for j in 0..f {
            let g = gb[j] * dy[o + j];
            sg += g;
            sgx += g * ((x[o + j] - mean) * invstd);
        }
        let (mg, mgx) = (sg / f as f32, sgx / f as f32);
        for j in 0..f {
            let xh = (x[o + j] - mean) * invstd;
            outs[0][o + j] = invstd * (gb[j] * dy[o + j] - mg - xh * mgx);
        }
    }
}

/// [`crate::kernels::Kernel::LnBwdParams`]: `ins = [x, dy, saved]`, `outs = [dγβ [2F]]`.
pub fn ln_bwd_params(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let LayerNormParams {
        rows, features: f, ..
    } = LayerNormParams::from_words(p);
    let (x, dy, saved) = (ins[0], ins[1], ins[2]);
    for j in 0..f {
        let (mut dg, mut db) = (0f32, 0f32);
        for m in 0..rows {
            let d = dy[m * f + j];
            dg += d * ((x[m * f + j] - saved[2 * m]) * saved[2 * m + 1]);
            db += d;
        }
        outs[0][j] = dg;
        outs[0][f + j] = db;
    }
}
