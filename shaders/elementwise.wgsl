// Elementwise kernels: activations forward and backward, add, copy.
// Activation selected by the override ACT: 0 = ReLU, 1 = tanh, 2 = sigmoid.

override ACT: u32 = 0u;

// act_fwd: y = f(x).   p0 = n
@compute @workgroup_size(256)
fn act_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let x = in0[i];
    var y: f32;
    if (ACT == 0u) { y = max(x, 0.0); }
    else if (ACT == 1u) { y = tanh(x); }
    else { y = 1.0 / (1.0 + exp(-x)); }
    out0[i] = y;
}

// act_bwd: dx = dy · f'(x), written in terms of y = f(x):
// ReLU: [y > 0]; tanh: 1 - y²; sigmoid: y(1 - y).   in0 = y, in1 = dy; p0 = n
@compute @workgroup_size(256)
fn act_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let y = in0[i];
    let dy = in1[i];
    var d: f32;
    if (ACT == 0u) { d = select(0.0, dy, y > 0.0); }
    else if (ACT == 1u) { d = dy * (1.0 - y * y); }
    else { d = dy * y * (1.0 - y); }
    out0[i] = d;
}

// add: c = a + b (gradient accumulation).   p0 = n
@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    out0[i] = in0[i] + in1[i];
}

// bias_grad: db[n] = Σ_m dY[m, n], one invocation per column, rows summed in order
// (deterministic, no atomics).   p0 = M, p1 = N
@compute @workgroup_size(256)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = flat_index(gid, nwg);
    let M = pu(0u);
    let N = pu(1u);
    if (n >= N) { return; }
    var s = 0.0;
    for (var m0 = 0u; m0 < M; m0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let m = m0 + u;
            if (m < M) { s += in0[m * N + n]; }
        }
    }
    out0[n] = s;
}

// slice_sum: C[i] = Σ_z P[z·n + i] over z = 0..S in order (+ bias[i mod N] when BIAS): the
// second half of a split-K matmul. in0 = P [S·n], in1 = bias; out0 = C.
// p0 = n = M·N, p1 = N, p2 = S
override BIAS: bool = false;
@compute @workgroup_size(256)
fn slice_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let n = pu(0u);
    if (i >= n) { return; }
    var acc = 0.0;
    for (var z = 0u; z < pu(2u); z++) { acc += in0[z * n + i]; }
    if (BIAS) { acc += in1[i % pu(1u)]; }
    out0[i] = acc;
}

// slice_cols: y[m, j] = x[m, start + j] for j < len (the last step of a sequence output,
// [N, T·H] → [N, H] with start = (T − 1)·H). in0 = x [M, C]; out0 = y [M, len].
// p0 = M, p1 = C, p2 = start, p3 = len
@compute @workgroup_size(256)
fn slice_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let L = pu(3u);
    if (i >= pu(0u) * L) { return; }
    out0[i] = in0[(i / L) * pu(1u) + pu(2u) + i % L];
}

// slice_cols_bwd, its adjoint: dx[m, c] = dy[m, c − start] inside the slice, else 0.
// in0 = dy [M, len]; out0 = dx [M, C]. Parameters as slice_cols.
@compute @workgroup_size(256)
fn slice_cols_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let C = pu(1u);
    if (i >= pu(0u) * C) { return; }
    let c = i % C;
    let s = pu(2u);
    var v = 0.0;
    if (c >= s && c < s + pu(3u)) { v = in0[(i / C) * pu(3u) + c - s]; }
    out0[i] = v;
}
