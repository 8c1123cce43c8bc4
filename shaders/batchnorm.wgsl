// Batch normalization per channel. The input is [M, C, S]: S = 1 for [batch, features]
// (BatchNorm1d), S = H·W for NCHW images (BatchNorm2d), statistics over the M·S values of
// each channel, summed in (m, s) order by one invocation per channel (deterministic).
// p4 = S (0 means 1).
//   mean = (1/N) Σ x,  var = (1/N) Σ (x - mean)²  (N = M·S values per channel),  x̂ = (x - mean) / sqrt(var + eps),
//   y = gamma · x̂ + beta.
// gb = [gamma(C), beta(C)]; saved = [mean(C), invstd(C)]; running = [mean(C), var(C)].
// Running statistics follow PyTorch: r := (1 - momentum) r + momentum · batch, with the
// unbiased variance var · M / (M - 1). A channel whose batch statistics are not finite (a
// NaN or infinite input: that step's update is skipped, shaders/clip.wgsl) keeps its
// running statistics, so evaluation after such a step still works.

// in0 = x, in1 = gb; out0 = y, out1 = saved, out2 = running.  p0 = M, p1 = C, p2 = eps, p3 = momentum
fn spatial() -> u32 { return max(pu(4u), 1u); }
// Element r of channel c, r = m·S + s.
fn at(r: u32, c: u32, C: u32, S: u32) -> u32 { return ((r / S) * C + c) * S + r % S; }

@compute @workgroup_size(64)
fn bn_fwd_train(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let M = pu(0u);
    let C = pu(1u);
    if (c >= C) { return; }
    let eps = pf(2u);
    let mom = pf(3u);
    let S = spatial();
    let N = M * S;
    var s = 0.0;
    for (var r0 = 0u; r0 < N; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < N) { s += in0[at(r, c, C, S)]; }
        }
    }
    let mean = s / f32(N);
    var v = 0.0;
    for (var r0 = 0u; r0 < N; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < N) { let d = in0[at(r, c, C, S)] - mean; v += d * d; }
        }
    }
    let var_b = v / f32(N);
    let invstd = 1.0 / sqrt(var_b + eps);
    let g = in1[c];
    let b = in1[C + c];
    for (var r0 = 0u; r0 < N; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < N) {
                let i = at(r, c, C, S);
                out0[i] = g * (in0[i] - mean) * invstd + b;
            }
        }
    }
    out1[c] = mean;
    out1[C + c] = invstd;
    let unbiased = select(var_b, v / f32(N - 1u), N > 1u);
    // A bit test: WGSL lets compilers assume floats are finite.
    let inf = 0x7F800000u;
    if ((bitcast<u32>(mean) & inf) != inf && (bitcast<u32>(v) & inf) != inf) {
        out2[c] = (1.0 - mom) * out2[c] + mom * mean;
        out2[C + c] = (1.0 - mom) * out2[C + c] + mom * unbiased;
    }
}

// Inference: y = gamma · (x - running_mean) / sqrt(running_var + eps) + beta.
// in0 = x, in1 = gb, in2 = running; out0 = y.  p0 = M, p1 = C, p2 = eps
@compute @workgroup_size(256)
fn bn_fwd_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let M = pu(0u);
    let C = pu(1u);
    let S = spatial();
    if (i >= M * C * S) { return; }
    let c = (i / S) % C;
    let invstd = 1.0 / sqrt(in2[C + c] + pf(2u));
    out0[i] = in1[c] * (in0[i] - in2[c]) * invstd + in1[C + c];
}

// Backward, with dx̂ = dy · gamma:
//   dbeta = Σ dy,  dgamma = Σ dy · x̂,
//   dx = (invstd / M) · (M · dx̂ - Σ dx̂ - x̂ · Σ dx̂ · x̂).
// in0 = x, in1 = dy, in2 = gb, in3 = saved; out0 = dx, out1 = dgb.  p0 = M, p1 = C
@compute @workgroup_size(64)
fn bn_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let M = pu(0u);
    let C = pu(1u);
    if (c >= C) { return; }
    let mean = in3[c];
    let invstd = in3[C + c];
    let g = in2[c];
    let S = spatial();
    let N = M * S;
    var sdy = 0.0;
    var sdyx = 0.0;
    for (var r0 = 0u; r0 < N; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < N) {
                let i = at(r, c, C, S);
                let dy = in1[i];
                let xh = (in0[i] - mean) * invstd;
                sdy += dy;
                sdyx += dy * xh;
            }
        }
    }
    let fm = f32(N);
    for (var r0 = 0u; r0 < N; r0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let r = r0 + u;
            if (r < N) {
                let i = at(r, c, C, S);
                let dy = in1[i];
                let xh = (in0[i] - mean) * invstd;
                out0[i] = (invstd / fm) * g * (fm * dy - sdy - xh * sdyx);
            }
        }
    }
    out1[c] = sdyx;
    out1[C + c] = sdy;
}
