//! Reverse-mode differentiation, in two parts: [`vjp`], the table of gradient rules (one
//! arm per forward op, which only builds the nodes of that op's gradient), and
//! [`differentiate`], the walk that applies them in reverse order, skips tensors that no
//! parameter influences, sums gradients that reach one tensor along several paths, and
//! checks that every parameter gradient can live in the flat gradient buffer.
//!
//! For `C = op(A)·op(B)`:
//! - `dA = dC·op(B)ᵀ` (A stored `[K, M]` when `ta`: `dAᵀ = op(B)·dCᵀ`);
//! - `dB = op(A)ᵀ·dC` (B stored `[N, K]` when `tb`: `dBᵀ = dCᵀ·op(A)`).
//!
//! Linear `y = x·W + b`: `dW = xᵀ·dy`, `db = Σ_rows dy`, `dx = dy·Wᵀ`.

use std::collections::HashMap;

use super::{Graph, Node, Op, Shape, TensorId};
use crate::error::{Error, Result};

/// The gradient rule of `node`: given `dy`, the gradient of its first output, append the
/// nodes that compute its inputs' gradients and return them as (input, gradient) pairs,
/// in order. `needs(t)` tells whether tensor t depends on a parameter (no node is built
/// for a gradient nothing needs). The softmax cross-entropy is not here: its fused kernel
/// produces the gradient of the logits itself.
///
/// # Errors
/// [`Error::Graph`] for a backward-only op in the forward pass, or augmentation applied to
/// a tensor that depends on parameters.
pub fn vjp(
    g: &mut Graph,
    node: &Node,
    dy: TensorId,
    needs: &dyn Fn(TensorId) -> bool,
) -> Result<Vec<(TensorId, TensorId)>> {
    let ins = &node.inputs;
    let mut d = vec![];
    match node.op {
        Op::Input | Op::Labels | Op::Param(_) | Op::Loss { .. } => {}
        Op::Linear => {
            let (x, w) = (ins[0], ins[1]);
            let (sx, sw) = (g.shape(x), g.shape(w));
            let dw = g.add_node(
                Op::MatMul {
                    ta: true,
                    tb: false,
                },
                vec![x, dy],
                &[sw],
            )[0];
            d.push((w, dw));
            if let Some(&b) = ins.get(2) {
                let sb = g.shape(b);
                let db = g.add_node(Op::BiasGrad, vec![dy], &[sb])[0];
                d.push((b, db));
            }
            if needs(x) {
                let dx = g.add_node(
                    Op::MatMul {
                        ta: false,
                        tb: true,
                    },
                    vec![dy, w],
                    &[sx],
                )[0];
                d.push((x, dx));
            }
        }
        Op::MatMul { ta, tb } => {
            let (a, b) = (ins[0], ins[1]);
            if needs(a) {
                let sa = g.shape(a);
                let da = if ta {
                    g.add_node(Op::MatMul { ta: tb, tb: true }, vec![b, dy], &[sa])[0]
                } else {
                    g.add_node(Op::MatMul { ta: false, tb: !tb }, vec![dy, b], &[sa])[0]
                };
                d.push((a, da));
            }
            if needs(b) {
                let sb = g.shape(b);
                let db = if tb {
                    g.add_node(Op::MatMul { ta: true, tb: ta }, vec![dy, a], &[sb])[0]
                } else {
                    g.add_node(Op::MatMul { ta: !ta, tb: false }, vec![a, dy], &[sb])[0]
                };
                d.push((b, db));
            }
        }
        Op::Act(act) => {
            if needs(ins[0]) {
                let s = g.shape(ins[0]);
                let dx = g.add_node(Op::ActBwd(act), vec![node.outputs[0], dy], &[s])[0];
                d.push((ins[0], dx));
            }
        }
        Op::Dropout {
            p,
            stream,
            kind,
            group,
            period,
        } => {
            if needs(ins[0]) {
                // The same mask and scale, regenerated from (seed, stream, step).
                let s = g.shape(ins[0]);
                let dx = g.add_node(
                    Op::Dropout {
                        p,
                        stream,
                        kind,
                        group,
                        period,
                    },
                    vec![dy],
                    &[s],
                )[0];
                d.push((ins[0], dx));
            }
        }
        Op::BatchNorm { spatial, .. } => {
            let (x, gb) = (ins[0], ins[1]);
            let saved = node.outputs[1];
            let (sx, sgb): (Shape, Shape) = (g.shape(x), g.shape(gb));
            let outs = g.add_node(
                Op::BatchNormBwd { spatial },
                vec![x, dy, gb, saved],
                &[sx, sgb],
            );
            d.push((gb, outs[1]));
            if needs(x) {
                d.push((x, outs[0]));
            }
        }
        Op::LayerNorm { .. } => {
            let (x, gb) = (ins[0], ins[1]);
            let saved = node.outputs[1];
            let (sx, sgb): (Shape, Shape) = (g.shape(x), g.shape(gb));
            let outs = g.add_node(Op::LayerNormBwd, vec![x, dy, gb, saved], &[sx, sgb]);
            d.push((gb, outs[1]));
            if needs(x) {
                d.push((x, outs[0]));
            }
        }
        Op::Reshape => {
            if needs(ins[0]) {
                let s = g.shape(ins[0]);
                let dx = g.add_node(Op::Reshape, vec![dy], &[s])[0];
                d.push((ins[0], dx));
            }
        }
        Op::SliceCols { start, len } => {
            if needs(ins[0]) {
                let s = g.shape(ins[0]);
                let dx = g.add_node(Op::SliceColsBwd { start, len }, vec![dy], &[s])[0];
                d.push((ins[0], dx));
            }
        }
        // The mask and flags carry no gradient.
        Op::RnnAux { .. } => {}
        // The ids are data: only the table has a gradient.
        Op::Embedding { vocab, dim } => {
            let (ids, table) = (ins[0], ins[1]);
            let s = g.shape(table);
            let dw = g.add_node(Op::EmbeddingBwd { vocab, dim }, vec![ids, dy], &[s])[0];
            d.push((table, dw));
        }
        Op::Rnn {
            cell,
            steps,
            hidden,
        } => {
            let (xp, w_hh, biases, aux) = (ins[0], ins[1], ins[2], ins[3]);
            let state = ins.get(4).copied();
            let (saved, hprev) = (node.outputs[1], node.outputs[2]);
            let (sxp, sw, sb) = (g.shape(xp), g.shape(w_hh), g.shape(biases));
            let mut shapes = vec![sxp, sxp, sb, Shape::batch(2 * hidden)];
            shapes.extend(state.map(|s| g.shape(s)));
            let outs = g.add_node(
                Op::RnnBwd {
                    cell,
                    steps,
                    hidden,
                },
                vec![dy, w_hh, saved, aux],
                &shapes,
            );
            if let Some(s) = state
                && needs(s)
            {
                d.push((s, outs[4]));
            }
            // dW_hh = Σ_{n,t} h̃_{t-1}ᵀ·drec_t over the N·T step rows.
            let rows = Shape {
                rows: super::Rows::BatchTimes(steps),
                cols: hidden,
            };
            let hp = g.add_node(Op::Reshape, vec![hprev], &[rows])[0];
            let dw = g.add_node(
                Op::MatMul {
                    ta: true,
                    tb: false,
                },
                vec![hp, outs[1]],
                &[sw],
            )[0];
            d.push((w_hh, dw));
            d.push((biases, outs[2]));
            if needs(xp) {
                d.push((xp, outs[0]));
            }
        }
        Op::Add => {
            for &t in ins {
                if needs(t) {
                    d.push((t, dy));
                }
            }
        }
        Op::Augment { .. } => {
            if needs(ins[0]) {
                return Err(Error::Graph("augmentation must be applied to the input batch, not to a tensor that depends on parameters".into()));
            }
        }
        Op::Im2Col(geom) => {
            if needs(ins[0]) {
                let sx = g.shape(ins[0]);
                let dx = g.add_node(Op::Col2Im(geom), vec![dy], &[sx])[0];
                d.push((ins[0], dx));
            }
        }
        Op::ToNchw { spatial, channels } => {
            let src = ins[0];
            let ss = g.shape(src);
            let dsrc = g.add_node(Op::ToNhwc { spatial, channels }, vec![dy], &[ss])[0];
            if let Some(&b) = ins.get(1) {
                let sb = g.shape(b);
                let db = g.add_node(Op::BiasGrad, vec![dsrc], &[sb])[0];
                d.push((b, db));
            }
            if needs(src) {
                d.push((src, dsrc));
            }
        }
        Op::MaxPool(geom) => {
            if needs(ins[0]) {
                let sx = g.shape(ins[0]);
                let dx = g.add_node(Op::MaxPoolBwd(geom), vec![dy, node.outputs[1]], &[sx])[0];
                d.push((ins[0], dx));
            }
        }
        Op::AvgPool(geom) => {
            if needs(ins[0]) {
                let sx = g.shape(ins[0]);
                let dx = g.add_node(Op::AvgPoolBwd(geom), vec![dy], &[sx])[0];
                d.push((ins[0], dx));
            }
        }
        Op::BiasGrad
        | Op::ActBwd(_)
        | Op::BatchNormBwd { .. }
        | Op::LayerNormBwd
        | Op::SliceColsBwd { .. }
        | Op::EmbeddingBwd { .. }
        | Op::RnnBwd { .. }
        | Op::Col2Im(_)
        | Op::ToNhwc { .. }
        | Op::MaxPoolBwd(_)
        | Op::AvgPoolBwd(_) => {
            return Err(Error::Graph(format!(
                "backward op {:?} in the forward pass",
                node.op
            )));
        }
    }
    Ok(d)
}

