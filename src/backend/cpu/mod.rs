//! The CPU backend. [`Cpu::new`] is the reference: plain, obviously-correct Rust loops, one
//! file per kernel family, each the twin of a WGSL entry point, replaying the same
//! [`Program`]s as the GPU. [`Cpu::fast`] replays them with the tuned twin of a kernel
//! where it has one (matmul through the `gemm` crate, threaded elementwise work; named
//! `<kernel>_fast`, in the file of its reference) and the reference elsewhere; the tests
//! compare the two. [`twins`] is the table of both.

pub(crate) mod augment;
pub(crate) mod batchnorm;
pub(crate) mod clip;
pub(crate) mod conv;
pub(crate) mod dropout;
pub(crate) mod elementwise;
pub(crate) mod embedding;
pub mod half;
pub(crate) mod layernorm;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod optim;
pub(crate) mod par;
pub(crate) mod pool;
pub(crate) mod rnn;
pub(crate) mod softmax_xent;
pub(crate) mod stats;

use crate::backend::{Backend, BufferSpec, Instr, Program, ProgramId};
use crate::error::{Error, Result};
use crate::kernels::matmul::MatMulParams;
use crate::kernels::{Act, Globals, Kernel, KernelParams};

/// Signature of every CPU twin: parameter words, globals, read-only inputs, outputs (the
/// operands in the order the kernel's parameter struct documents).
pub type CpuFn = fn(&[u32; 16], &Globals, &[&[f32]], &mut [&mut [f32]]);

/// A kernel's CPU twins: the reference (plain loops, the definition every other
/// implementation is checked against) and, where the time goes, a fast one that gives
/// the same results within the equivalence tolerances.
pub struct Twins {
    pub reference: CpuFn,
    pub fast: Option<CpuFn>,
}

/// The CPU twins of every kernel: the one table the CPU backend dispatches on.
pub fn twins(kernel: Kernel) -> Twins {
    let (reference, fast): (CpuFn, Option<CpuFn>) = match kernel {
        Kernel::MatMul { .. } => (matmul::matmul, Some(matmul::matmul_fast)),
        Kernel::CastHalf => (half::cast_half, Some(half::cast_half_fast)),
        Kernel::BiasGrad => (elementwise::bias_grad, Some(elementwise::bias_grad_fast)),
        Kernel::ActFwd(Act::Relu) => (elementwise::relu_fwd, Some(elementwise::relu_fwd_fast)),
        Kernel::ActFwd(Act::Tanh) => (elementwise::tanh_fwd, None),
        Kernel::ActFwd(Act::Sigmoid) => (elementwise::sigmoid_fwd, None),
        Kernel::ActBwd(Act::Relu) => (elementwise::relu_bwd, Some(elementwise::relu_bwd_fast)),
        Kernel::ActBwd(Act::Tanh) => (elementwise::tanh_bwd, None),
        Kernel::ActBwd(Act::Sigmoid) => (elementwise::sigmoid_bwd, None),
        Kernel::Add => (elementwise::add, None),
        Kernel::SliceSum { .. } => (elementwise::slice_sum, None),
        Kernel::Dropout => (dropout::dropout, Some(dropout::dropout_fast)),
        Kernel::ReluDropout => (dropout::relu_dropout, Some(dropout::relu_dropout_fast)),
        Kernel::DropoutReluBwd => (
            dropout::dropout_relu_bwd,
            Some(dropout::dropout_relu_bwd_fast),
        ),
        Kernel::BnFwdTrain => (batchnorm::bn_fwd_train, Some(batchnorm::bn_fwd_train_fast)),
        Kernel::BnFwdEval => (batchnorm::bn_fwd_eval, None),
        Kernel::BnBwd => (batchnorm::bn_bwd, Some(batchnorm::bn_bwd_fast)),
        Kernel::LnFwd => (layernorm::ln_fwd, None),
        Kernel::LnBwdX => (layernorm::ln_bwd_x, None),
        Kernel::LnBwdParams => (layernorm::ln_bwd_params, None),
        Kernel::RnnAux => (rnn::rnn_aux, None),
        Kernel::LstmStep => (rnn::lstm_step, Some(rnn::lstm_step_fast)),
        Kernel::GruStep => (rnn::gru_step, Some(rnn::gru_step_fast)),
        Kernel::LstmStepBwd => (rnn::lstm_step_bwd, Some(rnn::lstm_step_bwd_fast)),
        Kernel::GruStepBwd => (rnn::gru_step_bwd, Some(rnn::gru_step_bwd_fast)),
        Kernel::RnnBiasGrad => (rnn::rnn_bias_grad, None),
        Kernel::RnnStateGrad => (rnn::rnn_state_grad, None),
        Kernel::SliceCols => (elementwise::slice_cols, None),
        Kernel::SliceColsBwd => (elementwise::slice_cols_bwd, None),
        Kernel::Embedding => (embedding::embedding, Some(embedding::embedding_fast)),
        Kernel::EmbeddingBwd => (
            embedding::embedding_bwd,
            Some(embedding::embedding_bwd_fast),
        ),
        Kernel::SoftmaxXent => (softmax_xent::softmax_xent, None),
        Kernel::BceWithLogits => (loss::bce_logits, None),
        Kernel::RegressionLoss => (loss::regression_loss, None),
        Kernel::MetricsAccum => (softmax_xent::metrics_accum, None),
        Kernel::GradPrep => (clip::grad_prep, Some(clip::grad_prep_fast)),
        Kernel::ClipFinalize => (clip::clip_finalize, None),
        Kernel::ClipTensor => (clip::clip_tensor, None),
        Kernel::SgdUpdate => (optim::sgd_update, Some(optim::sgd_update_fast)),
        Kernel::AdamUpdate => (optim::adam_update, None),
        Kernel::TensorStats => (stats::tensor_stats, None),
        Kernel::Im2Col => (conv::im2col, Some(conv::im2col_fast)),
        Kernel::Col2Im => (conv::col2im, Some(conv::col2im_fast)),
        Kernel::ToNchw { .. } => (conv::to_nchw, Some(conv::to_nchw_fast)),
        Kernel::ToNhwc => (conv::to_nhwc, Some(conv::to_nhwc_fast)),
        Kernel::MaxPoolFwd => (pool::maxpool_fwd, Some(pool::maxpool_fwd_fast)),
        Kernel::MaxPoolBwd => (pool::maxpool_bwd, Some(pool::maxpool_bwd_fast)),
        Kernel::AvgPoolFwd => (pool::avgpool_fwd, None),
        Kernel::AvgPoolBwd => (pool::avgpool_bwd, None),
        Kernel::AugmentGeom => (augment::augment_geom, Some(augment::augment_geom_fast)),
        Kernel::AugmentPhoto => (augment::augment_photo, None),
    };
    Twins { reference, fast }
}

