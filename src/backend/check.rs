//! The equivalence harness: run one kernel on a backend with given operands, and compare
//! two results with `|got - want| <= atol + rtol·|want|`, reporting the first mismatches.

use crate::backend::{Backend, BufferSpec, Globals, Instr, Kernel, Program, Slice};
use crate::error::Result;

/// Run `kernel` once: each input and output gets its own buffer; outputs start from
/// `outs_init` (kernels that read-modify-write, like the optimizer, need them).
pub fn run_kernel(
    backend: &mut dyn Backend,
    kernel: Kernel,
    p: [u32; 16],
    ins: &[Vec<f32>],
    outs_init: &[Vec<f32>],
    globals: &Globals,
) -> Result<Vec<Vec<f32>>> {
    let specs: Vec<BufferSpec> = ins
        .iter()
        .chain(outs_init)
        .enumerate()
        .map(|(i, v)| BufferSpec {
            name: format!("operand{i}"),
            len: v.len().max(1),
        })
        .collect();
    backend.create_buffers(&specs)?;
    for (i, v) in ins.iter().chain(outs_init).enumerate() {
        backend.write(i, 0, v)?;
    }
    let slice = |i: usize, v: &Vec<f32>| Slice {
        buf: i,
        off: 0,
        len: v.len().max(1),
    };
    let instr = Instr {
        kernel,
        p,
        ins: ins.iter().enumerate().map(|(i, v)| slice(i, v)).collect(),
        outs: outs_init
            .iter()
            .enumerate()
            .map(|(i, v)| slice(ins.len() + i, v))
            .collect(),
    };
    let id = backend.load(&Program {
        instrs: vec![instr],
        logits: None,
    })?;
    backend.run(id, globals)?;
    outs_init
        .iter()
        .enumerate()
        .map(|(i, v)| backend.read(ins.len() + i, 0, v.len()))
        .collect()
}

/// Compare element-wise; on failure the message lists the first 8 mismatches.
pub fn compare(
    what: &str,
    got: &[f32],
    want: &[f32],
    atol: f32,
    rtol: f32,
) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: length {} vs {}", got.len(), want.len()));
    }
    let mut bad = vec![];
    let mut count = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= atol + rtol * w.abs() || (g.is_nan() && w.is_nan());
        if !ok {
            count += 1;
            if bad.len() < 8 {
                bad.push(format!(
                    "  [{i}] got {g:e} want {w:e} (diff {:e})",
                    (g - w).abs()
                ));
            }
        }
    }
    if count == 0 {
        Ok(())
    } else {
        Err(format!(
            "{what}: {count} of {} elements differ beyond atol {atol:e} + rtol {rtol:e}; first:\n{}",
            got.len(),
            bad.join("\n")
        ))
    }
}
