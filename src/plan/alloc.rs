//! Buffer allocation: every pool tensor gets a pool buffer for its lifetime (from its
//! first write to its last read), reused once that lifetime ends; fixed tensors keep
//! their homes. The result is the backend [`Program`].

use super::layout::{Layout, buf};
use super::lower::{Operand, Pre};
use crate::backend::{Instr, Program, Slice};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, TensorId};

/// Assign buffers to the operands of `pre` (best fit among free pool buffers; else grow
/// one; else add one) and build the program. `home` holds the fixed tensors' ranges,
/// `root` resolves aliases, `numel` gives a tensor's element count at this batch size.
pub(super) fn allocate(
    pre: &[Pre],
    g: &Graph,
    layout: &mut Layout,
    home: &[Option<Slice>],
    root: &dyn Fn(TensorId) -> TensorId,
    numel: &dyn Fn(TensorId) -> usize,
) -> Result<Program> {
    // Pool tensors are keyed by root id, f16 copies by tensor count + root id.
    let nt = g.tensors.len();
    let key = |op: &Operand| match *op {
        Operand::T(x) => Some(root(x)),
        Operand::H(x) => Some(nt + root(x)),
        Operand::Fixed(_) => None,
    };
    let need_of = |k: usize| {
        if k >= nt {
            numel(k - nt).div_ceil(2).max(1)
        } else {
            numel(k).max(1)
        }
    };
    let mut last_use = vec![0usize; 2 * nt];
    for (i, pr) in pre.iter().enumerate() {
        for op in pr.ins.iter().chain(&pr.outs) {
            if let Some(k) = key(op) {
                last_use[k] = i;
            }
        }
    }
    // The logits stay readable after the program (Session::predict).
    let logits = g.nodes[..g.n_forward]
        .iter()
        .find(|n| matches!(n.op, Op::Loss { .. }))
        .map(|n| root(n.inputs[0]));
    if let Some(l) = logits {
        last_use[l] = usize::MAX;
    }
    let mut assigned: Vec<Option<usize>> = vec![None; 2 * nt];
    let mut busy = vec![false; layout.pool.len()];
    let mut instrs = vec![];
    for (i, pr) in pre.iter().enumerate() {
        let mut resolve = |op: &Operand,
                           is_out: bool,
                           busy: &mut Vec<bool>,
                           layout: &mut Layout|
         -> Result<Slice> {
            match *op {
                Operand::Fixed(s) => Ok(s),
                Operand::T(_) | Operand::H(_) => {
                    let r = key(op).unwrap_or_default();
                    if r < nt
                        && let Some(s) = home[r]
                    {
                        return Ok(s);
                    }
                    let need = need_of(r);
                    if assigned[r].is_none() {
                        if !is_out {
                            return Err(Error::Graph(format!(
                                "tensor {r} is read before it is written"
                            )));
                        }
                        // Best fit among free buffers; else grow one; else add one.
                        let free: Vec<usize> =
                            (0..layout.pool.len()).filter(|&b| !busy[b]).collect();
                        let fit = free
                            .iter()
                            .copied()
                            .filter(|&b| layout.pool[b] >= need)
                            .min_by_key(|&b| layout.pool[b]);
                        let b = match (fit, free.iter().copied().max_by_key(|&b| layout.pool[b])) {
                            (Some(b), _) => b,
                            (None, Some(b)) if !layout.frozen => {
                                layout.pool[b] = need;
                                b
                            }
                            // Frozen buffers are bound by loaded programs and never resized;
                            // a program that needs more gets a new buffer appended.
                            _ => {
                                layout.pool.push(need);
                                busy.push(false);
                                layout.pool.len() - 1
                            }
                        };
                        busy[b] = true;
                        assigned[r] = Some(b);
                    }
                    Ok(Slice {
                        buf: buf::POOL_BASE + assigned[r].unwrap(),
                        off: 0,
                        len: need,
                    })
                }
            }
        };
        let ins = pr
            .ins
            .iter()
            .map(|o| resolve(o, false, &mut busy, layout))
            .collect::<Result<Vec<_>>>()?;
        let outs = pr
            .outs
            .iter()
            .map(|o| resolve(o, true, &mut busy, layout))
            .collect::<Result<Vec<_>>>()?;
        if let Some(s) = ins.iter().find(|s| outs.iter().any(|o| o.buf == s.buf)) {
            return Err(Error::Graph(format!(
                "{:?} would read and write buffer {} in one dispatch",
                pr.kernel, s.buf
            )));
        }
        // Free every pool tensor whose last use was this instruction.
        for op in pr.ins.iter().chain(&pr.outs) {
            if let Some(r) = key(op)
                && last_use[r] == i
                && let Some(b) = assigned[r]
            {
                busy[b] = false;
            }
        }
        instrs.push(Instr {
            kernel: pr.kernel,
            p: pr.p,
            ins,
            outs,
        });
    }
    let logits = logits.and_then(|l| {
        home[l].or_else(|| {
            assigned[l].map(|b| Slice {
                buf: buf::POOL_BASE + b,
                off: 0,
                len: numel(l),
            })
        })
    });
    Ok(Program { instrs, logits })
}
