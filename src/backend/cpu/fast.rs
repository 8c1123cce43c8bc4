//! The fast CPU path: the same kernels as the reference where they are cheap, and tuned
//! replacements where the time goes. Matmul calls the `gemm` crate (packed, register-blocked
//! micro-kernels chosen at run time for AVX-512 / AVX2+FMA / NEON, threaded with rayon);
//! the heavy elementwise kernels split their rows over rayon's pool. Results stay within the
//! equivalence tolerances of the reference (a different summation order, nothing else);
//! the tests run every kernel on both and compare.

use rayon::prelude::*;

use super::conv::Geom;
use crate::backend::{Globals, pf};
use crate::rng::dropout_keep;

/// Below this many multiply-adds a matmul runs on one thread (thread hand-off costs more).
const THREADING_MIN_MACS: usize = 1 << 18;
/// Products at least this deep (and 4× deeper than wide) split K across threads, into at
/// most this many slices.
const SPLIT_K_MIN_DEPTH: usize = 4096;
const SPLIT_K_MAX_PARTS: usize = 8;
/// Partial products of the split-K path, reused from call to call.
static SPLIT_K_SCRATCH: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// [`super::half::cast_half`] in parallel chunks with the `half` crate's slice conversion
/// (F16C's round-to-nearest-even where the CPU has it): the same bits as the reference for
/// every value but NaN (any NaN stays a NaN; only its payload may differ).
pub fn cast_half(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    let n = p[0] as usize;
    if cfg!(target_endian = "big") {
        return super::half::cast_half(p, g, ins, outs);
    }
    let words = &mut outs[0][..n.div_ceil(2)];
    let bits: &mut [u16] = bytemuck::cast_slice_mut(words);
    if n % 2 == 1 {
        bits[n] = 0;
    }
    bits[..n]
        .par_chunks_mut(1 << 14)
        .zip(ins[0][..n].par_chunks(1 << 14))
        .for_each(|(o, x)| {
            o.reinterpret_cast_mut::<half::f16>()
                .convert_from_f32_slice(x)
        });
}

/// Unpacked f16 operands of the half matmul, reused from call to call.
static HALF_SCRATCH: std::sync::Mutex<[Vec<f32>; 2]> =
    std::sync::Mutex::new([Vec::new(), Vec::new()]);

/// The first `n` f16 values of a packed buffer as f32, converted in parallel chunks (F16C
/// instructions through the `half` crate where the CPU has them).
fn unpack_par(words: &[f32], n: usize, out: &mut Vec<f32>) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    out.resize(n, 0.0);
    let bits: &[u16] = bytemuck::cast_slice(&words[..n.div_ceil(2)]);
    if cfg!(target_endian = "big") {
        return super::half::unpack_into(words, n, out);
    }
    let halves = bits[..n].reinterpret_cast::<half::f16>();
    out.par_chunks_mut(1 << 14)
        .zip(halves.par_chunks(1 << 14))
        .for_each(|(o, h)| h.convert_to_f32_slice(o));
}

