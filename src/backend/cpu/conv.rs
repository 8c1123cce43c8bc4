//! CPU twins of `shaders/conv.wgsl`: the patch gather (im2col) and its adjoint (col2im)
//! around the matmul a convolution lowers to, and the layout moves of its output and
//! gradient. Reference loops first, then the fast twins (one image per rayon task).

use rayon::prelude::*;

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::conv::{ToNchwParams, ToNhwcParams, Window};

/// [`Kernel::Im2Col`](crate::kernels::Kernel::Im2Col), [`Window`]:
/// `cols[(b, oy, ox), (c, ky, kx)] = x[b, c, oy·stride − pad + ky, ox·stride − pad + kx]`,
/// or 0 outside the image. `ins = [x [B, C, H, W]]`, `outs = [cols [B·OH·OW, C·KH·KW]]`.
pub fn im2col(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    let k = g.c * g.kh * g.kw;
    for i in 0..batch * g.oh * g.ow * k {
        let (r, kk) = (i / k, i % k);
        let (b, oy, ox) = (r / (g.oh * g.ow), (r / g.ow) % g.oh, r % g.ow);
        let (c, ky, kx) = (kk / (g.kh * g.kw), (kk / g.kw) % g.kh, kk % g.kw);
        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
        outs[0][i] = if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
            ins[0][((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
        } else {
            0.0
        };
    }
}

/// [`Kernel::Col2Im`](crate::kernels::Kernel::Col2Im), [`Window`], the adjoint of
/// [`im2col`]: `dx[b, c, iy, ix] = Σ_(ky, kx) dcols[(b, oy, ox), (c, ky, kx)]` over the
/// covering patches. `ins = [dcols [B·OH·OW, C·KH·KW]]`, `outs = [dx [B, C, H, W]]`.
pub fn col2im(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    let k = g.c * g.kh * g.kw;
    for i in 0..batch * g.c * g.h * g.w {
        let (ix, iy, c, b) = (
            i % g.w,
            (i / g.w) % g.h,
            (i / (g.w * g.h)) % g.c,
            i / (g.w * g.h * g.c),
        );
        let mut acc = 0f32;
        for ky in 0..g.kh {
            let ty = (iy + g.pad) as isize - ky as isize;
            if ty < 0 || ty % g.stride as isize != 0 || ty as usize / g.stride >= g.oh {
                continue;
            }
            let oy = ty as usize / g.stride;
            for kx in 0..g.kw {
                let tx = (ix + g.pad) as isize - kx as isize;
                if tx < 0 || tx % g.stride as isize != 0 || tx as usize / g.stride >= g.ow {
                    continue;
                }
                let ox = tx as usize / g.stride;
                acc += ins[0][((b * g.oh + oy) * g.ow + ox) * k + (c * g.kh + ky) * g.kw + kx];
            }
        }
        outs[0][i] = acc;
    }
}

/// [`Kernel::ToNchw`](crate::kernels::Kernel::ToNchw), [`ToNchwParams`]:
/// `[B, S, C] → [B, C, S]` (+ `bias[c]` when `bias`, then `max(·, 0)` when `relu`).
/// `ins = [x [B, S, C], bias [C]]`, `outs = [y [B, C, S]]`.
pub fn to_nchw(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let ToNchwParams {
        batch: b,
        spatial: s,
        channels: c,
        relu,
        bias,
    } = ToNchwParams::from_words(p);
    for i in 0..b * s * c {
        let (si, ci, bi) = (i % s, (i / s) % c, i / (s * c));
        let v = ins[0][(bi * s + si) * c + ci];
        let v = if bias { v + ins[1][ci] } else { v };
        outs[0][i] = if relu { v.max(0.0) } else { v };
    }
}

/// [`Kernel::ToNhwc`](crate::kernels::Kernel::ToNhwc), [`ToNhwcParams`]:
/// `[B, C, S] → [B, S, C]`. `ins = [x [B, C, S]]`, `outs = [y [B, S, C]]`.
pub fn to_nhwc(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let ToNhwcParams {
        batch: b,
        spatial: s,
        channels: c,
    } = ToNhwcParams::from_words(p);
    for i in 0..b * s * c {
        let (ci, si, bi) = (i % c, (i / c) % s, i / (s * c));
        outs[0][i] = ins[0][(bi * c + ci) * s + si];
    }
}

/// The fast twin of [`im2col`], one image per task, each patch row copied kernel row by
/// kernel row.
pub fn im2col_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    let k = g.c * g.kh * g.kw;
    let per = g.oh * g.ow * k;
    let x = ins[0];
    outs[0][..batch * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(b, out)| {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let row = &mut out[(oy * g.ow + ox) * k..][..k];
                    for c in 0..g.c {
                        let img = &x[(b * g.c + c) * g.h * g.w..][..g.h * g.w];
                        for ky in 0..g.kh {
                            let dst = &mut row[(c * g.kh + ky) * g.kw..][..g.kw];
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            if iy < 0 || iy as usize >= g.h {
                                dst.fill(0.0);
                                continue;
                            }
                            let src = &img[iy as usize * g.w..][..g.w];
                            let ix0 = (ox * g.stride) as isize - g.pad as isize;
                            if ix0 >= 0 && ix0 as usize + g.kw <= g.w {
                                // Interior: one contiguous row of the patch.
                                dst.copy_from_slice(&src[ix0 as usize..][..g.kw]);
                                continue;
                            }
                            for (kx, d) in dst.iter_mut().enumerate() {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                *d = if ix >= 0 && (ix as usize) < g.w {
                                    src[ix as usize]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            }
        });
}

/// The fast twin of [`col2im`] as a scatter-add, one image per task (patches visited in
/// order, so each pixel sums its patches in a fixed order).
pub fn col2im_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    let k = g.c * g.kh * g.kw;
    let per = g.c * g.h * g.w;
    let dcols = ins[0];
    outs[0][..batch * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(b, dx)| {
            dx.fill(0.0);
            if g.stride == 1 && g.pad == 0 && g.oh + g.kh - 1 <= g.h && g.ow + g.kw - 1 <= g.w {
                // Stride 1, no padding: for each (c, ky, kx) and output row oy, the ow
                // patches add one contiguous run dx[c, oy + ky, kx .. kx + ow], reading
                // column (c, ky, kx) of this image's dcols rows (a strided read that
                // stays in L1), instead of kw-long runs per patch.
                let blk = &dcols[b * g.oh * g.ow * k..][..g.oh * g.ow * k];
                for c in 0..g.c {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let q = (c * g.kh + ky) * g.kw + kx;
                            for oy in 0..g.oh {
                                let dst = &mut dx[(c * g.h + oy + ky) * g.w + kx..][..g.ow];
                                let src = &blk[oy * g.ow * k + q..];
                                for (ox, d) in dst.iter_mut().enumerate() {
                                    *d += src[ox * k];
                                }
                            }
                        }
                    }
                }
                return;
            }
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let row = &dcols[((b * g.oh + oy) * g.ow + ox) * k..][..k];
                    for c in 0..g.c {
                        for ky in 0..g.kh {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            if iy < 0 || iy as usize >= g.h {
                                continue;
                            }
                            let drow = &mut dx[(c * g.h + iy as usize) * g.w..][..g.w];
                            let src = &row[(c * g.kh + ky) * g.kw..][..g.kw];
                            let ix0 = (ox * g.stride) as isize - g.pad as isize;
                            if ix0 >= 0 && ix0 as usize + g.kw <= g.w {
                                // Interior: one contiguous row, added in kx order as below.
                                let d = &mut drow[ix0 as usize..][..g.kw];
                                for (d, &v) in d.iter_mut().zip(src) {
                                    *d += v;
                                }
                                continue;
                            }
                            for (kx, &v) in src.iter().enumerate() {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if ix >= 0 && (ix as usize) < g.w {
                                    drow[ix as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
        });
}

/// The fast twin of [`to_nchw`], one image per task.
pub fn to_nchw_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let ToNchwParams {
        batch: b,
        spatial: s,
        channels: c,
        relu,
        bias,
    } = ToNchwParams::from_words(p);
    let x = ins[0];
    let per = s * c;
    outs[0][..b * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(bi, out)| {
            let src = &x[bi * per..][..per];
            for ci in 0..c {
                let add = if bias { ins[1][ci] } else { 0.0 };
                for (si, o) in out[ci * s..][..s].iter_mut().enumerate() {
                    let v = if bias {
                        src[si * c + ci] + add
                    } else {
                        src[si * c + ci]
                    };
                    *o = if relu { v.max(0.0) } else { v };
                }
            }
        });
}

/// The fast twin of [`to_nhwc`], one image per task.
pub fn to_nhwc_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let ToNhwcParams {
        batch: b,
        spatial: s,
        channels: c,
    } = ToNhwcParams::from_words(p);
    let x = ins[0];
    let per = s * c;
    outs[0][..b * per]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(bi, out)| {
            let src = &x[bi * per..][..per];
            for si in 0..s {
                for (ci, o) in out[si * c..][..c].iter_mut().enumerate() {
                    *o = src[ci * s + si];
                }
            }
        });
}
