// Operand loaders of the half matmul (mixed precision, see matmul.wgsl): the host declares
// in0 and in1 as array<u32> for this module, each word holding two f16 values, element i
// in the low half of word i/2 when i is even, in the high half when odd (pack2x16float's
// order). Values are unpacked to f32 (exact); products and sums stay f32.
fn h2(w: u32, i: u32) -> f32 {
    let v = unpack2x16float(w);
    return select(v.x, v.y, (i & 1u) == 1u);
}
fn lda(i: u32) -> f32 { return h2(in0[i >> 1u], i); }
fn ldb(i: u32) -> f32 { return h2(in1[i >> 1u], i); }
// B[o .. o + 4]: with B4 (B not transposed, N a multiple of 4) one 8-byte load from in3,
// the same range as in1 bound as array<vec2<u32>>; else two words when o is even, four
// otherwise.
override B4: bool = false;
// Values 4e .. 4e + 4 of B from the vec2<u32> view; with a textured B (lines marked @btex,
// see shaders/texture.wgsl) in3 is an rg32uint texture holding the same pairs of words.
fn ldb4v(e: u32) -> vec4<f32> {
    let w = in3[e]; // @bbuf
    let w = textureLoad(in3, texel(e), 0).xy; // @btex
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
fn ldb4(o: u32) -> vec4<f32> {
    if (B4) { return ldb4v(o >> 2u); }
    if ((o & 1u) == 0u) {
        let w = o >> 1u;
        return vec4<f32>(unpack2x16float(in1[w]), unpack2x16float(in1[w + 1u]));
    }
    return vec4<f32>(ldb(o), ldb(o + 1u), ldb(o + 2u), ldb(o + 3u));
}
// Four f16 values of A (vector e: two words) from an rg32uint texture, when A is read
// from one (@atex lines, binding 9, see shaders/texture.wgsl).
fn lda4v(e: u32) -> vec4<f32> { let w = textureLoad(atex, texel(e), 0).xy; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); } // @atex
