//! CPU twins of `shaders/matmul.wgsl`: `C = op(A)·op(B) (+ bias)`. The reference sums
//! over k in order; the fast twin calls the `gemm` crate (packed, register-blocked
//! micro-kernels chosen at run time for AVX-512 / AVX2+FMA / NEON, threaded with rayon).

use rayon::prelude::*;

use super::par::CHUNK;
use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::matmul::MatMulParams;

/// [`crate::backend::Kernel::MatMul`], [`MatMulParams`]: `ins = [A, B, bias]`, `outs = [C [M, N]]`
/// (`[split_k slices, M, N]` when `split_k` > 0). Packed f16 operands (`half`,
/// [`super::half`]) are unpacked to f32 first (exact), so the products and sums are those
/// of the f32 kernel on the f16 values. With `split_k` > 0 (set by the GPU backend for
/// deep products), slice z of C, at `out[z·M·N ..]`, is the product over k in
/// `[z·split_k, (z+1)·split_k)`, without bias; [`Kernel::SliceSum`] adds
/// the slices.
pub fn matmul(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let MatMulParams {
        m,
        n,
        k,
        split_k: ks,
        half,
        ta,
        tb,
        bias,
    } = MatMulParams::from_words(p);
    let unpacked: [Vec<f32>; 2];
    let ins: &[&[f32]] = &if half {
        unpacked = [(ins[0], m * k), (ins[1], k * n)].map(|(w, len)| {
            let mut v = vec![0.0; len];
            super::half::unpack_into(w, len, &mut v);
            v
        });
        [&unpacked[0][..], &unpacked[1][..], ins[2]]
    } else {
        [ins[0], ins[1], ins[2]]
    };
    let slices: Vec<(usize, usize)> = if ks > 0 {
        (0..k.div_ceil(ks))
            .map(|z| (z * ks, ((z + 1) * ks).min(k)))
            .collect()
    } else {
        vec![(0, k)]
    };
    let a = ins[0];
    // B stored [N, K]: transpose once so the inner loop runs over contiguous rows of Bᵀ
    // (the same products, summed in the same k order).
    let bt: Vec<f32>;
    let b = if tb {
        bt = (0..k * n)
            .map(|idx| ins[1][(idx % n) * k + idx / n])
            .collect();
        &bt[..]
    } else {
        ins[1]
    };
    let mut row = vec![0f32; n];
    for (z, &(k0, k1)) in slices.iter().enumerate() {
        let c = &mut outs[0][z * m * n..];
        for i in 0..m {
            row.iter_mut().for_each(|x| *x = 0.0);
            for kk in k0..k1 {
                let av = if ta { a[kk * m + i] } else { a[i * k + kk] };
                let br = &b[kk * n..kk * n + n];
                for (r, &bv) in row.iter_mut().zip(br) {
                    *r += av * bv;
                }
            }
            for j in 0..n {
                c[i * n + j] = row[j] + if bias && ks == 0 { ins[2][j] } else { 0.0 };
            }
        }
    }
}

/// Below this many multiply-adds a matmul runs on one thread (thread hand-off costs more).
const THREADING_MIN_MACS: usize = 1 << 18;
/// Products at least this deep (and 4× deeper than wide) split K across threads, into at
/// most this many slices.
const SPLIT_K_MIN_DEPTH: usize = 4096;
const SPLIT_K_MAX_PARTS: usize = 8;
/// Partial products of the split-K path, reused from call to call.
static SPLIT_K_SCRATCH: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());
/// Unpacked f16 operands of the half matmul, reused from call to call.
static HALF_SCRATCH: std::sync::Mutex<[Vec<f32>; 2]> =
    std::sync::Mutex::new([Vec::new(), Vec::new()]);

/// The fast twin of [`matmul`] (same operands) through the `gemm` crate: transposes are
/// strides, never copies; packed f16 operands are unpacked into reused buffers first,
/// then multiplied in f32. The split-K form (GPU only) runs the reference.
pub fn matmul_fast(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let prm = MatMulParams::from_words(p);
    if prm.split_k != 0 {
        // The GPU backend's split-K form (never in a plan): the reference computes it.
        return matmul(p, g, ins, outs);
    }
    if !prm.half {
        return gemm_f32(&prm, ins[0], ins[1], ins[2], outs[0]);
    }
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
    super::half::unpack_par(ins[0], prm.m * prm.k, a);
    super::half::unpack_par(ins[1], prm.k * prm.n, b);
    gemm_f32(&prm, a, b, ins[2], outs[0])
}

/// `c = op(a)·op(b) (+ bias)` of f32 operands (`prm.half` and `prm.split_k` are not read).
fn gemm_f32(prm: &MatMulParams, a: &[f32], b: &[f32], bias_row: &[f32], out: &mut [f32]) {
    let MatMulParams {
        m,
        n,
        k,
        ta,
        tb,
        bias,
        ..
    } = *prm;
    let c = &mut out[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    // Start from the bias rows (read by gemm as "dst") or from nothing.
    if bias {
        for row in c.chunks_exact_mut(n) {
            row.copy_from_slice(&bias_row[..n]);
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
