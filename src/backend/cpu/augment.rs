//! CPU twins of `shaders/augment.wgsl` (formulas there): the geometric stage (reference
//! and fast, one sample per rayon task) and the photometric one, reading the spec through
//! the [`slot`] indices.

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::augment::{AugmentParams, slot};
use crate::rng::{Rng, below_at};

/// Sample `n`'s uniform draw number `draw` (counter `n·32 + draw`) in [0, 1).
fn u01(g: &Globals, stream: u32, n: usize, draw: u32) -> f32 {
    (Rng::new(g.seed()).u32x2(stream, g.step, n as u32 * 32 + draw)[0] >> 8) as f32
        * (1.0 / 16_777_216.0)
}

/// Uniform in the spec's range `[sp[k], sp[k + 1]]`, from draw number `draw`.
fn range(g: &Globals, sp: &[f32], stream: u32, n: usize, draw: u32, k: usize) -> f32 {
    sp[k] + (sp[k + 1] - sp[k]) * u01(g, stream, n, draw)
}

/// A uniform integer in [0, m), exactly (the twin of `below` in WGSL: 2 blocks).
fn below(g: &Globals, stream: u32, n: usize, draw: u32, m: u32) -> u32 {
    below_at(
        Rng::new(g.seed()).key(stream),
        [n as u32 * 32 + draw, g.step],
        m,
        2,
    )
}

fn fold(v: i32, size: i32, mode: u32) -> i32 {
    if v >= 0 && v < size {
        return v;
    }
    match mode {
        1 => v.clamp(0, size - 1),
        2 => {
            if size == 1 {
                return 0;
            }
            let period = 2 * (size - 1);
            let mut m = v % period;
            if m < 0 {
                m += period;
            }
            if m >= size { period - m } else { m }
        }
        _ => -1,
    }
}

/// One sample's warp: the inverse affine map from output to source pixel, and its flips.
struct Warp {
    a: [f32; 4],
    det: f32,
    t: (f32, f32),
    flip: (bool, bool),
}

fn warp(g: &Globals, sp: &[f32], stream: u32, n: usize) -> Warp {
    let deg = 0.017_453_292_f32;
    let th = range(g, sp, stream, n, 4, slot::ROTATION) * deg;
    let shx = range(g, sp, stream, n, 7, slot::SHEAR) * deg;
    let shy = range(g, sp, stream, n, 15, slot::SHEAR_Y) * deg;
    let zx = range(g, sp, stream, n, 5, slot::ZOOM);
    let zy = if sp[slot::ZOOM_PER_AXIS] > 0.5 {
        range(g, sp, stream, n, 6, slot::ZOOM_Y)
    } else {
        zx
    };
    let pad = sp[slot::CROP_PADDING] as u32;
    let crop = |draw| (below(g, stream, n, draw, 2 * pad + 1) as i32 - pad as i32) as f32;
    let tx = range(g, sp, stream, n, 2, slot::TRANSLATE_X) + crop(8);
    let ty = range(g, sp, stream, n, 3, slot::TRANSLATE_Y) + crop(9);
    // A = R·Shy·Shx·Z, in the WGSL's order of operations.
    let (cs, sn, tsx, tsy) = (th.cos(), th.sin(), shx.tan(), shy.tan());
    let a00 = (cs + sn * tsy) * zx;
    let a01 = (cs * tsx + sn * (1.0 + tsy * tsx)) * zy;
    let a10 = (cs * tsy - sn) * zx;
    let a11 = (cs * (1.0 + tsy * tsx) - sn * tsx) * zy;
    Warp {
        a: [a00, a01, a10, a11],
        det: a00 * a11 - a01 * a10,
        t: (tx, ty),
        flip: (
            u01(g, stream, n, 0) < sp[slot::HFLIP],
            u01(g, stream, n, 1) < sp[slot::VFLIP],
        ),
    }
}

/// Warp one (sample, channel) plane `x` (h × w) into `y`.
fn warp_plane(wp: &Warp, sp: &[f32], x: &[f32], y: &mut [f32], h: usize, w: usize) {
    let mode = sp[slot::FILL_MODE] as u32;
    let px = |xi: i32, yi: i32| -> f32 {
        let (fx, fy) = (fold(xi, w as i32, mode), fold(yi, h as i32, mode));
        if fx < 0 || fy < 0 {
            sp[slot::FILL_VALUE]
        } else {
            x[fy as usize * w + fx as usize]
        }
    };
    let [a00, a01, a10, a11] = wp.a;
    let (cx, cy) = ((w as f32 - 1.0) * 0.5, (h as f32 - 1.0) * 0.5);
    for (j, out) in y[..h * w].iter_mut().enumerate() {
        let (ox, oy) = (j % w, j / w);
        let (dx, dy) = (ox as f32 - cx - wp.t.0, oy as f32 - cy - wp.t.1);
        let mut sx = (a11 * dx - a01 * dy) / wp.det + cx;
        let mut sy = (-a10 * dx + a00 * dy) / wp.det + cy;
        if wp.flip.0 {
            sx = w as f32 - 1.0 - sx;
        }
        if wp.flip.1 {
            sy = h as f32 - 1.0 - sy;
        }
        *out = if sp[slot::INTERP] < 0.5 {
            // WGSL's round() rounds half to even, as f32::round_ties_even.
            px(sx.round_ties_even() as i32, sy.round_ties_even() as i32)
        } else {
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (xi, yi) = (x0 as i32, y0 as i32);
            (1.0 - fy) * ((1.0 - fx) * px(xi, yi) + fx * px(xi + 1, yi))
                + fy * ((1.0 - fx) * px(xi, yi + 1) + fx * px(xi + 1, yi + 1))
        };
    }
}

