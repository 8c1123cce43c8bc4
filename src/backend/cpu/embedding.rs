//! CPU twins of `shaders/embedding.wgsl` (formulas and shapes in
//! [`crate::kernels::embedding::EmbeddingParams`]).

use crate::kernels::embedding::{EmbeddingParams, token_index};
use crate::kernels::{Globals, KernelParams};
use rayon::prelude::*;

/// [`crate::kernels::Kernel::Embedding`]: `y[p, d] = W[ids[p], d]` (a zero row for an id
/// outside the table, which the host never lets through).
pub fn embedding(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let EmbeddingParams {
        positions,
        dim,
        vocab,
    } = EmbeddingParams::from_words(p);
    let (ids, w) = (ins[0], ins[1]);
    for (p, y) in outs[0][..positions * dim].chunks_mut(dim).enumerate() {
        lookup(ids[p], w, vocab, y);
    }
}

/// `y` = the table row of `id` (`y.len()` values), or zeros for an id outside it.
#[inline]
fn lookup(id: f32, w: &[f32], vocab: usize, y: &mut [f32]) {
    let dim = y.len();
    match token_index(id, vocab) {
        Some(v) => y.copy_from_slice(&w[v * dim..(v + 1) * dim]),
        None => y.fill(0.0),
    }
}

/// [`crate::kernels::Kernel::Embedding`], positions in parallel (the same copies).
pub fn embedding_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let EmbeddingParams {
        positions,
        dim,
        vocab,
    } = EmbeddingParams::from_words(p);
    let (ids, w) = (ins[0], ins[1]);
    // Enough rows per task to amortize it.
    let rows = (super::par::CHUNK / dim.max(1)).max(1);
    outs[0][..positions * dim]
        .par_chunks_mut(rows * dim)
        .enumerate()
        .for_each(|(ci, ys)| {
            for (r, y) in ys.chunks_mut(dim).enumerate() {
                lookup(ids[ci * rows + r], w, vocab, y);
            }
        });
}

/// [`crate::kernels::Kernel::EmbeddingBwd`]: `dW[v, d] = Σ_{p : ids[p] = v} dy[p, d]`,
/// summed in increasing p from 0.
pub fn embedding_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let EmbeddingParams {
        positions,
        dim,
        vocab,
    } = EmbeddingParams::from_words(p);
    let (ids, dy) = (ins[0], ins[1]);
    let dw = &mut outs[0][..vocab * dim];
    dw.fill(0.0);
    for p in 0..positions {
        if let Some(v) = token_index(ids[p], vocab) {
            for d in 0..dim {
                dw[v * dim + d] += dy[p * dim + d];
            }
        }
    }
}

/// [`crate::kernels::Kernel::EmbeddingBwd`] with the table's rows split between threads;
/// each row still sums its positions in increasing p, so the bits are the reference's.
pub fn embedding_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let EmbeddingParams {
        positions,
        dim,
        vocab,
    } = EmbeddingParams::from_words(p);
    let (ids, dy) = (ins[0], ins[1]);
    let threads = rayon::current_num_threads().max(1);
    let rows = vocab.div_ceil(threads).max(1);
    outs[0][..vocab * dim]
        .par_chunks_mut(rows * dim)
        .enumerate()
        .for_each(|(ci, dw)| {
            dw.fill(0.0);
            let (lo, n) = (ci * rows, dw.len() / dim.max(1));
            for p in 0..positions {
                if let Some(v) = token_index(ids[p], vocab)
                    && v >= lo
                    && v < lo + n
                {
                    let (o, g) = ((v - lo) * dim, &dy[p * dim..(p + 1) * dim]);
                    for (a, &b) in dw[o..o + dim].iter_mut().zip(g) {
                        *a += b;
                    }
                }
            }
        });
}
