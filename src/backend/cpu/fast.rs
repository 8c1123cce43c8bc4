//! The fast CPU path: the same kernels as the reference where they are cheap, and tuned
//! replacements where the time goes. Matmul calls the `gemm` crate (packed, register-blocked
//! micro-kernels chosen at run time for AVX-512 / AVX2+FMA / NEON, threaded with rayon);
//! the heavy elementwise kernels split their rows over rayon's pool. Results stay within the
//! equivalence tolerances of the reference (a different summation order, nothing else);
//! the tests run every kernel on both and compare.

use rayon::prelude::*;

use crate::backend::{Globals, Kernel};

/// A kernel's fast twin, if it has one (same signature as the reference, [`crate::backend::CpuFn`]).
pub fn lookup(kernel: Kernel) -> Option<crate::backend::CpuFn> {
    match kernel {
        Kernel::MatMul { .. } => Some(matmul),
        _ => None,
    }
}

/// Below this many multiply-adds a matmul runs on one thread (thread hand-off costs more).
const THREADING_MIN_MACS: usize = 1 << 18;

/// ins = [A, B, bias], outs = [C]; p0 = M, p1 = N, p2 = K; flags in p[13..16] = (ta, tb,
/// bias), as [`super::matmul::matmul`]. Transposes are strides, never copies.
pub fn matmul(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
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
    let par = if m * n * k >= THREADING_MIN_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the pointers cover m·k, k·n and m·n elements at the strides given (checked
    // above), C does not alias A or B (a plan never reads and writes one buffer in one
    // instruction), and gemm computes dst := alpha·dst + beta·lhs·rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            bias,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
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
