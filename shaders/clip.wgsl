// Gradient preparation and global-norm clipping, in two deterministic passes (no float
// atomics):
//   g := clamp(dJ/dw + a·w + b·sign(w), min, max)       (norm penalty, value clipping)
//   penalty = Σ (a/2)·w² + b·|w|
//   ||g|| = sqrt(Σ_i g_i²) over all parameters' gradients (one flat buffer),
//   s = min(1, max_norm / (||g|| + 1e-6)),  g := s · g  (direction preserved).
// The scale is applied inside the optimizer kernel; the pre-clip norm and the penalty are
// kept for metrics.

// Pass 1: invocation t handles the elements i ≡ t (mod P), in increasing i: adds the
// penalty gradient, clips by value, and sums g² and the penalty. Without a penalty
// (G.flags bit 0 clear) w, a and b are not read, and without value clipping g is only
// read: the common case costs one load per element instead of five memory operations.
// in0 = w, in1 = a (L2 coefficients), in2 = b (L1 coefficients); out0 = g (in place),
// out1 = partials [2P] = (Σ g², Σ penalty).   p0 = n, p1 = P, p2 = min, p3 = max, p4 = clip by value (0/1)
@compute @workgroup_size(64)
fn grad_prep(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    let n = pu(0u);
    let P = pu(1u);
    if (t >= P) { return; }
    let lo = pf(2u);
    let hi = pf(3u);
    let clip = pu(4u) == 1u;
    var s = 0.0;
    var pen = 0.0;
    if ((G.flags & 1u) != 0u) {
        for (var i0 = t; i0 < n; i0 += UNROLL * P) {
            for (var u = 0u; u < UNROLL; u++) {
                let i = i0 + u * P;
                if (i < n) {
                    let w = in0[i];
                    let a = in1[i];
                    let b = in2[i];
                    var g = out0[i] + a * w + b * sign(w);
                    if (clip) { g = clamp(g, lo, hi); }
                    out0[i] = g;
                    s += g * g;
                    pen += 0.5 * a * w * w + b * abs(w);
                }
            }
        }
    } else if (clip) {
        for (var i0 = t; i0 < n; i0 += UNROLL * P) {
            for (var u = 0u; u < UNROLL; u++) {
                let i = i0 + u * P;
                if (i < n) {
                    let g = clamp(out0[i], lo, hi);
                    out0[i] = g;
                    s += g * g;
                }
            }
        }
    } else {
        for (var i0 = t; i0 < n; i0 += UNROLL * P) {
            for (var u = 0u; u < UNROLL; u++) {
                let i = i0 + u * P;
                if (i < n) {
                    let g = out0[i];
                    s += g * g;
                }
            }
        }
    }
    out1[t] = s;
    out1[P + t] = pen;
}

// Pass 2: the P partials summed in index order, then the clip scale.
// in0 = partials [2P]; out0 = clipinfo [3] = (norm, scale, penalty).   p0 = P, p1 = max_norm (<= 0: off)
@compute @workgroup_size(1)
fn clip_finalize() {
    let P = pu(0u);
    let max_norm = pf(1u);
    var s = 0.0;
    var pen = 0.0;
    for (var i = 0u; i < P; i++) { s += in0[i]; pen += in0[P + i]; }
    let norm = sqrt(s);
    out0[0] = norm;
    if (max_norm > 0.0) { out0[1] = min(1.0, max_norm / (norm + 1e-6)); } else { out0[1] = 1.0; }
    out0[2] = pen;
}

// Per-tensor clipping (an option instead of the global norm): for one parameter's
// gradient, g := min(1, max_norm / (||g|| + 1e-6)) · g with ||g||² = stats[1] from
// tensor_stats.   in0 = stats [4]; out0 = g.   p0 = n, p1 = max_norm
@compute @workgroup_size(256)
fn clip_tensor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let s = min(1.0, pf(1u) / (sqrt(in0[1]) + 1e-6));
    out0[i] = s * out0[i];
}