/// The CPU backend: the reference kernels, or the fast ones ([`Cpu::fast`]).
#[derive(Default)]
pub struct Cpu {
    bufs: Vec<Vec<f32>>,
    programs: Vec<Program>,
    fast: bool,
    /// Seconds and calls per kernel, when profiling ([`Cpu::profiled`]).
    times: Option<crate::backend::KernelTimes>,
    /// The values of [`Backend::read_start`] (the CPU has them at once).
    pending: Option<Vec<f32>>,
}

impl Cpu {
    /// The reference backend: plain loops only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fast CPU backend: tuned kernels where they exist, on rayon's thread pool (all
    /// cores, or `RAYON_NUM_THREADS`).
    pub fn fast() -> Self {
        Self {
            fast: true,
            ..Self::default()
        }
    }

    /// Time every kernel (for benchmarks): see [`Backend::kernel_times`].
    pub fn profiled(mut self) -> Self {
        self.times = Some(Default::default());
        self
    }

    /// Run one instruction on the CPU: outputs are taken out of their buffers so that the
    /// inputs can be borrowed at the same time (a plan never reads and writes one buffer in
    /// one instruction).
    pub fn exec(bufs: &mut [Vec<f32>], instr: &Instr, g: &Globals) {
        Self::exec_with(bufs, instr, g, false)
    }

    /// [`Cpu::exec`], with the fast twin of the kernel when `fast` and there is one.
    pub fn exec_with(bufs: &mut [Vec<f32>], instr: &Instr, g: &Globals, fast: bool) {
        let twins = twins(instr.kernel);
        let f = match twins.fast {
            Some(f) if fast => f,
            _ => twins.reference,
        };
        let mut taken: Vec<Vec<f32>> = instr
            .outs
            .iter()
            .map(|s| std::mem::take(&mut bufs[s.buf]))
            .collect();
        {
            let ins: Vec<&[f32]> = instr
                .ins
                .iter()
                .map(|s| &bufs[s.buf][s.off..s.off + s.len])
                .collect();
            let mut outs: Vec<&mut [f32]> = taken
                .iter_mut()
                .zip(&instr.outs)
                .map(|(v, s)| &mut v[s.off..s.off + s.len])
                .collect();
            f(&instr.p, g, &ins, &mut outs);
        }
        for (v, s) in taken.into_iter().zip(&instr.outs) {
            bufs[s.buf] = v;
        }
    }
}

