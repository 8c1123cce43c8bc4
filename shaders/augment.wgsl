// Per-sample image augmentation for NCHW batches, active in training only. Every random
// parameter is drawn from the shared generator keyed by (seed, stream, step) with counter
// sample·32 + slot, so the CPU twin (src/backend/cpu/augment.rs) draws the same values.
//
// The spec (in1, 32 floats; slots named in src/kernels/augment.rs, encoded by src/nn/augment.rs). Ranges are [min, max], drawn
// uniformly per sample (min = max fixes a value):
//  0 hflip p   1 vflip p   2-3 translate x (px)   4-5 translate y (px)   6-7 rotation (deg)
//  8-9 zoom   10 zoom per axis (0/1)   11-12 shear (deg)   13 interpolation (0 nearest, 1 bilinear)
// 14 fill (0 constant, 1 nearest, 2 reflect)   15 fill value   16-17 brightness delta
// 18-19 contrast factor   20 noise std   21 crop padding (px)   22 cutout size (px)
// 23 cutout p   24 standardize mean   25 standardize std (0: none)   26-27 shear y (deg)
// 28-29 zoom y (drawn on its own when 10 is 1)   30-31 cutout centre x, y (px; < 0: drawn)
// p0 = B, p1 = C, p2 = H, p3 = W, p4 = stream, p5 = train (1) / inference (0)

fn u01(n: u32, slot: u32) -> f32 {
    let r = threefry2x32(rng_key(pu(4u)), vec2<u32>(n * 32u + slot, G.step));
    return f32(r.x >> 8u) * (1.0 / 16777216.0);
}

// Uniform in [spec[k], spec[k + 1]].
fn range(n: u32, slot: u32, k: u32) -> f32 { return in1[k] + (in1[k + 1u] - in1[k]) * u01(n, slot); }

// A uniform integer in [0, m), exactly (below_u in common.wgsl), on the same counter.
fn below(n: u32, slot: u32, m: u32) -> u32 {
    return below_u(rng_key(pu(4u)), vec2<u32>(n * 32u + slot, G.step), m);
}

// Map a coordinate outside [0, size) back inside (nearest / reflect), or flag it (constant).
fn fold(v: i32, size: i32, mode: u32) -> i32 {
    if (v >= 0 && v < size) { return v; }
    if (mode == 1u) { return clamp(v, 0, size - 1); }
    if (mode == 2u) {
        if (size == 1) { return 0; }
        let period = 2 * (size - 1);
        var m = v % period;
        if (m < 0) { m += period; }
        if (m >= size) { m = period - m; }
        return m;
    }
    return -1;
}

fn sample_px(base: u32, x: i32, y: i32, H: u32, W: u32) -> f32 {
    let mode = u32(in1[14]);
    let fx = fold(x, i32(W), mode);
    let fy = fold(y, i32(H), mode);
    if (fx < 0 || fy < 0) { return in1[15]; }
    return in0[base + u32(fy) * W + u32(fx)];
}

