//! Recurrent layers (shaders/rnn.wgsl): the mask-and-flags kernel, every LSTM and GRU step
//! forward and backward, the bias gradients and the time-shared input dropout, each
//! against its CPU reference twin (fast CPU and GPU); the steps also against PyTorch's
//! cell equations written out by hand in f64.

use super::*;
use shadeprop::kernels::dropout::DropoutParams;
use shadeprop::kernels::elementwise::SliceParams;
use shadeprop::kernels::rnn::RnnParams;
use shadeprop::rng::dropout_threshold;

fn params(n: usize, t_len: usize, h: usize, gates: usize) -> RnnParams {
    RnnParams {
        batch: n,
        steps: t_len,
        hidden: h,
        gates,
        ..Default::default()
    }
}

/// aux `[N, 3H + T]`: a recurrent mask of 0 and 1/(1 − 0.3) values, step flags with
/// sequence n padded from step `T − n mod 3` on (so some sequences have trailing
/// padding), and an initial state (h, c) in [−1, 1) when `state`, else zeros.
fn aux(n: usize, t_len: usize, h: usize, state: bool) -> Vec<f32> {
    let r = rand_vec(401, n * h);
    let s0 = rand_vec(406, n * 2 * h);
    let mut a = vec![];
    for s in 0..n {
        for j in 0..h {
            a.push(if r[s * h + j] > -0.4 { 1.0 / 0.7 } else { 0.0 });
        }
        for t in 0..t_len {
            a.push(if t + s % 3 < t_len { 1.0 } else { 0.0 });
        }
        for q in 0..2 * h {
            a.push(if state { s0[s * 2 * h + q] } else { 0.0 });
        }
    }
    a
}

/// The width of an aux row.
fn aw(t_len: usize, h: usize) -> usize {
    3 * h + t_len
}

/// Run (and check on every backend) all T steps forward, then all T backward (and, with
/// an initial `state`, its gradient); returns the reference's forward outputs (hs, saved,
/// hprev) and backward outputs (with the state's gradient last).
fn unrolled(
    gs: &mut [Gpu],
    (n, t_len, h): (usize, usize, usize),
    lstm: bool,
    state: bool,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let gates = if lstm { 4 } else { 3 };
    let gh = gates * h;
    let xp = rand_vec(402, n * t_len * gh);
    let w = rand_vec(403, h * gh);
    let b: Vec<f32> = rand_vec(404, 2 * gh).iter().map(|v| v * 0.5).collect();
    let a = aux(n, t_len, h, state);
    let params = |n, t_len, h, gates| RnnParams {
        state,
        ..params(n, t_len, h, gates)
    };
    let (fwd, bwd) = if lstm {
        (Kernel::LstmStep, Kernel::LstmStepBwd)
    } else {
        (Kernel::GruStep, Kernel::GruStepBwd)
    };
    let mut outs = vec![
        zeros(n * t_len * h),
        zeros(n * t_len * 5 * h),
        zeros(n * t_len * h),
    ];
    for t in 0..t_len {
        let p = RnnParams {
            t,
            ..params(n, t_len, h, gates)
        };
        outs = Case::new(fwd, p)
            .ins([xp.clone(), w.clone(), b.clone(), a.clone()])
            .outs(outs)
            .tol(1e-5, 1e-4)
            .check(gs);
    }
    let dy = rand_vec(405, n * t_len * h);
    let carry = if lstm { 2 * n * h } else { n * h };
    let mut bouts = if lstm {
        vec![zeros(n * t_len * gh), zeros(carry)]
    } else {
        vec![zeros(n * t_len * gh), zeros(n * t_len * gh), zeros(carry)]
    };
    for t in (0..t_len).rev() {
        let p = RnnParams {
            t,
            ..params(n, t_len, h, gates)
        };
        bouts = Case::new(bwd, p)
            .ins([dy.clone(), w.clone(), outs[1].clone(), a.clone()])
            .outs(bouts)
            .tol(1e-5, 1e-4)
            .check(gs);
    }
    let drec = if lstm { &bouts[0] } else { &bouts[1] };
    Case::new(Kernel::RnnBiasGrad, params(n, t_len, h, gates))
        .ins([bouts[0].clone(), drec.clone()])
        .outs([zeros(2 * gh)])
        .tol(1e-5, 1e-4)
        .check(gs);
    if state {
        let sw = if lstm { 2 * h } else { h };
        let carry = bouts.last().unwrap().clone();
        let ds = Case::new(Kernel::RnnStateGrad, params(n, t_len, h, gates))
            .ins([drec.clone(), w.clone(), a.clone(), carry])
            .outs([rand_vec(412, n * sw)])
            .tol(1e-5, 1e-4)
            .check(gs)
            .remove(0);
        bouts.push(ds);
    }
    (outs, bouts)
}

