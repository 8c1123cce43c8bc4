//! Lowering a differentiated [`Graph`] to a backend [`Program`] for one mode and batch
//! size, with buffers laid out once ([`Layout`]):
//!
//! - parameters, their gradients, momentum and per-element weight-decay coefficients live
//!   in four flat buffers with the same layout, so clipping and the optimizer are single
//!   dispatches over all parameters;
//! - intermediates (activations, their gradients, saved statistics) go to a pool of
//!   buffers assigned by lifetime: a buffer is reused once the last reader of its previous
//!   tensor has run, so tensors whose lifetimes do not overlap share memory.
//!
//! [`compile`] is a sequence of passes, one file each: `lower` (each node to kernel
//! invocations), `update` (the optimizer tail), `probe` (diagnostic statistics),
//! `fuse` (peephole fusion), `half` (mixed-precision casts) and `alloc` (buffers
//! by lifetime).

mod alloc;
mod fuse;
mod half;
mod layout;
mod lower;
mod probe;
mod update;

pub use layout::{CLIP_INFO, CLIP_SKIPPED, Layout, Mode, NORM_PARTIALS, Probe, buf, probe_slots};

use crate::backend::{Program, Slice};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, TensorId};
use crate::optim::Optimizer;

/// Compile `g` for `mode` at batch size `batch` (≤ `layout.max_batch`).
///
/// # Errors
/// [`Error::Shape`] for a batch of 0 or above the layout's maximum; [`Error::Graph`] for
/// a graph the planner cannot lower (Adam without a second-moment buffer, a tensor read
/// before it is written, a dispatch that would read and write one buffer).
pub fn compile(
    g: &Graph,
    layout: &mut Layout,
    mode: Mode,
    batch: usize,
    opt: &Optimizer,
) -> Result<Program> {
    if batch == 0 || batch > layout.max_batch {
        return Err(Error::Shape {
            context: "batch".into(),
            got: vec![batch],
            expected: format!("1..={}", layout.max_batch),
        });
    }
    let numel = |t: TensorId| g.shape(t).numel(batch);
    let home = homes(g, layout, mode, batch);
    let probes = probe_slots(g);
    let probing = mode == Mode::Probe;

    // 1. Lowering, node by node (forward only at inference), with the probe's activation
    //    statistics right after each node.
    let mut l = lower::Lowering {
        g,
        layout,
        mode,
        batch,
        metrics_off: if mode.inference() {
            layout.eval_metrics_off()
        } else {
            0
        },
        alias: vec![None; g.tensors.len()],
        pre: vec![],
    };
    let n_nodes = if mode.inference() {
        g.n_forward
    } else {
        g.nodes.len()
    };
    for (nid, node) in g.nodes[..n_nodes].iter().enumerate() {
        l.node(node)?;
        if probing {
            probe::activation_stats(&mut l.pre, g, layout, &probes, nid, &numel);
        }
    }
    let (alias, mut pre) = (l.alias, l.pre);
    // 2. The optimizer tail; 3. the probe's parameter statistics.
    if !mode.inference() {
        update::optimizer_tail(&mut pre, g, layout, mode, opt, &probes)?;
    }
    if probing {
        probe::param_stats(&mut pre, g, layout, &probes);
    }
    // 4. Fusion and 5. mixed precision, over operands with aliases resolved.
    let root = |mut x: TensorId| {
        while let Some(a) = alias[x] {
            x = a;
        }
        x
    };
    fuse::fuse_relu_dropout(&mut pre, &root);
    fuse::fuse_conv_relu(&mut pre, &root);
    if layout.mixed.is_some() {
        half::to_half(&mut pre, &home, &root, &numel, layout.params_len)?;
    }
    // 6. Buffers by lifetime.
    alloc::allocate(&pre, g, layout, &home, &root, &numel)
}

/// The fixed homes of tensors: the input and labels buffers, parameters (and, when the
/// program has a backward pass, their gradients) at their offsets in the flat buffers.
fn homes(g: &Graph, layout: &Layout, mode: Mode, batch: usize) -> Vec<Option<Slice>> {
    let mut home: Vec<Option<Slice>> = vec![None; g.tensors.len()];
    home[g.input] = Some(Slice {
        buf: buf::INPUT,
        off: 0,
        len: g.shape(g.input).numel(batch),
    });
    home[g.labels] = Some(Slice {
        buf: buf::LABELS,
        off: 0,
        len: g.shape(g.labels).numel(batch),
    });
    for node in &g.nodes[..g.n_forward] {
        if let Op::Param(pid) = node.op {
            let len = g.params[pid].shape.numel(0);
            home[node.outputs[0]] = Some(Slice {
                buf: buf::PARAMS,
                off: layout.param_off[pid],
                len,
            });
        }
    }
    if !mode.inference() {
        for (pid, d) in g.param_grads.iter().enumerate() {
            if let Some(d) = *d {
                let len = g.params[pid].shape.numel(0);
                home[d] = Some(Slice {
                    buf: buf::GRADS,
                    off: layout.param_off[pid],
                    len,
                });
            }
        }
    }
    home
}
