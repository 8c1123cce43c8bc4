//! The optimizer tail of a training program, in the order of the gradient transforms:
//! penalties and value clipping (`GradPrep`), per-tensor norm clipping (`ClipTensor`), the
//! global norm, learning rate and loss scale (`ClipFinalize`), then the SGD or Adam step.
//! Every step is one dispatch over the flat parameter buffers.

use super::layout::Probe;
use super::layout::{CLIP_INFO, Layout, Mode, NORM_PARTIALS, buf};
use super::lower::{Pre, fixed};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::kernels::Kernel;
use crate::kernels::clip::{ClipFinalizeParams, ClipTensorParams, GradPrepParams};
use crate::kernels::elementwise::Len;
use crate::kernels::optim::{AdamParams, SgdParams};
use crate::optim::Optimizer;

/// Append the tail for `mode` (Train: with the update; Grad/Probe: gradients and clip
/// info only).
pub(super) fn optimizer_tail(
    pre: &mut Vec<Pre>,
    g: &Graph,
    layout: &Layout,
    mode: Mode,
    opt: &Optimizer,
    probes: &[Probe],
) -> Result<()> {
    let n = layout.params_len;
    let np = NORM_PARTIALS;
    let clip = fixed(buf::METRICS, layout.clip_off(), CLIP_INFO);
    let amp = fixed(buf::METRICS, layout.amp_off(), 4);
    let (lo, hi) = opt.clip_value().unwrap_or((0.0, 0.0));
    let prep = GradPrepParams {
        n,
        parts: np,
        lo,
        hi,
        clip_value: opt.clip_value().is_some(),
    };
    pre.push(Pre::new(
        Kernel::GradPrep,
        &prep,
        vec![
            fixed(buf::PARAMS, 0, n),
            fixed(buf::L2C, 0, n),
            fixed(buf::L1C, 0, n),
            amp,
        ],
        vec![fixed(buf::GRADS, 0, n), fixed(buf::PARTIALS, 0, 2 * np)],
    ));
    // Per-tensor clipping: each gradient scaled by its own norm (measured into the probe
    // slot of that gradient); the global pass below then only measures.
    let per_tensor = opt.clip_per_tensor() && opt.clip_norm().is_some();
    if per_tensor {
        for (k, probe) in probes.iter().enumerate() {
            let Probe::ParamGrad(pid) = *probe else {
                continue;
            };
            let len = g.params[pid].shape.numel(0);
            let grad = fixed(buf::GRADS, layout.param_off[pid], len);
            let slot = fixed(buf::STATS, k * layout.stats_stride(), 4);
            pre.push(Pre::new(
                Kernel::TensorStats,
                &Len { n: len },
                vec![grad],
                vec![slot],
            ));
            let clip_tensor = ClipTensorParams {
                n: len,
                max_norm: opt.clip_norm().unwrap_or(0.0),
            };
            pre.push(Pre::new(
                Kernel::ClipTensor,
                &clip_tensor,
                vec![slot],
                vec![grad],
            ));
        }
    }
    // The clip info and, at amp_offset, the loss-scaling state: one operand (one buffer).
    let amp_offset = layout.amp_off() - layout.clip_off();
    let mut fin = ClipFinalizeParams {
        parts: np,
        max_norm: if per_tensor {
            0.0
        } else {
            opt.clip_norm().unwrap_or(0.0)
        },
        amp_offset,
        update: mode == Mode::Train,
        ..Default::default()
    };
    if let Some(l) = layout.mixed {
        fin.growth_interval = l.growth_interval;
        fin.growth = l.growth;
        fin.inv_growth = 1.0 / l.growth;
        fin.backoff = l.backoff;
        fin.inv_backoff = 1.0 / l.backoff;
    }
    if let Optimizer::Adam(o) = opt {
        fin.beta1 = o.beta1;
        fin.beta2 = o.beta2;
    }
    pre.push(Pre::new(
        Kernel::ClipFinalize,
        &fin,
        vec![fixed(buf::PARTIALS, 0, 2 * np)],
        vec![fixed(buf::METRICS, layout.clip_off(), amp_offset + 4)],
    ));
    if mode != Mode::Train {
        return Ok(());
    }
    let ins = vec![fixed(buf::GRADS, 0, n), fixed(buf::WD, 0, n), clip];
    match opt {
        Optimizer::Sgd(o) => {
            let params = SgdParams {
                n,
                momentum: o.momentum,
                nesterov: o.nesterov,
            };
            let outs = vec![fixed(buf::PARAMS, 0, n), fixed(buf::VELOCITY, 0, n)];
            pre.push(Pre::new(Kernel::SgdUpdate, &params, ins, outs));
        }
        Optimizer::Adam(o) => {
            if !layout.second_moment {
                return Err(Error::Graph(
                    "Adam needs a layout with a second-moment buffer".into(),
                ));
            }
            let params = AdamParams {
                n,
                beta1: o.beta1,
                beta2: o.beta2,
                eps: o.eps,
                decoupled: o.decoupled,
            };
            let outs = vec![
                fixed(buf::PARAMS, 0, n),
                fixed(buf::VELOCITY, 0, n),
                fixed(buf::M2, 0, n),
            ];
            pre.push(Pre::new(Kernel::AdamUpdate, &params, ins, outs));
        }
    }
    Ok(())
}
