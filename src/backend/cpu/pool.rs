//! CPU twins of `shaders/pool.wgsl`: max and average pooling over NCHW images, forward
//! and backward, with the geometry of [`Window`]. The fast twins of max pooling run one
//! (image, channel) plane per rayon task.

use rayon::prelude::*;

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::conv::{Geom2d, Window};

/// Windows (oy, ox) containing input position (iy, ix), with the offset (ky, kx) inside.
fn windows(
    g: &Geom2d,
    iy: usize,
    ix: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
    (0..g.kh)
        .flat_map(move |ky| (0..g.kw).map(move |kx| (ky, kx)))
        .filter_map(move |(ky, kx)| {
            if iy < ky
                || !(iy - ky).is_multiple_of(g.stride)
                || ix < kx
                || !(ix - kx).is_multiple_of(g.stride)
            {
                return None;
            }
            let (oy, ox) = ((iy - ky) / g.stride, (ix - kx) / g.stride);
            (oy < g.oh && ox < g.ow).then_some((oy, ox, ky, kx))
        })
}

/// [`Kernel::MaxPoolFwd`](crate::kernels::Kernel::MaxPoolFwd), [`Window`]: y = the
/// window's maximum, argmax = the offset `ky·KW + kx` of its first maximum.
/// `ins = [x [B, C, H, W]]`, `outs = [y [B, C, OH, OW], argmax [B, C, OH, OW]]`.
pub fn maxpool_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    for i in 0..batch * g.c * g.oh * g.ow {
        let (bc, oy, ox) = (i / (g.oh * g.ow), (i / g.ow) % g.oh, i % g.ow);
        let base = bc * g.h * g.w;
        let mut best = ins[0][base + oy * g.stride * g.w + ox * g.stride];
        let mut arg = 0;
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let v = ins[0][base + (oy * g.stride + ky) * g.w + ox * g.stride + kx];
                if v > best {
                    best = v;
                    arg = ky * g.kw + kx;
                }
            }
        }
        outs[0][i] = best;
        outs[1][i] = arg as f32;
    }
}

/// [`Kernel::MaxPoolBwd`](crate::kernels::Kernel::MaxPoolBwd), [`Window`]: dx = Σ dy
/// over the windows whose maximum was here. `ins = [dy [B, C, OH, OW], argmax]`,
/// `outs = [dx [B, C, H, W]]`.
pub fn maxpool_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    for i in 0..batch * g.c * g.h * g.w {
        let (ix, iy, bc) = (i % g.w, (i / g.w) % g.h, i / (g.h * g.w));
        let mut acc = 0f32;
        for (oy, ox, ky, kx) in windows(&g, iy, ix) {
            let o = (bc * g.oh + oy) * g.ow + ox;
            if ins[1][o] as usize == ky * g.kw + kx {
                acc += ins[0][o];
            }
        }
        outs[0][i] = acc;
    }
}

/// [`Kernel::AvgPoolFwd`](crate::kernels::Kernel::AvgPoolFwd), [`Window`]: y = the
/// window's mean. `ins = [x [B, C, H, W]]`, `outs = [y [B, C, OH, OW]]`.
pub fn avgpool_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    for i in 0..batch * g.c * g.oh * g.ow {
        let (bc, oy, ox) = (i / (g.oh * g.ow), (i / g.ow) % g.oh, i % g.ow);
        let mut acc = 0f32;
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                acc += ins[0][bc * g.h * g.w + (oy * g.stride + ky) * g.w + ox * g.stride + kx];
            }
        }
        outs[0][i] = acc / (g.kh * g.kw) as f32;
    }
}

