//! What one dispatch binds (its bind group layout) and runs (workgroups, loop trips).

use super::AdapterReport;
use super::matmul::{MatmulShape, SG_TM, matmul_shape, texture_format};
use crate::backend::{Instr, Kernel};
use crate::kernels::KernelParams;
use crate::kernels::augment::AugmentParams;
use crate::kernels::batchnorm::BatchNormParams;
use crate::kernels::clip::{ClipFinalizeParams, ClipTensorParams, GradPrepParams};
use crate::kernels::conv::{ToNchwParams, ToNhwcParams, Window};
use crate::kernels::dropout::DropoutParams;
use crate::kernels::elementwise::{BiasGradParams, Len, SliceParams, SliceSumParams};
use crate::kernels::embedding::EmbeddingParams;
use crate::kernels::layernorm::LayerNormParams;
use crate::kernels::loss::{BceParams, RegressionParams};
use crate::kernels::matmul::MatMulParams;
use crate::kernels::optim::{AdamParams, SgdParams};
use crate::kernels::rnn::RnnParams;
use crate::kernels::softmax_xent::SoftmaxXentParams;

/// Binding of in0, the first of the four read-only operands in0..in3 (see
/// shaders/common.wgsl).
pub const IN_BASE: u32 = 2;
/// Binding of out0, the first of the three read-write operands out0..out2.
pub const OUT_BASE: u32 = 6;

/// The binding of A's texture (A from a texture, shaders/texture.wgsl).
pub const ATEX_BINDING: u32 = 9;

/// A bind group layout: inputs, outputs, and the sample type of the textures that replace
/// B's vector view (in3) and add A ([`ATEX_BINDING`]) when the matmul reads its operands
/// from textures.
pub type LayoutKey = (usize, usize, Option<wgpu::TextureSampleType>);

/// The layout of `kernel`'s pipeline with `shape`.
pub fn layout_key(kernel: Kernel, shape: &MatmulShape) -> LayoutKey {
    let (n_in, n_out) = arity(kernel);
    (n_in, n_out, shape.tex.then(|| texture_format(kernel).2))
}

/// The bindings a kernel's pipeline layout has (inputs, outputs): the matmul has a fourth
/// input, B again as vectors ([`vec4_b`](super::matmul::vec4_b)).
pub fn arity(kernel: Kernel) -> (usize, usize) {
    let def = kernel.def();
    match kernel {
        Kernel::MatMul { .. } => (4, def.n_out),
        _ => (def.n_in, def.n_out),
    }
}

/// What llvmpipe (lavapipe) allows: it stops an invocation's loops, silently, after 65535
/// iterations in all (see UNROLL in shaders/common.wgsl).
pub const LLVMPIPE_LOOP_LIMIT: u64 = 65_535;

