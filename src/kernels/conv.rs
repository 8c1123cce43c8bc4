//! The ABI of the convolution and pooling kernels (`shaders/conv.wgsl`,
//! `shaders/pool.wgsl`; CPU twins in `backend/cpu/conv.rs` and `pool.rs`): the window
//! geometry and the layout moves around the matmul that a convolution lowers to.

use super::{Kernel, KernelParams, Words};
use crate::error::{Error, Result};

/// Geometry of a 2-D convolution or pooling window over an NCHW image (the batch size
/// comes from the program): `oh = (h + 2·pad − kh) / stride + 1`, and likewise `ow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom2d {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom2d {
    /// A square `k`×`k` window: output size `(h + 2·pad − k) / stride + 1` per axis.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when a product or padded extent overflows `usize`;
    /// [`Error::Shape`] when the window is empty, the stride 0, or the padded image
    /// smaller than the window.
    pub fn new(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Result<Self> {
        use crate::limits::product;
        let padded = |x: usize| pad.checked_mul(2).and_then(|p| x.checked_add(p));
        let (Some(ph), Some(pw), Some(_), Some(_)) = (
            padded(h),
            padded(w),
            product(&[c, h, w]),
            product(&[c, k, k]),
        ) else {
            return Err(Error::too_large(
                "image and window",
                format!("[C, H, W] = [{c}, {h}, {w}], {k}x{k} window, padding {pad}"),
                None,
                "sizes whose products and padded extents fit in usize",
            ));
        };
        if k == 0 || stride == 0 || ph < k || pw < k {
            return Err(Error::Shape {
                context: format!("{k}x{k} window, stride {stride}, padding {pad}"),
                got: vec![c, h, w],
                expected: "an image [C, H, W] at least as large as the window, stride >= 1".into(),
            });
        }
        let (oh, ow) = ((ph - k) / stride + 1, (pw - k) / stride + 1);
        if product(&[c, oh, ow]).is_none() {
            return Err(Error::too_large(
                "image and window",
                format!("[C, H, W] = [{c}, {h}, {w}], {k}x{k} window, padding {pad}"),
                None,
                "an output whose size fits in usize",
            ));
        }
        Ok(Geom2d {
            c,
            h,
            w,
            kh: k,
            kw: k,
            stride,
            pad,
            oh,
            ow,
        })
    }
}

/// [`Kernel::Im2Col`], [`Kernel::Col2Im`] and the pooling kernels: a window over a
/// batch of NCHW images.
///
/// # Shapes
/// - im2col: `ins = [x [B, C, H, W]]`, `outs = [cols [B·OH·OW, C·KH·KW]]`
///   (`cols[(b, oy, ox), (c, ky, kx)] = x[b, c, oy·s − pad + ky, ox·s − pad + kx]` or 0);
/// - col2im: the adjoint, `[B·OH·OW, C·KH·KW] → [B, C, H, W]`;
/// - max pool: `ins = [x]`, `outs = [y [B, C, OH, OW], argmax [B, C, OH, OW]]`; backward
///   `ins = [dy, argmax]`, `outs = [dx]`;
/// - average pool: `ins = [x]`, `outs = [y]`; backward `ins = [dy]`, `outs = [dx]`.
///
/// Words: 0 B, 1 C, 2 H, 3 W, 4 KH, 5 KW, 6 stride, 7 pad, 8 OH, 9 OW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub batch: usize,
    pub g: Geom2d,
}

impl KernelParams for Window {
    fn to_words(&self) -> Words {
        let g = &self.g;
        let mut p = [0; 16];
        let v = [
            self.batch, g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.oh, g.ow,
        ];
        for (i, x) in v.into_iter().enumerate() {
            p[i] = super::Word::to_word(x);
        }
        p
    }
    fn from_words(p: &Words) -> Self {
        let u = |i: usize| -> usize { super::Word::from_word(p[i]) };
        Window {
            batch: u(0),
            g: Geom2d {
                c: u(1),
                h: u(2),
                w: u(3),
                kh: u(4),
                kw: u(5),
                stride: u(6),
                pad: u(7),
                oh: u(8),
                ow: u(9),
            },
        }
    }
}

params! {
    /// [`Kernel::ToNchw`]: `[B, S, C] → [B, C, S]` (+ `bias[c]` when `bias`, then
    /// `max(·, 0)` when `relu`: the fused convolution epilogue). `ins = [x, bias]`,
    /// `outs = [y]`. The flags are also the variant's fields ([`ToNchwParams::kernel`]).
    pub struct ToNchwParams {
        batch: usize = 0,
        spatial: usize = 1,
        channels: usize = 2,
        relu: bool = 14,
        bias: bool = 15,
    }
}

impl ToNchwParams {
    /// The kernel variant these parameters select.
    pub fn kernel(&self) -> Kernel {
        Kernel::ToNchw {
            bias: self.bias,
            relu: self.relu,
        }
    }
}

params! {
    /// [`Kernel::ToNhwc`]: `[B, C, S] → [B, S, C]`. `ins = [x]`, `outs = [y]`.
    pub struct ToNhwcParams {
        batch: usize = 0,
        spatial: usize = 1,
        channels: usize = 2,
    }
}
