// Recurrent layers (PyTorch's nn.LSTM and nn.GRU, batch-first), unrolled over T steps:
// the input projection of all T steps is one matmul before these kernels (xp = x·W_ih,
// [N·T, G·H], no bias); then one dispatch per step runs the recurrent matmul, the gate
// nonlinearities and the state update of every (sequence n, unit j) in one invocation;
// the backward through time is one dispatch per step in reverse. G = 4 gates for the
// LSTM (i, f, g, o), 3 for the GRU (r, z, n), in PyTorch's order and layout.
//
//   LSTM: [i f g o] = [σ σ tanh σ](xp_t + b_ih + b_hh + h̃_{t-1}·W_hh)
//         c_t = f·c_{t-1} + i·g,  h_t = o·tanh(c_t)
//   GRU:  r = σ(xp_r + b_ir + b_hr + h̃·W_hr),  z = σ(xp_z + b_iz + b_hz + h̃·W_hz)
//         hn = h̃·W_hn + b_hn,  n = tanh(xp_n + b_in + r·hn),  h_t = (1 − z)·n + z·h_{t-1}
//
// h̃_{t-1} = h_{t-1}·m is the state under the recurrent-dropout mask m (one mask per
// sequence, the same at every step: variational dropout, Gal & Ghahramani 2016; Keras'
// `recurrent_dropout`); it enters the recurrent matmul only (in the GRU's last term the
// state is unmasked, as in Keras). At a padded step (flag 0) the state is carried: h_t =
// h_{t-1}, c_t = c_{t-1}, and the step contributes no gradient to the weights.
//
// Layouts: W_hh is stored [H, G·H] (PyTorch's weight_hh [G·H, H] transposed), biases
// [2, G·H] (b_ih then b_hh), hs [N, T·H], saved [N, T, 5, H] (LSTM: i, f, g, o, c; GRU:
// r, z, n, hn, h_{t-1}), hprev [N, T, H] = h̃_{t-1} (zero at t = 0; the operand of
// dW_hh = hprevᵀ·drec), aux [N, 3H + T] = (m [H], step flags [T], h_{-1} [H], c_{-1}
// [H]): the initial state, zero unless one is given (then hprev at t = 0 is h̃_{-1}).
//
// p0 = N, p1 = T, p2 = H, p3 = G, p4 = t, p5 = F, p6 = threshold, p7 = scale bits,
// p8 = stream, p9 = masking, p10 = mask value bits, p11 = an initial state is given
// (src/kernels/rnn.rs).

// The width of an aux row.
fn aux_w(H: u32, T: u32) -> u32 { return 3u * H + T; }

// tanh without the overflow of e^{2x} for large |x|.
fn stanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

