// Layer normalization per row (PyTorch's LayerNorm over the last dimension, with a
// learnable affine): x is [M, F], statistics over the F values of each row, summed in
// index order by one invocation per row (deterministic).
//   mean = (1/F) Σ x,  var = (1/F) Σ (x - mean)²,  x̂ = (x - mean) / sqrt(var + eps),
//   y = gamma · x̂ + beta
// gb = [gamma(F), beta(F)]; saved = [mean, invstd] per row ([M, 2]).
// Backward (g = gamma · dy, per row):
//   dx = invstd · (g - mean(g) - x̂ · mean(g · x̂))
//   dgamma = Σ_rows dy · x̂,  dbeta = Σ_rows dy   (one invocation per feature, rows in order)
// p0 = M, p1 = F, p2 = eps

// in0 = x, in1 = gb; out0 = y, out1 = saved
@compute @workgroup_size(256)
fn ln_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = flat_index(gid, nwg);
    let M = pu(0u);
    let F = pu(1u);
    if (m >= M) { return; }
    let eps = pf(2u);
    let o = m * F;
    var s = 0.0;
    for (var j0 = 0u; j0 < F; j0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let j = j0 + u;
            if (j < F) { s += in0[o + j]; }
        }
    }
    let mean = s / f32(F);
    var v = 0.0;
    for (var j0 = 0u; j0 < F; j0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let j = j0 + u;
            if (j < F) { let d = in0[o + j] - mean; v += d * d; }
        }
    }
    let invstd = 1.0 / sqrt(v / f32(F) + eps);
    for (var j0 = 0u; j0 < F; j0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let j = j0 + u;
            if (j < F) { out0[o + j] = in1[j] * (in0[o + j] - mean) * invstd + in1[F + j]; }
        }
    }
    out1[2u * m] = mean;
    out1[2u * m + 1u] = invstd;
}

// in0 = x, in1 = dy, in2 = gb, in3 = saved; out0 = dx
@compute @workgroup_size(256)
fn ln_bwd_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = flat_index(gid, nwg);
    let M = pu(0u);
    let F = pu(1u);
    if (m >= M) { return; }
    let o = m * F;
    let mean = in3[2u * m];
    let invstd = in3[2u * m + 1u];
    var sg = 0.0;
    var sgx = 0.0;
    for (var j0 = 0u; j0 < F; j0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let j = j0 + u;
            if (j < F) {
                let g = in2[j] * in1[o + j];
                sg += g;
                sgx += g * ((in0[o + j] - mean) * invstd);
            }
        }
    }
    let mg = sg / f32(F);
    let mgx = sgx / f32(F);
    for (var j0 = 0u; j0 < F; j0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let j = j0 + u;
            if (j < F) {
                let xh = (in0[o + j] - mean) * invstd;
                out0[o + j] = invstd * (in2[j] * in1[o + j] - mg - xh * mgx);
            }
        }
    }
}

// in0 = x, in1 = dy, in2 = saved; out0 = dgb
@compute @workgroup_size(256)
fn ln_bwd_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg);
    let M = pu(0u);
    let F = pu(1u);
    if (j >= F) { return; }
    var dg = 0.0;
    var db = 0.0;
    for (var m0 = 0u; m0 < M; m0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let m = m0 + u;
            if (m < M) {
                let dy = in1[m * F + j];
                dg += dy * ((in0[m * F + j] - in2[2u * m]) * in2[2u * m + 1u]);
                db += dy;
            }
        }
    }
    out0[j] = dg;
    out0[F + j] = db;
}
