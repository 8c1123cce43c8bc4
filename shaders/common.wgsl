// Prelude prepended to every kernel family: the per-instruction parameters, the per-step
// globals, the operand bindings, and the shared counter-based generator (Threefry-2x32-20,
// the twin of src/rng.rs).
//
// Binding convention (src/backend/mod.rs): 0 = params, 1 = globals, 2..5 = read-only
// inputs in0..in3, 6..8 = read-write outputs out0..out2. Every operand is an exact range
// of a buffer, so kernels index from 0.

struct Params { w: array<vec4<u32>, 4> }
// lr: the base rate; with sched_kind != 0 a per-step schedule (parameters sched_x,
// sched_n) that ClipFinalize evaluates at the count of applied updates (shaders/clip.wgsl).
// flags: bit 0 = some parameter has an L1/L2 penalty (Globals::PENALTY), bit 1 = MIXED.
struct Globals { seed_lo: u32, seed_hi: u32, step: u32, lr: f32, sched_x: f32, sched_n: u32, flags: u32, sched_kind: u32 }

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

// llvmpipe (Mesa's lavapipe) stops looping, silently, once an invocation has run 65535
// iterations of its (not unrolled) loops in total: its guard against infinite loops. Every
// loop whose trip count depends on the data therefore handles UNROLL elements per iteration
// through an inner loop of constant trip count, which the compiler unrolls: the same
// elements in the same order, 16 times fewer counted iterations. The host refuses, with
// the limit named, an instruction that would still exceed it (src/backend/gpu/shaders.rs).
const UNROLL: u32 = 16u;

fn rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }

// Threefry-2x32-20, the 20 rounds written out (no loop: llvmpipe would count its
// iterations, see UNROLL above): round r adds, rotates by ROT[r mod 8] and xors; after
// every 4th round, key injection s adds ks[s mod 3] and ks[(s + 1) mod 3] + s.
fn tf_round(x: ptr<function, vec2<u32>>, r: u32) {
    (*x).x = (*x).x + (*x).y;
    (*x).y = rotl((*x).y, r) ^ (*x).x;
}

fn threefry2x32(key: vec2<u32>, ctr: vec2<u32>) -> vec2<u32> {
    let k2 = 0x1BD11BDAu ^ key.x ^ key.y;
    var x = vec2<u32>(ctr.x + key.x, ctr.y + key.y);
    tf_round(&x, 13u); tf_round(&x, 15u); tf_round(&x, 26u); tf_round(&x, 6u);
    x = x + vec2<u32>(key.y, k2 + 1u);
    tf_round(&x, 17u); tf_round(&x, 29u); tf_round(&x, 16u); tf_round(&x, 24u);
    x = x + vec2<u32>(k2, key.x + 2u);
    tf_round(&x, 13u); tf_round(&x, 15u); tf_round(&x, 26u); tf_round(&x, 6u);
    x = x + vec2<u32>(key.x, key.y + 3u);
    tf_round(&x, 17u); tf_round(&x, 29u); tf_round(&x, 16u); tf_round(&x, 24u);
    x = x + vec2<u32>(key.y, k2 + 4u);
    tf_round(&x, 13u); tf_round(&x, 15u); tf_round(&x, 26u); tf_round(&x, 6u);
    x = x + vec2<u32>(k2, key.x + 5u);
    return x;
}

fn rng_key(stream: u32) -> vec2<u32> {
    return vec2<u32>(G.seed_lo, G.seed_hi ^ (stream * 0x9E3779B9u));
}