#[test]
fn lstm_and_gru_steps_match_the_cpu() {
    let mut gs = gpus();
    // H = 300: the backward's recurrent sum runs over G·H = 1,200 values per invocation.
    for shape in [(1usize, 1usize, 1usize), (3, 4, 5), (7, 6, 33), (2, 3, 300)] {
        for state in [false, true] {
            unrolled(&mut gs, shape, true, state);
            unrolled(&mut gs, shape, false, state);
        }
    }
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// PyTorch's LSTM (or GRU) over one sequence in f64, by its documented equations, from
/// the initial state `s0` (h_0, then c_0), with the recurrent mask m on the state entering
/// W_hh and padded steps carrying the state.
#[allow(clippy::too_many_arguments)]
fn cell_formula(
    lstm: bool,
    xp: &[f64],
    w: &[f64],
    b: &[f64],
    m: &[f64],
    flags: &[f64],
    s0: &[f64],
    (t_len, h): (usize, usize),
) -> Vec<f64> {
    let gh = if lstm { 4 } else { 3 } * h;
    let (mut hs, mut c) = (s0[..h].to_vec(), s0[h..2 * h].to_vec());
    let mut out = vec![];
    for t in 0..t_len {
        if flags[t] == 0.0 {
            out.extend_from_slice(&hs);
            continue;
        }
        let hm: Vec<f64> = hs.iter().zip(m).map(|(a, b)| a * b).collect();
        let rec: Vec<f64> = (0..gh)
            .map(|q| (0..h).map(|k| hm[k] * w[k * gh + q]).sum())
            .collect();
        let x = &xp[t * gh..(t + 1) * gh];
        let mut hn = vec![0.0; h];
        for j in 0..h {
            if lstm {
                let a = |q: usize| x[q * h + j] + b[q * h + j] + b[gh + q * h + j] + rec[q * h + j];
                let (i, f, g, o) = (sig(a(0)), sig(a(1)), a(2).tanh(), sig(a(3)));
                c[j] = f * c[j] + i * g;
                hn[j] = o * c[j].tanh();
            } else {
                let r = sig(x[j] + b[j] + b[gh + j] + rec[j]);
                let z = sig(x[h + j] + b[h + j] + b[gh + h + j] + rec[h + j]);
                let nn =
                    (x[2 * h + j] + b[2 * h + j] + r * (rec[2 * h + j] + b[gh + 2 * h + j])).tanh();
                hn[j] = (1.0 - z) * nn + z * hs[j];
            }
        }
        hs = hn;
        out.extend_from_slice(&hs);
    }
    out
}

/// The unrolled steps give PyTorch's equations (forward), and the backward through time
/// is the derivative of `Σ dy·hs` by central differences of those equations, for the
/// input projection, W_hh and a given initial state (masked, padded sequences included).
#[test]
fn lstm_and_gru_are_their_equations_and_derivatives() {
    let mut gs = gpus();
    for (lstm, state) in [(true, false), (false, false), (true, true), (false, true)] {
        let (n, t_len, h) = (3usize, 5usize, 4usize);
        let gates = if lstm { 4 } else { 3 };
        let gh = gates * h;
        let (outs, bouts) = unrolled(&mut gs, (n, t_len, h), lstm, state);
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let xp = f64s(&rand_vec(402, n * t_len * gh));
        let w = f64s(&rand_vec(403, h * gh));
        let b: Vec<f64> = f64s(&rand_vec(404, 2 * gh))
            .iter()
            .map(|v| v * 0.5)
            .collect();
        let a = f64s(&aux(n, t_len, h, state));
        let dy = f64s(&rand_vec(405, n * t_len * h));
        let w_a = aw(t_len, h);
        let seq_from = |s: usize, xp: &[f64], w: &[f64], s0: &[f64]| {
            let row = &a[s * w_a..(s + 1) * w_a];
            cell_formula(
                lstm,
                &xp[s * t_len * gh..(s + 1) * t_len * gh],
                w,
                &b,
                &row[..h],
                &row[h..h + t_len],
                s0,
                (t_len, h),
            )
        };
        let seq = |s: usize, xp: &[f64], w: &[f64]| {
            seq_from(s, xp, w, &a[s * w_a + h + t_len..(s + 1) * w_a])
        };
        let want: Vec<f32> = (0..n)
            .flat_map(|s| seq(s, &xp, &w))
            .map(|v| v as f32)
            .collect();
        assert_close(&format!("lstm={lstm} forward"), &outs[0], &want, 1e-5, 1e-4);
        let loss = |xp: &[f64], w: &[f64]| -> f64 {
            (0..n)
                .flat_map(|s| seq(s, xp, w))
                .zip(&dy)
                .map(|(v, d)| v * d)
                .sum()
        };
        // d xp (the first backward output) and dW_hh = hprevᵀ·drec.
        let eps = 1e-5;
        let (mut fd, mut an) = (vec![], vec![]);
        for i in (0..xp.len()).step_by(7) {
            let (mut p, mut m) = (xp.clone(), xp.clone());
            p[i] += eps;
            m[i] -= eps;
            fd.push(((loss(&p, &w) - loss(&m, &w)) / (2.0 * eps)) as f32);
            an.push(bouts[0][i]);
        }
        assert_close(
            &format!("lstm={lstm} dxp vs finite differences"),
            &an,
            &fd,
            1e-4,
            1e-3,
        );
        let drec = if lstm { &bouts[0] } else { &bouts[1] };
        let hprev = &outs[2];
        let (mut fd, mut an) = (vec![], vec![]);
        for i in (0..w.len()).step_by(5) {
            let (k, q) = (i / gh, i % gh);
            let dw: f32 = (0..n * t_len)
                .map(|r| hprev[r * h + k] * drec[r * gh + q])
                .sum();
            let (mut p, mut m) = (w.clone(), w.clone());
            p[i] += eps;
            m[i] -= eps;
            fd.push(((loss(&xp, &p) - loss(&xp, &m)) / (2.0 * eps)) as f32);
            an.push(dw);
        }
        assert_close(
            &format!("lstm={lstm} dW_hh vs finite differences"),
            &an,
            &fd,
            1e-4,
            1e-3,
        );
        if state {
            // dh_0 (and dc_0): the kernel's gradient of the initial state of every
            // sequence against central differences (the GRU's c slot is not read).
            let sw = if lstm { 2 * h } else { h };
            let ds = bouts.last().unwrap();
            let (mut fd, mut an) = (vec![], vec![]);
            for s in 0..n {
                let s0: Vec<f64> = a[s * w_a + h + t_len..(s + 1) * w_a].to_vec();
                for q in 0..sw {
                    let (mut p, mut m) = (s0.clone(), s0.clone());
                    p[q] += eps;
                    m[q] -= eps;
                    let l = |v: &[f64]| -> f64 {
                        seq_from(s, &xp, &w, v)
                            .iter()
                            .zip(&dy[s * t_len * h..])
                            .map(|(v, d)| v * d)
                            .sum()
                    };
                    fd.push(((l(&p) - l(&m)) / (2.0 * eps)) as f32);
                    an.push(ds[s * sw + q]);
                }
            }
            assert_close(
                &format!("lstm={lstm} initial state vs finite differences"),
                &an,
                &fd,
                1e-4,
                1e-3,
            );
        }
    }
}

/// The recurrent-dropout mask: bit-identical on every backend; each sequence's row is one
/// mask (what every step then uses: `hprev[n, t+1] = h_t·m[n]`), rows differ between
/// sequences and between training steps; about p of the units dropped; the flags mark
/// exactly the steps whose features all equal the mask value.
#[test]
fn recurrent_mask_is_per_sequence_and_per_training_step() {
    let mut gs = gpus();
    let (n, t_len, h, f) = (64usize, 4usize, 50usize, 3usize);
    let mut x = rand_vec(406, n * t_len * f);
    // Sequence s is padded (every feature −1) from step T − s mod 4 on.
    for s in 0..n {
        for t in t_len - s % 4..t_len {
            x[(s * t_len + t) * f..(s * t_len + t + 1) * f].fill(-1.0);
        }
    }
    let p = RnnParams {
        batch: n,
        steps: t_len,
        hidden: h,
        gates: 4,
        features: f,
        threshold: dropout_threshold(0.25),
        scale: 1.0 / 0.75,
        stream: 9,
        masking: true,
        mask_value: -1.0,
        ..Default::default()
    };
    let a = Case::new(Kernel::RnnAux, p)
        .ins([x.clone(), x.clone()])
        .outs([rand_vec(413, n * aw(t_len, h))])
        .check(&mut gs)
        .remove(0);
    let row = |a: &[f32], s: usize| a[s * aw(t_len, h)..s * aw(t_len, h) + h].to_vec();
    // No state given: the initial state's slots are zero.
    assert!((0..n).all(|s| {
        a[s * aw(t_len, h) + h + t_len..(s + 1) * aw(t_len, h)]
            .iter()
            .all(|&v| v == 0.0)
    }));
    let dropped = (0..n)
        .flat_map(|s| row(&a, s))
        .filter(|&v| v == 0.0)
        .count();
    let frac = dropped as f64 / (n * h) as f64;
    assert!(
        (frac - 0.25).abs() < 0.03,
        "dropped fraction {frac}, want about 0.25"
    );
    assert!(
        (0..n)
            .flat_map(|s| row(&a, s))
            .all(|v| v == 0.0 || v == 1.0 / 0.75),
        "mask values are 0 or 1/(1 − p)"
    );
    assert!(
        (1..n).all(|s| row(&a, s) != row(&a, 0)),
        "each sequence has its own mask"
    );
    for s in 0..n {
        for t in 0..t_len {
            let want = if t + s % 4 < t_len { 1.0 } else { 0.0 };
            assert_eq!(
                a[s * aw(t_len, h) + h + t],
                want,
                "flag of sequence {s} step {t}"
            );
        }
    }
    // With a state (S = 2H values per sequence for the LSTM), aux carries it after the
    // flags; the mask and flags are as before.
    let st = rand_vec(414, n * 2 * h);
    let with_state = Case::new(Kernel::RnnAux, RnnParams { state: true, ..p })
        .ins([x.clone(), st.clone()])
        .outs([zeros(n * aw(t_len, h))])
        .check(&mut gs)
        .remove(0);
    for s in 0..n {
        let r = &with_state[s * aw(t_len, h)..(s + 1) * aw(t_len, h)];
        assert_eq!(
            &r[..h + t_len],
            &a[s * aw(t_len, h)..s * aw(t_len, h) + h + t_len]
        );
        assert_eq!(&r[h + t_len..], &st[s * 2 * h..(s + 1) * 2 * h]);
    }
    let next = Case::new(Kernel::RnnAux, p)
        .ins([x.clone(), x])
        .outs([zeros(n * aw(t_len, h))])
        .globals(Globals {
            step: g0().step + 1,
            ..g0()
        })
        .check(&mut gs)
        .remove(0);
    assert!(
        (0..n).all(|s| row(&a, s) != row(&next, s)),
        "a new mask at the next step"
    );
    // The step kernels apply the row at every step: h̃_{t-1} = h_{t-1}·m for all t.
    let xp = rand_vec(407, n * t_len * 4 * h);
    let (w, b) = (rand_vec(408, h * 4 * h), rand_vec(409, 8 * h));
    let mut outs = vec![
        zeros(n * t_len * h),
        zeros(n * t_len * 5 * h),
        zeros(n * t_len * h),
    ];
    for t in 0..t_len {
        outs = Case::new(Kernel::LstmStep, RnnParams { t, ..p })
            .ins([xp.clone(), w.clone(), b.clone(), a.clone()])
            .outs(outs)
            .tol(1e-5, 1e-4)
            .check(&mut gs);
    }
    for s in 0..n {
        let m = row(&a, s);
        for t in 1..t_len {
            for j in 0..h {
                let (hp, hv) = (
                    outs[2][(s * t_len + t) * h + j],
                    outs[0][(s * t_len + t - 1) * h + j],
                );
                assert_eq!(
                    hp,
                    hv * m[j],
                    "sequence {s} step {t} unit {j}: one mask for every step"
                );
            }
        }
    }
}

/// The time-shared input dropout: element (n, t, f) of a [N, T·F] batch is kept or
/// dropped as (n, f) is, at every step; bit-identical on every backend.
#[test]
fn input_dropout_is_shared_across_steps() {
    let mut gs = gpus();
    let (n, t_len, f) = (20usize, 7usize, 33usize);
    let x: Vec<f32> = rand_vec(410, n * t_len * f)
        .iter()
        .map(|v| v + 2.0)
        .collect();
    let p = DropoutParams {
        n: n * t_len * f,
        threshold: dropout_threshold(0.5),
        scale: 2.0,
        stream: 3,
        group: 1,
        period: f,
        row: t_len * f,
    };
    let y = Case::new(Kernel::Dropout, p)
        .ins([x])
        .outs([zeros(n * t_len * f)])
        .check(&mut gs)
        .remove(0);
    let dropped = |s: usize, t: usize| -> Vec<bool> {
        (0..f).map(|k| y[(s * t_len + t) * f + k] == 0.0).collect()
    };
    for s in 0..n {
        for t in 1..t_len {
            assert_eq!(
                dropped(s, t),
                dropped(s, 0),
                "sequence {s}: step {t} has step 0's mask"
            );
        }
    }
    assert!(
        (1..n).any(|s| dropped(s, 0) != dropped(0, 0)),
        "sequences differ"
    );
}

#[test]
fn slice_cols_and_its_adjoint_match_the_cpu() {
    let mut gs = gpus();
    for (rows, cols, start, len) in [
        (1usize, 1usize, 0usize, 1usize),
        (5, 12, 8, 4),
        (300, 700, 350, 350),
    ] {
        let p = SliceParams {
            rows,
            cols,
            start,
            len,
        };
        let x = rand_vec(411, rows * cols);
        let y = Case::new(Kernel::SliceCols, p)
            .ins([x.clone()])
            .outs([zeros(rows * len)])
            .check(&mut gs)
            .remove(0);
        let want: Vec<f32> = (0..rows)
            .flat_map(|r| x[r * cols + start..r * cols + start + len].to_vec())
            .collect();
        assert_eq!(y, want);
        let dx = Case::new(Kernel::SliceColsBwd, p)
            .ins([y])
            .outs([vec![7.0; rows * cols]])
            .check(&mut gs)
            .remove(0);
        for r in 0..rows {
            for c in 0..cols {
                let want = if c >= start && c < start + len {
                    x[r * cols + c]
                } else {
                    0.0
                };
                assert_eq!(dx[r * cols + c], want);
            }
        }
    }
}
