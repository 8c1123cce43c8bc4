//! The matmul ABI (`shaders/matmul.wgsl`, `shaders/matmul_subgroup.wgsl`; CPU twins in
//! `backend/cpu/matmul.rs`).

use super::Kernel;

params! {
    /// `C[M, N] = op(A)·op(B) (+ bias[N])`, summed over k in order.
    ///
    /// # Shapes
    /// - `op(A)`: `A [M, K]`, or `Aᵀ` of A stored `[K, M]` when `ta`;
    /// - `op(B)`: `B [K, N]`, or `Bᵀ` of B stored `[N, K]` when `tb`;
    /// - operands `ins = [A, B, bias]` (bias read only when `bias`), `outs = [C]`.
    ///
    /// `half`: A and B are packed f16 (two values per word, [`Kernel::CastHalf`]),
    /// unpacked to f32 exactly, so products and sums are those of the f32 kernel on the
    /// f16 values. `split_k` > 0 (set by the GPU backend for deep products): slice z of C,
    /// at `out[z·M·N ..]`, is the product over k in `[z·split_k, (z+1)·split_k)`, without
    /// bias; [`Kernel::SliceSum`] adds the slices. The flags are also the variant's
    /// fields ([`MatMulParams::kernel`]), read by the GPU as pipeline constants.
    pub struct MatMulParams {
        m: usize = 0,
        n: usize = 1,
        k: usize = 2,
        split_k: usize = 3,
        half: bool = 12,
        ta: bool = 13,
        tb: bool = 14,
        bias: bool = 15,
    }
}

impl MatMulParams {
    /// The kernel variant these parameters select.
    pub fn kernel(&self) -> Kernel {
        Kernel::MatMul {
            ta: self.ta,
            tb: self.tb,
            bias: self.bias,
            half: self.half,
        }
    }
}
