//! Dropout (shaders/dropout.wgsl): masks bit-identical on every backend, the fused ReLU +
//! dropout pair, spatial dropout's whole channels.

use super::*;
use shadeprop::backend::Act;
use shadeprop::kernels::dropout::DropoutParams;
use shadeprop::kernels::elementwise::Len;
use shadeprop::rng::dropout_threshold;

/// Dropout with probability `prob` (kept values scaled by 1/(1 − prob)) over `n` elements.
fn dropout(n: usize, prob: f32, stream: u32, group: usize) -> DropoutParams {
    DropoutParams {
        n,
        threshold: dropout_threshold(prob),
        scale: 1.0 / (1.0 - prob),
        stream,
        group,
        ..Default::default()
    }
}

#[test]
fn dropout_masks_identical_on_cpu_and_gpu() {
    let mut gs = gpus();
    for (n, prob) in [(1usize, 0.5f32), (1000, 0.1), (4097, 0.5), (100_000, 0.9)] {
        // Bit-exact: the mask is integer arithmetic and the scale one multiply.
        Case::new(Kernel::Dropout, dropout(n, prob, 2048, 0))
            .ins([rand_vec(5, n)])
            .outs([zeros(n)])
            .check(&mut gs);
    }
}

/// The fused ReLU + dropout kernels: bit-identical on every backend, and equal to the
/// unfused pair (ActFwd(ReLU) then Dropout; Dropout then ActBwd(ReLU), the fused backward
/// reading the forward output instead of the ReLU output) on the reference.
#[test]
fn fused_relu_dropout_equals_the_unfused_pair() {
    let mut gs = gpus();
    for (n, prob, group) in [
        (1usize, 0.5f32, 0usize),
        (1000, 0.1, 0),
        (4099, 0.5, 7),
        (70_001, 0.3, 0),
    ] {
        let p = dropout(n, prob, 2050, group);
        let x = rand_vec(8, n);
        let dy = rand_vec(9, n);
        let fused = Case::new(Kernel::ReluDropout, p)
            .ins([x.clone()])
            .outs([zeros(n)])
            .check(&mut gs);
        let cpu = |case: Case| case.outs([zeros(n)]).reference().remove(0);
        let r = cpu(Case::new(Kernel::ActFwd(Act::Relu), Len { n }).ins([x]));
        let y = cpu(Case::new(Kernel::Dropout, p).ins([r.clone()]));
        assert_close("fused dropout output", &fused[0], &y, 0.0, 0.0);
        // The fused backward reads the forward output y (not r, not the mask).
        let fused_b = Case::new(Kernel::DropoutReluBwd, p)
            .ins([y, dy.clone()])
            .outs([zeros(n)])
            .check(&mut gs);
        let dr = cpu(Case::new(Kernel::Dropout, p).ins([dy]));
        let dx = cpu(Case::new(Kernel::ActBwd(Act::Relu), Len { n }).ins([r, dr]));
        assert_close("fused backward", &fused_b[0], &dx, 0.0, 0.0);
    }
}

/// Spatial dropout: whole channels (groups of S) kept or dropped together, on [M, C, S]
/// batches of the 2-d batch norm's shapes.
#[test]
fn spatial_dropout_drops_whole_channels() {
    let mut gs = gpus();
    for (m, c, sp) in [(2usize, 3usize, 6usize), (4, 32, 64), (1, 5, 9)] {
        let n = m * c * sp;
        let p = DropoutParams {
            n,
            threshold: dropout_threshold(0.5),
            scale: 2.0,
            stream: 4000,
            group: sp,
            ..Default::default()
        };
        let y = Case::new(Kernel::Dropout, p)
            .ins([vec![1.0; n]])
            .outs([zeros(n)])
            .check(&mut gs)
            .remove(0);
        for ch in y.chunks(sp) {
            assert!(
                ch.iter().all(|&v| v == ch[0]),
                "a channel is dropped as a whole"
            );
        }
    }
}
