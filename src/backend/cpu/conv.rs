//! CPU twins of `shaders/conv.wgsl` (geometry words documented there).

use crate::backend::Globals;

/// Convolution / pooling geometry from the parameter words.
#[derive(Clone, Copy, Debug)]
pub struct Geom {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub s: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    pub fn from(p: &[u32; 16]) -> Self {
        let u = |i: usize| p[i] as usize;
        Geom {
            b: u(0),
            c: u(1),
            h: u(2),
            w: u(3),
            kh: u(4),
            kw: u(5),
            s: u(6),
            pad: u(7),
            oh: u(8),
            ow: u(9),
        }
    }
    pub fn words(&self, p: &mut [u32; 16]) {
        for (i, v) in [
            self.b, self.c, self.h, self.w, self.kh, self.kw, self.s, self.pad, self.oh, self.ow,
        ]
        .into_iter()
        .enumerate()
        {
            p[i] = v as u32;
        }
    }
}

/// cols[(b, oy, ox), (c, ky, kx)] = x[b, c, oy·s − pad + ky, ox·s − pad + kx] or 0.
pub fn im2col(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    let k = g.c * g.kh * g.kw;
    for i in 0..g.b * g.oh * g.ow * k {
        let (r, kk) = (i / k, i % k);
        let (b, oy, ox) = (r / (g.oh * g.ow), (r / g.ow) % g.oh, r % g.ow);
        let (c, ky, kx) = (kk / (g.kh * g.kw), (kk / g.kw) % g.kh, kk % g.kw);
        let iy = (oy * g.s + ky) as isize - g.pad as isize;
        let ix = (ox * g.s + kx) as isize - g.pad as isize;
        outs[0][i] = if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
            ins[0][((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
        } else {
            0.0
        };
    }
}

/// dx[b, c, iy, ix] = Σ_(ky, kx) dcols[(b, oy, ox), (c, ky, kx)] over the covering patches.
pub fn col2im(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    let k = g.c * g.kh * g.kw;
    for i in 0..g.b * g.c * g.h * g.w {
        let (ix, iy, c, b) = (
            i % g.w,
            (i / g.w) % g.h,
            (i / (g.w * g.h)) % g.c,
            i / (g.w * g.h * g.c),
        );
        let mut acc = 0f32;
        for ky in 0..g.kh {
            let ty = (iy + g.pad) as isize - ky as isize;
            if ty < 0 || ty % g.s as isize != 0 || ty as usize / g.s >= g.oh {
                continue;
            }
            let oy = ty as usize / g.s;
            for kx in 0..g.kw {
                let tx = (ix + g.pad) as isize - kx as isize;
                if tx < 0 || tx % g.s as isize != 0 || tx as usize / g.s >= g.ow {
                    continue;
                }
                let ox = tx as usize / g.s;
                acc += ins[0][((b * g.oh + oy) * g.ow + ox) * k + (c * g.kh + ky) * g.kw + kx];
            }
        }
        outs[0][i] = acc;
    }
}

/// [B, S, C] → [B, C, S] (+ bias[c] when p15 = 1, then max(·, 0) when p14 = 1).
/// p0 = B, p1 = S, p2 = C
pub fn to_nchw(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (b, s, c) = (p[0] as usize, p[1] as usize, p[2] as usize);
    let (bias, relu) = (p[15] == 1, p[14] == 1);
    for i in 0..b * s * c {
        let (si, ci, bi) = (i % s, (i / s) % c, i / (s * c));
        let v = ins[0][(bi * s + si) * c + ci];
        let v = if bias { v + ins[1][ci] } else { v };
        outs[0][i] = if relu { v.max(0.0) } else { v };
    }
}

/// [B, C, S] → [B, S, C]. p0 = B, p1 = S, p2 = C
pub fn to_nhwc(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (b, s, c) = (p[0] as usize, p[1] as usize, p[2] as usize);
    for i in 0..b * s * c {
        let (ci, si, bi) = (i % c, (i / c) % s, i / (s * c));
        outs[0][i] = ins[0][(bi * c + ci) * s + si];
    }
}
