// The losses other than softmax cross-entropy: binary cross-entropy with logits and the
// regression losses. One invocation per row. Every kernel reads label rows
// in1 [M, L] = (targets.., s_i, g_i): s_i the sample weight, g_i = s_i / D the row's
// gradient factor (D the batch's weight total, computed by the session). S is the loss
// scale of mixed precision (amp[0] = in2[0], read when G.flags has MIXED = 2; else 1).
// out1 = rowstats [M, 3] = (s_i·loss_i, metric_i, s_i). An invalid target gives a NaN loss
// and a zero gradient row; nothing is read or written outside row i.

fn is_finite(x: f32) -> bool {
    // A bit test: WGSL lets compilers assume floats are finite.
    return (bitcast<u32>(x) & 0x7F800000u) != 0x7F800000u;
}

// log(1 + x) accurate for small x (WGSL has no log1p): Goldberg's trick, exact in the
// rounding of u = 1 + x.
fn log1p_(x: f32) -> f32 {
    let u = 1.0 + x;
    if (u == 1.0) { return x; }
    return log(u) * (x / (u - 1.0));
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for every finite x.
fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log1p_(exp(-abs(x)));
}

// σ(x) without overflow: e^x is only taken for x < 0.
fn sigmoid_(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

// A row whose target is invalid: zero gradient over its n outputs, NaN loss, metric 0.
fn invalid_row(r: u32, n: u32, sw: f32) {
    for (var c = 0u; c < n; c++) { out0[r * n + c] = 0.0; }
    out1[3u * r] = bitcast<f32>(0x7FC00000u);
    out1[3u * r + 1u] = 0.0;
    out1[3u * r + 2u] = sw;
}

// PyTorch's BCEWithLogitsLoss(pos_weight), per element:
//   l = p_c·t·softplus(-z) + (1 - t)·softplus(z),
//   dz = S·(g_i/K)·(σ(z)·(p_c·t + 1 - t) - p_c·t).
// metric_i = the fraction of the K outputs with [z > 0] = [t > 0.5].
// in0 = z [M, K], in1 = label rows [M, K + 2], in2 = amp, in3 = pos_weight [K] (p3 = 1);
// out0 = dz [M, K].   p0 = M, p1 = K, p2 = L, p3 = pos_weighted
@compute @workgroup_size(64)
fn bce_logits(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    let M = pu(0u);
    let K = pu(1u);
    let L = pu(2u);
    let weighted = pu(3u) == 1u;
    if (r >= M) { return; }
    let sw = in1[r * L + L - 2u];
    let scale = in1[r * L + L - 1u] * select(1.0, in2[0], (G.flags & 2u) != 0u);
    let per = scale / f32(K);
    var loss = 0.0;
    var ok = 0.0;
    var bad = false;
    for (var c = 0u; c < K; c++) {
        let t = in1[r * L + c];
        let z = in0[r * K + c];
        if (!is_finite(t) || !(t >= 0.0 && t <= 1.0)) { bad = true; }
        var pw = 1.0;
        if (weighted) { pw = in3[c]; }
        loss += pw * t * softplus(-z) + (1.0 - t) * softplus(z);
        out0[r * K + c] = per * (sigmoid_(z) * (pw * t + 1.0 - t) - pw * t);
        ok += select(0.0, 1.0, (z > 0.0) == (t > 0.5));
    }
    if (bad) {
        invalid_row(r, K, sw);
        return;
    }
    out1[3u * r] = sw * (loss / f32(K));
    out1[3u * r + 1u] = select(0.0, ok / f32(K), is_finite(loss));
    out1[3u * r + 2u] = sw;
}

// PyTorch's MSELoss (p3 = 0), L1Loss (1) and HuberLoss(delta = p4) (2), per element with
// d = z - t: l = d², |d|, or d²/2 when |d| < δ else δ·(|d| - δ/2); dl = 2d, sign(d), or d
// when |d| < δ else δ·sign(d); dz = S·(g_i/T)·dl. metric_i = mean_t |d|.
// in0 = z [M, T], in1 = label rows [M, T + 2], in2 = amp; out0 = dz [M, T].
//   p0 = M, p1 = T, p2 = L, p3 = kind, p4 = δ
@compute @workgroup_size(64)
fn regression_loss(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    let M = pu(0u);
    let T = pu(1u);
    let L = pu(2u);
    let kind = pu(3u);
    let delta = pf(4u);
    if (r >= M) { return; }
    let sw = in1[r * L + L - 2u];
    let scale = in1[r * L + L - 1u] * select(1.0, in2[0], (G.flags & 2u) != 0u);
    let per = scale / f32(T);
    var loss = 0.0;
    var abs_err = 0.0;
    var bad = false;
    for (var c = 0u; c < T; c++) {
        let t = in1[r * L + c];
        if (!is_finite(t)) { bad = true; }
        let d = in0[r * T + c] - t;
        let a = abs(d);
        var l = 0.0;
        var dl = 0.0;
        if (kind == 0u) {
            l = d * d;
            dl = 2.0 * d;
        } else if (kind == 1u) {
            l = a;
            dl = sign(d);
        } else if (a < delta) {
            l = 0.5 * d * d;
            dl = d;
        } else {
            l = delta * (a - 0.5 * delta);
            dl = delta * sign(d);
        }
        loss += l;
        abs_err += a;
        out0[r * T + c] = per * dl;
    }
    if (bad) {
        invalid_row(r, T, sw);
        return;
    }
    out1[3u * r] = sw * (loss / f32(T));
    out1[3u * r + 1u] = abs_err / f32(T);
    out1[3u * r + 2u] = sw;
}
