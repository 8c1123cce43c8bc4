//! The probe: device-side statistics `(Σ x, Σ x², zeros, n)` of every activation,
//! parameter gradient and weight, in fixed slots of the STATS buffer.

use super::layout::{Layout, buf};
use super::lower::{Operand, Pre, fixed};
use crate::graph::{Graph, Op, Rows, TensorId};
use crate::kernels::{Act, Kernel, elementwise::Len};

/// What a probe statistics slot describes.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    /// The output of the k-th forward op with a batch dimension (for a `Sequential`, the
    /// k-th layer), named `k.kind`.
    Activation(TensorId, String),
    /// The gradient of parameter `pid` (penalties and value clipping included, before the
    /// global-norm scale).
    ParamGrad(usize),
    /// The weights of parameter `pid`.
    ParamWeight(usize),
}

/// The probe's slots, in a fixed order: activations, then (gradient, weight) per parameter.
pub fn probe_slots(g: &Graph) -> Vec<Probe> {
    let mut v = vec![];
    let mut k = 0;
    for node in &g.nodes[..g.n_forward] {
        let kind = match node.op {
            Op::Linear => "linear",
            Op::MatMul { .. } => "matmul",
            Op::Act(Act::Relu) => "relu",
            Op::Act(Act::Tanh) => "tanh",
            Op::Act(Act::Sigmoid) => "sigmoid",
            Op::Dropout { .. } => "dropout",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Add => "add",
            Op::ToNchw { .. } => "conv2d",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            _ => continue,
        };
        let out = node.outputs[0];
        if g.shape(out).rows == Rows::Batch {
            v.push(Probe::Activation(out, format!("{k}.{kind}")));
            k += 1;
        }
    }
    for pid in 0..g.params.len() {
        v.push(Probe::ParamGrad(pid));
        v.push(Probe::ParamWeight(pid));
    }
    v
}

/// Statistics of node `nid`'s activation right after it is produced (so the probe keeps no
/// tensor alive longer than training does).
pub(super) fn activation_stats(
    pre: &mut Vec<Pre>,
    g: &Graph,
    layout: &Layout,
    probes: &[Probe],
    nid: usize,
    numel: &dyn Fn(TensorId) -> usize,
) {
    for (k, probe) in probes.iter().enumerate() {
        if let Probe::Activation(t_id, _) = *probe
            && g.tensors[t_id].producer == nid
        {
            let slot = fixed(buf::STATS, k * layout.stats_stride(), 4);
            pre.push(Pre::new(
                Kernel::TensorStats,
                &Len { n: numel(t_id) },
                vec![Operand::T(t_id)],
                vec![slot],
            ));
        }
    }
}

/// Statistics of every parameter's gradient and weights, after the update tail.
pub(super) fn param_stats(pre: &mut Vec<Pre>, g: &Graph, layout: &Layout, probes: &[Probe]) {
    for (k, probe) in probes.iter().enumerate() {
        let (b, pid) = match *probe {
            Probe::ParamGrad(pid) => (buf::GRADS, pid),
            Probe::ParamWeight(pid) => (buf::PARAMS, pid),
            Probe::Activation(..) => continue,
        };
        let len = g.params[pid].shape.numel(0);
        let slot = fixed(buf::STATS, k * layout.stats_stride(), 4);
        pre.push(Pre::new(
            Kernel::TensorStats,
            &Len { n: len },
            vec![fixed(b, layout.param_off[pid], len)],
            vec![slot],
        ));
    }
}
