// Global-norm gradient clipping, in two deterministic passes (no float atomics):
//   ||g|| = sqrt(Σ_i g_i²) over all parameters' gradients (one flat buffer),
//   s = min(1, max_norm / (||g|| + 1e-6)),  g := s · g  (direction preserved).
// The scale is applied inside the optimizer kernel; the pre-clip norm is kept for metrics.

// Pass 1: invocation t sums g_i² for i ≡ t (mod P), in increasing i.
// in0 = g; out0 = partials [P].   p0 = n, p1 = P
@compute @workgroup_size(64)
fn sumsq_partials(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    let n = pu(0u);
    let P = pu(1u);
    if (t >= P) { return; }
    var s = 0.0;
    for (var i = t; i < n; i += P) { let g = in0[i]; s += g * g; }
    out0[t] = s;
}

// Pass 2: the P partials summed in index order, then the clip scale.
// in0 = partials [P]; out0 = clipinfo [2] = (norm, scale).   p0 = P, p1 = max_norm (<= 0: off)
@compute @workgroup_size(1)
fn clip_finalize() {
    let P = pu(0u);
    let max_norm = pf(1u);
    var s = 0.0;
    for (var i = 0u; i < P; i++) { s += in0[i]; }
    let norm = sqrt(s);
    out0[0] = norm;
    if (max_norm > 0.0) { out0[1] = min(1.0, max_norm / (norm + 1e-6)); } else { out0[1] = 1.0; }
}