/// ins = [A, B, bias], outs = [C]; p0 = M, p1 = N, p2 = K; flags in p[13..16] = (ta, tb,
/// bias), as [`super::matmul::matmul`]. Transposes are strides, never copies. Packed f16
/// operands (p12 = 1) are unpacked into reused buffers first, then multiplied in f32.
pub fn matmul(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    if p[12] != 0 && p[3] == 0 {
        let (m, n, k) = (p[0] as usize, p[1] as usize, p[2] as usize);
        let mut q = *p;
        q[12] = 0;
        let mut owned;
        let mut guard = HALF_SCRATCH.try_lock().ok();
        let bufs = match guard.as_deref_mut() {
            Some(b) => b,
            None => {
                owned = [Vec::new(), Vec::new()];
                &mut owned
            }
        };
        let [a, b] = bufs;
        unpack_par(ins[0], m * k, a);
        unpack_par(ins[1], k * n, b);
        return matmul(&q, g, &[&a[..], &b[..], ins[2]], outs);
    }
    if p[3] != 0 {
        // The GPU backend's split-K form (never in a plan): the reference computes it.
        return super::matmul::matmul(p, g, ins, outs);
    }
    let (m, n, k) = (p[0] as usize, p[1] as usize, p[2] as usize);
    let (ta, tb, bias) = (p[13] != 0, p[14] != 0, p[15] != 0);
    let (a, b) = (ins[0], ins[1]);
    let c = &mut outs[0][..m * n];
    if m == 0 || n == 0 {
        return;
    }
    // Start from the bias rows (read by gemm as "dst") or from nothing.
    if bias {
        for row in c.chunks_exact_mut(n) {
            row.copy_from_slice(&ins[2][..n]);
        }
    } else if k == 0 {
        c.fill(0.0);
    }
    if k == 0 {
        return;
    }
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "matmul operands too short"
    );
    // Element (i, kk) of op(A) and (kk, j) of op(B), as (row stride, column stride).
    let (a_rs, a_cs) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // C[.., ..] (+)= op(A)[.., k0..k1] · op(B)[k0..k1, ..] into `dst` (m·n elements).
    let product = |dst: &mut [f32], read_dst: bool, k0: usize, k1: usize, par| {
        debug_assert!(dst.len() >= m * n && k0 <= k1 && k1 <= k);
        // SAFETY: the pointers cover m·k, k·n and m·n elements at the strides given (checked
        // above; `dst` holds m·n), offset to the K slice k0..k1 of op(A)'s columns and
        // op(B)'s rows; `dst` aliases neither operand (distinct borrows), and gemm computes
        // dst := alpha·dst + beta·lhs·rhs.
        unsafe {
            gemm::gemm(
                m,
                n,
                k1 - k0,
                dst.as_mut_ptr(),
                1,
                n as isize,
                read_dst,
                a.as_ptr().offset(k0 as isize * a_cs),
                a_cs,
                a_rs,
                b.as_ptr().offset(k0 as isize * b_rs),
                b_cs,
                b_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    };
    if k >= SPLIT_K_MIN_DEPTH && k >= 4 * m.max(n) {
        // Deep products (the convolutions' weight gradients: conv1 25 × 32 outputs over
        // K = 73,728, conv2 800 × 64 over 8,192): gemm parallelizes over the output only,
        // which leaves threads idle or splits badly, so split K into slices run in
        // parallel. Slice 0 accumulates into C (over the bias rows when there is a bias),
        // the others into reused scratch, added in slice order. The slices depend on K
        // only, not on the thread count: the same bits on any machine.
        let parts = (k / (SPLIT_K_MIN_DEPTH / 2)).min(SPLIT_K_MAX_PARTS);
        let step = k.div_ceil(parts);
        // Another thread in the middle of a split-K product: use fresh buffers (never wait
        // on the lock from inside rayon's pool).
        let mut own = Vec::new();
        let mut guard = SPLIT_K_SCRATCH.try_lock().ok();
        let scratch = guard.as_deref_mut().unwrap_or(&mut own);
        scratch.resize_with(parts - 1, Vec::new);
        for v in scratch.iter_mut() {
            v.clear();
            v.resize(m * n, 0.0);
        }
        let mut targets: Vec<&mut [f32]> = vec![&mut *c];
        targets.extend(scratch.iter_mut().map(|v| v.as_mut_slice()));
        targets.into_par_iter().enumerate().for_each(|(t, dst)| {
            let (k0, k1) = (t * step, ((t + 1) * step).min(k));
            product(dst, t == 0 && bias, k0, k1, gemm::Parallelism::None);
        });
        for part in scratch.iter() {
            c.par_chunks_mut(CHUNK)
                .zip(part.par_chunks(CHUNK))
                .for_each(|(d, v)| d.iter_mut().zip(v).for_each(|(d, v)| *d += v));
        }
        return;
    }
    let par = if m * n * k >= THREADING_MIN_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    product(c, bias, 0, k, par);
}

/// Run `f(row_index, row)` over the rows of `out` on rayon's pool when there is enough
/// work, in order otherwise.
pub fn par_rows(out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if out.len() >= 1 << 15 && row_len > 0 {
        out.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(i, r)| f(i, r));
    } else if row_len > 0 {
        out.chunks_mut(row_len)
            .enumerate()
            .for_each(|(i, r)| f(i, r));
    }
}

/// Elements per parallel chunk of the elementwise kernels.
const CHUNK: usize = 1 << 14;

/// [`super::dropout::dropout`], chunks in parallel (the same mask: it is a function of the
/// element index).
pub fn dropout(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    dropout_maybe_relu(p, g, ins, outs, false)
}

