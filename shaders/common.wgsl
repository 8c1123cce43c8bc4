// Prelude prepended to every kernel family: the per-instruction parameters, the per-step
// globals, the operand bindings, and the shared counter-based generator (Threefry-2x32-20,
// the twin of src/rng.rs).
//
// Binding convention (src/backend/mod.rs): 0 = params, 1 = globals, 2..5 = read-only
// inputs in0..in3, 6..8 = read-write outputs out0..out2. Every operand is an exact range
// of a buffer, so kernels index from 0.

struct Params { w: array<vec4<u32>, 4> }
// bc1, bc2: Adam's bias corrections 1 - beta1^t, 1 - beta2^t (computed on the host).
struct Globals { seed_lo: u32, seed_hi: u32, step: u32, lr: f32, bc1: f32, bc2: f32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> G: Globals;
@group(0) @binding(2) var<storage, read> in0: array<f32>;
@group(0) @binding(3) var<storage, read> in1: array<f32>;
@group(0) @binding(4) var<storage, read> in2: array<f32>;
@group(0) @binding(5) var<storage, read> in3: array<f32>;
@group(0) @binding(6) var<storage, read_write> out0: array<f32>;
@group(0) @binding(7) var<storage, read_write> out1: array<f32>;
@group(0) @binding(8) var<storage, read_write> out2: array<f32>;

fn pu(i: u32) -> u32 { return P.w[i / 4u][i % 4u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }

// 1-D kernels use workgroups of 256 and a 2-D grid when n > 65535·256.
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

fn rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }

fn threefry2x32(key: vec2<u32>, ctr: vec2<u32>) -> vec2<u32> {
    let rot = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
    let ks = array<u32, 3>(key.x, key.y, 0x1BD11BDAu ^ key.x ^ key.y);
    var x0 = ctr.x + ks[0];
    var x1 = ctr.y + ks[1];
    for (var r = 0u; r < 20u; r++) {
        x0 = x0 + x1;
        x1 = rotl(x1, rot[r % 8u]);
        x1 = x1 ^ x0;
        if (r % 4u == 3u) {
            let s = (r + 1u) / 4u;
            x0 = x0 + ks[s % 3u];
            x1 = x1 + ks[(s + 1u) % 3u] + s;
        }
    }
    return vec2<u32>(x0, x1);
}

fn rng_key(stream: u32) -> vec2<u32> {
    return vec2<u32>(G.seed_lo, G.seed_hi ^ (stream * 0x9E3779B9u));
}
