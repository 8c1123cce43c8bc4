//! What one dispatch binds (its bind group layout) and runs (workgroups, loop trips).

use super::AdapterReport;
use super::matmul::{MatmulShape, SG_TM, matmul_shape, texture_format};
use crate::backend::{Instr, Kernel};

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

/// An upper bound on the loop iterations one invocation of `instr` runs (loops of
/// constant trip count are unrolled by the compiler and do not count).
pub fn loop_trips(instr: &Instr, report: &AdapterReport) -> u64 {
    let p = instr.p.map(|v| v as u64);
    let unroll = 16;
    match instr.kernel {
        Kernel::MatMul { .. } => match report.subgroup_size {
            Some(sg) if p[3] > 0 => p[3].div_ceil(sg as u64),
            Some(sg) => p[2].div_ceil(sg as u64),
            None if p[3] > 0 => p[3].div_ceil(4),
            None => p[2].div_ceil(4),
        },
        Kernel::BiasGrad => p[0].div_ceil(unroll),
        Kernel::SliceSum { .. } => p[2],
        Kernel::BnFwdTrain => 3 * (p[0] * p[4].max(1)).div_ceil(unroll),
        Kernel::BnBwd => 2 * (p[0] * p[4].max(1)).div_ceil(unroll),
        Kernel::MetricsAccum => p[0].div_ceil(unroll),
        Kernel::AugmentPhoto => {
            let px = p[1] * p[2] * p[3];
            px.div_ceil(unroll) + px.div_ceil(64)
        }
        Kernel::AugmentGeom => (p[2] * p[3]).div_ceil(64),
        Kernel::GradPrep => p[0].div_ceil(unroll * p[1].max(1)),
        Kernel::TensorStats => p[0].div_ceil(unroll * 256) + 8,
        Kernel::ClipFinalize => p[0],
        Kernel::SoftmaxXent => 3 * p[1],
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

/// Workgroup counts of an instruction.
pub fn workgroups(instr: &Instr, report: &AdapterReport) -> [u32; 3] {
    let p = &instr.p;
    match instr.kernel {
        Kernel::MatMul { .. } => match report.subgroup_size {
            Some(_) => {
                let s = matmul_shape(p[0], p[1], p[2], report);
                [
                    div_up(p[1], 4 * s.lanes),
                    div_up(p[0], SG_TM * (s.workgroup / s.lanes)),
                    // Split-K slices (p3 = slice length).
                    if p[3] > 0 { div_up(p[2], p[3]) } else { 1 },
                ]
            }
            None => [
                div_up(p[1], 64),
                div_up(p[0], 16),
                if p[3] > 0 { div_up(p[2], p[3]) } else { 1 },
            ],
        },
        Kernel::BiasGrad => grid1d(p[1]),
        Kernel::CastHalf => grid1d(p[0].div_ceil(2)),
        Kernel::SliceSum { .. } => grid1d(p[0]),
        Kernel::BnFwdEval => grid1d(p[0] * p[1] * p[4].max(1)),
        Kernel::BnFwdTrain | Kernel::BnBwd => [div_up(p[1], 64), 1, 1],
        Kernel::SoftmaxXent => [div_up(p[0], 64), 1, 1],
        Kernel::GradPrep => [div_up(p[1], 64), 1, 1],
        Kernel::MetricsAccum | Kernel::ClipFinalize | Kernel::TensorStats => [1, 1, 1],
        // One workgroup per (sample, channel) plane.
        Kernel::AugmentGeom => {
            let planes = (p[0] * p[1]).max(1);
            let x = planes.min(65535);
            [x, div_up(planes, x), 1]
        }
        // One workgroup per image.
        Kernel::AugmentPhoto => [p[0].max(1), 1, 1],
        // One invocation per (patch row, channel, kernel row).
        Kernel::Im2Col => grid1d(p[0] * p[8] * p[9] * p[1] * p[4]),
        Kernel::Col2Im | Kernel::MaxPoolBwd | Kernel::AvgPoolBwd => {
            grid1d(p[0] * p[1] * p[2] * p[3])
        }
        Kernel::ToNchw { .. } | Kernel::ToNhwc => grid1d(p[0] * p[1] * p[2]),
        Kernel::MaxPoolFwd | Kernel::AvgPoolFwd => grid1d(p[0] * p[1] * p[8] * p[9]),
        Kernel::ActFwd(_)
        | Kernel::ActBwd(_)
        | Kernel::Add
        | Kernel::Dropout
        | Kernel::ReluDropout
        | Kernel::DropoutReluBwd
        | Kernel::SgdUpdate
        | Kernel::ClipTensor
        | Kernel::AdamUpdate => grid1d(p[0]),
    }
}
