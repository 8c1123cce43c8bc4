//! Peephole fusion over the lowered instructions: ReLU with dropout, and the convolution
//! epilogue with the ReLU after it.

use super::lower::{Operand, Pre};
use crate::graph::TensorId;
use crate::kernels::conv::ToNchwParams;
use crate::kernels::dropout::DropoutParams;
use crate::kernels::elementwise::Len;
use crate::kernels::{Act, Kernel, KernelParams};

/// Peephole fusion of ReLU and dropout, one dispatch instead of two each way:
/// - ActFwd(ReLU) x → r, then Dropout r → y becomes ReluDropout x → y;
/// - in training, Dropout dy → dr, then ActBwd(ReLU) (r, dr) → dx becomes
///   DropoutReluBwd (y, dy) → dx, which needs neither r nor the mask (dx = s·[y > 0]·dy).
///
/// Applied only when r has no other reader than those two (and dr none but the ReLU
/// backward), so r is never stored at all.
pub(super) fn fuse_relu_dropout(pre: &mut Vec<Pre>, root: &dyn Fn(TensorId) -> TensorId) {
    let same = |a: &Operand, b: &Operand| match (a, b) {
        (Operand::T(x), Operand::T(y)) => root(*x) == root(*y),
        _ => false,
    };
    let relu = Act::Relu;
    let readers = |pre: &[Pre], x: &Operand| -> Vec<usize> {
        (0..pre.len())
            .filter(|&j| pre[j].ins.iter().any(|o| same(o, x)))
            .collect()
    };
    let mut i = 0;
    while i + 1 < pre.len() {
        let (a, b) = (&pre[i], &pre[i + 1]);
        let pair = a.kernel == Kernel::ActFwd(relu)
            && b.kernel == Kernel::Dropout
            && Len::from_words(&a.p).n == DropoutParams::from_words(&b.p).n
            && same(&a.outs[0], &b.ins[0]);
        if !pair {
            i += 1;
            continue;
        }
        // Every reader of r but the dropout must be a ReLU backward fed by the backward
        // dropout (same mask parameters) right before it, whose output nothing else reads.
        let r = &pre[i].outs[0];
        let mut bwd = vec![];
        let mut ok = true;
        for j in readers(pre, r).into_iter().filter(|&j| j != i + 1) {
            let fits = j > i + 1
                && pre[j].kernel == Kernel::ActBwd(relu)
                && same(&pre[j].ins[0], r)
                && !same(&pre[j].ins[1], r)
                && pre[j - 1].kernel == Kernel::Dropout
                && pre[j - 1].p == pre[i + 1].p
                && same(&pre[j - 1].outs[0], &pre[j].ins[1])
                && readers(pre, &pre[j - 1].outs[0]) == [j];
            ok &= fits;
            bwd.push(j);
        }
        if !ok {
            i += 1;
            continue;
        }
        let y = pre[i + 1].outs[0];
        // Backward pairs first (they come later, so the indices above stay valid).
        for &j in bwd.iter().rev() {
            let act = pre.remove(j);
            let drop = &mut pre[j - 1];
            let dy = drop.ins[0];
            drop.kernel = Kernel::DropoutReluBwd;
            drop.ins = vec![y, dy];
            drop.outs = vec![act.outs[0]];
        }
        let drop = pre.remove(i + 1);
        let act = &mut pre[i];
        act.kernel = Kernel::ReluDropout;
        act.p = drop.p;
        act.outs = drop.outs;
        i += 1;
    }
}

/// The convolution epilogue takes the ReLU after it: ToNchw z → ActFwd(ReLU) z → r becomes
/// ToNchw{relu} → r when nothing else reads z (the ReLU backward reads r, not z).
pub(super) fn fuse_conv_relu(pre: &mut Vec<Pre>, root: &dyn Fn(TensorId) -> TensorId) {
    let same = |a: &Operand, b: &Operand| match (a, b) {
        (Operand::T(x), Operand::T(y)) => root(*x) == root(*y),
        _ => false,
    };
    let relu = Act::Relu;
    let mut i = 0;
    while i + 1 < pre.len() {
        let fits = matches!(pre[i].kernel, Kernel::ToNchw { relu: false, .. })
            && pre[i + 1].kernel == Kernel::ActFwd(relu)
            && same(&pre[i].outs[0], &pre[i + 1].ins[0])
            && (0..pre.len())
                .filter(|&j| pre[j].ins.iter().any(|o| same(o, &pre[i].outs[0])))
                .eq([i + 1]);
        if fits {
            let act = pre.remove(i + 1);
            let conv = &mut pre[i];
            let mut epilogue = ToNchwParams::from_words(&conv.p);
            epilogue.relu = true;
            conv.set(epilogue.kernel(), &epilogue);
            conv.outs = act.outs;
        }
        i += 1;
    }
}
