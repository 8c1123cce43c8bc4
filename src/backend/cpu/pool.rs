//! CPU twins of `shaders/pool.wgsl`.

use super::conv::Geom;
use crate::backend::Globals;

/// Windows (oy, ox) containing input position (iy, ix), with the offset (ky, kx) inside.
fn windows(
    g: &Geom,
    iy: usize,
    ix: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
    (0..g.kh)
        .flat_map(move |ky| (0..g.kw).map(move |kx| (ky, kx)))
        .filter_map(move |(ky, kx)| {
            if iy < ky
                || !(iy - ky).is_multiple_of(g.s)
                || ix < kx
                || !(ix - kx).is_multiple_of(g.s)
            {
                return None;
            }
            let (oy, ox) = ((iy - ky) / g.s, (ix - kx) / g.s);
            (oy < g.oh && ox < g.ow).then_some((oy, ox, ky, kx))
        })
}

/// y = window max, idx = offset of the first maximum. ins = [x], outs = [y, idx]
pub fn maxpool_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    for i in 0..g.b * g.c * g.oh * g.ow {
        let (bc, oy, ox) = (i / (g.oh * g.ow), (i / g.ow) % g.oh, i % g.ow);
        let base = bc * g.h * g.w;
        let mut best = ins[0][base + oy * g.s * g.w + ox * g.s];
        let mut arg = 0;
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let v = ins[0][base + (oy * g.s + ky) * g.w + ox * g.s + kx];
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

/// dx = Σ dy over windows whose maximum was here. ins = [dy, idx], outs = [dx]
pub fn maxpool_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    for i in 0..g.b * g.c * g.h * g.w {
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

/// y = window mean. ins = [x], outs = [y]
pub fn avgpool_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    for i in 0..g.b * g.c * g.oh * g.ow {
        let (bc, oy, ox) = (i / (g.oh * g.ow), (i / g.ow) % g.oh, i % g.ow);
        let mut acc = 0f32;
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                acc += ins[0][bc * g.h * g.w + (oy * g.s + ky) * g.w + ox * g.s + kx];
            }
        }
        outs[0][i] = acc / (g.kh * g.kw) as f32;
    }
}

/// dx = Σ dy / (KH·KW) over the windows containing each input. ins = [dy], outs = [dx]
pub fn avgpool_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let g = Geom::from(p);
    for i in 0..g.b * g.c * g.h * g.w {
        let (ix, iy, bc) = (i % g.w, (i / g.w) % g.h, i / (g.h * g.w));
        let mut acc = 0f32;
        for (oy, ox, _, _) in windows(&g, iy, ix) {
            acc += ins[0][(bc * g.oh + oy) * g.ow + ox];
        }
        outs[0][i] = acc / (g.kh * g.kw) as f32;
    }
}