fn sigm(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

// The recurrent-dropout mask and the step flags: aux[n, j] = scale if kept else 0 (1 when
// the threshold is 0), aux[n, H + t] = 0 when masking is on and every feature of step t
// equals the mask value (Keras' Masking), else 1; then the initial state (h, and c for
// the LSTM: S = 2H or H values per row of in1) when given, else zeros.
// in0 = x [N, T·F], in1 = state [N, S] (read when p11 is set); out0 = aux [N, 3H + T]
@compute @workgroup_size(256)
fn rnn_aux(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let N = pu(0u);
    let T = pu(1u);
    let H = pu(2u);
    let W = aux_w(H, T);
    if (i >= N * W) { return; }
    let n = i / W;
    let c = i % W;
    if (c >= H + T) {
        let q = c - H - T;
        let S = select(H, 2u * H, pu(3u) == 4u);
        var v = 0.0;
        if (pu(11u) == 1u && q < S) { v = in1[n * S + q]; }
        out0[i] = v;
    } else if (c < H) {
        let r = threefry2x32(rng_key(pu(8u)), vec2<u32>(n * H + c, G.step));
        let keep = (r.x >> 8u) >= pu(6u);
        out0[i] = select(0.0, pf(7u), keep);
    } else {
        var flag = 1.0;
        if (pu(9u) == 1u) {
            let F = pu(5u);
            let o = n * T * F + (c - H) * F;
            var any = false;
            for (var f0 = 0u; f0 < F; f0 += UNROLL) {
                for (var u = 0u; u < UNROLL; u++) {
                    let f = f0 + u;
                    if (f < F && in0[o + f] != pf(10u)) { any = true; }
                }
            }
            flag = select(0.0, 1.0, any);
        }
        out0[i] = flag;
    }
}

// One LSTM step t for every (n, j).
// in0 = xp, in1 = W_hh, in2 = biases, in3 = aux; out0 = hs, out1 = saved, out2 = hprev
@compute @workgroup_size(256)
fn lstm_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let N = pu(0u);
    let T = pu(1u);
    let H = pu(2u);
    let t = pu(4u);
    if (i >= N * H) { return; }
    let n = i / H;
    let j = i % H;
    let GH = 4u * H;
    let row = n * T + t;
    let arow = n * aux_w(H, T);
    let s0 = arow + H + T;
    var h = in3[s0 + j];
    var c = in3[s0 + H + j];
    if (t > 0u) {
        h = out0[(row - 1u) * H + j];
        c = out1[((row - 1u) * 5u + 4u) * H + j];
    }
    var gates = vec4<f32>(0.0);
    if (in3[arow + H + t] != 0.0) {
        let xo = row * GH + j;
        var a = vec4<f32>(
            in0[xo] + in2[j] + in2[GH + j],
            in0[xo + H] + in2[H + j] + in2[GH + H + j],
            in0[xo + 2u * H] + in2[2u * H + j] + in2[GH + 2u * H + j],
            in0[xo + 3u * H] + in2[3u * H + j] + in2[GH + 3u * H + j]);
        if (t > 0u || pu(11u) == 1u) {
            let hp = row * H;
            for (var k0 = 0u; k0 < H; k0 += UNROLL) {
                for (var u = 0u; u < UNROLL; u++) {
                    let k = k0 + u;
                    if (k < H) {
                        let w = k * GH + j;
                        a += prev_state(t, hp, s0, arow, k) * vec4<f32>(in1[w], in1[w + H], in1[w + 2u * H], in1[w + 3u * H]);
                    }
                }
            }
        }
        gates = vec4<f32>(sigm(a.x), sigm(a.y), stanh(a.z), sigm(a.w));
        c = gates.y * c + gates.x * gates.z;
        h = gates.w * stanh(c);
    }
    let s = row * 5u * H + j;
    out1[s] = gates.x;
    out1[s + H] = gates.y;
    out1[s + 2u * H] = gates.z;
    out1[s + 3u * H] = gates.w;
    out1[s + 4u * H] = c;
    out0[row * H + j] = h;
    if (t == 0u) { out2[row * H + j] = in3[s0 + j] * in3[arow + j]; }
    if (t + 1u < T) { out2[(row + 1u) * H + j] = h * in3[arow + j]; }
}

// h̃_{t-1}[k], the operand of the recurrent matmul: hprev's row (written by the step
// before), or at t = 0 the given initial state under the mask, read from aux (hprev's
// row 0 is being written by this dispatch).
fn prev_state(t: u32, hp: u32, s0: u32, arow: u32, k: u32) -> f32 {
    if (t == 0u) { return in3[s0 + k] * in3[arow + k]; }
    return out2[hp + k];
}

