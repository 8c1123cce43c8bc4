//! The probe: device-side statistics `(Σ x, Σ x², zeros, n)` of every activation,
//! parameter gradient and weight, in fixed slots of the STATS buffer.

use super::layout::{Layout, Probe, buf};
use super::lower::{Operand, Pre, fixed};
use crate::graph::{Graph, TensorId};
use crate::kernels::{Kernel, elementwise::Len};

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
