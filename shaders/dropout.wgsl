// Inverted dropout: y = x · m / (1 - p), m ~ Bernoulli(1 - p) from the shared generator.
// The backward pass applies the same mask (regenerated, never stored) to dy, so one
// kernel serves both directions. p0 = n, p1 = threshold = round(p·2²⁴), p2 = scale bits,
// p3 = stream, p4 = group size G (0 means 1): elements i and j share a mask bit when
// i / G = j / G (G = H·W drops whole channels: spatial dropout, Dropout2d); p5 = period P,
// p6 = row length R: with P > 0 element i draws as (i / R)·P + i mod P before the grouping
// (one mask per sequence row, shared by its time steps: a recurrent layer's input dropout).
fn drop_draw(i: u32) -> u32 {
    var d = i;
    if (pu(5u) > 0u) { d = (i / pu(6u)) * pu(5u) + i % pu(5u); }
    return d / max(pu(4u), 1u);
}

@compute @workgroup_size(256)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let r = threefry2x32(rng_key(pu(3u)), vec2<u32>(drop_draw(i), G.step));
    let keep = (r.x >> 8u) >= pu(1u);
    out0[i] = select(0.0, in0[i] * pf(2u), keep);
}

// Fused forward ReLU then dropout (the W-MLP / W-CNN pattern): y = dropout(max(x, 0)) with
// the mask of `dropout` above. The ReLU output itself is not kept: the backward pass
// below needs only y. in0 = x; out0 = y. Parameters as `dropout`.
@compute @workgroup_size(256)
fn relu_dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    let r = max(in0[i], 0.0);
    let d = threefry2x32(rng_key(pu(3u)), vec2<u32>(drop_draw(i), G.step));
    let keep = (d.x >> 8u) >= pu(1u);
    out0[i] = select(0.0, r * pf(2u), keep);
}

// Fused backward of ReLU then dropout, from the forward output y = m · s · max(x, 0):
// dx = m · s · [x > 0] · dy = s · [y > 0] · dy, because y > 0 exactly when the mask kept
// the element and x > 0 (s = scale >= 1; with s = 0 both sides are 0). No mask to
// regenerate. in0 = y, in1 = dy; out0 = dx. Parameters as `dropout` (only p0, p2 used).
@compute @workgroup_size(256)
fn dropout_relu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u)) { return; }
    out0[i] = select(0.0, in1[i] * pf(2u), in0[i] > 0.0);
}