impl Backend for Cpu {
    fn describe(&self) -> String {
        if self.fast {
            format!(
                "CPU fast backend (gemm crate matmul, {} threads)",
                rayon::current_num_threads()
            )
        } else {
            "CPU reference backend (plain Rust loops)".into()
        }
    }
    fn align(&self) -> usize {
        1
    }
    fn create_buffers(&mut self, specs: &[BufferSpec]) -> Result<()> {
        self.bufs = specs.iter().map(zeroed).collect::<Result<_>>()?;
        Ok(())
    }
    fn add_buffers(&mut self, specs: &[BufferSpec]) -> Result<()> {
        for s in specs {
            let b = zeroed(s)?;
            self.bufs.push(b);
        }
        Ok(())
    }
    fn load(&mut self, program: &Program) -> Result<ProgramId> {
        for ins in &program.instrs {
            ins.check_arity()?;
            for s in ins.ins.iter().chain(&ins.outs) {
                if s.buf >= self.bufs.len() || s.off + s.len > self.bufs[s.buf].len() {
                    return Err(Error::Graph(format!(
                        "{:?} operand {s:?} is outside its buffer",
                        ins.kernel
                    )));
                }
            }
        }
        // The fast matmul reads through raw pointers: check its operand sizes here, once.
        for ins in &program.instrs {
            if let Kernel::MatMul { bias, half, .. } = ins.kernel {
                let MatMulParams { m, n, k, .. } = MatMulParams::from_words(&ins.p);
                // Packed f16 operands hold two elements per word.
                let words = |e: usize| if half { e.div_ceil(2) } else { e };
                let short = ins.ins.len() < 3
                    || ins.outs.is_empty()
                    || ins.ins[0].len < words(m * k)
                    || ins.ins[1].len < words(k * n)
                    || ins.outs[0].len < m * n
                    || (bias && ins.ins[2].len < n);
                if short {
                    return Err(Error::Graph(format!(
                        "matmul {m}×{k}·{k}×{n}: operands {:?} → {:?} are too short",
                        ins.ins, ins.outs
                    )));
                }
            }
        }
        self.programs.push(program.clone());
        Ok(ProgramId(self.programs.len() - 1))
    }
    fn write(&mut self, buf: usize, off: usize, data: &[f32]) -> Result<()> {
        let b = self
            .bufs
            .get_mut(buf)
            .ok_or_else(|| Error::Graph(format!("no buffer {buf}")))?;
        if off + data.len() > b.len() {
            return Err(Error::Shape {
                context: format!("write into buffer {buf} at {off}"),
                got: vec![data.len()],
                expected: format!("at most {} elements", b.len() - off.min(b.len())),
            });
        }
        b[off..off + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn run(&mut self, id: ProgramId, globals: &Globals) -> Result<()> {
        let prog = &self.programs[id.0];
        for instr in &prog.instrs {
            match &mut self.times {
                None => Cpu::exec_with(&mut self.bufs, instr, globals, self.fast),
                Some(times) => {
                    let t0 = std::time::Instant::now();
                    Cpu::exec_with(&mut self.bufs, instr, globals, self.fast);
                    let e = times.entry(format!("{:?}", instr.kernel)).or_default();
                    e.0 += 1;
                    e.1 += t0.elapsed().as_secs_f64();
                }
            }
        }
        Ok(())
    }
    fn read(&mut self, buf: usize, off: usize, len: usize) -> Result<Vec<f32>> {
        let b = self
            .bufs
            .get(buf)
            .ok_or_else(|| Error::Graph(format!("no buffer {buf}")))?;
        b.get(off..off + len)
            .map(|s| s.to_vec())
            .ok_or_else(|| Error::Graph(format!("read {off}..{} of buffer {buf}", off + len)))
    }
    fn read_start(&mut self, buf: usize, off: usize, len: usize) -> Result<()> {
        self.pending = Some(self.read(buf, off, len)?);
        Ok(())
    }
    fn read_finish(&mut self) -> Result<Option<Vec<f32>>> {
        Ok(self.pending.take())
    }
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    fn is_gpu(&self) -> bool {
        false
    }
    fn kernel_times(&self) -> Vec<(String, u64, f64)> {
        crate::backend::sorted_times(self.times.as_ref())
    }
    fn allocated_bytes(&self) -> u64 {
        self.bufs.iter().map(|b| b.len() as u64 * 4).sum()
    }
}

/// A zeroed buffer for `spec`, or a named error when the allocation fails (instead of the
/// process aborting).
fn zeroed(spec: &BufferSpec) -> Result<Vec<f32>> {
    let n = spec.len.max(1);
    let mut v: Vec<f32> = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::too_large(
            format!("buffer {}", spec.name),
            format!("{n} elements"),
            crate::limits::f32_bytes(n),
            "an allocation the host can make",
        )
    })?;
    v.resize(n, 0.0);
    Ok(v)
}
