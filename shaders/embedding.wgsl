// Embedding (PyTorch's nn.Embedding, Keras' Embedding): a table lookup of token ids.
//
//   forward:  y[p, d] = W[ids[p], d]
//   backward: dW[v, d] = Σ_{p : ids[p] = v} dy[p, d], in increasing p
//
// Token ids arrive as f32 values holding integers in [0, V) (exact below 2^24; the host
// checks every id before upload and refuses a vocabulary above 2^24). The backward is a
// gather, one invocation per table entry scanning the P positions in order: no float
// atomics, so the sum is the same bit for bit on every backend and run, at the cost of
// V·D·P comparisons (docs/sequences.md says when that matters).
//
// p0 = P (positions), p1 = D, p2 = V (src/kernels/embedding.rs).

// in0 = ids [P], in1 = W [V, D]; out0 = y [P, D]
@compute @workgroup_size(256)
fn embedding(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let D = pu(1u);
    if (i >= pu(0u) * D) { return; }
    let id = in0[i / D];
    var v = 0.0;
    if (id >= 0.0 && id < f32(pu(2u)) && fract(id) == 0.0) {
        v = in1[u32(id) * D + i % D];
    }
    out0[i] = v;
}

// in0 = ids [P], in1 = dy [P, D]; out0 = dW [V, D]
@compute @workgroup_size(256)
fn embedding_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let P = pu(0u);
    let D = pu(1u);
    if (i >= pu(2u) * D) { return; }
    let v = f32(i / D);
    let d = i % D;
    var acc = 0.0;
    for (var p0 = 0u; p0 < P; p0 += UNROLL) {
        for (var u = 0u; u < UNROLL; u++) {
            let p = p0 + u;
            if (p < P && in0[p] == v) { acc += in1[p * D + d]; }
        }
    }
    out0[i] = acc;
}
