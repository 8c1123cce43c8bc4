//! CPU twins of `shaders/rnn.wgsl` (formulas and layouts there): the recurrent-dropout
//! mask and step flags, one LSTM or GRU time step forward and backward, and the bias
//! gradients. The reference twins sum the recurrent products in index order, as the
//! WGSL kernels do; the fast twins compute the same per-step products with the `gemm`
//! crate (one `[N, H]·[H, G·H]` product per step forward, `[N, G·H]·[G·H, H]` backward),
//! split the sequences of the batch across threads, and evaluate the gates with a
//! polynomial exp that vectorizes ([`exp_fast`]), compiled for AVX-512 or AVX2 when the
//! CPU has it ([`simd`]); the per-unit formulas are shared. The backward's product reads a
//! row-major copy of W_hhᵀ ([`rec_backward_fast`]).

use std::cell::RefCell;

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::rnn::RnnParams;
use crate::rng::dropout_keep;

fn sigm(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// [`crate::kernels::Kernel::RnnAux`]: `ins = [x [N, T·F], state [N, S]]`,
/// `outs = [aux [N, 3H + T]]`.
pub fn rnn_aux(p: &[u32; 16], g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (nb, t_len, h, f) = (r.batch, r.steps, r.hidden, r.features);
    let (w, sw) = (r.aux_width(), r.state_width());
    for n in 0..nb {
        for c in 0..w {
            outs[0][n * w + c] = if c >= h + t_len {
                let q = c - h - t_len;
                if r.state && q < sw {
                    ins[1][n * sw + q]
                } else {
                    0.0
                }
            } else if c < h {
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
/// (`q < G·H`), left empty at t = 0 without an initial state (h̃_{-1} = 0).
fn rec_forward_ref(r: &RnnParams, hprev: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
    let (nb, tl, h, gh) = (r.batch, r.steps, r.hidden, r.gates * r.hidden);
    rec.clear();
    if r.t == 0 && !r.state {
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
    if r.t == 0 && !r.state {
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

/// `dst [G·H, H] = w_hhᵀ` for `w_hh [H, G·H]`, in 16×16 blocks (both sides stay in cache).
fn transpose_into(w_hh: &[f32], h: usize, gh: usize, dst: &mut Vec<f32>) {
    dst.clear();
    dst.resize(h * gh, 0.0);
    const B: usize = 16;
    for j0 in (0..h).step_by(B) {
        for q0 in (0..gh).step_by(B) {
            for j in j0..(j0 + B).min(h) {
                for q in q0..(q0 + B).min(gh) {
                    dst[q * h + j] = w_hh[j * gh + q];
                }
            }
        }
    }
}

/// The same sums with the `gemm` crate, against a row-major copy of W_hhᵀ made for the
/// call: `gemm` reads a transposed right-hand side about 3× slower than a row-major one
/// (measured at [128, 512]·[512, 128]), far more than the copy costs.
fn rec_backward_fast(r: &RnnParams, d: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
    let (nb, tl, h, gh) = (r.batch, r.steps, r.hidden, r.gates * r.hidden);
    rec.clear();
    if r.t + 1 >= tl {
        return;
    }
    rec.resize(nb * h, 0.0);
    assert!(d.len() >= nb * tl * gh && w_hh.len() >= h * gh);
    WT.with_borrow_mut(|wt| {
        transpose_into(w_hh, h, gh, wt);
        // SAFETY: lhs (n, k) = d[(n·T + t + 1)·G·H + k] lies inside d for n < N,
        // k < G·H; rhs (k, j) = wt[k·H + j] inside wt (G·H·H values); dst holds N·H
        // values, aliasing neither.
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
                wt.as_ptr(),
                1,
                h as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                par(nb * gh * h),
            );
        }
    });
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
    /// W_hhᵀ for the fast backward's product (kept, not allocated per step).
    static WT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Sequence n's aux row `[3H + T]`: (mask, step flags, initial h, initial c).
fn aux_row<'a>(aux: &'a [f32], r: &RnnParams, n: usize) -> &'a [f32] {
    let w = r.aux_width();
    &aux[n * w..(n + 1) * w]
}

/// The initial state (h_{-1}, c_{-1}) of an aux row (zeros unless one was given).
fn initial_state(a: &[f32], h: usize, tl: usize) -> (&[f32], &[f32]) {
    (&a[h + tl..2 * h + tl], &a[2 * h + tl..3 * h + tl])
}

/// At step 0, hprev's row 0 of every sequence: h̃_{-1} = h_{-1}·m (zero without an
/// initial state), before the recurrent sums read it.
fn first_hprev(r: &RnnParams, aux: &[f32], hprev: &mut [f32]) {
    if r.t != 0 {
        return;
    }
    let (tl, h) = (r.steps, r.hidden);
    for n in 0..r.batch {
        let a = aux_row(aux, r, n);
        let (h0, _) = initial_state(a, h, tl);
        for (k, o) in hprev[n * tl * h..n * tl * h + h].iter_mut().enumerate() {
            *o = h0[k] * a[k];
        }
    }
}

/// How a twin computes: the recurrent sums, the gate nonlinearities, and whether the
/// sequences of the batch are split across rayon threads (each sequence's arithmetic is
/// the same either way). Monomorphized, so that the per-unit loops inline the
/// nonlinearities and vectorize.
trait Twin {
    const PARALLEL: bool;
    /// Whether the per-sequence passes run through [`simd`].
    const SIMD: bool;
    fn rec_forward(r: &RnnParams, hprev: &[f32], w_hh: &[f32], rec: &mut Vec<f32>);
    fn rec_backward(r: &RnnParams, d: &[f32], w_hh: &[f32], rec: &mut Vec<f32>);
    fn sigm(x: f32) -> f32;
    fn tanh(x: f32) -> f32;
}

/// The reference: sums in index order, libm's `expf` and `tanhf`, one sequence after another.
struct Reference;
impl Twin for Reference {
    const PARALLEL: bool = false;
    const SIMD: bool = false;
    fn rec_forward(r: &RnnParams, hprev: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
        rec_forward_ref(r, hprev, w_hh, rec)
    }
    fn rec_backward(r: &RnnParams, d: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
        rec_backward_ref(r, d, w_hh, rec)
    }
    fn sigm(x: f32) -> f32 {
        sigm(x)
    }
    fn tanh(x: f32) -> f32 {
        x.tanh()
    }
}

/// The fast twin: `gemm` sums, [`exp_fast`], sequences across threads.
struct Fast;
impl Twin for Fast {
    const PARALLEL: bool = true;
    const SIMD: bool = true;
    fn rec_forward(r: &RnnParams, hprev: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
        rec_forward_fast(r, hprev, w_hh, rec)
    }
    fn rec_backward(r: &RnnParams, d: &[f32], w_hh: &[f32], rec: &mut Vec<f32>) {
        rec_backward_fast(r, d, w_hh, rec)
    }
    #[inline(always)]
    fn sigm(x: f32) -> f32 {
        1.0 / (1.0 + exp_fast(-x))
    }
    /// tanh(x) = 1 − 2/(e^{2x} + 1): within 4e-7 absolute of the exact value (the cancellation
    /// near 0 costs relative, not absolute, accuracy); ±1 beyond |x| ≈ 44.
    #[inline(always)]
    fn tanh(x: f32) -> f32 {
        1.0 - 2.0 / (exp_fast(2.0 * x) + 1.0)
    }
}

/// e^x without a libm call, so that loops over it vectorize: x = k·ln 2 + r with k the
/// nearest integer to x/ln 2 (|r| ≤ ln 2 / 2), e^r by Cephes' `expf` polynomial (relative
/// error about 2e-7), times 2^k through the exponent bits. Inside [−87.3, 88.7] (e^x
/// between 1.2e-38 and 3.4e38, the normal f32 range); 0 below, +∞ above (so that a
/// saturated sigmoid is exactly 0 or 1, as libm's gives); NaN stays NaN.
#[inline(always)]
fn exp_fast(x_in: f32) -> f32 {
    // Selects rather than min/max, which would turn NaN into the bound.
    let x = if x_in < -87.3 { -87.3 } else { x_in };
    let x = if x > 88.7 { 88.7 } else { x };
    // Round to nearest by adding 1.5·2^23: k then sits in the low mantissa bits of the
    // sum (read as integer bits, so the loop needs no float-to-int conversion).
    const MAGIC: f32 = 12_582_912.0;
    let sum = x * std::f32::consts::LOG2_E + MAGIC;
    let k = sum - MAGIC;
    let ki = sum.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // k lies in [−126, 128]: 2^k as two factors 2^⌊k/2⌋·2^(k−⌊k/2⌋), each a normal f32.
    let half = ki >> 1;
    let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    let y = y * scale(half) * scale(ki - half);
    if x_in < -87.3 {
        0.0
    } else if x_in > 88.7 {
        f32::INFINITY
    } else {
        y
    }
}

/// Run `f(n, chunks)` for every sequence n of the batch, where `chunks[i]` is sequence n's
/// part of `outs[i]` (`per[i]` values, contiguous): in order, or across rayon threads.
fn per_sequence<const K: usize>(
    nb: usize,
    parallel: bool,
    outs: &mut [&mut [f32]],
    per: [usize; K],
    f: impl Fn(usize, [&mut [f32]; K]) + Sync,
) {
    use rayon::prelude::*;
    let mut parts: Vec<std::slice::ChunksMut<'_, f32>> = outs
        .iter_mut()
        .zip(per)
        .map(|(o, len)| o[..nb * len].chunks_mut(len.max(1)))
        .collect();
    let rows: Vec<[&mut [f32]; K]> = (0..nb)
        .map(|_| std::array::from_fn(|i| parts[i].next().unwrap_or_default()))
        .collect();
    if parallel && nb > 1 {
        rows.into_par_iter().enumerate().for_each(|(n, c)| f(n, c));
    } else {
        rows.into_iter().enumerate().for_each(|(n, c)| f(n, c));
    }
}

/// The per-sequence part of a step kernel: what [`per_sequence`] runs for sequence n on
/// its own rows. [`simd`] runs it compiled for the widest vector unit the CPU has.
trait PerSeq<const K: usize>: Sync {
    fn run<M: Twin>(&self, n: usize, rows: [&mut [f32]; K]);
}

/// `s.run::<M>(n, rows)`, for the fast twin compiled with AVX-512 or AVX2 when the CPU
/// has it (checked at run time, cached by std): the gate passes then vectorize 16 or 8
/// wide instead of SSE2's 4. The same IEEE operations in the same order, so the same bits.
#[inline(always)]
fn simd<M: Twin, const K: usize, S: PerSeq<K>>(s: &S, n: usize, rows: [&mut [f32]; K]) {
    #[cfg(target_arch = "x86_64")]
    if M::SIMD {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { run_avx512::<M, K, S>(s, n, rows) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the feature was just detected.
            return unsafe { run_avx2::<M, K, S>(s, n, rows) };
        }
    }
    s.run::<M>(n, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<M: Twin, const K: usize, S: PerSeq<K>>(
    s: &S,
    n: usize,
    rows: [&mut [f32]; K],
) {
    s.run::<M>(n, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_avx2<M: Twin, const K: usize, S: PerSeq<K>>(s: &S, n: usize, rows: [&mut [f32]; K]) {
    s.run::<M>(n, rows)
}

/// `s[q·h .. (q+1)·h]`: gate q of a `[G·H]` row.
fn gate(s: &[f32], q: usize, h: usize) -> &[f32] {
    &s[q * h..][..h]
}

/// The recurrent sums at step t as rows of `width` (zeros where there are none: the first
/// step forward, the last backward).
fn rec_or_zero(rec: &mut Vec<f32>, nb: usize, width: usize) {
    if rec.is_empty() {
        rec.resize(nb * width, 0.0);
    }
}

/// A sequence's `hprev` row after step t: h̃_t = h_t·m (the recurrent-dropout mask) as
/// step t + 1's operand (row 0 is [`first_hprev`]'s).
fn masked_state(hprev: &mut [f32], h_cur: &[f32], m: &[f32], t: usize, tl: usize) {
    let h = h_cur.len();
    if t + 1 < tl {
        let next = &mut hprev[(t + 1) * h..(t + 2) * h];
        for ((o, &hv), &mk) in next.iter_mut().zip(h_cur).zip(m) {
            *o = hv * mk;
        }
    }
}

/// What a step kernel's per-sequence part reads: the parameters, its two data operands
/// (forward: xp and the biases; backward: dhs and the saved gates), aux, and the
/// recurrent sums of the step. `C` names the kernel ([`LstmFwd`], [`GruFwd`],
/// [`LstmBwd`], [`GruBwd`]), each a [`PerSeq`] over its own rows.
struct Step<'a, C> {
    r: &'a RnnParams,
    x: &'a [f32],
    y: &'a [f32],
    aux: &'a [f32],
    rec: &'a [f32],
    cell: std::marker::PhantomData<C>,
}

/// One LSTM step: per sequence, `hs`, `saved` and `hprev` are its own rows (`[T·H]`,
/// `[T·5·H]`, `[T·H]`).
struct LstmFwd;
/// One GRU step (per-sequence rows as for the LSTM).
struct GruFwd;
/// One LSTM backward step given the recurrent sums of the step after: per sequence, `d`
/// (`[T·G·H]`) and the carry (`[2H]`: dh, dc) are its own rows.
struct LstmBwd;
/// One GRU backward step given the recurrent sums of the step after: per sequence, `dxp`
/// and `drec` (`[T·G·H]`) and the carry (`[H]`) are its own rows.
struct GruBwd;

/// A step kernel: the recurrent sums of the step (forward from hprev, `outs[2]`, after
/// [`first_hprev`]; backward from the gradient of the step after, `outs[d_out]`), then
/// `C`'s per-sequence part on rows of `per` values of each output.
fn run_step<M: Twin, C, const K: usize>(
    p: &[u32; 16],
    ins: &[&[f32]],
    outs: &mut [&mut [f32]],
    per: [usize; K],
    backward_from: Option<usize>,
) where
    for<'a> Step<'a, C>: PerSeq<K>,
{
    let r = RnnParams::from_words(p);
    let (nb, h, gh) = (r.batch, r.hidden, r.gates * r.hidden);
    let (x, w_hh, y, aux) = (ins[0], ins[1], ins[2], ins[3]);
    if backward_from.is_none() {
        first_hprev(&r, aux, outs[2]);
    }
    REC.with_borrow_mut(|rec| {
        match backward_from {
            None => {
                M::rec_forward(&r, outs[2], w_hh, rec);
                rec_or_zero(rec, nb, gh);
            }
            Some(d) => {
                M::rec_backward(&r, outs[d], w_hh, rec);
                rec_or_zero(rec, nb, h);
            }
        }
        let k = Step::<C> {
            r: &r,
            x,
            y,
            aux,
            rec,
            cell: std::marker::PhantomData,
        };
        per_sequence(nb, M::PARALLEL, outs, per, |n, rows| {
            simd::<M, K, _>(&k, n, rows)
        });
    });
}

impl PerSeq<3> for Step<'_, LstmFwd> {
    #[inline(always)]
    fn run<M: Twin>(&self, n: usize, [hs, saved, hprev]: [&mut [f32]; 3]) {
        let (r, xp, b, aux, rec) = (self.r, self.x, self.y, self.aux, self.rec);
        let (tl, h, t) = (r.steps, r.hidden, r.t);
        let gh = 4 * h;
        let row = n * tl + t;
        let a = aux_row(aux, r, n);
        let (done, cur) = saved.split_at_mut(t * 5 * h);
        let (h_done, h_cur) = hs.split_at_mut(t * h);
        let (h0, c0) = if t > 0 {
            (&h_done[(t - 1) * h..], &done[(t - 1) * 5 * h + 4 * h..])
        } else {
            initial_state(a, h, tl)
        };
        let (h0, c0, h_cur) = (&h0[..h], &c0[..h], &mut h_cur[..h]);
        let (gs, c_cur) = cur[..5 * h].split_at_mut(4 * h);
        let c_cur = &mut c_cur[..h];
        let (si, rest) = gs.split_at_mut(h);
        let (sf, rest) = rest.split_at_mut(h);
        let (sg, so) = rest.split_at_mut(h);
        if a[h + t] != 0.0 {
            let x = &xp[row * gh..(row + 1) * gh];
            let rr = &rec[n * gh..(n + 1) * gh];
            let (bi, bh) = (&b[..gh], &b[gh..2 * gh]);
            // Pass by pass over the H units (each a plain loop that vectorizes): the
            // pre-activations x·W_ih + b_ih + b_hh + h̃·W_hh, the gates, c, then h.
            for (q, dst) in [&mut *si, &mut *sf, &mut *sg, &mut *so]
                .into_iter()
                .enumerate()
            {
                let (x, bi, bh, rr) = (
                    gate(x, q, h),
                    gate(bi, q, h),
                    gate(bh, q, h),
                    gate(rr, q, h),
                );
                for (j, v) in dst.iter_mut().enumerate() {
                    *v = x[j] + bi[j] + bh[j] + rr[j];
                }
            }
            for q in [&mut *si, &mut *sf, &mut *so] {
                for v in q.iter_mut() {
                    *v = M::sigm(*v);
                }
            }
            for v in sg.iter_mut() {
                *v = M::tanh(*v);
            }
            for j in 0..h {
                c_cur[j] = sf[j] * c0[j] + si[j] * sg[j];
            }
            for j in 0..h {
                h_cur[j] = so[j] * M::tanh(c_cur[j]);
            }
        } else {
            // Padding: no gates, the state carried.
            for q in [&mut *si, &mut *sf, &mut *sg, &mut *so] {
                q.fill(0.0);
            }
            c_cur.copy_from_slice(c0);
            h_cur.copy_from_slice(h0);
        }
        masked_state(hprev, h_cur, &a[..h], t, tl);
    }
}

impl PerSeq<3> for Step<'_, GruFwd> {
    #[inline(always)]
    fn run<M: Twin>(&self, n: usize, [hs, saved, hprev]: [&mut [f32]; 3]) {
        let r = self.r;
        let (xp, b, aux, rec) = (self.x, self.y, self.aux, self.rec);
        let (tl, h, t) = (r.steps, r.hidden, r.t);
        let gh = 3 * h;
        let row = n * tl + t;
        let a = aux_row(aux, r, n);
        let (h_done, h_cur) = hs.split_at_mut(t * h);
        let h0 = if t > 0 {
            &h_done[(t - 1) * h..]
        } else {
            initial_state(a, h, tl).0
        };
        let (h0, h_cur) = (&h0[..h], &mut h_cur[..h]);
        let cur = &mut saved[t * 5 * h..(t + 1) * 5 * h];
        let (sr, rest) = cur.split_at_mut(h);
        let (sz, rest) = rest.split_at_mut(h);
        let (sn, rest) = rest.split_at_mut(h);
        let (shn, shp) = rest.split_at_mut(h);
        if a[h + t] != 0.0 {
            let x = &xp[row * gh..(row + 1) * gh];
            let rr = &rec[n * gh..(n + 1) * gh];
            let (bi, bh) = (&b[..gh], &b[gh..2 * gh]);
            for j in 0..h {
                let ar = gate(bh, 0, h)[j] + gate(rr, 0, h)[j];
                let az = gate(bh, 1, h)[j] + gate(rr, 1, h)[j];
                let an = gate(bh, 2, h)[j] + gate(rr, 2, h)[j];
                let rg = M::sigm(gate(x, 0, h)[j] + gate(bi, 0, h)[j] + ar);
                let z = M::sigm(gate(x, 1, h)[j] + gate(bi, 1, h)[j] + az);
                let nn = M::tanh(gate(x, 2, h)[j] + gate(bi, 2, h)[j] + rg * an);
                (sr[j], sz[j], sn[j], shn[j]) = (rg, z, nn, an);
                h_cur[j] = (1.0 - z) * nn + z * h0[j];
            }
        } else {
            for q in [&mut *sr, &mut *sz, &mut *sn, &mut *shn] {
                q.fill(0.0);
            }
            h_cur.copy_from_slice(h0);
        }
        shp.copy_from_slice(h0);
        masked_state(hprev, h_cur, &a[..h], t, tl);
    }
}

impl PerSeq<2> for Step<'_, LstmBwd> {
    #[inline(always)]
    fn run<M: Twin>(&self, n: usize, [d, carry]: [&mut [f32]; 2]) {
        let r = self.r;
        let (dhs, saved, aux, rec) = (self.x, self.y, self.aux, self.rec);
        let (tl, h, t) = (r.steps, r.hidden, r.t);
        let gh = 4 * h;
        let row = n * tl + t;
        let a = aux_row(aux, r, n);
        let (m, rr, dy) = (
            &a[..h],
            &rec[n * h..(n + 1) * h],
            &dhs[row * h..(row + 1) * h],
        );
        let last = t + 1 == tl;
        let (ch, cc) = carry.split_at_mut(h);
        let d = &mut d[t * gh..(t + 1) * gh];
        if a[h + t] == 0.0 {
            // Padding: nothing reaches the gates; dh and dc pass to the step before.
            d.fill(0.0);
            for j in 0..h {
                let dh = dy[j] + rr[j] * m[j];
                ch[j] = if last { dh } else { dh + ch[j] };
                if last {
                    cc[j] = 0.0;
                }
            }
            return;
        }
        let s = &saved[row * 5 * h..(row + 1) * 5 * h];
        let cp = if t > 0 {
            &saved[((row - 1) * 5 + 4) * h..row * 5 * h]
        } else {
            initial_state(a, h, tl).1
        };
        let (di, rest) = d.split_at_mut(h);
        let (df, rest) = rest.split_at_mut(h);
        let (dg, dout) = rest.split_at_mut(h);
        let (di, df, dg, dout) = (&mut di[..h], &mut df[..h], &mut dg[..h], &mut dout[..h]);
        let (ig, fg, gg, og, c) = (
            gate(s, 0, h),
            gate(s, 1, h),
            gate(s, 2, h),
            gate(s, 3, h),
            gate(s, 4, h),
        );
        let (ch, cc, cp) = (&mut ch[..h], &mut cc[..h], &cp[..h]);
        for j in 0..h {
            let (ch_in, cc_in) = if last { (0.0, 0.0) } else { (ch[j], cc[j]) };
            let dh = dy[j] + rr[j] * m[j] + ch_in;
            let tc = M::tanh(c[j]);
            let dc = cc_in + dh * og[j] * (1.0 - tc * tc);
            di[j] = dc * gg[j] * ig[j] * (1.0 - ig[j]);
            df[j] = dc * cp[j] * fg[j] * (1.0 - fg[j]);
            dg[j] = dc * ig[j] * (1.0 - gg[j] * gg[j]);
            dout[j] = dh * tc * og[j] * (1.0 - og[j]);
            ch[j] = 0.0;
            cc[j] = dc * fg[j];
        }
    }
}

impl PerSeq<3> for Step<'_, GruBwd> {
    #[inline(always)]
    fn run<M: Twin>(&self, n: usize, [dxp, drec, carry]: [&mut [f32]; 3]) {
        let r = self.r;
        let (dhs, saved, aux, rec) = (self.x, self.y, self.aux, self.rec);
        let (tl, h, t) = (r.steps, r.hidden, r.t);
        let gh = 3 * h;
        let row = n * tl + t;
        let a = aux_row(aux, r, n);
        let (m, rr, dy) = (
            &a[..h],
            &rec[n * h..(n + 1) * h],
            &dhs[row * h..(row + 1) * h],
        );
        let last = t + 1 == tl;
        let carry = &mut carry[..h];
        let dxp = &mut dxp[t * gh..(t + 1) * gh];
        let drec = &mut drec[t * gh..(t + 1) * gh];
        if a[h + t] == 0.0 {
            dxp.fill(0.0);
            drec.fill(0.0);
            for j in 0..h {
                let c_in = if last { 0.0 } else { carry[j] };
                carry[j] = dy[j] + c_in + rr[j] * m[j];
            }
            return;
        }
        let s = &saved[row * 5 * h..(row + 1) * 5 * h];
        let (xr, rest) = dxp.split_at_mut(h);
        let (xz, xn) = rest.split_at_mut(h);
        let (rr_, rest) = drec.split_at_mut(h);
        let (rz, rn) = rest.split_at_mut(h);
        for j in 0..h {
            let c_in = if last { 0.0 } else { carry[j] };
            let dh = dy[j] + c_in + rr[j] * m[j];
            let (rg, z, nn, hn, hp) = (s[j], s[h + j], s[2 * h + j], s[3 * h + j], s[4 * h + j]);
            let dnp = dh * (1.0 - z) * (1.0 - nn * nn);
            let daz = dh * (hp - nn) * z * (1.0 - z);
            let dar = dnp * hn * rg * (1.0 - rg);
            (xr[j], xz[j], xn[j]) = (dar, daz, dnp);
            (rr_[j], rz[j], rn[j]) = (dar, daz, dnp * rg);
            carry[j] = dh * z;
        }
    }
}

/// [`crate::kernels::Kernel::LstmStep`] (reference).
pub fn lstm_step(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Reference, LstmFwd, 3>(p, ins, outs, [tl * h, tl * 5 * h, tl * h], None)
}
/// [`crate::kernels::Kernel::LstmStep`] (fast: the recurrent product by `gemm`).
pub fn lstm_step_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Fast, LstmFwd, 3>(p, ins, outs, [tl * h, tl * 5 * h, tl * h], None)
}
/// [`crate::kernels::Kernel::GruStep`] (reference).
pub fn gru_step(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Reference, GruFwd, 3>(p, ins, outs, [tl * h, tl * 5 * h, tl * h], None)
}
/// [`crate::kernels::Kernel::GruStep`] (fast).
pub fn gru_step_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Fast, GruFwd, 3>(p, ins, outs, [tl * h, tl * 5 * h, tl * h], None)
}
/// [`crate::kernels::Kernel::LstmStepBwd`] (reference).
pub fn lstm_step_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Reference, LstmBwd, 2>(p, ins, outs, [tl * 4 * h, 2 * h], Some(0))
}
/// [`crate::kernels::Kernel::LstmStepBwd`] (fast).
pub fn lstm_step_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Fast, LstmBwd, 2>(p, ins, outs, [tl * 4 * h, 2 * h], Some(0))
}
/// [`crate::kernels::Kernel::GruStepBwd`] (reference).
pub fn gru_step_bwd(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Reference, GruBwd, 3>(p, ins, outs, [tl * 3 * h, tl * 3 * h, h], Some(1))
}
/// [`crate::kernels::Kernel::GruStepBwd`] (fast).
pub fn gru_step_bwd_fast(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (tl, h) = (r.steps, r.hidden);
    run_step::<Fast, GruBwd, 3>(p, ins, outs, [tl * 3 * h, tl * 3 * h, h], Some(1))
}