/// [`Kernel::AvgPoolBwd`](crate::kernels::Kernel::AvgPoolBwd), [`Window`]:
/// dx = Σ dy / (KH·KW) over the windows containing each input.
/// `ins = [dy [B, C, OH, OW]]`, `outs = [dx [B, C, H, W]]`.
pub fn avgpool_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    for i in 0..batch * g.c * g.h * g.w {
        let (ix, iy, bc) = (i % g.w, (i / g.w) % g.h, i / (g.h * g.w));
        let mut acc = 0f32;
        for (oy, ox, _, _) in windows(&g, iy, ix) {
            acc += ins[0][(bc * g.oh + oy) * g.ow + ox];
        }
        outs[0][i] = acc / (g.kh * g.kw) as f32;
    }
}

/// The fast twin of [`maxpool_fwd`], (image, channel) planes in parallel; the 2×2
/// stride-2 window (W-CNN's) written out, comparing in the same order (the same values
/// and indices).
pub fn maxpool_fwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    let per = g.oh * g.ow;
    let x = ins[0];
    let (yo, io) = outs.split_at_mut(1);
    yo[0][..batch * g.c * per]
        .par_chunks_mut(per.max(1))
        .zip(io[0][..batch * g.c * per].par_chunks_mut(per.max(1)))
        .enumerate()
        .with_min_len(8)
        .for_each(|(bc, (y, idx))| {
            let plane = &x[bc * g.h * g.w..][..g.h * g.w];
            if (g.kh, g.kw, g.stride, g.pad) == (2, 2, 2, 0) && 2 * g.ow <= g.w && 2 * g.oh <= g.h {
                for oy in 0..g.oh {
                    let r0 = &plane[2 * oy * g.w..][..2 * g.ow];
                    let r1 = &plane[(2 * oy + 1) * g.w..][..2 * g.ow];
                    let yr = &mut y[oy * g.ow..][..g.ow];
                    let ir = &mut idx[oy * g.ow..][..g.ow];
                    for ox in 0..g.ow {
                        let (mut best, mut arg) = (r0[2 * ox], 0.0);
                        for (v, a) in [
                            (r0[2 * ox + 1], 1.0),
                            (r1[2 * ox], 2.0),
                            (r1[2 * ox + 1], 3.0),
                        ] {
                            if v > best {
                                (best, arg) = (v, a);
                            }
                        }
                        yr[ox] = best;
                        ir[ox] = arg;
                    }
                }
                return;
            }
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut best = plane[oy * g.stride * g.w + ox * g.stride];
                    let mut arg = 0;
                    for ky in 0..g.kh {
                        let r = &plane[(oy * g.stride + ky) * g.w + ox * g.stride..][..g.kw];
                        for (kx, &v) in r.iter().enumerate() {
                            if v > best {
                                best = v;
                                arg = ky * g.kw + kx;
                            }
                        }
                    }
                    y[oy * g.ow + ox] = best;
                    idx[oy * g.ow + ox] = arg as f32;
                }
            }
        });
}

/// The fast twin of [`maxpool_bwd`] as a scatter-add of dy to each window's maximum, one
/// (image, channel) plane per task.
pub fn maxpool_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Window { batch, g } = Window::from_words(p);
    let (dy, idx) = (ins[0], ins[1]);
    let per_in = g.h * g.w;
    let per_out = g.oh * g.ow;
    outs[0][..batch * g.c * per_in]
        .par_chunks_mut(per_in.max(1))
        .enumerate()
        .with_min_len(8)
        .for_each(|(bc, dx)| {
            dx.fill(0.0);
            if (g.kw, g.stride) == (2, 2) {
                // W-CNN's 2×2 / 2 window: the index split without a division.
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let o = bc * per_out + oy * g.ow + ox;
                        let a = idx[o] as usize;
                        dx[(2 * oy + (a >> 1)) * g.w + 2 * ox + (a & 1)] += dy[o];
                    }
                }
                return;
            }
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let o = bc * per_out + oy * g.ow + ox;
                    let a = idx[o] as usize;
                    let (ky, kx) = (a / g.kw, a % g.kw);
                    dx[(oy * g.stride + ky) * g.w + ox * g.stride + kx] += dy[o];
                }
            }
        });
}
