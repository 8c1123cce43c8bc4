// f32 → f16 storage for mixed precision. The host declares out0 as array<u32> for this
// module: word i holds elements 2i (low half) and 2i + 1 (high half), as pack2x16float
// would, but the rounding is written out (round to nearest, ties to even; subnormals kept;
// |x| ≥ 65520 → ±inf; NaN → 0x7E00 with the sign) because pack2x16float leaves rounding
// and out-of-range values to the implementation. CPU twin: src/backend/cpu/half.rs, with
// the same bits.

fn f16_bits(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let s = (b >> 16u) & 0x8000u;
    let a = b & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) { return s | select(0x7C00u, 0x7E00u, a > 0x7F800000u); }
    if (a >= 0x477FF000u) { return s | 0x7C00u; }
    if (a >= 0x38800000u) {
        // Normal: rebias the exponent (127 → 15) and round 23 mantissa bits to 10; a carry
        // out of the mantissa moves to the next binade, as it should.
        let r = a - 0x38000000u;
        let q = r >> 13u;
        let rem = r & 0x1FFFu;
        return s | (q + select(0u, 1u, rem > 0x1000u || (rem == 0x1000u && (q & 1u) == 1u)));
    }
    if (a < 0x33000000u) { return s; }
    // Subnormal: units of 2^-24, the implicit bit made explicit.
    let e = a >> 23u;
    let m = (a & 0x7FFFFFu) | 0x800000u;
    let sh = 126u - e;
    let q = m >> sh;
    let rem = m & ((1u << sh) - 1u);
    let half = 1u << (sh - 1u);
    return s | (q + select(0u, 1u, rem > half || (rem == half && (q & 1u) == 1u)));
}

// p0 = n elements; in0 = x (n f32), out0 = ceil(n/2) words (a lone last element with 0).
@compute @workgroup_size(256)
fn cast_half(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = pu(0u);
    let i = flat_index(gid, nwg);
    if (i >= (n + 1u) / 2u) { return; }
    let lo = f16_bits(in0[2u * i]);
    var hi = 0u;
    if (2u * i + 1u < n) { hi = f16_bits(in0[2u * i + 1u]); }
    out0[i] = lo | (hi << 16u);
}
