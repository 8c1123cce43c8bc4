//! The convolution's building blocks (shaders/conv.wgsl): im2col and its adjoint col2im
//! with odd sizes, stride and padding, and the layout permutes around the matmul with the
//! fused bias and ReLU epilogue.

use super::*;
use shadeprop::kernels::conv::{Geom2d, ToNchwParams, ToNhwcParams, Window};

/// A `k`×`k` window with stride `s` and padding `pad` over a batch of `b` images
/// `[c, h, w]`.
pub fn window(
    b: usize,
    (c, h, w): (usize, usize, usize),
    k: usize,
    s: usize,
    pad: usize,
) -> Window {
    Window {
        batch: b,
        g: Geom2d::new(c, h, w, k, s, pad).unwrap(),
    }
}

#[test]
fn conv_building_blocks_forward_and_backward() {
    let mut gs = gpus();
    // Odd sizes, stride and padding.
    for &(b, c, h, w, k, s, pad) in &[
        (2, 1, 28, 28, 5, 1, 0),
        (3, 5, 7, 9, 3, 2, 1),
        (1, 32, 12, 12, 5, 1, 0),
        (2, 3, 5, 5, 5, 1, 2),
    ] {
        let p = window(b, (c, h, w), k, s, pad);
        let (oh, ow) = (p.g.oh, p.g.ow);
        let kk = c * k * k;
        let x = rand_vec(51, b * c * h * w);
        Case::new(Kernel::Im2Col, p)
            .ins([x])
            .outs([zeros(b * oh * ow * kk)])
            .check(&mut gs);
        let dcols = rand_vec(52, b * oh * ow * kk);
        Case::new(Kernel::Col2Im, p)
            .ins([dcols])
            .outs([zeros(b * c * h * w)])
            .tol(1e-6, 1e-5)
            .check(&mut gs);
        // Layout permutes, with and without bias.
        let (sp, ch) = (oh * ow, 7);
        let nchw = |bias: bool, relu: bool| {
            let q = ToNchwParams {
                batch: b,
                spatial: sp,
                channels: ch,
                relu,
                bias,
            };
            Case::new(q.kernel(), q)
                .ins([rand_vec(53, b * sp * ch), rand_vec(54, ch)])
                .outs([zeros(b * sp * ch)])
        };
        for (bias, relu) in [(false, false), (true, false), (false, true), (true, true)] {
            nchw(bias, relu).check(&mut gs);
        }
        // The fused epilogue is the ReLU of the plain permute.
        let (plain, fused) = (nchw(true, false).reference(), nchw(true, true).reference());
        let want: Vec<f32> = plain[0].iter().map(|v| v.max(0.0)).collect();
        assert_close("ToNchw with the ReLU", &fused[0], &want, 0.0, 0.0);
        let q = ToNhwcParams {
            batch: b,
            spatial: sp,
            channels: ch,
        };
        Case::new(Kernel::ToNhwc, q)
            .ins([rand_vec(55, b * sp * ch)])
            .outs([zeros(b * sp * ch)])
            .check(&mut gs);
    }
}
