// 2-D pooling over NCHW without padding. p0 = B, p1 = C, p2 = H, p3 = W, p4 = KH, p5 = KW,
// p6 = stride, p8 = OH, p9 = OW (same layout as conv.wgsl).

// The output row (or column) whose window puts offset k on input row i, or -1.
fn window(i: u32, k: u32, s: u32, n: u32) -> i32 {
    if (i < k || (i - k) % s != 0u) { return -1; }
    let o = (i - k) / s;
    if (o >= n) { return -1; }
    return i32(o);
}

fn pool_out(i: u32) -> vec4<u32> {
    // (b·C + c, oy, ox) of output element i
    let OW = pu(9u); let OH = pu(8u);
    return vec4<u32>(i / (OH * OW), (i / OW) % OH, i % OW, 0u);
}

// y = max over the window; idx = ky·KW + kx of the first maximum. in0 = x; out0 = y, out1 = idx.
@compute @workgroup_size(256)
fn maxpool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u) * pu(1u) * pu(8u) * pu(9u)) { return; }
    let H = pu(2u); let W = pu(3u); let KH = pu(4u); let KW = pu(5u); let s = pu(6u);
    let o = pool_out(i);
    let base = o.x * H * W;
    var best = in0[base + (o.y * s) * W + o.z * s];
    var arg = 0u;
    for (var ky = 0u; ky < KH; ky++) {
        for (var kx = 0u; kx < KW; kx++) {
            let v = in0[base + (o.y * s + ky) * W + o.z * s + kx];
            if (v > best) { best = v; arg = ky * KW + kx; }
        }
    }
    out0[i] = best;
    out1[i] = f32(arg);
}

// dx[iy, ix] = Σ dy over the windows whose maximum was at (iy, ix), in window order.
// in0 = dy, in1 = idx; out0 = dx.
@compute @workgroup_size(256)
fn maxpool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let H = pu(2u); let W = pu(3u); let KH = pu(4u); let KW = pu(5u); let s = pu(6u); let OH = pu(8u); let OW = pu(9u);
    if (i >= pu(0u) * pu(1u) * H * W) { return; }
    let ix = i % W;
    let iy = (i / W) % H;
    let bc = i / (H * W);
    var acc = 0.0;
    if (KH == s && KW == s) {
        // Non-overlapping windows (the usual k = stride): one window holds (iy, ix).
        let oy = iy / s;
        let ox = ix / s;
        if (oy < OH && ox < OW) {
            let o = (bc * OH + oy) * OW + ox;
            if (u32(in1[o]) == (iy - oy * s) * KW + (ix - ox * s)) { acc = in0[o]; }
        }
        out0[i] = acc;
        return;
    }
    for (var ky = 0u; ky < KH; ky++) {
        let oy = window(iy, ky, s, OH);
        if (oy < 0) { continue; }
        for (var kx = 0u; kx < KW; kx++) {
            let ox = window(ix, kx, s, OW);
            if (ox < 0) { continue; }
            let o = (bc * OH + u32(oy)) * OW + u32(ox);
            if (u32(in1[o]) == ky * KW + kx) { acc += in0[o]; }
        }
    }
    out0[i] = acc;
}

// y = mean over the window (KH·KW values). in0 = x; out0 = y.
@compute @workgroup_size(256)
fn avgpool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pu(0u) * pu(1u) * pu(8u) * pu(9u)) { return; }
    let H = pu(2u); let W = pu(3u); let KH = pu(4u); let KW = pu(5u); let s = pu(6u);
    let o = pool_out(i);
    let base = o.x * H * W;
    var acc = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        for (var kx = 0u; kx < KW; kx++) {
            acc += in0[base + (o.y * s + ky) * W + o.z * s + kx];
        }
    }
    out0[i] = acc / f32(KH * KW);
}

// dx[iy, ix] = Σ dy / (KH·KW) over the windows containing (iy, ix). in0 = dy; out0 = dx.
@compute @workgroup_size(256)
fn avgpool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let H = pu(2u); let W = pu(3u); let KH = pu(4u); let KW = pu(5u); let s = pu(6u); let OH = pu(8u); let OW = pu(9u);
    if (i >= pu(0u) * pu(1u) * H * W) { return; }
    let ix = i % W;
    let iy = (i / W) % H;
    let bc = i / (H * W);
    var acc = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        let oy = window(iy, ky, s, OH);
        if (oy < 0) { continue; }
        for (var kx = 0u; kx < KW; kx++) {
            let ox = window(ix, kx, s, OW);
            if (ox < 0) { continue; }
            acc += in0[(bc * OH + u32(oy)) * OW + u32(ox)];
        }
    }
    out0[i] = acc / f32(KH * KW);
}
