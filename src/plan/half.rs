//! Mixed precision: f16 copies of every matmul operand.

use super::layout::buf;
use super::lower::{Operand, Pre, fixed};
use crate::backend::Slice;
use crate::error::{Error, Result};
use crate::graph::TensorId;
use crate::kernels::elementwise::Len;
use crate::kernels::matmul::MatMulParams;
use crate::kernels::{Kernel, KernelParams};

/// Mixed precision: every matmul reads packed f16 operands ([`Kernel::CastHalf`]). The
/// parameters are cast once, at the start of the program, into PARAMS_F16; any other
/// operand is cast right before the first matmul that reads it, and that f16 copy serves
/// every later matmul (the forward activation kept for the weight gradient, a gradient
/// feeding both dW and dX), so the f32 original can be freed early.
pub(super) fn to_half(
    pre: &mut Vec<Pre>,
    home: &[Option<Slice>],
    root: &dyn Fn(TensorId) -> TensorId,
    numel: &dyn Fn(TensorId) -> usize,
    n_params: usize,
) -> Result<()> {
    let mut out = Vec::with_capacity(pre.len() + 8);
    out.push(Pre::new(
        Kernel::CastHalf,
        &Len { n: n_params },
        vec![fixed(buf::PARAMS, 0, n_params)],
        vec![fixed(buf::PARAMS_F16, 0, n_params / 2)],
    ));
    let mut cast = std::collections::HashSet::new();
    for mut pr in pre.drain(..) {
        if let Kernel::MatMul { .. } = pr.kernel {
            for j in 0..2 {
                let Operand::T(x) = pr.ins[j] else {
                    return Err(Error::Graph(format!(
                        "mixed precision: matmul operand {:?} has no f16 copy",
                        pr.ins[j]
                    )));
                };
                let r = root(x);
                match home[r] {
                    Some(s) if s.buf == buf::PARAMS => {
                        pr.ins[j] = fixed(buf::PARAMS_F16, s.off / 2, s.len.div_ceil(2));
                    }
                    _ => {
                        if cast.insert(r) {
                            out.push(Pre::new(
                                Kernel::CastHalf,
                                &Len { n: numel(r) },
                                vec![Operand::T(r)],
                                vec![Operand::H(r)],
                            ));
                        }
                        pr.ins[j] = Operand::H(r);
                    }
                }
            }
            let mut mm = MatMulParams::from_words(&pr.p);
            mm.half = true;
            pr.set(mm.kernel(), &mm);
        }
        out.push(pr);
    }
    *pre = out;
    Ok(())
}
