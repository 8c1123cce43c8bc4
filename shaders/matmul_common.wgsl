// What every matmul variant shares (matmul.wgsl, matmul_subgroup.wgsl, matmul_tiled.wgsl;
// the host prepends it after the operand loaders): the transposes and the bias as
// pipeline constants, A and B read in place through them, and the K range of a split-K
// layer.
//   p0 = M, p1 = N, p2 = K, p3 = Ks (split-K slice length, 0 = no split)

override TA: bool = false;
override TB: bool = false;
override BIAS: bool = false;

// A[r, k] of op(A) [M, K]: A is stored [K, M] when TA.
fn a_at(r: u32, k: u32, M: u32, K: u32) -> f32 {
    if (TA) { return lda(k * M + r); }
    return lda(r * K + k);
}

// B[k, c] of op(B) [K, N]: B is stored [N, K] when TB.
fn b_at(k: u32, c: u32, N: u32, K: u32) -> f32 {
    if (TB) { return ldb(c * K + k); }
    return ldb(k * N + c);
}

// [kbeg, kend) summed by grid layer z: all of K, or with Ks > 0 the slice
// [z·Ks, min((z+1)·Ks, K)), whose partial product (without bias) goes to out0[z·M·N ..].
fn k_range(z: u32) -> vec2<u32> {
    let K = pu(2u);
    let Ks = pu(3u);
    let kbeg = z * Ks;
    return vec2<u32>(kbeg, select(K, min(kbeg + Ks, K), Ks > 0u));
}
