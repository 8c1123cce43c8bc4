// The subgroup matmul's operands from textures (the GPU backend's texture operands, on by
// default for llvmpipe).
//
// llvmpipe turns every storage-buffer load into a loop over the subgroup's lanes, with a
// branch per lane on the execution mask and one per component on the bounds, while a
// texel fetch is one call of straight-line gathers. The host copies an operand's range,
// unchanged, into an rgba32float texture (rg32uint for packed f16) TEXW texels wide, row
// after row, just before the matmul's dispatch; vector e of the flat array (values
// 4e .. 4e + 4) is texel (e mod TEXW, e / TEXW). TEXW is a power of two, so that is a mask
// and a shift, and each row is TEXW · 16 bytes, a multiple of the 256 bytes a
// buffer-to-texture copy needs, whatever the operand's shape.
//
// Both operands or neither (the host decides: texture_operands in
// src/backend/gpu/matmul.rs). B (in3 becomes the texture) is read where the kernel loads
// four values of B at once (B4); A (binding 9, atex) four values of k per lane: lane l
// holds A[row, k0 + 4l .. k0 + 4l + 4], so a k step covers 4·SG values of k and each
// texel fetch serves 4·SG·4 multiply-adds of the lane's row instead of SG·4 for a
// storage load of one value. On llvmpipe the 1024³ product went from about 34 to 47
// GFLOP/s (benches/results/gemm-llvmpipe-and-cpu.md).
const TEXW: u32 = 4096u;
fn texel(e: u32) -> vec2<u32> { return vec2<u32>(e % TEXW, e / TEXW); }