// One GRU step t for every (n, j). Operands as lstm_step.
@compute @workgroup_size(256)
fn gru_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let N = pu(0u);
    let T = pu(1u);
    let H = pu(2u);
    let t = pu(4u);
    if (i >= N * H) { return; }
    let n = i / H;
    let j = i % H;
    let GH = 3u * H;
    let row = n * T + t;
    let arow = n * aux_w(H, T);
    let s0 = arow + H + T;
    var hprev = in3[s0 + j];
    if (t > 0u) { hprev = out0[(row - 1u) * H + j]; }
    var h = hprev;
    var g = vec4<f32>(0.0);
    if (in3[arow + H + t] != 0.0) {
        // a = (recurrent r, recurrent z, hn) sums, starting from the hidden-side biases.
        var a = vec3<f32>(in2[GH + j], in2[GH + H + j], in2[GH + 2u * H + j]);
        if (t > 0u || pu(11u) == 1u) {
            let hp = row * H;
            for (var k0 = 0u; k0 < H; k0 += UNROLL) {
                for (var u = 0u; u < UNROLL; u++) {
                    let k = k0 + u;
                    if (k < H) {
                        let w = k * GH + j;
                        a += prev_state(t, hp, s0, arow, k) * vec3<f32>(in1[w], in1[w + H], in1[w + 2u * H]);
                    }
                }
            }
        }
        let xo = row * GH + j;
        let r = sigm(in0[xo] + in2[j] + a.x);
        let z = sigm(in0[xo + H] + in2[H + j] + a.y);
        let nn = stanh(in0[xo + 2u * H] + in2[2u * H + j] + r * a.z);
        h = (1.0 - z) * nn + z * hprev;
        g = vec4<f32>(r, z, nn, a.z);
    }
    let s = row * 5u * H + j;
    out1[s] = g.x;
    out1[s + H] = g.y;
    out1[s + 2u * H] = g.z;
    out1[s + 3u * H] = g.w;
    out1[s + 4u * H] = hprev;
    out0[row * H + j] = h;
    if (t == 0u) { out2[row * H + j] = in3[s0 + j] * in3[arow + j]; }
    if (t + 1u < T) { out2[(row + 1u) * H + j] = h * in3[arow + j]; }
}

// The recurrent part of dh_t: m_j · Σ_k drec[n, t+1, k]·W_hh[j, k] (0 at the last step).
// drec is the output operand `d` of the backward kernels (read at the step after t).
fn rec_grad_lstm(n: u32, j: u32, t: u32, T: u32, H: u32, GH: u32) -> f32 {
    var acc = 0.0;
    if (t + 1u < T) {
        let o = (n * T + t + 1u) * GH;
        let wo = j * GH;
        for (var k0 = 0u; k0 < GH; k0 += UNROLL) {
            for (var u = 0u; u < UNROLL; u++) {
                let k = k0 + u;
                if (k < GH) { acc += out0[o + k] * in1[wo + k]; }
            }
        }
        acc *= in3[n * aux_w(H, T) + j];
    }
    return acc;
}

// The LSTM backward of step t (run for t = T−1 down to 0). The carry holds, per (n, j),
// the gradient reaching h_t past the gates (a padded step passes it on) and dc_t.
// in0 = dhs [N, T·H], in1 = W_hh, in2 = saved, in3 = aux;
// out0 = dgates [N·T, 4H] (the gradient of the pre-activations: of xp and of the
// recurrent term alike), out1 = carry [N, 2H]
@compute @workgroup_size(256)
fn lstm_step_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let N = pu(0u);
    let T = pu(1u);
    let H = pu(2u);
    let t = pu(4u);
    if (i >= N * H) { return; }
    let n = i / H;
    let j = i % H;
    let GH = 4u * H;
    let row = n * T + t;
    let co = n * 2u * H + j;
    var dh = in0[row * H + j] + rec_grad_lstm(n, j, t, T, H, GH);
    var dc = 0.0;
    if (t + 1u < T) {
        dh += out1[co];
        dc = out1[co + H];
    }
    let go = row * GH + j;
    if (in3[n * aux_w(H, T) + H + t] == 0.0) {
        out0[go] = 0.0;
        out0[go + H] = 0.0;
        out0[go + 2u * H] = 0.0;
        out0[go + 3u * H] = 0.0;
        out1[co] = dh;
        out1[co + H] = dc;
        return;
    }
    let s = row * 5u * H + j;
    let ig = in2[s];
    let fg = in2[s + H];
    let gg = in2[s + 2u * H];
    let og = in2[s + 3u * H];
    let tc = stanh(in2[s + 4u * H]);
    // c_{t-1}: the initial state's (zero unless given) at t = 0.
    var cp = in3[n * aux_w(H, T) + 2u * H + T + j];
    if (t > 0u) { cp = in2[((row - 1u) * 5u + 4u) * H + j]; }
    dc += dh * og * (1.0 - tc * tc);
    out0[go] = dc * gg * ig * (1.0 - ig);
    out0[go + H] = dc * cp * fg * (1.0 - fg);
    out0[go + 2u * H] = dc * ig * (1.0 - gg * gg);
    out0[go + 3u * H] = dh * tc * og * (1.0 - og);
    out1[co] = 0.0;
    out1[co + H] = dc * fg;
}

