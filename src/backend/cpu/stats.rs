//! CPU twin of `shaders/stats.wgsl`: the same strided partial sums and the same tree.

use crate::backend::Globals;
use crate::kernels::KernelParams;
use crate::kernels::elementwise::Len;

/// [`Kernel::TensorStats`](crate::kernels::Kernel::TensorStats), [`Len`]:
/// `stats = (Σ x, Σ x², zeros, n)`. `ins = [x [n]]`, `outs = [stats [4]]`.
pub fn tensor_stats(p: &[u32; 16], _g: &Globals, ins: &[&[f32]], outs: &mut [&mut [f32]]) {
    let Len { n } = Len::from_words(p);
    let (mut s1, mut s2, mut s0) = ([0f32; 256], [0f32; 256], [0f32; 256]);
    for t in 0..256 {
        let mut i = t;
        while i < n {
            let x = ins[0][i];
            s1[t] += x;
            s2[t] += x * x;
            s0[t] += if x == 0.0 { 1.0 } else { 0.0 };
            i += 256;
        }
    }
    let mut w = 128;
    while w > 0 {
        for t in 0..w {
            s1[t] += s1[t + w];
            s2[t] += s2[t + w];
            s0[t] += s0[t + w];
        }
        w /= 2;
    }
    outs[0][..4].copy_from_slice(&[s1[0], s2[0], s0[0], n as f32]);
}
