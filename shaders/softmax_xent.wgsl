// Fused softmax cross-entropy, its gradient, and per-row metrics. One invocation per row.
//   p = softmax(z),  nll_i = logsumexp(z_i) - z_i[y_i]
//          computed as ln Σ_c exp(z_ic - mx) - (z_i[y_i] - mx), mx = max_c z_ic: the max is
//          never added back, so [1e8, 1e8] gives ln 2 rather than 1e8 - 1e8 = 0.
//   Plain (ε = 0, no class weights): loss_i = nll_i, dz = S·g_i·(p - onehot(y)).
//   General (PyTorch's CrossEntropyLoss with label_smoothing ε and weight w):
//     loss_i = (1-ε)·w_y·nll_i + (ε/C)·Σ_c w_c·(ln s - (z_c - mx)),
//     dz_j = S·g_i·((1-ε)·w_y·(p_j - [j = y]) + (ε/C)·(W·p_j - w_j)),  W = Σ_c w_c.
//   S = the loss scale of mixed precision (amp[0], read when G.flags has MIXED = 2; else 1);
//   g_i = s_i / D, the row's gradient factor (the session computes D, the batch's weight).
// in0 = logits [M, C], in1 = label rows [M, L] = (class index as f32, .., s_i, g_i),
// in2 = amp state, in3 = class weights [C] (read when p4 = 1);
// out0 = dlogits [M, C], out1 = rowstats [M, 3] = (s_i·loss_i, correct_i, s_i·w_y).
// correct_i = 1 when the first maximal logit is at y_i and loss_i is finite. A label that
// is not an integer in [0, C) (the session refuses these before upload) gives loss_i = NaN
// and a zero gradient row; nothing is read or written outside row i.
//   p0 = M, p1 = C, p2 = L, p3 = ε, p4 = weighted
@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    let M = pu(0u);
    let C = pu(1u);
    let L = pu(2u);
    let eps = pf(3u);
    let weighted = pu(4u) == 1u;
    if (r >= M) { return; }
    let yf = in1[r * L];
    let sw = in1[r * L + L - 2u];
    let scale = in1[r * L + L - 1u] * select(1.0, in2[0], (G.flags & 2u) != 0u);
    let base = r * C;
    var mx = in0[base];
    var arg = 0u;
    for (var c = 1u; c < C; c++) {
        let z = in0[base + c];
        if (z > mx) { mx = z; arg = c; }
    }
    var s = 0.0;
    for (var c = 0u; c < C; c++) { s += exp(in0[base + c] - mx); }
    // In range; NaN and infinities by a bit test (WGSL lets compilers assume floats are
    // finite, so a comparison alone may not catch NaN).
    let finite = (bitcast<u32>(yf) & 0x7F800000u) != 0x7F800000u;
    if (!finite || !(yf >= 0.0 && yf < f32(C)) || yf != floor(yf)) {
        for (var c = 0u; c < C; c++) { out0[base + c] = 0.0; }
        out1[3u * r] = bitcast<f32>(0x7FC00000u);
        out1[3u * r + 1u] = 0.0;
        out1[3u * r + 2u] = sw;
        return;
    }
    let y = u32(yf);
    var loss = 0.0;
    var wy = 1.0;
    if (eps == 0.0 && !weighted) {
        for (var c = 0u; c < C; c++) {
            let p = exp(in0[base + c] - mx) / s;
            out0[base + c] = scale * (p - select(0.0, 1.0, c == y));
        }
        loss = log(s) - (in0[base + y] - mx);
    } else {
        if (weighted) { wy = in3[y]; }
        var W = 0.0;
        var wz = 0.0;
        for (var c = 0u; c < C; c++) {
            var wc = 1.0;
            if (weighted) { wc = in3[c]; }
            W += wc;
            wz += wc * (in0[base + c] - mx);
        }
        let ls = log(s);
        let k = eps / f32(C);
        for (var c = 0u; c < C; c++) {
            var wc = 1.0;
            if (weighted) { wc = in3[c]; }
            let p = exp(in0[base + c] - mx) / s;
            let hard = (1.0 - eps) * wy * (p - select(0.0, 1.0, c == y));
            out0[base + c] = scale * (hard + k * (W * p - wc));
        }
        loss = (1.0 - eps) * wy * (ls - (in0[base + y] - mx)) + k * (W * ls - wz);
    }
    out1[3u * r] = sw * loss;
    // A row whose loss is not finite (a NaN or infinite logit) is never counted correct.
    let ok = (bitcast<u32>(loss) & 0x7F800000u) != 0x7F800000u;
    out1[3u * r + 1u] = select(0.0, 1.0, arg == y && ok);
    out1[3u * r + 2u] = sw * wy;
}

// Adds a batch's row statistics to the device-side accumulator, rows in order:
// acc = (Σ s·loss, Σ metric, Σ rows, steps, Σ weight). A single invocation: deterministic.
// in0 = rowstats [M, 3]; out0 = acc [5].   p0 = M
@compute @workgroup_size(1)
fn metrics_accum() {
    let M = pu(0u);
    var l = 0.0;
    var c = 0.0;
    var w = 0.0;
    for (var r0 = 0u; r0 < M; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < M) { l += in0[3u * r]; c += in0[3u * r + 1u]; w += in0[3u * r + 2u]; }
        }
    }
    out0[0] += l;
    out0[1] += c;
    out0[2] += f32(M);
    out0[3] += 1.0;
    out0[4] += w;
}