// The GRU backward of step t (t = T−1 down to 0).
// in0 = dhs, in1 = W_hh, in2 = saved, in3 = aux;
// out0 = dxp [N·T, 3H] (r, z, n pre-activations), out1 = drec [N·T, 3H] (r, z, hn),
// out2 = carry [N, H]
@compute @workgroup_size(256)
fn gru_step_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let N = pu(0u);
    let T = pu(1u);
    let H = pu(2u);
    let t = pu(4u);
    if (i >= N * H) { return; }
    let n = i / H;
    let j = i % H;
    let GH = 3u * H;
    let row = n * T + t;
    var dh = in0[row * H + j];
    if (t + 1u < T) {
        dh += out2[n * H + j];
        let o = (row + 1u) * GH;
        let wo = j * GH;
        var acc = 0.0;
        for (var k0 = 0u; k0 < GH; k0 += UNROLL) {
            for (var u = 0u; u < UNROLL; u++) {
                let k = k0 + u;
                if (k < GH) { acc += out1[o + k] * in1[wo + k]; }
            }
        }
        dh += acc * in3[n * aux_w(H, T) + j];
    }
    let go = row * GH + j;
    if (in3[n * aux_w(H, T) + H + t] == 0.0) {
        for (var q = 0u; q < 3u; q++) {
            out0[go + q * H] = 0.0;
            out1[go + q * H] = 0.0;
        }
        out2[n * H + j] = dh;
        return;
    }
    let s = row * 5u * H + j;
    let r = in2[s];
    let z = in2[s + H];
    let nn = in2[s + 2u * H];
    let hn = in2[s + 3u * H];
    let hp = in2[s + 4u * H];
    let dnp = dh * (1.0 - z) * (1.0 - nn * nn);
    let daz = dh * (hp - nn) * z * (1.0 - z);
    let dar = dnp * hn * r * (1.0 - r);
    out0[go] = dar;
    out0[go + H] = daz;
    out0[go + 2u * H] = dnp;
    out1[go] = dar;
    out1[go + H] = daz;
    out1[go + 2u * H] = dnp * r;
    out2[n * H + j] = dh * z;
}

// The bias gradients: dbias[c] = Σ_rows dxp[row, c] (b_ih), dbias[G·H + c] = Σ_rows
// drec[row, c] (b_hh), rows (N·T of them) in order. One invocation per column.
// in0 = dxp, in1 = drec; out0 = dbias [2, G·H]
@compute @workgroup_size(256)
fn rnn_bias_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    let R = pu(0u) * pu(1u);
    let GH = pu(3u) * pu(2u);
    if (c >= 2u * GH) { return; }
    let col = c % GH;
    var acc = 0.0;
    for (var r0 = 0u; r0 < R; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < R) {
                if (c < GH) { acc += in0[r * GH + col]; } else { acc += in1[r * GH + col]; }
            }
        }
    }
    out0[c] = acc;
}

// The gradient of a given initial state, after the backward of step 0: dh_{-1}[n, j] =
// carry_h[n, j] + m_j·Σ_k drec[n, 0, k]·W_hh[j, k] (the recurrent term of step 0, as
// rec_grad_lstm one step earlier) and, for the LSTM, dc_{-1}[n, j] = carry_c[n, j].
// in0 = drec [N·T, G·H] (the LSTM's dgates), in1 = W_hh, in2 = aux, in3 = carry [N, S];
// out0 = dstate [N, S] (S = 2H: h then c; GRU S = H)
@compute @workgroup_size(256)
fn rnn_state_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let N = pu(0u);
    let T = pu(1u);
    let H = pu(2u);
    let GH = pu(3u) * H;
    let S = select(H, 2u * H, pu(3u) == 4u);
    if (i >= N * S) { return; }
    let n = i / S;
    let q = i % S;
    var v = in3[i];
    if (q < H) {
        let o = n * T * GH;
        let wo = q * GH;
        var acc = 0.0;
        for (var k0 = 0u; k0 < GH; k0 += UNROLL) {
            for (var u = 0u; u < UNROLL; u++) {
                let k = k0 + u;
                if (k < GH) { acc += in0[o + k] * in1[wo + k]; }
            }
        }
        v += acc * in2[n * aux_w(H, T) + q];
    }
    out0[i] = v;
}
