//! CPU twins of `shaders/elementwise.wgsl`: activations and their gradients, sums and
//! the bias gradient. All but the bias gradient and the split-K sum read [`Len`]
//! (`ins = [x [n]]` or `[a [n], b [n]]`, `outs = [y [n]]`). The fast twins run chunks
//! (or column blocks) in parallel.

use rayon::prelude::*;

use super::par::{par_map1, par_map2};
use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::elementwise::{BiasGradParams, Len, SliceParams, SliceSumParams};

/// `y = f(x)` over the first `n` elements, `n` from [`Len`].
fn map1(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], f: impl Fn(f32) -> f32) {
    let Len { n } = Len::from_words(p);
    for (y, &x) in outs[0][..n].iter_mut().zip(&ins[0][..n]) {
        *y = f(x);
    }
}

/// `y = f(a, b)` over the first `n` elements, `n` from [`Len`].
fn map2(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], f: impl Fn(f32, f32) -> f32) {
    let Len { n } = Len::from_words(p);
    for i in 0..n {
        outs[0][i] = f(ins[0][i], ins[1][i]);
    }
}

/// One element of [`relu_bwd`].
#[inline]
fn relu_grad(y: f32, dy: f32) -> f32 {
    if y > 0.0 { dy } else { 0.0 }
}

/// y = max(x, 0)
pub fn relu_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map1(p, ins, outs, |x| x.max(0.0))
}
/// y = tanh(x)
pub fn tanh_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map1(p, ins, outs, f32::tanh)
}
/// y = 1 / (1 + e^-x)
pub fn sigmoid_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map1(p, ins, outs, |x| 1.0 / (1.0 + (-x).exp()))
}
/// `dx = dy · [y > 0]` (`ins = [y, dy]`)
pub fn relu_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, relu_grad)
}
/// dx = dy · (1 - y²) (`ins = [y, dy]`)
pub fn tanh_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, |y, dy| dy * (1.0 - y * y))
}
/// dx = dy · y · (1 - y) (`ins = [y, dy]`)
pub fn sigmoid_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, |y, dy| dy * y * (1.0 - y))
}
/// c = a + b
pub fn add(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, |a, b| a + b)
}

/// [`Kernel::BiasGrad`](crate::kernels::Kernel::BiasGrad), [`BiasGradParams`]:
/// `db[n] = Σ_m dY[m, n]`, rows in order. `ins = [dY [M, N]]`, `outs = [db [N]]`.
pub fn bias_grad(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let BiasGradParams { rows: m, cols: n } = BiasGradParams::from_words(p);
    let db = &mut *outs[0];
    db[..n].iter_mut().for_each(|x| *x = 0.0);
    for r in 0..m {
        for j in 0..n {
            db[j] += ins[0][r * n + j];
        }
    }
}

/// [`Kernel::SliceSum`](crate::kernels::Kernel::SliceSum), [`SliceSumParams`]:
/// `C[i] = Σ_z P[z·n + i]` over the slices in order (+ `bias[i mod cols]` when `bias`):
/// the second half of a split-K matmul. `ins = [P [slices·n], bias [cols]]`,
/// `outs = [C [n]]` (`n = M·N`, `cols = N`).
pub fn slice_sum(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let SliceSumParams {
        n,
        cols,
        slices: s,
        bias,
    } = SliceSumParams::from_words(p);
    for i in 0..n {
        let mut acc = 0f32;
        for z in 0..s {
            acc += ins[0][z * n + i];
        }
        if bias {
            acc += ins[1][i % cols];
        }
        outs[0][i] = acc;
    }
}

/// The fast twin of [`relu_fwd`], chunks in parallel.
pub fn relu_fwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Len { n } = Len::from_words(p);
    par_map1(n, ins, outs, |x| x.max(0.0))
}

/// The fast twin of [`relu_bwd`], chunks in parallel.
pub fn relu_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Len { n } = Len::from_words(p);
    par_map2(n, ins, outs, relu_grad)
}

/// The fast twin of [`bias_grad`]: column blocks in parallel, each summing its rows in
/// the reference's order (the same bits), or, for few long columns, row slices in
/// parallel added in slice order.
pub fn bias_grad_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let BiasGradParams { rows: m, cols: n } = BiasGradParams::from_words(p);
    let dy = ins[0];
    if n <= 64 && m >= 4096 {
        // Few, long columns (a convolution's bias over every position of the batch): one
        // column block would leave a thread idle, so sum fixed row slices in parallel and
        // add the slices' sums in order (deterministic whatever the thread count). The
        // partial sums live on the stack: nothing is allocated per call.
        const SLICES: usize = 16;
        let rows = m.div_ceil(SLICES);
        let mut parts = [[0f32; 64]; SLICES];
        parts.par_iter_mut().enumerate().for_each(|(t, acc)| {
            for r in (t * rows)..((t + 1) * rows).min(m) {
                for (a, v) in acc[..n].iter_mut().zip(&dy[r * n..(r + 1) * n]) {
                    *a += v;
                }
            }
        });
        let db = &mut outs[0][..n];
        db.fill(0.0);
        for part in &parts {
            for (d, v) in db.iter_mut().zip(&part[..n]) {
                *d += v;
            }
        }
        return;
    }
    let block = 64;
    outs[0][..n]
        .par_chunks_mut(block)
        .enumerate()
        .for_each(|(bi, db)| {
            db.fill(0.0);
            let j0 = bi * block;
            for r in 0..m {
                for (j, d) in db.iter_mut().enumerate() {
                    *d += dy[r * n + j0 + j];
                }
            }
        });
}

/// [`crate::kernels::Kernel::SliceCols`], [`SliceParams`]: `y[m, j] = x[m, start + j]`.
pub fn slice_cols(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let SliceParams {
        rows,
        cols,
        start,
        len,
    } = SliceParams::from_words(p);
    for m in 0..rows {
        outs[0][m * len..(m + 1) * len]
            .copy_from_slice(&ins[0][m * cols + start..m * cols + start + len]);
    }
}

/// [`crate::kernels::Kernel::SliceColsBwd`]: `dx[m, c] = dy[m, c − start]` inside the
/// slice, else 0.
pub fn slice_cols_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let SliceParams {
        rows,
        cols,
        start,
        len,
    } = SliceParams::from_words(p);
    for m in 0..rows {
        let row = &mut outs[0][m * cols..(m + 1) * cols];
        row.fill(0.0);
        row[start..start + len].copy_from_slice(&ins[0][m * len..(m + 1) * len]);
    }
}