/// Append the backward pass to `g` (a forward graph ending in a loss) and record each
/// parameter's gradient tensor in `g.param_grads`.
///
/// # Errors
/// [`Error::Graph`] when the graph is already differentiated, a rule fails ([`vjp`]), or a
/// parameter's gradient would alias another tensor.
pub fn differentiate(g: &mut Graph) -> Result<()> {
    if g.nodes.is_empty()
        || g.n_forward == 0
        || g.n_forward > g.nodes.len()
        || g.input >= g.tensors.len()
        || g.labels >= g.tensors.len()
    {
        return Err(Error::Graph(
            "the graph has no forward pass ending in a loss: build it with GraphBuilder \
             (ending in softmax_cross_entropy) or Sequential::build"
                .into(),
        ));
    }
    if g.is_differentiated() {
        return Err(Error::Graph(
            "the graph already has its backward pass".into(),
        ));
    }
    let n_fwd = g.n_forward;
    // Which tensors depend on a parameter (only those need gradients).
    let mut needs = vec![false; g.tensors.len()];
    for node in &g.nodes[..n_fwd] {
        let any = matches!(node.op, Op::Param(_)) || node.inputs.iter().any(|&t| needs[t]);
        for &o in &node.outputs {
            needs[o] = any;
        }
    }
    needs[g.labels] = false;
    let mut grad: HashMap<TensorId, TensorId> = HashMap::new();
    let accumulate =
        |g: &mut Graph, grad: &mut HashMap<TensorId, TensorId>, t: TensorId, d: TensorId| {
            let total = match grad.get(&t) {
                Some(&prev) => {
                    let s = g.shape(t);
                    g.add_node(Op::Add, vec![prev, d], &[s])[0]
                }
                None => d,
            };
            grad.insert(t, total);
        };

    for nid in (0..n_fwd).rev() {
        let node = g.nodes[nid].clone();
        if let Op::Loss { .. } = node.op {
            // The fused loss kernel already produced the outputs' gradient.
            if needs[node.inputs[0]] {
                accumulate(g, &mut grad, node.inputs[0], node.outputs[0]);
            }
            continue;
        }
        let Some(&dy) = node.outputs.first().and_then(|o| grad.get(o)) else {
            continue;
        };
        for (t, dt) in vjp(g, &node, dy, &|t| needs[t])? {
            accumulate(g, &mut grad, t, dt);
        }
    }
    // Parameter gradients: each must be a tensor that one node writes and nothing else
    // aliases, so that it can live directly in the flat gradient buffer.
    let mut param_grads = vec![None; g.params.len()];
    for (nid, node) in g.nodes[..n_fwd].iter().enumerate() {
        if let Op::Param(pid) = node.op {
            let t = node.outputs[0];
            if let Some(&d) = grad.get(&t) {
                let aliased =
                    g.tensors[d].producer < n_fwd || grad.iter().any(|(&k, &v)| v == d && k != t);
                if aliased {
                    return Err(Error::Graph(format!(
                        "the gradient of parameter {} (node {nid}) aliases another tensor; \
                         add a parameter only through linear, matmul or batch_norm",
                        g.params[pid].name
                    )));
                }
                param_grads[pid] = Some(d);
            }
        }
    }
    g.param_grads = param_grads;
    Ok(())
}
