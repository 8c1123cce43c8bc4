//! Tensor statistics for diagnostics (shaders/stats.wgsl).

use super::*;
use shadeprop::kernels::elementwise::Len;

#[test]
fn tensor_stats() {
    let mut gs = gpus();
    for n in [1usize, 255, 1000, 100_001] {
        let x: Vec<f32> = rand_vec(41, n)
            .iter()
            .map(|&v| if v < -0.5 { 0.0 } else { v * 3.0 })
            .collect();
        Case::new(Kernel::TensorStats, Len { n })
            .ins([x])
            .outs([zeros(4)])
            .tol(1e-5, 1e-5)
            .check(&mut gs);
    }
}
