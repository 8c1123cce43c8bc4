//! CPU twins of `shaders/rnn.wgsl` (formulas and layouts there): the recurrent-dropout
//! mask and step flags, one LSTM or GRU time step forward and backward, and the bias
//! gradients. The reference twins sum the recurrent products in index order, as the
//! WGSL kernels do; the fast twins compute the same per-step products with the `gemm`
//! crate (one `[N, H]·[H, G·H]` product per step forward, `[N, G·H]·[G·H, H]` backward)
//! and share the per-unit gate arithmetic with the reference.

use std::cell::RefCell;

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::rnn::RnnParams;
use crate::rng::dropout_keep;

fn sigm(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// [`crate::kernels::Kernel::RnnAux`]: `ins = [x [N, T·F]]`, `outs = [aux [N, H + T]]`.
pub fn rnn_aux(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (nb, t_len, h, f) = (r.batch, r.steps, r.hidden, r.features);
    let w = h + t_len;
    for n in 0..nb {
        for c in 0..w {
            outs[0][n * w + c] = if c < h {
                let idx = (n * h + c) as u32;
                if dropout_keep(g.seed(), r.stream, g.step, idx, r.threshold) {
                    r.scale
                } else {
                    0.0
                }
            } else if r.masking {
                let o = n * t_len * f + (c - h) * f;
                let any = ins[0][o..o + f].iter().any(|&v| v != r.mask_value);
                if any { 1.0 } else { 0.0 }
            } else {
                1.0
            };
        }
    }
}

/// The recurrent sums of step `t` in index order: `rec[n, q] = Σ_k hprev[n, t, k]·W[k, q]`
/// (`q < G·H`), left empty at t = 0 (h̃_{-1} = 0).
fn rec_forward_ref(r: &RnnParams, hprev: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
    let (nb, tl, h, gh) = (r.batch, r.steps, r.hidden, r.gates * r.hidden);
    rec.clear();
    if r.t == 0 {
        return;
    }
    rec.resize(nb * gh, 0.0);
    for n in 0..nb {
        let hp = &hprev[(n * tl + r.t) * h..][..h];
        for q in 0..gh {
            let mut acc = 0f32;
            for (k, &hk) in hp.iter().enumerate() {
                acc += hk * w_hh[k * gh + q];
            }
            rec[n * gh + q] = acc;
        }
    }
}

/// The same sums with the `gemm` crate (rows of `hprev` at stride T·H).
fn rec_forward_fast(r: &RnnParams, hprev: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
    let (nb, tl, h, gh) = (r.batch, r.steps, r.hidden, r.gates * r.hidden);
    rec.clear();
    if r.t == 0 {
        return;
    }
    rec.resize(nb * gh, 0.0);
    assert!(hprev.len() >= (nb * tl) * h && w_hh.len() >= h * gh);
    // SAFETY: lhs element (n, k) is hprev[(n·T + t)·H + k], inside hprev for n < N, k < H
    // (checked above); rhs (k, q) is w_hh[k·G·H + q], inside w_hh; dst holds N·G·H values
    // and aliases neither.
    unsafe {
        gemm::gemm(
            nb,
            gh,
            h,
            rec.as_mut_ptr(),
            1,
            gh as isize,
            false,
            hprev.as_ptr().add(r.t * h),
            1,
            (tl * h) as isize,
            w_hh.as_ptr(),
            1,
            gh as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par(nb * gh * h),
        );
    }
}

/// The recurrent part of dh_t before the mask: `rec[n, j] = Σ_k d[n, t+1, k]·W[j, k]`
/// (`k < G·H`), empty at the last step.
fn rec_backward_ref(r: &RnnParams, d: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
    let (nb, tl, h, gh) = (r.batch, r.steps, r.hidden, r.gates * r.hidden);
    rec.clear();
    if r.t + 1 >= tl {
        return;
    }
    rec.resize(nb * h, 0.0);
    for n in 0..nb {
        let dn = &d[(n * tl + r.t + 1) * gh..][..gh];
        for j in 0..h {
            let mut acc = 0f32;
            for (k, &dk) in dn.iter().enumerate() {
                acc += dk * w_hh[j * gh + k];
            }
            rec[n * h + j] = acc;
        }
    }
}

fn rec_backward_fast(r: &RnnParams, d: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
    let (nb, tl, h, gh) = (r.batch, r.steps, r.hidden, r.gates * r.hidden);
    rec.clear();
    if r.t + 1 >= tl {
        return;
    }
    rec.resize(nb * h, 0.0);
    assert!(d.len() >= nb * tl * gh && w_hh.len() >= h * gh);
    // SAFETY: lhs (n, k) = d[(n·T + t + 1)·G·H + k] lies inside d for n < N, k < G·H;
    // rhs (k, j) = w_hh[j·G·H + k] inside w_hh; dst holds N·H values, aliasing neither.
    unsafe {
        gemm::gemm(
            nb,
            h,
            gh,
            rec.as_mut_ptr(),
            1,
            h as isize,
            false,
            d.as_ptr().add((r.t + 1) * gh),
            1,
            (tl * gh) as isize,
            w_hh.as_ptr(),
            gh as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            par(nb * gh * h),
        );
    }
}

fn par(macs: usize) -> gemm::Parallelism {
    if macs >= 1 << 20 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

thread_local! {
    static REC: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

type RecFn = fn(&RnnParams, &[f32], &[f32], &mut Vec<f32>);

/// One LSTM step given the recurrent sums.
fn lstm_step_with(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], rec_fn: RecFn) {
    let r = RnnParams::from_words(p);
    let (nb, tl, h, t) = (r.batch, r.steps, r.hidden, r.t);
    let gh = 4 * h;
    let (xp, w_hh, b, aux) = (ins[0], ins[1], ins[2], ins[3]);
    REC.with_borrow_mut(|rec| {
        rec_fn(&r, outs[2], w_hh, rec);
        for n in 0..nb {
            let row = n * tl + t;
            let arow = n * (h + tl);
            let valid = aux[arow + h + t] != 0.0;
            for j in 0..h {
                let (mut hv, mut c) = (0f32, 0f32);
                if t > 0 {
                    hv = outs[0][(row - 1) * h + j];
                    c = outs[1][((row - 1) * 5 + 4) * h + j];
                }
                let mut gates = [0f32; 4];
                if valid {
                    let mut a = [0f32; 4];
                    for (q, aq) in a.iter_mut().enumerate() {
                        let col = q * h + j;
                        *aq = xp[row * gh + col] + b[col] + b[gh + col];
                        if !rec.is_empty() {
                            *aq += rec[n * gh + col];
                        }
                    }
                    gates = [sigm(a[0]), sigm(a[1]), a[2].tanh(), sigm(a[3])];
                    c = gates[1] * c + gates[0] * gates[2];
                    hv = gates[3] * c.tanh();
                }
                let s = row * 5 * h + j;
                for (q, gq) in gates.iter().enumerate() {
                    outs[1][s + q * h] = *gq;
                }
                outs[1][s + 4 * h] = c;
                outs[0][row * h + j] = hv;
                if t == 0 {
                    outs[2][row * h + j] = 0.0;
                }
                if t + 1 < tl {
                    outs[2][(row + 1) * h + j] = hv * aux[arow + j];
                }
            }
        }
    });
}

/// One GRU step given the recurrent sums.
fn gru_step_with(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], rec_fn: RecFn) {
    let r = RnnParams::from_words(p);
    let (nb, tl, h, t) = (r.batch, r.steps, r.hidden, r.t);
    let gh = 3 * h;
    let (xp, w_hh, b, aux) = (ins[0], ins[1], ins[2], ins[3]);
    REC.with_borrow_mut(|rec| {
        rec_fn(&r, outs[2], w_hh, rec);
        for n in 0..nb {
            let row = n * tl + t;
            let arow = n * (h + tl);
            let valid = aux[arow + h + t] != 0.0;
            for j in 0..h {
                let hprev = if t > 0 {
                    outs[0][(row - 1) * h + j]
                } else {
                    0.0
                };
                let mut hv = hprev;
                let mut g = [0f32; 4];
                if valid {
                    let mut a = [b[gh + j], b[gh + h + j], b[gh + 2 * h + j]];
                    if !rec.is_empty() {
                        for (q, aq) in a.iter_mut().enumerate() {
                            *aq += rec[n * gh + q * h + j];
                        }
                    }
                    let xo = row * gh + j;
                    let rg = sigm(xp[xo] + b[j] + a[0]);
                    let z = sigm(xp[xo + h] + b[h + j] + a[1]);
                    let nn = (xp[xo + 2 * h] + b[2 * h + j] + rg * a[2]).tanh();
                    hv = (1.0 - z) * nn + z * hprev;
                    g = [rg, z, nn, a[2]];
                }
                let s = row * 5 * h + j;
                for (q, gq) in g.iter().enumerate() {
                    outs[1][s + q * h] = *gq;
                }
                outs[1][s + 4 * h] = hprev;
                outs[0][row * h + j] = hv;
                if t == 0 {
                    outs[2][row * h + j] = 0.0;
                }
                if t + 1 < tl {
                    outs[2][(row + 1) * h + j] = hv * aux[arow + j];
                }
            }
        }
    });
}

/// One LSTM backward step given the recurrent sums of the step after.
fn lstm_step_bwd_with(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], rec_fn: RecFn) {
    let r = RnnParams::from_words(p);
    let (nb, tl, h, t) = (r.batch, r.steps, r.hidden, r.t);
    let gh = 4 * h;
    let (dhs, w_hh, saved, aux) = (ins[0], ins[1], ins[2], ins[3]);
    REC.with_borrow_mut(|rec| {
        rec_fn(&r, outs[0], w_hh, rec);
        for n in 0..nb {
            let row = n * tl + t;
            let arow = n * (h + tl);
            for j in 0..h {
                let co = n * 2 * h + j;
                let mut dh = dhs[row * h + j];
                if !rec.is_empty() {
                    dh += rec[n * h + j] * aux[arow + j];
                }
                let mut dc = 0f32;
                if t + 1 < tl {
                    dh += outs[1][co];
                    dc = outs[1][co + h];
                }
                let go = row * gh + j;
                if aux[arow + h + t] == 0.0 {
                    for q in 0..4 {
                        outs[0][go + q * h] = 0.0;
                    }
                    outs[1][co] = dh;
                    outs[1][co + h] = dc;
                    continue;
                }
                let s = row * 5 * h + j;
                let (ig, fg, gg, og) = (saved[s], saved[s + h], saved[s + 2 * h], saved[s + 3 * h]);
                let tc = saved[s + 4 * h].tanh();
                let cp = if t > 0 {
                    saved[((row - 1) * 5 + 4) * h + j]
                } else {
                    0.0
                };
                dc += dh * og * (1.0 - tc * tc);
                outs[0][go] = dc * gg * ig * (1.0 - ig);
                outs[0][go + h] = dc * cp * fg * (1.0 - fg);
                outs[0][go + 2 * h] = dc * ig * (1.0 - gg * gg);
                outs[0][go + 3 * h] = dh * tc * og * (1.0 - og);
                outs[1][co] = 0.0;
                outs[1][co + h] = dc * fg;
            }
        }
    });
}

