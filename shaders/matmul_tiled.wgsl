// C = op(A) · op(B) (+ bias): the contract of matmul.wgsl (transposes read in place, split
// K along the grid's z, the same loaders for f32 and packed-f16 operands, and TA, TB,
// BIAS, a_at, b_at and k_range from matmul_common.wgsl), for hardware
// GPUs: each workgroup stages BK-deep slices of its BM×BN output tile's A and B through
// workgroup memory, and each invocation keeps a TM×TN register block of C.
//
// The host sets BM, BN, BK, TM and TN per variant (src/backend/gpu/matmul.rs, `Tile`), so
// the workgroup is (BN/TN)×(BM/TM) invocations. Invocation (tx, ty) owns rows ty + i·WY
// (i < TM) and columns tx + j·WX (j < TN) of the tile: neighbouring invocations read
// neighbouring words of the staged B and the same word of the staged A (a broadcast), and
// store neighbouring columns of C.
//
// Accumulation order, which every matmul variant shares: each element of C starts at 0 and
// takes fma(A[r, k], B[k, c], acc) for k = kbeg, kbeg + 1, ... in order, then adds the bias
// (0 without one). Out-of-range k are staged as zeros on both sides, so their fma leaves
// the sum as it is. Which variant runs therefore cannot change a bit of the result.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const WX: u32 = BN / TN;
const WY: u32 = BM / TM;
const NT: u32 = WX * WY;
// Row pitches of the staged slices, one word over the tile: the staging loops write
// neighbouring k of one row from neighbouring invocations (A untransposed, B transposed),
// and with a pitch of BM or BN words those writes would all fall in one memory bank.
const AP: u32 = BM + 1u;
const BP: u32 = BN + 1u;

// As[k·AP + r] = A[r0 + r, k0 + k]; Bs[k·BP + c] = B[k0 + k, c0 + c].
var<workgroup> As: array<f32, AP * BK>;
var<workgroup> Bs: array<f32, BK * BP>;

@compute @workgroup_size(WX, WY)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let M = pu(0u);
    let N = pu(1u);
    let K = pu(2u);
    let Ks = pu(3u);
    let kr = k_range(wid.z);
    let kbeg = kr.x;
    let kend = kr.y;
    let r0 = wid.y * BM;
    let c0 = wid.x * BN;
    var acc: array<f32, TM * TN>;
    for (var i = 0u; i < TM * TN; i++) { acc[i] = 0.0; }
    for (var k0 = kbeg; k0 < kend; k0 += BK) {
        // Stage A's BM×BK slice, each invocation a fixed share. The index runs along the
        // operand's contiguous dimension (k for A, r for a transposed A), so that
        // neighbouring invocations load neighbouring words.
        for (var e = li; e < BM * BK; e += NT) {
            var r: u32;
            var k: u32;
            if (TA) { r = e % BM; k = e / BM; } else { k = e % BK; r = e / BK; }
            var v = 0.0;
            if (r0 + r < M && k0 + k < kend) { v = a_at(r0 + r, k0 + k, M, K); }
            As[k * AP + r] = v;
        }
        // B's BK×BN slice: four columns per load (ldb4, one vector load with B4) where B is
        // not transposed and the four are inside N; single values otherwise.
        if (!TB) {
            for (var e = li; e < BK * BN / 4u; e += NT) {
                let c = (e % (BN / 4u)) * 4u;
                let k = e / (BN / 4u);
                var v = vec4<f32>(0.0);
                if (k0 + k < kend) {
                    if (c0 + c + 3u < N) {
                        v = ldb4((k0 + k) * N + c0 + c);
                    } else {
                        for (var j = 0u; j < 4u; j++) {
                            if (c0 + c + j < N) { v[j] = b_at(k0 + k, c0 + c + j, N, K); }
                        }
                    }
                }
                let o = k * BP + c;
                Bs[o] = v.x; Bs[o + 1u] = v.y; Bs[o + 2u] = v.z; Bs[o + 3u] = v.w;
            }
        } else {
            for (var e = li; e < BK * BN; e += NT) {
                let k = e % BK;
                let c = e / BK;
                var v = 0.0;
                if (c0 + c < N && k0 + k < kend) { v = b_at(k0 + k, c0 + c, N, K); }
                Bs[k * BP + c] = v;
            }
        }
        workgroupBarrier();
        for (var k = 0u; k < BK; k++) {
            var a: array<f32, TM>;
            var b: array<f32, TN>;
            for (var i = 0u; i < TM; i++) { a[i] = As[k * AP + lid.y + i * WY]; }
            for (var j = 0u; j < TN; j++) { b[j] = Bs[k * BP + lid.x + j * WX]; }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
                }
            }
        }
        workgroupBarrier();
    }
    let base = wid.z * M * N;
    for (var j = 0u; j < TN; j++) {
        let c = c0 + lid.x + j * WX;
        if (c >= N) { continue; }
        var bias = 0.0;
        if (BIAS && Ks == 0u) { bias = in2[c]; }
        for (var i = 0u; i < TM; i++) {
            let r = r0 + lid.y + i * WY;
            if (r < M) { out0[base + r * N + c] = acc[i * TN + j] + bias; }
        }
    }
}
