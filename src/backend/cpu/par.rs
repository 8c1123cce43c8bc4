//! Parallel loops shared by the fast CPU twins (on rayon's pool): elementwise maps over
//! fixed chunks and per-channel reductions, each in a fixed order so the results do not
//! depend on the thread count.

use rayon::prelude::*;

/// Elements per parallel chunk of the elementwise fast twins.
pub const CHUNK: usize = 1 << 14;

/// `y[i] = f(x[i])` for `i < n`, chunks in parallel: `ins = [x]`, `outs = [y]`.
pub fn par_map1(
    n: usize,
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    f: impl Fn(f32) -> f32 + Sync + Send,
) {
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

/// `y[i] = f(a[i], b[i])` for `i < n`, chunks in parallel: `ins = [a, b]`, `outs = [y]`.
pub fn par_map2(
    n: usize,
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) {
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

/// `f(j)` for every channel `j < c`, in parallel, collected in channel order.
pub fn per_channel<T: Send>(c: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    (0..c).into_par_iter().map(f).collect()
}
