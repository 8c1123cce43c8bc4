//! CPU twins of `shaders/elementwise.wgsl`.

use crate::backend::Globals;

fn map1(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], f: impl Fn(f32) -> f32) {
    let n = p[0] as usize;
    for (y, &x) in outs[0][..n].iter_mut().zip(&ins[0][..n]) {
        *y = f(x);
    }
}

fn map2(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], f: impl Fn(f32, f32) -> f32) {
    let n = p[0] as usize;
    for i in 0..n {
        outs[0][i] = f(ins[0][i], ins[1][i]);
    }
}

/// y = max(x, 0)
pub fn relu_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map1(p, ins, outs, |x| x.max(0.0))
}
/// y = tanh(x)
pub fn tanh_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map1(p, ins, outs, f32::tanh)
}
/// y = 1 / (1 + e^-x)
pub fn sigmoid_fwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map1(p, ins, outs, |x| 1.0 / (1.0 + (-x).exp()))
}
/// dx = dy · [y > 0]
pub fn relu_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, |y, dy| if y > 0.0 { dy } else { 0.0 })
}
/// dx = dy · (1 - y²)
pub fn tanh_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, |y, dy| dy * (1.0 - y * y))
}
/// dx = dy · y · (1 - y)
pub fn sigmoid_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, |y, dy| dy * y * (1.0 - y))
}
/// c = a + b
pub fn add(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    map2(p, ins, outs, |a, b| a + b)
}

/// db[n] = Σ_m dY[m, n], rows in order. p0 = M, p1 = N
pub fn bias_grad(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (m, n) = (p[0] as usize, p[1] as usize);
    let db = &mut *outs[0];
    db[..n].iter_mut().for_each(|x| *x = 0.0);
    for r in 0..m {
        for j in 0..n {
            db[j] += ins[0][r * n + j];
        }
    }
}

/// C[i] = Σ_z P[z·n + i] over the S slices in order (+ bias[i mod N] when p15 = 1): the
/// second half of a split-K matmul. ins = [P, bias], outs = [C]; p0 = n = M·N, p1 = N,
/// p2 = S
pub fn slice_sum(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let (n, cols, s) = (p[0] as usize, p[1] as usize, p[2] as usize);
    for i in 0..n {
        let mut acc = 0f32;
        for z in 0..s {
            acc += ins[0][z * n + i];
        }
        if p[15] == 1 {
            acc += ins[1][i % cols];
        }
        outs[0][i] = acc;
    }
}
