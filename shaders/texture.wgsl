// B of the subgroup matmul from a texture (the GPU backend's BTEX path, for llvmpipe).
//
// llvmpipe turns every storage-buffer load into a loop over the subgroup's lanes, with a
// branch per lane on the execution mask and one per component on the bounds, while a
// texel fetch is one call of straight-line gathers: reading B's four-value vectors from a
// texture made the 1024³ matmul about 20% faster there (../shared/ADAPTERS.md,
// benches/results). The host copies B's range, unchanged, into an rgba32float texture
// (rg32uint for packed f16) TEXW texels wide, row after row, before the matmul's
// dispatch; vector e of the flat array is texel (e mod TEXW, e / TEXW). TEXW is a power of
// two, so that is a mask and a shift, and each row is TEXW · 16 bytes, a multiple of the
// 256 bytes a buffer-to-texture copy needs, whatever B's shape.
const TEXW: u32 = 4096u;
fn texel(e: u32) -> vec2<u32> { return vec2<u32>(e % TEXW, e / TEXW); }
