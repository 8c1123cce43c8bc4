//! Max and average pooling forward and backward (shaders/pool.wgsl).

use super::conv::window;
use super::*;

#[test]
fn pooling_forward_and_backward() {
    let mut gs = gpus();
    for &(b, c, h, w, k, s) in &[
        (2, 3, 24, 24, 2, 2),
        (1, 2, 7, 9, 3, 2),
        (3, 4, 8, 8, 3, 1),
        (2, 1, 5, 5, 2, 2),
    ] {
        let p = window(b, (c, h, w), k, s, 0);
        let x = rand_vec(61, b * c * h * w);
        let n_out = b * c * p.g.oh * p.g.ow;
        let fwd = Case::new(Kernel::MaxPoolFwd, p)
            .ins([x.clone()])
            .outs([zeros(n_out), zeros(n_out)])
            .check(&mut gs);
        Case::new(Kernel::AvgPoolFwd, p)
            .ins([x])
            .outs([zeros(n_out)])
            .tol(1e-6, 1e-5)
            .check(&mut gs);
        let dy = rand_vec(62, n_out);
        Case::new(Kernel::MaxPoolBwd, p)
            .ins([dy.clone(), fwd[1].clone()])
            .outs([zeros(b * c * h * w)])
            .tol(1e-6, 1e-5)
            .check(&mut gs);
        Case::new(Kernel::AvgPoolBwd, p)
            .ins([dy])
            .outs([zeros(b * c * h * w)])
            .tol(1e-6, 1e-5)
            .check(&mut gs);
    }
}