/// The fast dropout of x, or of max(x, 0) when `relu`, in one pass.
fn dropout_maybe_relu(
    p: &[u32; 16],
    g: &Globals,
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    relu: bool,
) {
    let n = p[0] as usize;
    let scale = pf(p, 2);
    let group = (p[4] as usize).max(1);
    let (seed, stream, step, thr) = (g.seed(), p[3], g.step, p[1]);
    let x = ins[0];
    let key = crate::rng::Rng::new(seed).key(stream);
    let d = DropoutArgs {
        x,
        key,
        seed,
        stream,
        step,
        thr,
        group,
        scale,
        relu,
    };
    outs[0][..n]
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(ci, out)| d.chunk_dispatch(ci * CHUNK, out));
}

/// [`super::dropout::relu_dropout`]: the fast dropout with the ReLU applied to each kept
/// element (one pass; the same values).
pub fn relu_dropout(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    dropout_maybe_relu(p, g, ins, outs, true)
}

/// [`super::dropout::dropout_relu_bwd`], chunks in parallel.
pub fn dropout_relu_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let scale = pf(p, 2);
    par_map2(p, ins, outs, |y, dy| if y > 0.0 { dy * scale } else { 0.0 })
}

struct DropoutArgs<'a> {
    x: &'a [f32],
    key: [u32; 2],
    seed: u64,
    stream: u32,
    step: u32,
    thr: u32,
    group: usize,
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

    #[inline(always)]
    fn chunk(&self, base: usize, out: &mut [f32]) {
        let x = self.x;
        let mut j0 = 0;
        for o in out.chunks_mut(16) {
            let i0 = base + j0;
            if self.group == 1 && o.len() == 16 {
                // 16 draws at once (vectorized); the same bits as dropout_keep. Fixed-size
                // arrays and a select computed on every lane keep the masking vectorized too.
                let ctr: [u32; 16] = std::array::from_fn(|l| (i0 + l) as u32);
                let (r, _) = crate::rng::threefry2x32_lanes(self.key, ctr, self.step);
                let xs: &[f32; 16] = x[i0..i0 + 16].try_into().expect("16 elements");
                let o: &mut [f32; 16] = o.try_into().expect("16 elements");
                for l in 0..16 {
                    let v = self.x(xs[l]) * self.scale;
                    o[l] = if (r[l] >> 8) >= self.thr { v } else { 0.0 };
                }
            } else {
                for (l, v) in o.iter_mut().enumerate() {
                    let i = i0 + l;
                    let keep = dropout_keep(
                        self.seed,
                        self.stream,
                        self.step,
                        (i / self.group) as u32,
                        self.thr,
                    );
                    *v = if keep { self.x(x[i]) * self.scale } else { 0.0 };
                }
            }
            j0 += o.len();
        }
    }
}