/// [`Kernel::AugmentGeom`](crate::kernels::Kernel::AugmentGeom), [`AugmentParams`]
/// (`train` is not read): flips and one affine warp per sample.
/// `ins = [x [B, C, H, W], spec [SPEC_LEN]]`, `outs = [y [B, C, H, W]]`.
///
/// [SPEC_LEN]: crate::kernels::augment::SPEC_LEN
pub fn augment_geom(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let AugmentParams {
        batch: b,
        channels: c,
        height: h,
        width: w,
        stream,
        ..
    } = AugmentParams::from_words(p);
    let (x, sp) = (ins[0], ins[1]);
    let plane = h * w;
    for n in 0..b {
        let wp = warp(g, sp, stream, n);
        for ch in 0..c {
            let o = (n * c + ch) * plane;
            warp_plane(&wp, sp, &x[o..o + plane], &mut outs[0][o..o + plane], h, w);
        }
    }
}

/// The fast twin of [`augment_geom`], one sample per rayon task (the same arithmetic, so
/// the same bits).
pub fn augment_geom_fast(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    use rayon::prelude::*;
    let AugmentParams {
        batch: b,
        channels: c,
        height: h,
        width: w,
        stream,
        ..
    } = AugmentParams::from_words(p);
    let (x, sp) = (ins[0], ins[1]);
    let plane = h * w;
    let per = (c * plane).max(1);
    outs[0][..b * c * plane]
        .par_chunks_mut(per)
        .enumerate()
        .for_each(|(n, y)| {
            let wp = warp(g, sp, stream, n);
            for ch in 0..c {
                let o = (n * c + ch) * plane;
                warp_plane(
                    &wp,
                    sp,
                    &x[o..o + plane],
                    &mut y[ch * plane..(ch + 1) * plane],
                    h,
                    w,
                );
            }
        });
}

/// [`Kernel::AugmentPhoto`](crate::kernels::Kernel::AugmentPhoto), [`AugmentParams`]:
/// brightness, contrast, noise, cutout (when `train`) and standardization.
/// `ins = [x [B, C, H, W], spec [SPEC_LEN]]`, `outs = [y [B, C, H, W]]`.
///
/// [SPEC_LEN]: crate::kernels::augment::SPEC_LEN
pub fn augment_photo(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let AugmentParams {
        batch: b,
        channels: c,
        height: h,
        width: w,
        stream,
        train,
    } = AugmentParams::from_words(p);
    let (x, sp) = (ins[0], ins[1]);
    let pn = c * h * w;
    for n in 0..b {
        let base = n * pn;
        let br = range(g, sp, stream, n, 10, slot::BRIGHTNESS);
        let k = range(g, sp, stream, n, 11, slot::CONTRAST);
        let photo = sp[slot::BRIGHTNESS] != 0.0
            || sp[slot::BRIGHTNESS + 1] != 0.0
            || sp[slot::CONTRAST] != 1.0
            || sp[slot::CONTRAST + 1] != 1.0;
        let mut mean = 0f32;
        if train && photo {
            for j in 0..pn {
                mean += x[base + j];
            }
            mean /= pn as f32;
        }
        let cut =
            train && sp[slot::CUTOUT_SIZE] > 0.0 && u01(g, stream, n, 12) < sp[slot::CUTOUT_P];
        let size = sp[slot::CUTOUT_SIZE] as i32;
        let half = size / 2;
        let ccx = if sp[slot::CUTOUT_X] < 0.0 {
            below(g, stream, n, 13, w as u32) as i32
        } else {
            sp[slot::CUTOUT_X] as i32
        };
        let ccy = if sp[slot::CUTOUT_Y] < 0.0 {
            below(g, stream, n, 14, h as u32) as i32
        } else {
            sp[slot::CUTOUT_Y] as i32
        };
        for j in 0..pn {
            let mut v = x[base + j];
            if train {
                if photo {
                    v = ((v + br - mean) * k + mean).clamp(0.0, 1.0);
                }
                if sp[slot::NOISE_STD] > 0.0 {
                    let r = Rng::new(g.seed()).u32x2(stream + 1, g.step, (base + j) as u32);
                    let u1 = ((r[0] >> 8) as f32 + 1.0) * (1.0 / 16_777_216.0);
                    let u2 = (r[1] >> 8) as f32 * (1.0 / 16_777_216.0);
                    v += sp[slot::NOISE_STD]
                        * (-2.0 * u1.ln()).sqrt()
                        * (std::f32::consts::TAU * u2).cos();
                }
                if cut {
                    let (pxx, pyy) = ((j % w) as i32, ((j / w) % h) as i32);
                    if pxx >= ccx - half
                        && pxx < ccx - half + size
                        && pyy >= ccy - half
                        && pyy < ccy - half + size
                    {
                        v = 0.0;
                    }
                }
            }
            if sp[slot::STD] > 0.0 {
                v = (v - sp[slot::MEAN]) / sp[slot::STD];
            }
            outs[0][base + j] = v;
        }
    }
}
