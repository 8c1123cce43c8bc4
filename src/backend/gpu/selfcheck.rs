//! The start-up self-check of the narrow-output matmul tiles against the CPU reference.

use super::Gpu;
use crate::backend::{Backend, Globals, check};
use crate::error::Result;
use crate::kernels::KernelParams;
use crate::kernels::matmul::MatMulParams;

impl Gpu {
    /// Enable the narrow-output matmul tiles if they give the CPU reference's results on
    /// this adapter (they assume that a subgroup is made of consecutive invocations).
    pub(super) fn check_narrow_matmul(&mut self) -> Result<()> {
        let off = std::env::var("SHADEPROP_MATMUL_NARROW").is_ok_and(|v| v == "0");
        if self.ctx.report.subgroup_size.is_none() || off {
            return Ok(());
        }
        self.ctx.report.narrow_matmul = true;
        // The check is of the default kernel: nothing timed, nothing recorded.
        let select = std::mem::replace(&mut self.tuning.select, super::MatmulSelect::Default);
        let (m, n, k) = (70usize, 20usize, 37usize);
        let rng = crate::rng::Rng::new(7);
        let a: Vec<f32> = (0..m * k)
            .map(|i| rng.uniform(1, 0, i as u32) - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| rng.uniform(2, 0, i as u32) - 0.5)
            .collect();
        let mut ok = true;
        for (ta, tb) in [(false, false), (true, true)] {
            let mm = MatMulParams {
                m,
                n,
                k,
                ta,
                tb,
                ..MatMulParams::default()
            };
            let (kern, p) = (mm.kernel(), mm.to_words());
            let ins = [a.clone(), b.clone(), vec![0.0; n]];
            let outs = [vec![0.0; m * n]];
            let g = Globals::default();
            let want = check::run_kernel(
                &mut crate::backend::cpu::Cpu::new(),
                kern,
                p,
                &ins,
                &outs,
                &g,
            )?;
            // A wrong result or an error only turns the variant off.
            ok &= match check::run_kernel(self, kern, p, &ins, &outs, &g) {
                Ok(got) => {
                    check::compare("narrow self-check", &got[0], &want[0], 1e-4, 1e-3).is_ok()
                }
                Err(_) => false,
            };
        }
        self.tuning.select = select;
        self.tuning.chosen.clear();
        self.ctx.report.narrow_matmul = ok;
        let _ = self.ctx.take_error();
        self.create_buffers(&[])?;
        Ok(())
    }
}