/// [`super::clip::grad_prep`] over chunks of whole residue periods in parallel; each
/// chunk's partial sums are added in chunk order, so the result is deterministic (and
/// within rounding of the reference, which sums each residue class in one pass).
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
                if penalty {
                    let (w, a, b) = (&w[base..], &a[base..], &b[base..]);
                    for (t, gv) in row.iter_mut().enumerate() {
                        let mut gi = *gv * inv + a[t] * w[t] + b[t] * super::clip::sign(w[t]);
                        if clip {
                            gi = gi.clamp(lo, hi);
                        }
                        *gv = gi;
                        sq[t] += gi * gi;
                        pacc[t] += 0.5 * a[t] * w[t] * w[t] + b[t] * w[t].abs();
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

/// [`super::optim::sgd_update`], chunks in parallel.
pub fn sgd_update(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    if ins[2][3] != 0.0 {
        return;
    }
    let n = p[0] as usize;
    let mu = pf(p, 1);
    let nesterov = p[2] == 1;
    let (grad, wd, s) = (ins[0], ins[1], ins[2][1]);
    let lr = ins[2][4];
    let (wo, vo) = outs.split_at_mut(1);
    wo[0][..n]
        .par_chunks_mut(CHUNK)
        .zip(vo[0][..n].par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(ci, (wc, vc))| {
            let base = ci * CHUNK;
            for (j, (w, v)) in wc.iter_mut().zip(vc.iter_mut()).enumerate() {
                let i = base + j;
                let gi = s * grad[i] + wd[i] * *w;
                *v = mu * *v + gi;
                let step = if nesterov { gi + mu * *v } else { *v };
                *w -= lr * step;
            }
        });
}

/// [`super::conv::im2col`], one image per task, each patch row copied kernel row by
/// kernel row.
pub fn im2col(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    let k = g.c * g.kh * g.kw;
    let per = g.oh * g.ow * k;
    let x = ins[0];
    outs[0][..g.b * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(b, out)| {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let row = &mut out[(oy * g.ow + ox) * k..][..k];
                    for c in 0..g.c {
                        let img = &x[(b * g.c + c) * g.h * g.w..][..g.h * g.w];
                        for ky in 0..g.kh {
                            let dst = &mut row[(c * g.kh + ky) * g.kw..][..g.kw];
                            let iy = (oy * g.s + ky) as isize - g.pad as isize;
                            if iy < 0 || iy as usize >= g.h {
                                dst.fill(0.0);
                                continue;
                            }
                            let src = &img[iy as usize * g.w..][..g.w];
                            let ix0 = (ox * g.s) as isize - g.pad as isize;
                            if ix0 >= 0 && ix0 as usize + g.kw <= g.w {
                                // Interior: one contiguous row of the patch.
                                dst.copy_from_slice(&src[ix0 as usize..][..g.kw]);
                                continue;
                            }
                            for (kx, d) in dst.iter_mut().enumerate() {
                                let ix = (ox * g.s + kx) as isize - g.pad as isize;
                                *d = if ix >= 0 && (ix as usize) < g.w {
                                    src[ix as usize]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            }
        });
}

/// [`super::conv::col2im`] as a scatter-add, one image per task (patches visited in order,
/// so each pixel sums its patches in a fixed order).
pub fn col2im(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    let k = g.c * g.kh * g.kw;
    let per = g.c * g.h * g.w;
    let dcols = ins[0];
    outs[0][..g.b * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(b, dx)| {
            dx.fill(0.0);
            if g.s == 1 && g.pad == 0 && g.oh + g.kh - 1 <= g.h && g.ow + g.kw - 1 <= g.w {
                // Stride 1, no padding: for each (c, ky, kx) and output row oy, the ow
                // patches add one contiguous run dx[c, oy + ky, kx .. kx + ow], reading
                // column (c, ky, kx) of this image's dcols rows (a strided read that
                // stays in L1), instead of kw-long runs per patch.
                let blk = &dcols[b * g.oh * g.ow * k..][..g.oh * g.ow * k];
                for c in 0..g.c {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let q = (c * g.kh + ky) * g.kw + kx;
                            for oy in 0..g.oh {
                                let dst = &mut dx[(c * g.h + oy + ky) * g.w + kx..][..g.ow];
                                let src = &blk[oy * g.ow * k + q..];
                                for (ox, d) in dst.iter_mut().enumerate() {
                                    *d += src[ox * k];
                                }
                            }
                        }
                    }
                }
                return;
            }
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let row = &dcols[((b * g.oh + oy) * g.ow + ox) * k..][..k];
                    for c in 0..g.c {
                        for ky in 0..g.kh {
                            let iy = (oy * g.s + ky) as isize - g.pad as isize;
                            if iy < 0 || iy as usize >= g.h {
                                continue;
                            }
                            let drow = &mut dx[(c * g.h + iy as usize) * g.w..][..g.w];
                            let src = &row[(c * g.kh + ky) * g.kw..][..g.kw];
                            let ix0 = (ox * g.s) as isize - g.pad as isize;
                            if ix0 >= 0 && ix0 as usize + g.kw <= g.w {
                                // Interior: one contiguous row, added in kx order as below.
                                let d = &mut drow[ix0 as usize..][..g.kw];
                                for (d, &v) in d.iter_mut().zip(src) {
                                    *d += v;
                                }
                                continue;
                            }
                            for (kx, &v) in src.iter().enumerate() {
                                let ix = (ox * g.s + kx) as isize - g.pad as isize;
                                if ix >= 0 && (ix as usize) < g.w {
                                    drow[ix as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
        });
}

/// [`super::conv::to_nchw`], one image per task.
pub fn to_nchw(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (b, s, c) = (p[0] as usize, p[1] as usize, p[2] as usize);
    let (bias, relu) = (p[15] == 1, p[14] == 1);
    let x = ins[0];
    let per = s * c;
    outs[0][..b * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(bi, out)| {
            let src = &x[bi * per..][..per];
            for ci in 0..c {
                let add = if bias { ins[1][ci] } else { 0.0 };
                for (si, o) in out[ci * s..][..s].iter_mut().enumerate() {
                    let v = if bias {
                        src[si * c + ci] + add
                    } else {
                        src[si * c + ci]
                    };
                    *o = if relu { v.max(0.0) } else { v };
                }
            }
        });
}

/// [`super::conv::to_nhwc`], one image per task.
pub fn to_nhwc(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (b, s, c) = (p[0] as usize, p[1] as usize, p[2] as usize);
    let x = ins[0];
    let per = s * c;
    outs[0][..b * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(bi, out)| {
            let src = &x[bi * per..][..per];
            for si in 0..s {
                for (ci, o) in out[si * c..][..c].iter_mut().enumerate() {
                    *o = src[ci * s + si];
                }
            }
        });
}

/// [`super::pool::maxpool_fwd`], (image, channel) planes in parallel; the 2×2 stride-2
/// window (W-CNN's) written out, comparing in the same order (the same values and indices).
pub fn maxpool_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    let per = g.oh * g.ow;
    let x = ins[0];
    let (yo, io) = outs.split_at_mut(1);
    yo[0][..g.b * g.c * per]
        .par_chunks_mut(per.max(1))
        .zip(io[0][..g.b * g.c * per].par_chunks_mut(per.max(1)))
        .enumerate()
        .with_min_len(8)
        .for_each(|(bc, (y, idx))| {
            let plane = &x[bc * g.h * g.w..][..g.h * g.w];
            if (g.kh, g.kw, g.s, g.pad) == (2, 2, 2, 0) && 2 * g.ow <= g.w && 2 * g.oh <= g.h {
                for oy in 0..g.oh {
                    let r0 = &plane[2 * oy * g.w..][..2 * g.ow];
                    let r1 = &plane[(2 * oy + 1) * g.w..][..2 * g.ow];
                    let yr = &mut y[oy * g.ow..][..g.ow];
                    let ir = &mut idx[oy * g.ow..][..g.ow];
                    for ox in 0..g.ow {
                        let (mut best, mut arg) = (r0[2 * ox], 0.0);
                        for (v, a) in [
                            (r0[2 * ox + 1], 1.0),
                            (r1[2 * ox], 2.0),
                            (r1[2 * ox + 1], 3.0),
                        ] {
                            if v > best {
                                (best, arg) = (v, a);
                            }
                        }
                        yr[ox] = best;
                        ir[ox] = arg;
                    }
                }
                return;
            }
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut best = plane[oy * g.s * g.w + ox * g.s];
                    let mut arg = 0;
                    for ky in 0..g.kh {
                        let r = &plane[(oy * g.s + ky) * g.w + ox * g.s..][..g.kw];
                        for (kx, &v) in r.iter().enumerate() {
                            if v > best {
                                best = v;
                                arg = ky * g.kw + kx;
                            }
                        }
                    }
                    y[oy * g.ow + ox] = best;
                    idx[oy * g.ow + ox] = arg as f32;
                }
            }
        });
}

/// [`super::pool::maxpool_bwd`] as a scatter-add of dy to each window's maximum, one
/// (image, channel) plane per task.
pub fn maxpool_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    let (dy, idx) = (ins[0], ins[1]);
    let per_in = g.h * g.w;
    let per_out = g.oh * g.ow;
    outs[0][..g.b * g.c * per_in]
        .par_chunks_mut(per_in.max(1))
        .enumerate()
        .with_min_len(8)
        .for_each(|(bc, dx)| {
            dx.fill(0.0);
            if (g.kw, g.s) == (2, 2) {
                // W-CNN's 2×2 / 2 window: the index split without a division.
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let o = bc * per_out + oy * g.ow + ox;
                        let a = idx[o] as usize;
                        dx[(2 * oy + (a >> 1)) * g.w + 2 * ox + (a & 1)] += dy[o];
                    }
                }
                return;
            }
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let o = bc * per_out + oy * g.ow + ox;
                    let a = idx[o] as usize;
                    let (ky, kx) = (a / g.kw, a % g.kw);
                    dx[(oy * g.s + ky) * g.w + ox * g.s + kx] += dy[o];
                }
            }
        });
}