/// An upper bound on the loop iterations one invocation of `instr` runs with `shape` (loops
/// of constant trip count are unrolled by the compiler and do not count).
pub fn loop_trips(instr: &Instr, shape: &MatmulShape, report: &AdapterReport) -> u64 {
    let p = &instr.p;
    let w = |x: usize| x as u64;
    let unroll = 16;
    match instr.kernel {
        Kernel::MatMul { .. } => {
            let mm = MatMulParams::from_words(p);
            // Each invocation runs over its split-K slice, or all of K.
            let depth = w(if mm.split_k > 0 { mm.split_k } else { mm.k });
            match shape.tile {
                // Per BK-deep slice: the staging loops (whose trip count the compiler may
                // not see through) and the BK steps over it, counted as loops too.
                Some(t) => {
                    let u = |x: u32| x as u64;
                    let staged = u(t.bm * t.bk + t.bk * t.bn).div_ceil(u(t.invocations()));
                    depth.div_ceil(u(t.bk)) * (staged + u(t.bk) * (1 + u(t.tm) + u(t.tn)))
                }
                None => depth.div_ceil(report.subgroup_size.map_or(4, |sg| sg as u64)),
            }
        }
        Kernel::BiasGrad => w(BiasGradParams::from_words(p).rows).div_ceil(unroll),
        Kernel::SliceSum { .. } => w(SliceSumParams::from_words(p).slices),
        Kernel::BnFwdTrain | Kernel::BnBwd => {
            let bn = BatchNormParams::from_words(p);
            let passes = if instr.kernel == Kernel::BnFwdTrain {
                3
            } else {
                2
            };
            passes * (w(bn.rows) * w(bn.spatial.max(1))).div_ceil(unroll)
        }
        Kernel::LnFwd | Kernel::LnBwdX => {
            let passes = if instr.kernel == Kernel::LnFwd { 3 } else { 2 };
            passes * w(LayerNormParams::from_words(p).features).div_ceil(unroll)
        }
        Kernel::LnBwdParams => w(LayerNormParams::from_words(p).rows).div_ceil(unroll),
        Kernel::RnnAux => w(RnnParams::from_words(p).features).div_ceil(unroll),
        Kernel::LstmStep | Kernel::GruStep => w(RnnParams::from_words(p).hidden).div_ceil(unroll),
        Kernel::LstmStepBwd | Kernel::GruStepBwd => {
            let r = RnnParams::from_words(p);
            (w(r.gates) * w(r.hidden)).div_ceil(unroll)
        }
        Kernel::RnnBiasGrad => {
            let r = RnnParams::from_words(p);
            (w(r.batch) * w(r.steps)).div_ceil(unroll)
        }
        Kernel::RnnStateGrad => {
            let r = RnnParams::from_words(p);
            (w(r.gates) * w(r.hidden)).div_ceil(unroll)
        }
        Kernel::MetricsAccum => w(Len::from_words(p).n).div_ceil(unroll),
        Kernel::EmbeddingBwd => w(EmbeddingParams::from_words(p).positions).div_ceil(unroll),
        Kernel::AugmentPhoto => {
            let a = AugmentParams::from_words(p);
            let px = w(a.channels) * w(a.height) * w(a.width);
            px.div_ceil(unroll) + px.div_ceil(64)
        }
        Kernel::AugmentGeom => {
            let a = AugmentParams::from_words(p);
            (w(a.height) * w(a.width)).div_ceil(64)
        }
        Kernel::GradPrep => {
            let gp = GradPrepParams::from_words(p);
            w(gp.n).div_ceil(unroll * w(gp.parts.max(1)))
        }
        Kernel::TensorStats => w(Len::from_words(p).n).div_ceil(unroll * 256) + 8,
        Kernel::ClipFinalize => w(ClipFinalizeParams::from_words(p).parts),
        // The general path walks the classes four times.
        Kernel::SoftmaxXent => 4 * w(SoftmaxXentParams::from_words(p).classes),
        Kernel::BceWithLogits => 2 * w(BceParams::from_words(p).outputs),
        Kernel::RegressionLoss => 2 * w(RegressionParams::from_words(p).outputs),
        _ => 0,
    }
}

fn div_up(a: u32, b: u32) -> u32 {
    a.div_ceil(b).max(1)
}

/// 1-D grid of 256-wide workgroups covering n (2-D when n exceeds 65535 groups).
fn grid1d(n: u32) -> [u32; 3] {
    let g = div_up(n, 256);
    let x = g.min(65535);
    [x, div_up(g, x), 1]
}

