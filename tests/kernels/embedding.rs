//! Embedding (shaders/embedding.wgsl): the lookup and the table gradient against the CPU
//! reference (fast CPU and GPU, bit for bit: the gradient sums in the same order
//! everywhere), and both by hand.

use super::*;
use shadeprop::kernels::embedding::EmbeddingParams;

/// `positions` ids drawn from `[0, vocab)` with the values no id may take mixed in
/// (−1, 2.5, vocab, NaN) when `bad`: those rows look up nothing.
fn ids(seed: u64, positions: usize, vocab: usize, bad: bool) -> Vec<f32> {
    let r = shadeprop::rng::Rng::new(seed);
    (0..positions)
        .map(|p| {
            if bad && p % 7 == 3 {
                [-1.0, 2.5, vocab as f32, f32::NAN][p / 7 % 4]
            } else {
                r.below(1, 0, p as u32, vocab as u32) as f32
            }
        })
        .collect()
}

#[test]
fn embedding_and_its_gradient_match_the_cpu() {
    let mut gs = gpus();
    // The last shape scans 70,000 positions per table entry (past llvmpipe's 65,535 loop
    // iterations without the unrolling), with a vocabulary of 3 so every row repeats.
    for (positions, dim, vocab, bad) in [
        (1usize, 1usize, 1usize, false),
        (37, 5, 11, true),
        (300, 33, 7, true),
        (513, 4, 600, false),
        (70_000, 2, 3, false),
    ] {
        let p = EmbeddingParams {
            positions,
            dim,
            vocab,
        };
        let x = ids(500 + positions as u64, positions, vocab, bad);
        let w = rand_vec(501, vocab * dim);
        Case::new(Kernel::Embedding, p)
            .ins([x.clone(), w])
            .outs([rand_vec(502, positions * dim)])
            .check(&mut gs);
        let dy = rand_vec(503, positions * dim);
        Case::new(Kernel::EmbeddingBwd, p)
            .ins([x, dy])
            .outs([rand_vec(504, vocab * dim)])
            .check(&mut gs);
    }
}

#[test]
fn embedding_by_hand() {
    let mut gs = gpus();
    let p = EmbeddingParams {
        positions: 4,
        dim: 2,
        vocab: 3,
    };
    let w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    // Ids 2, 0, 2 and an out-of-range 3 (a zero row; the host refuses it before upload).
    let x = vec![2.0, 0.0, 2.0, 3.0];
    let y = Case::new(Kernel::Embedding, p)
        .ins([x.clone(), w])
        .outs([zeros(8)])
        .check(&mut gs);
    assert_eq!(y[0], [5.0, 6.0, 1.0, 2.0, 5.0, 6.0, 0.0, 0.0]);
    // Row 2 gathers positions 0 and 2; row 1 none; position 3 goes nowhere.
    let dy = vec![1.0, 2.0, 10.0, 20.0, 100.0, 200.0, 1e6, 1e6];
    let dw = Case::new(Kernel::EmbeddingBwd, p)
        .ins([x, dy])
        .outs([vec![7.0; 6]])
        .check(&mut gs);
    assert_eq!(dw[0], [10.0, 20.0, 0.0, 0.0, 101.0, 202.0]);
}
