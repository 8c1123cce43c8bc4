//! CPU twin of `shaders/matmul.wgsl`: C = op(A)·op(B) (+ bias), summed over k in order.

use crate::backend::{Globals, Kernel};

/// ins = [A, B, bias], outs = [C]; p0 = M, p1 = N, p2 = K; flags in p[13..16] = (ta, tb, bias).
/// p12 = 1: A and B are packed f16 ([`super::half`]), unpacked to f32 first (exact), so
/// the products and sums are those of the f32 kernel on the f16 values.
/// Split K (p3 = slice length Ks > 0, set by the GPU backend for deep products): slice z
/// of C, at out[z·M·N ..], is the product over k in [z·Ks, (z+1)·Ks), without bias;
/// [`super::elementwise::slice_sum`] adds the slices.
pub fn matmul(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, n, k) = (p[0] as usize, p[1] as usize, p[2] as usize);
    let (ta, tb, bias) = (p[13] != 0, p[14] != 0, p[15] != 0);
    let ks = p[3] as usize;
    let unpacked: [Vec<f32>; 2];
    let ins: &[&[f32]] = &if p[12] != 0 {
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

/// Parameter words of a matmul instruction (the flags are mirrored for the CPU twin; the
/// GPU reads them as pipeline constants).
pub fn params(kernel: Kernel, m: usize, n: usize, k: usize) -> [u32; 16] {
    let mut p = [0u32; 16];
    p[0] = m as u32;
    p[1] = n as u32;
    p[2] = k as u32;
    if let Kernel::MatMul { ta, tb, bias, half } = kernel {
        p[12] = half as u32;
        p[13] = ta as u32;
        p[14] = tb as u32;
        p[15] = bias as u32;
    }
    p
}
