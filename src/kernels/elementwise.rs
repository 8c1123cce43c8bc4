//! The ABI of the one-pass kernels over flat ranges (`shaders/elementwise.wgsl`,
//! `half.wgsl`, `stats.wgsl`, `softmax_xent.wgsl::metrics_accum`; CPU twins in
//! `backend/cpu/elementwise.rs`, `half.rs`, `stats.rs`, `softmax_xent.rs`).

use super::Kernel;

params! {
    /// A length: the element count of [`Kernel::ActFwd`], [`Kernel::ActBwd`],
    /// [`Kernel::Add`], [`Kernel::CastHalf`] (`n` f32 values in, `⌈n/2⌉` packed words
    /// out) and [`Kernel::TensorStats`]; the row count of [`Kernel::MetricsAccum`].
    pub struct Len {
        n: usize = 0,
    }
}

params! {
    /// [`Kernel::BiasGrad`]: `db[n] = Σ_m dY[m, n]` over `dY [rows, cols]`.
    pub struct BiasGradParams {
        rows: usize = 0,
        cols: usize = 1,
    }
}

params! {
    /// [`Kernel::SliceSum`]: `C[i] = Σ_z P[z·n + i] (+ bias[i mod cols])` for `i < n`,
    /// over the `slices` split-K slices of length `n = M·N`, in order. `ins = [P, bias]`,
    /// `outs = [C]`. `bias` is also the variant's field ([`SliceSumParams::kernel`]).
    pub struct SliceSumParams {
        n: usize = 0,
        cols: usize = 1,
        slices: usize = 2,
        bias: bool = 15,
    }
}

impl SliceSumParams {
    /// The kernel variant these parameters select.
    pub fn kernel(&self) -> Kernel {
        Kernel::SliceSum { bias: self.bias }
    }
}

params! {
    /// [`Kernel::SliceCols`]: `y[m, j] = x[m, start + j]` for `j < len` over `x [rows,
    /// cols]` (`ins = [x]`, `outs = [y [rows, len]]`), and its adjoint
    /// [`Kernel::SliceColsBwd`]: `dx[m, c] = dy[m, c − start]` inside the slice, else 0
    /// (`ins = [dy]`, `outs = [dx [rows, cols]]`).
    pub struct SliceParams {
        rows: usize = 0,
        cols: usize = 1,
        start: usize = 2,
        len: usize = 3,
    }
}