/// One GRU backward step given the recurrent sums of the step after.
fn gru_step_bwd_with(p: &[u32; 16], ins: &[&[f32]], outs: &mut [&mut [f32]], rec_fn: RecFn) {
    let r = RnnParams::from_words(p);
    let (nb, tl, h, t) = (r.batch, r.steps, r.hidden, r.t);
    let gh = 3 * h;
    let (dhs, w_hh, saved, aux) = (ins[0], ins[1], ins[2], ins[3]);
    REC.with_borrow_mut(|rec| {
        rec_fn(&r, outs[1], w_hh, rec);
        for n in 0..nb {
            let row = n * tl + t;
            let arow = n * (h + tl);
            for j in 0..h {
                let mut dh = dhs[row * h + j];
                if t + 1 < tl {
                    dh += outs[2][n * h + j];
                    dh += rec[n * h + j] * aux[arow + j];
                }
                let go = row * gh + j;
                if aux[arow + h + t] == 0.0 {
                    for q in 0..3 {
                        outs[0][go + q * h] = 0.0;
                        outs[1][go + q * h] = 0.0;
                    }
                    outs[2][n * h + j] = dh;
                    continue;
                }
                let s = row * 5 * h + j;
                let (rg, z, nn, hn, hp) = (
                    saved[s],
                    saved[s + h],
                    saved[s + 2 * h],
                    saved[s + 3 * h],
                    saved[s + 4 * h],
                );
                let dnp = dh * (1.0 - z) * (1.0 - nn * nn);
                let daz = dh * (hp - nn) * z * (1.0 - z);
                let dar = dnp * hn * rg * (1.0 - rg);
                outs[0][go] = dar;
                outs[0][go + h] = daz;
                outs[0][go + 2 * h] = dnp;
                outs[1][go] = dar;
                outs[1][go + h] = daz;
                outs[1][go + 2 * h] = dnp * rg;
                outs[2][n * h + j] = dh * z;
            }
        }
    });
}

