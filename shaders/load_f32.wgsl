// Operand loaders of the f32 matmul (see matmul.wgsl): A = in0, B = in1, plain loads.
fn lda(i: u32) -> f32 { return in0[i]; }
fn ldb(i: u32) -> f32 { return in1[i]; }
// B[o .. o + 4].
fn ldb4(o: u32) -> vec4<f32> { return vec4<f32>(in1[o], in1[o + 1u], in1[o + 2u], in1[o + 3u]); }