// Geometric part, one workgroup per (sample, channel) plane: every lane draws the sample's
// parameters once (instead of once per pixel), then warps every 64th pixel: flips, then
// the affine map d = A·(s − c) + c + t with A = R(rotation)·Shy(shear y)·Shx(shear x)·Z(zoom)
// (torchvision's order), t = translation + crop shift, sampled at s = A⁻¹·(d − c − t) + c
// (nearest or bilinear). Positive rotation is counter-clockwise on screen, as in Keras and
// torchvision. The crop shift is a uniform integer in [−pad, pad] (torchvision's
// RandomCrop: each offset with probability 1/(2·pad + 1)).
// in0 = x; out0 = warped.
@compute @workgroup_size(64)
fn augment_geom(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let plane = wid.x + wid.y * nwg.x;
    let B = pu(0u); let C = pu(1u); let H = pu(2u); let W = pu(3u);
    if (plane >= B * C) { return; }
    let n = plane / C;
    let base = plane * H * W;
    let deg = 0.017453292519943295;
    let th = range(n, 4u, 6u) * deg;
    let shx = range(n, 7u, 11u) * deg;
    let shy = range(n, 15u, 26u) * deg;
    let zx = range(n, 5u, 8u);
    var zy = zx;
    if (in1[10] > 0.5) { zy = range(n, 6u, 28u); }
    let pad = u32(in1[21]);
    let tx = range(n, 2u, 2u) + f32(i32(below(n, 8u, 2u * pad + 1u)) - i32(pad));
    let ty = range(n, 3u, 4u) + f32(i32(below(n, 9u, 2u * pad + 1u)) - i32(pad));
    // A = R·Shy·Shx·Z with R = [[cos, sin], [−sin, cos]] (y points down),
    // Shy = [[1, 0], [tan(shy), 1]], Shx = [[1, tan(shx)], [0, 1]], Z = diag(zx, zy).
    let c = cos(th);
    let s = sin(th);
    let tsx = tan(shx);
    let tsy = tan(shy);
    let a00 = (c + s * tsy) * zx;
    let a01 = (c * tsx + s * (1.0 + tsy * tsx)) * zy;
    let a10 = (c * tsy - s) * zx;
    let a11 = (c * (1.0 + tsy * tsx) - s * tsx) * zy;
    let det = a00 * a11 - a01 * a10;
    let cx = (f32(W) - 1.0) * 0.5;
    let cy = (f32(H) - 1.0) * 0.5;
    let flip_x = u01(n, 0u) < in1[0];
    let flip_y = u01(n, 1u) < in1[1];
    for (var j = lid; j < H * W; j += 64u) {
        let ox = j % W;
        let oy = j / W;
        let dx = f32(ox) - cx - tx;
        let dy = f32(oy) - cy - ty;
        var sx = (a11 * dx - a01 * dy) / det + cx;
        var sy = (-a10 * dx + a00 * dy) / det + cy;
        if (flip_x) { sx = f32(W) - 1.0 - sx; }
        if (flip_y) { sy = f32(H) - 1.0 - sy; }
        var v: f32;
        if (in1[13] < 0.5) {
            v = sample_px(base, i32(round(sx)), i32(round(sy)), H, W);
        } else {
            let x0 = floor(sx);
            let y0 = floor(sy);
            let fx = sx - x0;
            let fy = sy - y0;
            let xi = i32(x0);
            let yi = i32(y0);
            v = (1.0 - fy) * ((1.0 - fx) * sample_px(base, xi, yi, H, W) + fx * sample_px(base, xi + 1, yi, H, W))
              + fy * ((1.0 - fx) * sample_px(base, xi, yi + 1, H, W) + fx * sample_px(base, xi + 1, yi + 1, H, W));
        }
        out0[base + j] = v;
    }
}

// Photometric part and standardization: in training, when
// brightness or contrast is on, x := clamp((x + brightness − mean)·contrast + mean, 0, 1)
// with mean the image's mean
// (Keras' RandomBrightness / RandomContrast on [0, 1] images), + N(0, noise²), cutout of a
// size×size square (set to 0) with probability p, centred on a uniform integer pixel (or the
// fixed centre of spec 30-31); then x := (x − m)/s when s > 0 (also at
// inference). in0 = x (warped in training, raw at inference); out0 = y.
// One workgroup per image: every lane computes the image's mean and draws (the same
// arithmetic as one invocation per image), then handles every 64th pixel, so that no
// invocation loops past llvmpipe's limit (see UNROLL in common.wgsl).
@compute @workgroup_size(64)
fn augment_photo(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wid.x;
    let B = pu(0u); let C = pu(1u); let H = pu(2u); let W = pu(3u);
    if (n >= B) { return; }
    let P = C * H * W;
    let base = n * P;
    let train = pu(5u) == 1u;
    let b = range(n, 10u, 16u);
    let k = range(n, 11u, 18u);
    let photo = in1[16] != 0.0 || in1[17] != 0.0 || in1[18] != 1.0 || in1[19] != 1.0;
    var mean = 0.0;
    if (train && photo) {
        for (var j0 = 0u; j0 < P; j0 += UNROLL) {
            for (var u = 0u; u < UNROLL; u++) {
                let j = j0 + u;
                if (j < P) { mean += in0[base + j]; }
            }
        }
        mean = mean / f32(P);
    }
    let cut = train && in1[22] > 0.0 && u01(n, 12u) < in1[23];
    let size = i32(in1[22]);
    let half = size / 2;
    var ccx = i32(in1[30]);
    var ccy = i32(in1[31]);
    if (in1[30] < 0.0) { ccx = i32(below(n, 13u, W)); }
    if (in1[31] < 0.0) { ccy = i32(below(n, 14u, H)); }
    for (var j = lid; j < P; j += 64u) {
        var x = in0[base + j];
        if (train) {
            if (photo) {
                x = clamp((x + b - mean) * k + mean, 0.0, 1.0);
            }
            if (in1[20] > 0.0) {
                let r = threefry2x32(rng_key(pu(4u) + 1u), vec2<u32>(base + j, G.step));
                let u1 = (f32(r.x >> 8u) + 1.0) * (1.0 / 16777216.0);
                let u2 = f32(r.y >> 8u) * (1.0 / 16777216.0);
                x += in1[20] * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
            }
            if (cut) {
                let px = i32(j % W);
                let py = i32((j / W) % H);
                if (px >= ccx - half && px < ccx - half + size && py >= ccy - half && py < ccy - half + size) {
                    x = 0.0;
                }
            }
        }
        if (in1[25] > 0.0) { x = (x - in1[24]) / in1[25]; }
        out0[base + j] = x;
    }
}