/// [`crate::kernels::Kernel::LstmStep`] (reference).
pub fn lstm_step(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    lstm_step_with(p, ins, outs, rec_forward_ref)
}
/// [`crate::kernels::Kernel::LstmStep`] (fast: the recurrent product by `gemm`).
pub fn lstm_step_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    lstm_step_with(p, ins, outs, rec_forward_fast)
}
/// [`crate::kernels::Kernel::GruStep`] (reference).
pub fn gru_step(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    gru_step_with(p, ins, outs, rec_forward_ref)
}
/// [`crate::kernels::Kernel::GruStep`] (fast).
pub fn gru_step_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    gru_step_with(p, ins, outs, rec_forward_fast)
}
/// [`crate::kernels::Kernel::LstmStepBwd`] (reference).
pub fn lstm_step_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    lstm_step_bwd_with(p, ins, outs, rec_backward_ref)
}
/// [`crate::kernels::Kernel::LstmStepBwd`] (fast).
pub fn lstm_step_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    lstm_step_bwd_with(p, ins, outs, rec_backward_fast)
}
/// [`crate::kernels::Kernel::GruStepBwd`] (reference).
pub fn gru_step_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    gru_step_bwd_with(p, ins, outs, rec_backward_ref)
}
/// [`crate::kernels::Kernel::GruStepBwd`] (fast).
pub fn gru_step_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    gru_step_bwd_with(p, ins, outs, rec_backward_fast)
}

/// [`crate::kernels::Kernel::RnnBiasGrad`]: `ins = [dxp, drec]`, `outs = [dbiases [2, G·H]]`,
/// rows in order.
pub fn rnn_bias_grad(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (rows, gh) = (r.batch * r.steps, r.gates * r.hidden);
    for c in 0..2 * gh {
        let (src, col) = if c < gh {
            (ins[0], c)
        } else {
            (ins[1], c - gh)
        };
        let mut acc = 0f32;
        for m in 0..rows {
            acc += src[m * gh + col];
        }
        outs[0][c] = acc;
    }
}