/// `f(j)` for every channel `j` of `c`, in parallel, in channel order.
fn per_channel<T: Send>(c: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    (0..c).into_par_iter().map(f).collect()
}

/// [`super::batchnorm::bn_fwd_train`]: channel statistics in parallel (each summed in the
/// reference's order, so the same bits), then the normalization by rows in parallel.
pub fn bn_fwd_train(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, c) = (p[0] as usize, p[1] as usize);
    let (eps, mom) = (pf(p, 2), pf(p, 3));
    let sp = (p[4] as usize).max(1);
    let n = m * sp;
    let (x, gb) = (ins[0], ins[1]);
    let at = |r: usize, j: usize| ((r / sp) * c + j) * sp + r % sp;
    let stats = per_channel(c, |j| {
        let mut s = 0f32;
        for r in 0..n {
            s += x[at(r, j)];
        }
        let mean = s / n as f32;
        let mut v = 0f32;
        for r in 0..n {
            let d = x[at(r, j)] - mean;
            v += d * d;
        }
        (mean, v)
    });
    let (y, rest) = outs.split_at_mut(1);
    let (saved, rest) = rest.split_at_mut(1);
    let running = &mut *rest[0];
    let mut coef = vec![(0f32, 0f32); c];
    for (j, &(mean, v)) in stats.iter().enumerate() {
        let var_b = v / n as f32;
        let invstd = 1.0 / (var_b + eps).sqrt();
        coef[j] = (mean, invstd);
        saved[0][j] = mean;
        saved[0][c + j] = invstd;
        let unbiased = if n > 1 { v / (n - 1) as f32 } else { var_b };
        if mean.is_finite() && v.is_finite() {
            running[j] = (1.0 - mom) * running[j] + mom * mean;
            running[c + j] = (1.0 - mom) * running[c + j] + mom * unbiased;
        }
    }
    y[0][..m * c * sp]
        .par_chunks_mut(c * sp)
        .enumerate()
        .for_each(|(mi, row)| {
            let xr = &x[mi * c * sp..][..c * sp];
            for (i, o) in row.iter_mut().enumerate() {
                let j = i / sp;
                let (mean, invstd) = coef[j];
                *o = gb[j] * (xr[i] - mean) * invstd + gb[c + j];
            }
        });
}

