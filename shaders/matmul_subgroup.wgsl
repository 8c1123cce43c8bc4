// C = op(A) · op(B) (+ bias): the same contract as matmul.wgsl, for adapters with
// subgroups of a fixed size SG (set by the host from the adapter's subgroup size).
//
// Each invocation owns TM rows × 4 columns of C; all invocations of a workgroup share
// the same TM rows, so A is loaded once per subgroup: lane l loads A[r, k0 + l] for its
// TM rows and the subgroup broadcasts each value to every lane. No workgroup memory and
// no barriers: on lavapipe (llvmpipe) these cost more than they save, and
// this shape measured ~40 GFLOP/s there against < 1 for shared-memory tiling.
// The k step is unrolled textually by the host (subgroupBroadcast needs a constant lane),
// as described above the entry point.

// Lanes per row group (64, 32, 16 or 8; a multiple of SG). For narrow outputs (N <= 128)
// the host picks CWL = N/4 rounded up, so the WG invocations cover WG/CWL row blocks
// instead of leaving lanes past N idle: each subgroup still shares one row block (the
// host checks at start-up that subgroups are consecutive invocations, and falls back to
// CWL = 64 where they are not).
override CWL: u32 = 64u;
// Invocations per workgroup (a multiple of CWL): WG / CWL row groups. The host lowers it
// for short outputs so that no row group computes rows past M.
override WG: u32 = 64u;
// Set by the host when the grid tiles C exactly (M a multiple of the workgroup's rows, N of
// its columns) and SG divides K (and the split-K slice length): no clamping or masking.
override FULL: bool = false;
// Set by the host for a transposed B (stored [N, K]) when SG is a multiple of 4 and K a
// multiple of SG (so every k step is whole): each lane loads B[c + j, k0 .. k0 + SG] for
// its 4 columns as SG/4 four-value loads per column once per k step (ldb4v), instead of
// 4·SG single values.
override TB4: bool = false;
const TM: u32 = 16u;
const SG: u32 = 8u;
// k per step of the main loop: SG, or 4·SG when A comes from a texture (set by the host).
const KS: u32 = 8u;

fn b4(k: u32, c: u32, N: u32, K: u32, full: bool) -> vec4<f32> {
    if (full) {
        if (TB) { return vec4<f32>(ldb(c * K + k), ldb((c + 1u) * K + k), ldb((c + 2u) * K + k), ldb((c + 3u) * K + k)); }
        return ldb4(k * N + c);
    }
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let cj = min(c + j, N - 1u);
        if (TB) { v[j] = ldb(cj * K + k); } else { v[j] = ldb(k * N + cj); }
    }
    return v;
}

// WG invocations → (WG/CWL) row blocks of TM rows × 4·CWL columns of C (CWL = 64: one
// TM-row × 256-column tile). Lines marked "@rows" are repeated by the host for II = 0..TM
// (named registers instead of arrays). The k step is then written out in groups of JG
// consecutive k (src/backend/gpu/wgsl.rs): the BEGIN_J..END_J block once for each k of
// the group (JJ), loading B's row k, then the "@fma" line for each row and each k of the
// group. Every accumulator still adds its products in k order; what changes is the
// schedule: with all TM rows of one k together, llvmpipe's LLVM kept every product of a
// k step live and spilled it, while a row's JG products in a row keep the accumulator in
// a register for JG multiply-adds (measured 1.1-1.3x faster there, JG = 4).
@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
          @builtin(subgroup_invocation_id) lane: u32) {
    let M = pu(0u);
    let N = pu(1u);
    let K = pu(2u);
    // Split K: workgroup z sums its slice (k_range) and writes its partial product,
    // without bias, to out0[z·M·N ..]; slice_sum adds the slices.
    let Ks = pu(3u);
    let kr = k_range(wid.z);
    let kbeg = kr.x;
    let kend = kr.y;
    let rg = lid / CWL;
    let r0 = (wid.y * (WG / CWL) + rg) * TM;
    let c0 = wid.x * (CWL * 4u) + (lid % CWL) * 4u;
    // Lanes past N still take part in the broadcasts; they just never store.
    // With FULL every clamp below is the identity and the compiler drops it.
    let cl = select(min(c0, N - 1u), c0, FULL);
    let full = FULL || c0 + 3u < N;
    var accII = vec4<f32>(0.0); // @rows
    // Rows past M are clamped: computed, never stored.
    let rowII = select(min(r0 + II, M - 1u), r0 + II, FULL); // @rows
    for (var k0 = kbeg; k0 < kend; k0 += KS) {
        let kin = FULL || k0 + lane < kend;
        let kc = select(min(k0 + lane, kend - 1u), k0 + lane, FULL);
        // Lane l holds A[row, k0 + l]; or, with A from a texture (the host keeps the @atex
        // line and sets KS = 4·SG, with K and the slice length multiples of KS),
        // A[row, k0 + 4l .. k0 + 4l + 4].
        let aII = select(0.0, a_at(rowII, kc, M, K), kin); // @rows @abuf
        let aII = lda4v((rowII * K + k0) / 4u + lane); // @rows @atex
        var t0QQ = vec4<f32>(0.0); var t1QQ = vec4<f32>(0.0); var t2QQ = vec4<f32>(0.0); var t3QQ = vec4<f32>(0.0); // @tbq
        if (TB4) {
            t0QQ = ldb4v((cl * K + k0) / 4u + QQ); t1QQ = ldb4v((min(cl + 1u, N - 1u) * K + k0) / 4u + QQ); t2QQ = ldb4v((min(cl + 2u, N - 1u) * K + k0) / 4u + QQ); t3QQ = ldb4v((min(cl + 3u, N - 1u) * K + k0) / 4u + QQ); // @tbq
        }
        // B's row k0 + j (JJ), then for each row A[row, k0 + j] from the lane that holds it
        // (ABCAST, a subgroupBroadcast) times it.
        // BEGIN_J
        var bJJ: vec4<f32>;
        if (TB4) {
            bJJ = vec4<f32>(t0JQ.JR, t1JQ.JR, t2JQ.JR, t3JQ.JR);
        } else {
            bJJ = b4(select(min(k0 + JJ, kend - 1u), k0 + JJ, FULL), cl, N, K, full);
        }
        // END_J
        accII = fma(vec4<f32>(ABCAST), bJJ, accII); // @fma
    }
    if (c0 >= N) { return; }
    var bias = vec4<f32>(0.0);
    if (BIAS && Ks == 0u) {
        for (var j = 0u; j < 4u; j++) { bias[j] = in2[min(c0 + j, N - 1u)]; }
    }
    let base = wid.z * M * N;
    store(base, r0 + II, c0, accII + bias, M, N, full); // @rows
}

fn store(base: u32, r: u32, c0: u32, v: vec4<f32>, M: u32, N: u32, full: bool) {
    if (r >= M) { return; }
    if (full) {
        let o = base + r * N + c0;
        out0[o] = v.x; out0[o + 1u] = v.y; out0[o + 2u] = v.z; out0[o + 3u] = v.w;
    } else {
        for (var j = 0u; j < 4u; j++) {
            if (c0 + j < N) { out0[base + r * N + c0 + j] = v[j]; }
        }
    }
}
