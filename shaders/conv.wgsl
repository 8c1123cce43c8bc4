// Convolution as im2col + the tuned matmul + a layout permute. Why: on lavapipe the
// subgroup matmul reaches ~20-25 GFLOP/s while any direct convolution kernel would need
// its own register blocking to get near that; im2col costs one extra read/write of the
// patch matrix, which is cheap next to the K = C·KH·KW-deep products. Geometry (NCHW):
// p0 = B, p1 = C, p2 = H, p3 = W, p4 = KH, p5 = KW, p6 = stride, p7 = pad, p8 = OH, p9 = OW.

// cols[(b·OH + oy)·OW + ox, (c·KH + ky)·KW + kx] = x[b, c, oy·s − pad + ky, ox·s − pad + kx]
// (0 outside). One invocation per (patch row, c, ky) writes the KW values of one kernel
// row, so the index arithmetic (integer divisions, slow on a CPU adapter) is done once per
// KW outputs. in0 = x; out0 = cols.
@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let B = pu(0u); let C = pu(1u); let H = pu(2u); let W = pu(3u);
    let KH = pu(4u); let KW = pu(5u); let s = pu(6u); let pad = pu(7u); let OH = pu(8u); let OW = pu(9u);
    let K = C * KH * KW;
    if (i >= B * OH * OW * C * KH) { return; }
    let r = i / (C * KH);
    let cky = i % (C * KH);
    let c = cky / KH;
    let ky = cky % KH;
    let b = r / (OH * OW);
    let oy = (r / OW) % OH;
    let ox = r % OW;
    let iy = i32(oy * s + ky) - i32(pad);
    let o = r * K + cky * KW;
    let row_ok = iy >= 0 && iy < i32(H);
    let src = ((b * C + c) * H + u32(max(iy, 0))) * W;
    let ix0 = i32(ox * s) - i32(pad);
    for (var kx = 0u; kx < KW; kx++) {
        let ix = ix0 + i32(kx);
        var v = 0.0;
        if (row_ok && ix >= 0 && ix < i32(W)) {
            v = in0[src + u32(ix)];
        }
        out0[o + kx] = v;
    }
}

// The adjoint of im2col: dx[b, c, iy, ix] = Σ over the (ky, kx) whose patch covers it,
// in (ky, kx) order (a gather: deterministic, no atomics). in0 = dcols; out0 = dx.
@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let B = pu(0u); let C = pu(1u); let H = pu(2u); let W = pu(3u);
    let KH = pu(4u); let KW = pu(5u); let s = pu(6u); let pad = pu(7u); let OH = pu(8u); let OW = pu(9u);
    if (i >= B * C * H * W) { return; }
    let ix = i % W;
    let iy = (i / W) % H;
    let c = (i / (W * H)) % C;
    let b = i / (W * H * C);
    let K = C * KH * KW;
    var acc = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        let ty = i32(iy + pad) - i32(ky);
        if (ty < 0) { continue; }
        var oy = u32(ty);
        // Stride 1 (the usual case) needs no division.
        if (s != 1u) {
            if (ty % i32(s) != 0) { continue; }
            oy = u32(ty) / s;
        }
        if (oy >= OH) { continue; }
        for (var kx = 0u; kx < KW; kx++) {
            let tx = i32(ix + pad) - i32(kx);
            if (tx < 0) { continue; }
            var ox = u32(tx);
            if (s != 1u) {
                if (tx % i32(s) != 0) { continue; }
                ox = u32(tx) / s;
            }
            if (ox >= OW) { continue; }
            acc += in0[((b * OH + oy) * OW + ox) * K + (c * KH + ky) * KW + kx];
        }
    }
    out0[i] = acc;
}

// [B, S, C] (rows b·S + s) → [B, C, S], adding bias[c] when BIAS, then max(·, 0) when RELU
// (the convolution's epilogue fused with a following ReLU). in0 = src, in1 = bias;
// out0 = dst.   p0 = B, p1 = S, p2 = C
override BIAS: bool = false;
override RELU: bool = false;
@compute @workgroup_size(256)
fn to_nchw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let B = pu(0u); let S = pu(1u); let C = pu(2u);
    if (i >= B * S * C) { return; }
    let s = i % S;
    let c = (i / S) % C;
    let b = i / (S * C);
    var v = in0[(b * S + s) * C + c];
    if (BIAS) { v += in1[c]; }
    if (RELU) { v = max(v, 0.0); }
    out0[i] = v;
}

// [B, C, S] → [B, S, C] (the adjoint of to_nchw). in0 = src; out0 = dst.   p0 = B, p1 = S, p2 = C
@compute @workgroup_size(256)
fn to_nhwc(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let B = pu(0u); let S = pu(1u); let C = pu(2u);
    if (i >= B * S * C) { return; }
    let c = i % C;
    let s = (i / C) % S;
    let b = i / (S * C);
    out0[i] = in0[(b * C + c) * S + s];
}
