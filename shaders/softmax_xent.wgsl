// Fused softmax cross-entropy, its gradient, and per-row metrics. One invocation per row.
//   p = softmax(z),  loss_i = logsumexp(z_i) - z_i[y_i]
//          computed as ln Σ_c exp(z_ic - mx) - (z_i[y_i] - mx), mx = max_c z_ic: the max is
//          never added back, so [1e8, 1e8] gives ln 2 rather than 1e8 - 1e8 = 0,
//   dz = scale · (p - onehot(y)),  scale = S/m for a mean over the batch, S the loss
//   scale of mixed precision (amp[0], read when G.flags has MIXED = 2; else S = 1).
// in0 = logits [M, C], in1 = labels [M] (class index as f32), in2 = amp state;
// out0 = dlogits [M, C], out1 = rowstats [M, 2] = (loss_i, correct_i).
// correct_i = 1 when the first maximal logit is at y_i and loss_i is finite. A label that
// is not an integer in [0, C) (the
// session refuses these before upload) gives loss_i = NaN and a zero gradient row; nothing
// is read or written outside row i.   p0 = M, p1 = C, p2 = scale
@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    let M = pu(0u);
    let C = pu(1u);
    if (r >= M) { return; }
    let scale = pf(2u) * select(1.0, in2[0], (G.flags & 2u) != 0u);
    let yf = in1[r];
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
        out1[2u * r] = bitcast<f32>(0x7FC00000u);
        out1[2u * r + 1u] = 0.0;
        return;
    }
    let y = u32(yf);
    for (var c = 0u; c < C; c++) {
        let p = exp(in0[base + c] - mx) / s;
        out0[base + c] = scale * (p - select(0.0, 1.0, c == y));
    }
    let loss = log(s) - (in0[base + y] - mx);
    out1[2u * r] = loss;
    // A row whose loss is not finite (a NaN or infinite logit) is never counted correct.
    let ok = (bitcast<u32>(loss) & 0x7F800000u) != 0x7F800000u;
    out1[2u * r + 1u] = select(0.0, 1.0, arg == y && ok);
}

// Adds a batch's row statistics to the device-side accumulator, rows in order:
// acc = (Σ loss, Σ correct, Σ rows, steps). A single invocation: deterministic.
// in0 = rowstats [M, 2]; out0 = acc [4].   p0 = M
@compute @workgroup_size(1)
fn metrics_accum() {
    let M = pu(0u);
    var l = 0.0;
    var c = 0.0;
    for (var r0 = 0u; r0 < M; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < M) { l += in0[2u * r]; c += in0[2u * r + 1u]; }
        }
    }
    out0[0] += l;
    out0[1] += c;
    out0[2] += f32(M);
    out0[3] += 1.0;
}
