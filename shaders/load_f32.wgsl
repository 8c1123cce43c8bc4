// Operand loaders of the f32 matmul (see matmul.wgsl): A = in0, B = in1, plain loads.
fn lda(i: u32) -> f32 { return in0[i]; }
fn ldb(i: u32) -> f32 { return in1[i]; }
// B[o .. o + 4]. With B4 (set by the host when B is not transposed and N is a multiple
// of 4, so that o always is) one vec4 load from in3, which the GPU backend binds to the
// same range as in1, typed array<vec4<f32>> for this module: llvmpipe turns each load
// into a loop over the lanes, so one 16-byte load instead of four 4-byte ones counts.
override B4: bool = false;
// Values 4e .. 4e + 4 of B from the vec4 view. With a textured B (the host keeps the
// lines marked @btex instead of @bbuf, see shaders/texture.wgsl) in3 is an rgba32float
// texture holding the same vectors.
fn ldb4v(e: u32) -> vec4<f32> { return in3[e]; } // @bbuf
fn ldb4v(e: u32) -> vec4<f32> { return textureLoad(in3, texel(e), 0); } // @btex
fn ldb4(o: u32) -> vec4<f32> {
    if (B4) { return ldb4v(o >> 2u); }
    return vec4<f32>(in1[o], in1[o + 1u], in1[o + 2u], in1[o + 3u]);
}
// A[r, k .. k + 4] (vector e of A's flat array) from a texture, when A is read from one
// (the host keeps @atex lines only then; binding 9, see shaders/texture.wgsl).
fn lda4v(e: u32) -> vec4<f32> { return textureLoad(atex, texel(e), 0); } // @atex