/// [`crate::kernels::Kernel::RnnBiasGrad`]: `ins = [dxp, drec]`, `outs = [dbiases [2, G·H]]`,
/// rows in order.
pub fn rnn_bias_grad(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (rows, gh) = (r.batch * r.steps, r.gates * r.hidden);
    // Row by row, each column summed in row order (the WGSL kernel's order per column).
    let (db_ih, db_hh) = outs[0][..2 * gh].split_at_mut(gh);
    for (src, acc) in [(ins[0], db_ih), (ins[1], db_hh)] {
        acc.fill(0.0);
        for m in 0..rows {
            for (a, v) in acc.iter_mut().zip(&src[m * gh..(m + 1) * gh]) {
                *a += v;
            }
        }
    }
}

/// [`crate::kernels::Kernel::RnnStateGrad`]: `ins = [drec, W_hh, aux, carry]`,
/// `outs = [dstate [N, S]]`: `dh_{-1}[n, j] = carry_h[n, j] + m_j·Σ_k drec[n, 0, k]·W[j, k]`
/// (k in order), and for the LSTM `dc_{-1} = carry_c`.
pub fn rnn_state_grad(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let r = RnnParams::from_words(p);
    let (nb, tl, h, gh, sw) = (
        r.batch,
        r.steps,
        r.hidden,
        r.gates * r.hidden,
        r.state_width(),
    );
    let (drec, w_hh, aux, carry) = (ins[0], ins[1], ins[2], ins[3]);
    for n in 0..nb {
        let a = aux_row(aux, &r, n);
        let d0 = &drec[n * tl * gh..(n * tl + 1) * gh];
        for q in 0..sw {
            let mut v = carry[n * sw + q];
            if q < h {
                let mut acc = 0f32;
                for (k, &dk) in d0.iter().enumerate() {
                    acc += dk * w_hh[q * gh + k];
                }
                v += acc * a[q];
            }
            outs[0][n * sw + q] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// exp_fast against f64's exp over the clamped range (relative error), its clamping at
    /// the ends, and NaN; the fast tanh and sigmoid against f64 (absolute error).
    #[test]
    fn fast_nonlinearities_match_f64() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.5 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            worst = worst.max(((exp_fast(x) as f64) - want).abs() / want);
        }
        assert!(worst < 4e-7, "exp_fast: relative error {worst}");
        assert_eq!(exp_fast(0.0), 1.0);
        assert_eq!((exp_fast(-1e4), exp_fast(1e4)), (0.0, f32::INFINITY));
        // Saturated gates are exactly 0 and 1, as with libm (a tiny nonzero value times a
        // huge input would otherwise reach the gradients).
        assert_eq!((Fast::sigm(-100.0), Fast::sigm(100.0)), (0.0, 1.0));
        assert_eq!((sigm(-100.0), sigm(100.0)), (0.0, 1.0));
        assert!(exp_fast(f32::NAN).is_nan());
        for i in 0..=40_000 {
            let x = -20.0 + 40.0 * i as f32 / 40_000.0;
            let t = (x as f64).tanh();
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((Fast::tanh(x) as f64 - t).abs() < 4e-7, "tanh({x})");
            assert!((Fast::sigm(x) as f64 - s).abs() < 4e-7, "sigmoid({x})");
        }
        assert_eq!((Fast::tanh(100.0), Fast::tanh(-100.0)), (1.0, -1.0));
        assert!(Fast::tanh(f32::NAN).is_nan() && Fast::sigm(f32::NAN).is_nan());
    }
}