/// [`super::batchnorm::bn_bwd`]: channel sums in parallel (reference order), then dx by
/// rows in parallel.
pub fn bn_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, c) = (p[0] as usize, p[1] as usize);
    let (x, dy, gb, saved) = (ins[0], ins[1], ins[2], ins[3]);
    let sp = (p[4] as usize).max(1);
    let n = m * sp;
    let fm = n as f32;
    let at = |r: usize, j: usize| ((r / sp) * c + j) * sp + r % sp;
    let sums = per_channel(c, |j| {
        let (mean, invstd) = (saved[j], saved[c + j]);
        let (mut sdy, mut sdyx) = (0f32, 0f32);
        for r in 0..n {
            let i = at(r, j);
            let xh = (x[i] - mean) * invstd;
            sdy += dy[i];
            sdyx += dy[i] * xh;
        }
        (sdy, sdyx)
    });
    let (dx, dgb) = outs.split_at_mut(1);
    for (j, &(sdy, sdyx)) in sums.iter().enumerate() {
        dgb[0][j] = sdyx;
        dgb[0][c + j] = sdy;
    }
    dx[0][..m * c * sp]
        .par_chunks_mut(c * sp)
        .enumerate()
        .for_each(|(mi, row)| {
            let base = mi * c * sp;
            for (i, o) in row.iter_mut().enumerate() {
                let j = i / sp;
                let (mean, invstd, g) = (saved[j], saved[c + j], gb[j]);
                let (sdy, sdyx) = sums[j];
                let xh = (x[base + i] - mean) * invstd;
                *o = (invstd / fm) * g * (fm * dy[base + i] - sdy - xh * sdyx);
            }
        });
}

fn par_map1(
    p: &[u32; 16],
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    f: impl Fn(f32) -> f32 + Sync + Send,
) {
    let n = p[0] as usize;
    let x = ins[0];
    outs[0][..n]
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(ci, y)| {
            for (o, &v) in y.iter_mut().zip(&x[ci * CHUNK..]) {
                *o = f(v);
            }
        });
}

fn par_map2(
    p: &[u32; 16],
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) {
    let n = p[0] as usize;
    let (a, b) = (ins[0], ins[1]);
    outs[0][..n]
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(ci, y)| {
            let base = ci * CHUNK;
            for (j, o) in y.iter_mut().enumerate() {
                *o = f(a[base + j], b[base + j]);
            }
        });
}

/// [`super::elementwise::relu_fwd`], chunks in parallel.
pub fn relu_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    par_map1(p, ins, outs, |x| x.max(0.0))
}

/// [`super::elementwise::relu_bwd`], chunks in parallel.
pub fn relu_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    par_map2(p, ins, outs, |y, dy| if y > 0.0 { dy } else { 0.0 })
}

/// [`super::elementwise::bias_grad`]: column blocks in parallel, each summing its rows in
/// the reference's order (the same bits).
pub fn bias_grad(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, n) = (p[0] as usize, p[1] as usize);
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
