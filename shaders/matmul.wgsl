// C = op(A) · op(B) (+ bias), op(A) is [M, K], op(B) is [K, N], C is [M, N], row-major.
// TA: A is stored [K, M] (A^T is used); TB: B is stored [N, K]. Transposes are read in
// place, never materialized. BIAS adds bias[n] to every row (fused linear forward).
// in0 = A, in1 = B, in2 = bias; out0 = C.   p0 = M, p1 = N, p2 = K (TA, TB, BIAS, a_at, b_at
// and k_range come from matmul_common.wgsl, which the host prepends)
// A and B are read through lda/ldb/ldb4, which the host defines: plain f32 loads, or (the
// half variant, p12 = 1) f16 values packed two per 32-bit word, element i in the low (i
// even) or high half of word i/2, unpacked to f32; products and sums are f32 either way.
//
// Portable variant (no subgroups, no workgroup memory): each invocation owns a 4×4
// register block; on lavapipe workgroup memory and barriers cost more than they save
// (measured on llvmpipe), so tiles are not staged through shared memory.

// acc[i] += A[rr[i], k] · B[k, cc] for the 4 rows (nothing from kend on).
fn mac(k: u32, kend: u32, rr: array<u32, 4>, cc: array<u32, 4>, M: u32, N: u32, K: u32,
       acc: ptr<function, array<vec4<f32>, 4>>) {
    if (k >= kend) { return; }
    let b = vec4<f32>(b_at(k, cc[0], N, K), b_at(k, cc[1], N, K), b_at(k, cc[2], N, K), b_at(k, cc[3], N, K));
    (*acc)[0] = fma(vec4<f32>(a_at(rr[0], k, M, K)), b, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a_at(rr[1], k, M, K)), b, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a_at(rr[2], k, M, K)), b, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a_at(rr[3], k, M, K)), b, (*acc)[3]);
}

// workgroup 16×4 invocations → a 16-row × 64-column tile of C. Split K (p3 = slice
// length Ks > 0): grid layer z sums k in [z·Ks, (z+1)·Ks) into out0[z·M·N ..], no bias.
@compute @workgroup_size(16, 4)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let M = pu(0u);
    let N = pu(1u);
    let K = pu(2u);
    let Ks = pu(3u);
    let kr = k_range(gid.z);
    let kbeg = kr.x;
    let kend = kr.y;
    let base = gid.z * M * N;
    let c0 = gid.x * 4u;
    let r0 = gid.y * 4u;
    if (c0 >= N || r0 >= M) { return; }
    // Clamp indices so that edge blocks read valid memory; their extra lanes are not stored.
    var rr: array<u32, 4>;
    var cc: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) { rr[i] = min(r0 + i, M - 1u); cc[i] = min(c0 + i, N - 1u); }
    var acc: array<vec4<f32>, 4>;
    // Four k per iteration, written out (see UNROLL in common.wgsl: llvmpipe counts loop
    // iterations, and this body is too large for the compiler to unroll an inner loop).
    for (var k0 = kbeg; k0 < kend; k0 += 4u) {
        mac(k0, kend, rr, cc, M, N, K, &acc);
        mac(k0 + 1u, kend, rr, cc, M, N, K, &acc);
        mac(k0 + 2u, kend, rr, cc, M, N, K, &acc);
        mac(k0 + 3u, kend, rr, cc, M, N, K, &acc);
    }
    var bias = vec4<f32>(0.0);
    if (BIAS && Ks == 0u) { bias = vec4<f32>(in2[cc[0]], in2[cc[1]], in2[cc[2]], in2[cc[3]]); }
    for (var i = 0u; i < 4u; i++) {
        let r = r0 + i;
        if (r >= M) { break; }
        let v = acc[i] + bias;
        for (var j = 0u; j < 4u; j++) {
            if (c0 + j < N) { out0[base + r * N + c0 + j] = v[j]; }
        }
    }
}
