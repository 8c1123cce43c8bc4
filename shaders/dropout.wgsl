// Inverted dropout: y = x · m / (1 - p), m ~ Bernoulli(1 - p) from the shared generator.
// The backward pass applies the same mask (regenerated, never stored) to dy, so one
// kernel serves both directions. p0 = n, p1 = threshold = round(p·2²⁴), p2 = scale bits,
// p3 = stream, p4 = group size G (0 means 1): elements i and j share a mask bit when
// i / G = j / G (G = H·W drops whole channels: spatial dropout, Dropout2d).
@compute @workgroup_size(256)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let r = threefry2x32(rng_key(pu(3u)), vec2<u32>(i / max(pu(4u), 1u), G.step));
    let keep = (r.x >> 8u) >= pu(1u);
    out0[i] = select(0.0, in0[i] * pf(2u), keep);
}

// Fused forward ReLU then dropout (the W-MLP / W-CNN pattern): out0 = r = max(x, 0) (kept:
// the ReLU backward needs it), out1 = dropout(r) with the mask of `dropout` above.
// in0 = x; out0 = r, out1 = y. Parameters as `dropout`.
@compute @workgroup_size(256)
fn relu_dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let r = max(in0[i], 0.0);
    out0[i] = r;
    let d = threefry2x32(rng_key(pu(3u)), vec2<u32>(i / max(pu(4u), 1u), G.step));
    let keep = (d.x >> 8u) >= pu(1u);
    out1[i] = select(0.0, r * pf(2u), keep);
}

// Fused backward of ReLU then dropout: dx = [r > 0] · dropout(dy), the same mask.
// in0 = r (the ReLU output), in1 = dy; out0 = dx. Parameters as `dropout`.
@compute @workgroup_size(256)
fn dropout_relu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let d = threefry2x32(rng_key(pu(3u)), vec2<u32>(i / max(pu(4u), 1u), G.step));
    let keep = (d.x >> 8u) >= pu(1u);
    out0[i] = select(0.0, in1[i] * pf(2u), keep && in0[i] > 0.0);
}