/// Workgroup counts of an instruction, a matmul with `shape` (for the default subgroup or
/// portable kernel: [`MatmulShape::default`]).
pub fn workgroups(instr: &Instr, shape: &MatmulShape, report: &AdapterReport) -> [u32; 3] {
    let p = &instr.p;
    let w = |x: usize| x as u32;
    let len = || w(Len::from_words(p).n);
    let window = || Window::from_words(p);
    match instr.kernel {
        Kernel::MatMul { .. } => {
            let mm = MatMulParams::from_words(p);
            let (m, n, k, split_k) = (w(mm.m), w(mm.n), w(mm.k), w(mm.split_k));
            // Split-K slices along z.
            let slices = if split_k > 0 { div_up(k, split_k) } else { 1 };
            if let Some(t) = shape.tile {
                return [div_up(n, t.bn), div_up(m, t.bm), slices];
            }
            match report.subgroup_size {
                Some(_) => {
                    let s = matmul_shape(m, n, k, report);
                    [
                        div_up(n, 4 * s.lanes),
                        div_up(m, SG_TM * (s.workgroup / s.lanes)),
                        slices,
                    ]
                }
                None => [div_up(n, 64), div_up(m, 16), slices],
            }
        }
        Kernel::BiasGrad => grid1d(w(BiasGradParams::from_words(p).cols)),
        Kernel::CastHalf => grid1d(len().div_ceil(2)),
        Kernel::SliceSum { .. } => grid1d(w(SliceSumParams::from_words(p).n)),
        Kernel::BnFwdEval => {
            let bn = BatchNormParams::from_words(p);
            grid1d(w(bn.rows) * w(bn.channels) * w(bn.spatial).max(1))
        }
        Kernel::BnFwdTrain | Kernel::BnBwd => {
            [div_up(w(BatchNormParams::from_words(p).channels), 64), 1, 1]
        }
        Kernel::LnFwd | Kernel::LnBwdX => grid1d(w(LayerNormParams::from_words(p).rows)),
        Kernel::LnBwdParams => grid1d(w(LayerNormParams::from_words(p).features)),
        Kernel::RnnAux => {
            let r = RnnParams::from_words(p);
            grid1d(w(r.batch) * w(r.aux_width()))
        }
        Kernel::RnnStateGrad => {
            let r = RnnParams::from_words(p);
            grid1d(w(r.batch) * w(r.state_width()))
        }
        Kernel::LstmStep | Kernel::GruStep | Kernel::LstmStepBwd | Kernel::GruStepBwd => {
            let r = RnnParams::from_words(p);
            grid1d(w(r.batch) * w(r.hidden))
        }
        Kernel::RnnBiasGrad => {
            let r = RnnParams::from_words(p);
            grid1d(2 * w(r.gates) * w(r.hidden))
        }
        Kernel::SliceCols => {
            let s = SliceParams::from_words(p);
            grid1d(w(s.rows) * w(s.len))
        }
        Kernel::SliceColsBwd => {
            let s = SliceParams::from_words(p);
            grid1d(w(s.rows) * w(s.cols))
        }
        Kernel::Embedding => {
            let e = EmbeddingParams::from_words(p);
            grid1d(w(e.positions) * w(e.dim))
        }
        Kernel::EmbeddingBwd => {
            let e = EmbeddingParams::from_words(p);
            grid1d(w(e.vocab) * w(e.dim))
        }
        Kernel::SoftmaxXent => [div_up(w(SoftmaxXentParams::from_words(p).rows), 64), 1, 1],
        Kernel::BceWithLogits => [div_up(w(BceParams::from_words(p).rows), 64), 1, 1],
        Kernel::RegressionLoss => [div_up(w(RegressionParams::from_words(p).rows), 64), 1, 1],
        Kernel::GradPrep => [div_up(w(GradPrepParams::from_words(p).parts), 64), 1, 1],
        Kernel::MetricsAccum | Kernel::ClipFinalize | Kernel::TensorStats => [1, 1, 1],
        // One workgroup per (sample, channel) plane.
        Kernel::AugmentGeom => {
            let a = AugmentParams::from_words(p);
            let planes = (w(a.batch) * w(a.channels)).max(1);
            let x = planes.min(65535);
            [x, div_up(planes, x), 1]
        }
        // One workgroup per image.
        Kernel::AugmentPhoto => [w(AugmentParams::from_words(p).batch).max(1), 1, 1],
        // One invocation per (patch row, channel, kernel row).
        Kernel::Im2Col => {
            let Window { batch, g } = window();
            grid1d(w(batch) * w(g.oh) * w(g.ow) * w(g.c) * w(g.kh))
        }
        Kernel::Col2Im | Kernel::MaxPoolBwd | Kernel::AvgPoolBwd => {
            let Window { batch, g } = window();
            grid1d(w(batch) * w(g.c) * w(g.h) * w(g.w))
        }
        Kernel::ToNchw { .. } => {
            let t = ToNchwParams::from_words(p);
            grid1d(w(t.batch) * w(t.spatial) * w(t.channels))
        }
        Kernel::ToNhwc => {
            let t = ToNhwcParams::from_words(p);
            grid1d(w(t.batch) * w(t.spatial) * w(t.channels))
        }
        Kernel::MaxPoolFwd | Kernel::AvgPoolFwd => {
            let Window { batch, g } = window();
            grid1d(w(batch) * w(g.c) * w(g.oh) * w(g.ow))
        }
        Kernel::Dropout | Kernel::ReluDropout | Kernel::DropoutReluBwd => {
            grid1d(w(DropoutParams::from_words(p).n))
        }
        Kernel::SgdUpdate => grid1d(w(SgdParams::from_words(p).n)),
        Kernel::AdamUpdate => grid1d(w(AdamParams::from_words(p).n)),
        Kernel::ClipTensor => grid1d(w(ClipTensorParams::from_words(p).n)),
        Kernel::ActFwd(_) | Kernel::ActBwd(_) | Kernel::Add => grid1d(len()),
    }
}
