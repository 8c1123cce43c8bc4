// Prelude prepended to every kernel family: the per-instruction parameters, the per-step
// globals, the operand bindings, and the shared counter-based generator (Threefry-2x32-20,
// the twin of src/rng.rs).
//
// Binding convention (src/backend/gpu/dispatch.rs): 0 = params, 1 = globals, 2..5 = read-only
// inputs in0..in3, 6..8 = read-write outputs out0..out2. Every operand is an exact range
// of a buffer, so kernels index from 0.

struct Params { w: array<vec4<u32>, 4> }
// lr: the base rate; with sched_kind != 0 a per-step schedule (parameters sched_x,
// sched_n) that ClipFinalize evaluates at the count of applied updates (shaders/clip.wgsl).
// warmup_steps > 0: a linear warm-up factor on that rate, warmup_start + (1 - warmup_start)
// · min(t0, warmup_steps) / warmup_steps (PyTorch's LinearLR), also applied by ClipFinalize.
// flags: bit 0 = some parameter has an L1/L2 penalty (Globals::PENALTY), bit 1 = MIXED.
struct Globals { seed_lo: u32, seed_hi: u32, step: u32, lr: f32, sched_x: f32, sched_n: u32, flags: u32, sched_kind: u32,
                 warmup_steps: u32, warmup_start: f32, pad0: u32, pad1: u32 }

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
// the limit named, an instruction that would still exceed it (src/backend/gpu/dispatch.rs).
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

// The 64-bit product a·b as (high word, low word), from 16-bit halves (WGSL has no u64).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let mid = ((a0 * b0) >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    return vec2<u32>(a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), a * b);
}

// A uniform integer in [0, n), exactly: Lemire's multiply-shift with rejection, the twin
// of rng::below_at with 2 blocks. Word w gives ⌊w·n / 2³²⌋ when the low word of w·n is at
// least 2³² mod n; the words tried are those of threefry(key, ctr), then of the retry key
// (key.x ^ 0x85EBCA6B, key.y); all four rejected (probability < (n / 2³²)⁴): the last
// word's ⌊w·n / 2³²⌋. Written out, without a loop (see UNROLL).
fn below_u(key: vec2<u32>, ctr: vec2<u32>, n: u32) -> u32 {
    if (n <= 1u) { return 0u; }
    let t = (0u - n) % n;
    let r0 = threefry2x32(key, ctr);
    var m = mul_wide(r0.x, n);
    if (m.y >= t) { return m.x; }
    m = mul_wide(r0.y, n);
    if (m.y >= t) { return m.x; }
    let r1 = threefry2x32(vec2<u32>(key.x ^ 0x85EBCA6Bu, key.y), ctr);
    m = mul_wide(r1.x, n);
    if (m.y >= t) { return m.x; }
    return mul_wide(r1.y, n).x;
}
