//! Every kernel's fast CPU twin and GPU entry point against its CPU reference, forward and
//! backward, on random shapes including odd sizes; one file per kernel family. This file is
//! the harness: a [`Case`] (one invocation with typed parameters) and its equivalence
//! check, and the matmul cases that several families share.

#[path = "../common/mod.rs"]
mod common;

mod batchnorm;
mod clip;
mod conv;
mod dropout;
mod elementwise;
mod embedding;
mod half;
mod layernorm;
mod loss;
mod matmul;
mod optim;
mod pool;
mod rnn;
mod softmax_xent;
mod stats;

use common::*;
use shadeprop::backend::check::run_kernel;
use shadeprop::backend::cpu::Cpu;
use shadeprop::backend::gpu::Gpu;
use shadeprop::backend::{Backend, Globals, Kernel};
use shadeprop::kernels::matmul::MatMulParams;
use shadeprop::kernels::{KernelParams, Words};

/// The globals of every case unless it sets its own: a seed and step for the random
/// kernels, a learning rate for the updates.
pub fn g0() -> Globals {
    Globals {
        seed_lo: 1234,
        seed_hi: 0,
        step: 5,
        lr: 0.1,
        ..Default::default()
    }
}

/// `n` zeros: an output's initial contents.
pub fn zeros(n: usize) -> Vec<f32> {
    vec![0.0; n]
}

/// One kernel invocation: the kernel, its parameter words (from the family's typed
/// parameters), the operands (outputs with their initial contents: the updates read them),
/// the globals and the tolerance `|got − want| <= atol + rtol·|want|` of [`Case::check`].
#[derive(Clone, Debug)]
pub struct Case {
    pub kernel: Kernel,
    pub p: Words,
    pub ins: Vec<Vec<f32>>,
    pub outs: Vec<Vec<f32>>,
    pub g: Globals,
    pub atol: f32,
    pub rtol: f32,
}

impl Case {
    /// `kernel` with `params`, no operands yet, globals [`g0`], bit-exact comparison.
    pub fn new(kernel: Kernel, params: impl KernelParams) -> Self {
        Case {
            kernel,
            p: params.to_words(),
            ins: vec![],
            outs: vec![],
            g: g0(),
            atol: 0.0,
            rtol: 0.0,
        }
    }

    /// The matmul variant and words of `prm` ([`MatMulParams::kernel`]).
    pub fn matmul(prm: MatMulParams) -> Self {
        Case::new(prm.kernel(), prm)
    }

    pub fn ins(mut self, ins: impl Into<Vec<Vec<f32>>>) -> Self {
        self.ins = ins.into();
        self
    }

    pub fn outs(mut self, outs: impl Into<Vec<Vec<f32>>>) -> Self {
        self.outs = outs.into();
        self
    }

    pub fn globals(mut self, g: Globals) -> Self {
        self.g = g;
        self
    }

    pub fn tol(mut self, atol: f32, rtol: f32) -> Self {
        self.atol = atol;
        self.rtol = rtol;
        self
    }

    /// The outputs on one backend.
    pub fn run(&self, b: &mut dyn Backend) -> Vec<Vec<f32>> {
        run_kernel(b, self.kernel, self.p, &self.ins, &self.outs, &self.g).unwrap()
    }

    /// The CPU reference's outputs.
    pub fn reference(&self) -> Vec<Vec<f32>> {
        self.run(&mut Cpu::new())
    }

    /// The fast CPU backend and every GPU of `gpus` against the CPU reference, each output
    /// within the tolerance, a failure naming the backend; the reference's outputs. In CI
    /// (SHADEPROP_REQUIRE_GPU set) `gpus` must not be empty.
    pub fn check(&self, gpus: &mut [Gpu]) -> Vec<Vec<f32>> {
        let want = self.reference();
        let kernel = self.kernel;
        let fast = self.run(&mut Cpu::fast());
        for (i, (a, b)) in fast.iter().zip(&want).enumerate() {
            assert_close(
                &format!("{kernel:?} out{i} on the fast CPU backend"),
                a,
                b,
                self.atol,
                self.rtol,
            );
        }
        assert!(!gpus.is_empty() || std::env::var("SHADEPROP_REQUIRE_GPU").is_err());
        for gpu in gpus.iter_mut() {
            let got = self.run(gpu);
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_close(
                    &format!("{kernel:?} out{i} on {}", gpu.describe()),
                    a,
                    b,
                    self.atol,
                    self.rtol,
                );
            }
        }
        want
    }
}

/// (ta, tb, bias) of the matmul tests: every transpose, with and without the bias.
pub const TRANSPOSES: [(bool, bool, bool); 4] = [
    (false, false, true),
    (true, false, false),
    (false, true, false),
    (true, true, true),
];

/// The matmul of `prm` (shape, transposes, bias, f16 operands) with random operands from
/// `seed` (the same values either way, packed two per word for `half`): operands
/// `[A, B, bias]`, output `C [M, N]`, bit-exact until a tolerance is set.
pub fn matmul_case(seed: u64, prm: MatMulParams) -> Case {
    let MatMulParams { m, n, k, half, .. } = prm;
    let (a, b) = (rand_vec(seed, m * k), rand_vec(seed + 1, k * n));
    let (a, b) = if half {
        (packed(&a), packed(&b))
    } else {
        (a, b)
    };
    Case::matmul(prm)
        .ins([a, b, rand_vec(seed + 2, n)])
        .outs([zeros(m * n)])
}

/// The matmul test list: every (M, N, K) of `shapes` with every transpose of
/// [`TRANSPOSES`], f32 or packed f16 operands, operands seeded by the shape's index; the
/// parameters and the case, shape by shape.
pub fn matmul_cases(
    shapes: &[(usize, usize, usize)],
    half: bool,
    seed: impl Fn(usize) -> u64,
) -> Vec<(MatMulParams, Case)> {
    let mut v = vec![];
    for (si, &(m, n, k)) in shapes.iter().enumerate() {
        for (ta, tb, bias) in TRANSPOSES {
            let prm = MatMulParams {
                m,
                n,
                k,
                ta,
                tb,
                bias,
                half,
                ..Default::default()
            };
            v.push((prm, matmul_case(seed(si), prm)));
        }
    }
    v
}

/// Operands packed two f16 values per word, as the plan's CastHalf stores them.
pub fn packed(x: &[f32]) -> Vec<f32> {
    let mut w = vec![0.0; x.len().div_ceil(2)];
    shadeprop::backend::cpu::half::pack_into(x, &mut w);
    w
}
