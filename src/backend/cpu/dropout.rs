//! CPU twins of `shaders/dropout.wgsl`: the reference loops and the fast twins (chunks in
//! parallel, 16 draws at a time; the same mask, a function of the element index).

use rayon::prelude::*;

use super::par::{CHUNK, par_map2};
use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::dropout::DropoutParams;
use crate::rng::dropout_keep;

/// [`Kernel::Dropout`](crate::kernels::Kernel::Dropout), [`DropoutParams`]:
/// `y_i = x_i · scale` if keep(seed, stream, step, ⌊i / group⌋, threshold) else 0, with
/// keep decided by the shared Threefry generator. `ins = [x [n]]`, `outs = [y [n]]`.
pub fn dropout(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    reference_dropout(p, g, ins, outs, false)
}

/// Fused ReLU then dropout: `y = dropout(max(x, 0))` (the mask of [`dropout`]); the ReLU
/// output is not kept. `ins = [x [n]]`, `outs = [y [n]]`.
pub fn relu_dropout(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    reference_dropout(p, g, ins, outs, true)
}

/// The reference dropout of x, or of max(x, 0) when `relu`, element by element.
fn reference_dropout(
    p: &[u32; 16],
    g: &Globals,
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    relu: bool,
) {
    let DropoutParams {
        n,
        threshold,
        scale,
        stream,
        group,
        period,
        row,
    } = DropoutParams::from_words(p);
    let group = group.max(1);
    for i in 0..n {
        let x = if relu { ins[0][i].max(0.0) } else { ins[0][i] };
        let keep = dropout_keep(
            g.seed(),
            stream,
            g.step,
            (draw(i, period, row) / group) as u32,
            threshold,
        );
        outs[0][i] = if keep { x * scale } else { 0.0 };
    }
}

/// Fused backward of ReLU then dropout from the forward output `y = m·s·max(x, 0)`:
/// `dx = m·s·[x > 0]·dy = s·[y > 0]·dy` (y > 0 exactly when the mask kept the element and
/// x > 0, as s ≥ 1; with s = 0 both are 0), so no mask is regenerated. Reads `n` and
/// `scale` only. `ins = [y [n], dy [n]]`, `outs = [dx [n]]`.
pub fn dropout_relu_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let DropoutParams { n, scale, .. } = DropoutParams::from_words(p);
    for i in 0..n {
        outs[0][i] = relu_dropout_grad(ins[0][i], ins[1][i], scale);
    }
}

/// One element of [`dropout_relu_bwd`]: `s·dy` where `y > 0`, else 0.
#[inline]
fn relu_dropout_grad(y: f32, dy: f32, scale: f32) -> f32 {
    if y > 0.0 { dy * scale } else { 0.0 }
}

/// The fast twin of [`dropout`], chunks in parallel.
pub fn dropout_fast(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    dropout_maybe_relu(p, g, ins, outs, false)
}

/// The fast twin of [`relu_dropout`]: the fast dropout with the ReLU applied to each
/// element first (one pass; the same values).
pub fn relu_dropout_fast(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    dropout_maybe_relu(p, g, ins, outs, true)
}

/// The fast twin of [`dropout_relu_bwd`], chunks in parallel.
pub fn dropout_relu_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let DropoutParams { n, scale, .. } = DropoutParams::from_words(p);
    par_map2(n, ins, outs, |y, dy| relu_dropout_grad(y, dy, scale))
}

/// The fast dropout of x, or of max(x, 0) when `relu`, in one pass.
fn dropout_maybe_relu(
    p: &[u32; 16],
    g: &Globals,
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    relu: bool,
) {
    let DropoutParams {
        n,
        threshold,
        scale,
        stream,
        group,
        period,
        row,
    } = DropoutParams::from_words(p);
    let seed = g.seed();
    let d = DropoutArgs {
        x: ins[0],
        key: crate::rng::Rng::new(seed).key(stream),
        seed,
        stream,
        step: g.step,
        threshold,
        group: group.max(1),
        period,
        row,
        scale,
        relu,
    };
    outs[0][..n]
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(ci, out)| d.chunk_dispatch(ci * CHUNK, out));
}

/// The draw index of element `i`: `i`, or with `period` P > 0 the time-shared
/// `⌊i / row⌋·P + i mod P` (one draw per sequence and feature, shared by the steps).
#[inline(always)]
fn draw(i: usize, period: usize, row: usize) -> usize {
    if period > 0 {
        (i / row) * period + i % period
    } else {
        i
    }
}

/// What one chunk of the fast dropout reads.
struct DropoutArgs<'a> {
    x: &'a [f32],
    /// The generator's key for (seed, stream).
    key: [u32; 2],
    seed: u64,
    stream: u32,
    step: u32,
    threshold: u32,
    /// Elements per draw (≥ 1).
    group: usize,
    /// The time-shared draw index's period and row length (0: off).
    period: usize,
    row: usize,
    scale: f32,
    /// Apply the ReLU to x first (the fused ReluDropout).
    relu: bool,
}

impl DropoutArgs<'_> {
    /// The chunk compiled for the widest vector unit the CPU has (checked at run time).
    fn chunk_dispatch(&self, base: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was just detected.
                return unsafe { self.chunk_avx512(base, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was just detected.
                return unsafe { self.chunk_avx2(base, out) };
            }
        }
        self.chunk(base, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn chunk_avx512(&self, base: usize, out: &mut [f32]) {
        self.chunk(base, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn chunk_avx2(&self, base: usize, out: &mut [f32]) {
        self.chunk(base, out)
    }

    #[inline(always)]
    fn x(&self, v: f32) -> f32 {
        if self.relu { v.max(0.0) } else { v }
    }

    /// `out` = elements `base ..` of the output.
    #[inline(always)]
    fn chunk(&self, base: usize, out: &mut [f32]) {
        let x = self.x;
        let mut j0 = 0;
        for o in out.chunks_mut(16) {
            let i0 = base + j0;
            if self.group == 1 && self.period == 0 && o.len() == 16 {
                // 16 draws at once (vectorized); the same bits as dropout_keep. Fixed-size
                // arrays and a select computed on every lane keep the masking vectorized too.
                let ctr: [u32; 16] = std::array::from_fn(|l| (i0 + l) as u32);
                let (r, _) = crate::rng::threefry2x32_lanes(self.key, ctr, self.step);
                let xs: &[f32; 16] = x[i0..i0 + 16].try_into().expect("16 elements");
                let o: &mut [f32; 16] = o.try_into().expect("16 elements");
                for l in 0..16 {
                    let v = self.x(xs[l]) * self.scale;
                    o[l] = if (r[l] >> 8) >= self.threshold {
                        v
                    } else {
                        0.0
                    };
                }
            } else {
                for (l, v) in o.iter_mut().enumerate() {
                    let i = i0 + l;
                    let keep = dropout_keep(
                        self.seed,
                        self.stream,
                        self.step,
                        (draw(i, self.period, self.row) / self.group) as u32,
                        self.threshold,
                    );
                    *v = if keep { self.x(x[i]) * self.scale } else { 0.0 };
                }
            }
            j0 += o.len();
        }
    }
}
