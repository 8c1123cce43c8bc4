//! The seam between "what to compute" and "where": a [`Program`] is a list of kernel
//! invocations ([`Instr`]) over exact ranges of a fixed set of buffers, and a [`Backend`]
//! replays it. Every [`Kernel`] names its CPU twin and its WGSL entry point in one place
//! ([`Kernel::def`]), so the two cannot drift apart.

pub mod check;
pub mod cpu;
pub mod gpu;

use crate::error::Result;

/// Activation functions with a fused kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// max(x, 0)
    Relu,
    /// tanh(x)
    Tanh,
    /// 1 / (1 + e^-x)
    Sigmoid,
}

impl Act {
    /// The value of the WGSL override `ACT`.
    pub fn code(self) -> u32 {
        match self {
            Act::Relu => 0,
            Act::Tanh => 1,
            Act::Sigmoid => 2,
        }
    }
}

/// Every primitive a program can run. Parameters (`p`) and operands are documented on
/// the WGSL entry point and the CPU twin named by [`Kernel::def`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// C = op(A)·op(B) (+ bias); `ta`/`tb` read A or B transposed in place; `half`: A and
    /// B are packed f16 ([`Kernel::CastHalf`]), products and sums f32 (mixed precision).
    MatMul {
        ta: bool,
        tb: bool,
        bias: bool,
        half: bool,
    },
    /// f32 → f16 storage, two values per 32-bit word (mixed precision).
    CastHalf,
    /// db[n] = Σ_m dY[m, n].
    BiasGrad,
    /// The sum of a split-K matmul's slices (+ bias): issued by the GPU backend only.
    SliceSum {
        bias: bool,
    },
    /// y = f(x).
    ActFwd(Act),
    /// dx = dy · f'(x), from y.
    ActBwd(Act),
    /// c = a + b.
    Add,
    /// Inverted dropout mask (same kernel forward and backward).
    Dropout,
    /// ReLU then dropout in one pass (the plan fuses the pair): outputs the dropout's
    /// output only.
    ReluDropout,
    /// The backward of ReLU then dropout, from the fused forward's output (no mask).
    DropoutReluBwd,
    /// Batch norm with batch statistics; updates running statistics.
    BnFwdTrain,
    /// Batch norm with running statistics.
    BnFwdEval,
    /// Batch norm backward (dx, dgamma, dbeta).
    BnBwd,
    /// Softmax cross-entropy: gradient and per-row (loss, correct).
    SoftmaxXent,
    /// Accumulate row statistics into the device metrics buffer.
    MetricsAccum,
    /// Penalty gradient, value clipping, and partial sums of g² and of the penalty.
    GradPrep,
    /// Global norm and clip scale.
    ClipFinalize,
    /// Scale one parameter's gradient to a maximum norm (per-tensor clipping).
    ClipTensor,
    /// SGD with momentum and coupled weight decay over the flat parameter buffer.
    SgdUpdate,
    /// Adam (coupled L2) or AdamW (decoupled) over the flat parameter buffer.
    AdamUpdate,
    /// (Σ x, Σ x², zeros, n) of one tensor, for diagnostics.
    TensorStats,
    /// Patches of an NCHW image as matrix rows.
    Im2Col,
    /// The adjoint of Im2Col (a deterministic gather).
    Col2Im,
    /// [B, S, C] → [B, C, S], optionally adding a per-channel bias, optionally followed
    /// by the ReLU (the fused convolution epilogue).
    ToNchw {
        bias: bool,
        relu: bool,
    },
    /// [B, C, S] → [B, S, C].
    ToNhwc,
    MaxPoolFwd,
    MaxPoolBwd,
    AvgPoolFwd,
    AvgPoolBwd,
    /// Flips and affine warp per sample (training).
    AugmentGeom,
    /// Brightness, contrast, noise, cutout (training) and standardization.
    AugmentPhoto,
}

/// Which WGSL file holds a kernel's entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Matmul,
    /// The matmul reading packed f16 operands (same source, other loaders).
    MatmulHalf,
    Half,
    Elementwise,
    Dropout,
    BatchNorm,
    SoftmaxXent,
    Clip,
    Optim,
    Stats,
    Conv,
    Pool,
    Augment,
}

impl Family {
    /// WGSL source of the family (without the common prelude).
    pub fn source(self) -> &'static str {
        match self {
            Family::Matmul | Family::MatmulHalf => include_str!("../../shaders/matmul.wgsl"),
            Family::Half => include_str!("../../shaders/half.wgsl"),
            Family::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            Family::Dropout => include_str!("../../shaders/dropout.wgsl"),
            Family::BatchNorm => include_str!("../../shaders/batchnorm.wgsl"),
            Family::SoftmaxXent => include_str!("../../shaders/softmax_xent.wgsl"),
            Family::Clip => include_str!("../../shaders/clip.wgsl"),
            Family::Optim => include_str!("../../shaders/optim.wgsl"),
            Family::Stats => include_str!("../../shaders/stats.wgsl"),
            Family::Conv => include_str!("../../shaders/conv.wgsl"),
            Family::Pool => include_str!("../../shaders/pool.wgsl"),
            Family::Augment => include_str!("../../shaders/augment.wgsl"),
        }
    }
}

/// The per-step values every kernel can read (`G` in WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Globals {
    pub seed_lo: u32,
    pub seed_hi: u32,
    /// Training step counter (dropout masks are keyed by it).
    pub step: u32,
    /// Base learning rate of this step: the whole rate when the schedule is evaluated on
    /// the host (constant, per-epoch), lr₀ for a per-step schedule (`sched_kind` ≠ 0),
    /// which `ClipFinalize` evaluates at the count of applied updates (shaders/clip.wgsl).
    pub lr: f32,
    /// Per-step schedule parameter: gamma (step, exponential) or eta_min (cosine).
    pub sched_x: f32,
    /// Per-step schedule parameter: step_size (step) or t_max (cosine).
    pub sched_n: u32,
    /// Bit set of per-run switches: [`Globals::PENALTY`], [`Globals::MIXED`].
    pub flags: u32,
    /// Per-step schedule evaluated on the device: 0 none (`lr` as is), 1 step,
    /// 2 exponential, 3 cosine ([`crate::optim::LrSchedule`]'s formulas).
    pub sched_kind: u32,
}

impl Globals {
    /// Some parameter has a nonzero L1 or L2 penalty coefficient: `GradPrep` reads the
    /// coefficient arrays only then (otherwise it only measures the gradient's norm).
    pub const PENALTY: u32 = 1;
    /// Mixed precision: the loss gradient is scaled by the device-side loss scale, which
    /// `GradPrep` divides out and `ClipFinalize` updates (shaders/clip.wgsl).
    pub const MIXED: u32 = 2;

    pub fn seed(&self) -> u64 {
        (self.seed_hi as u64) << 32 | self.seed_lo as u64
    }
}

/// Signature of every CPU twin: parameters, globals, read-only inputs, outputs.
pub type CpuFn = fn(&[u32; 16], &Globals, &[&[f32]], &mut [&mut [f32]]);

/// One kernel's two implementations, declared together.
pub struct KernelDef {
    pub family: Family,
    /// WGSL entry point.
    pub entry: &'static str,
    /// The reference implementation.
    pub cpu: CpuFn,
    pub n_in: usize,
    pub n_out: usize,
}

impl Kernel {
    /// The kernel's WGSL entry point and CPU twin.
    pub fn def(&self) -> KernelDef {
        use cpu::*;
        let (family, entry, cpu, n_in, n_out): (Family, &'static str, CpuFn, usize, usize) =
            match self {
                Kernel::MatMul { half: false, .. } => {
                    (Family::Matmul, "matmul", matmul::matmul, 3, 1)
                }
                Kernel::MatMul { half: true, .. } => {
                    (Family::MatmulHalf, "matmul", matmul::matmul, 3, 1)
                }
                Kernel::CastHalf => (Family::Half, "cast_half", half::cast_half, 1, 1),
                Kernel::BiasGrad => (
                    Family::Elementwise,
                    "bias_grad",
                    elementwise::bias_grad,
                    1,
                    1,
                ),
                Kernel::ActFwd(Act::Relu) => {
                    (Family::Elementwise, "act_fwd", elementwise::relu_fwd, 1, 1)
                }
                Kernel::ActFwd(Act::Tanh) => {
                    (Family::Elementwise, "act_fwd", elementwise::tanh_fwd, 1, 1)
                }
                Kernel::ActFwd(Act::Sigmoid) => (
                    Family::Elementwise,
                    "act_fwd",
                    elementwise::sigmoid_fwd,
                    1,
                    1,
                ),
                Kernel::ActBwd(Act::Relu) => {
                    (Family::Elementwise, "act_bwd", elementwise::relu_bwd, 2, 1)
                }
                Kernel::ActBwd(Act::Tanh) => {
                    (Family::Elementwise, "act_bwd", elementwise::tanh_bwd, 2, 1)
                }
                Kernel::ActBwd(Act::Sigmoid) => (
                    Family::Elementwise,
                    "act_bwd",
                    elementwise::sigmoid_bwd,
                    2,
                    1,
                ),
                Kernel::Add => (Family::Elementwise, "add", elementwise::add, 2, 1),
                Kernel::SliceSum { .. } => (
                    Family::Elementwise,
                    "slice_sum",
                    elementwise::slice_sum,
                    2,
                    1,
                ),
                Kernel::Dropout => (Family::Dropout, "dropout", dropout::dropout, 1, 1),
                Kernel::ReluDropout => {
                    (Family::Dropout, "relu_dropout", dropout::relu_dropout, 1, 1)
                }
                Kernel::DropoutReluBwd => (
                    Family::Dropout,
                    "dropout_relu_bwd",
                    dropout::dropout_relu_bwd,
                    2,
                    1,
                ),
                Kernel::BnFwdTrain => (
                    Family::BatchNorm,
                    "bn_fwd_train",
                    batchnorm::bn_fwd_train,
                    2,
                    3,
                ),
                Kernel::BnFwdEval => (
                    Family::BatchNorm,
                    "bn_fwd_eval",
                    batchnorm::bn_fwd_eval,
                    3,
                    1,
                ),
                Kernel::BnBwd => (Family::BatchNorm, "bn_bwd", batchnorm::bn_bwd, 4, 2),
                Kernel::SoftmaxXent => (
                    Family::SoftmaxXent,
                    "softmax_xent",
                    softmax_xent::softmax_xent,
                    3,
                    2,
                ),
                Kernel::MetricsAccum => (
                    Family::SoftmaxXent,
                    "metrics_accum",
                    softmax_xent::metrics_accum,
                    1,
                    1,
                ),
                Kernel::GradPrep => (Family::Clip, "grad_prep", clip::grad_prep, 4, 2),
                Kernel::ClipFinalize => (Family::Clip, "clip_finalize", clip::clip_finalize, 1, 1),
                Kernel::SgdUpdate => (Family::Optim, "sgd_update", optim::sgd_update, 3, 2),
                Kernel::AdamUpdate => (Family::Optim, "adam_update", optim::adam_update, 3, 3),
                Kernel::ClipTensor => (Family::Clip, "clip_tensor", clip::clip_tensor, 1, 1),
                Kernel::Im2Col => (Family::Conv, "im2col", conv::im2col, 1, 1),
                Kernel::Col2Im => (Family::Conv, "col2im", conv::col2im, 1, 1),
                Kernel::ToNchw { .. } => (Family::Conv, "to_nchw", conv::to_nchw, 2, 1),
                Kernel::ToNhwc => (Family::Conv, "to_nhwc", conv::to_nhwc, 1, 1),
                Kernel::MaxPoolFwd => (Family::Pool, "maxpool_fwd", pool::maxpool_fwd, 1, 2),
                Kernel::MaxPoolBwd => (Family::Pool, "maxpool_bwd", pool::maxpool_bwd, 2, 1),
                Kernel::AvgPoolFwd => (Family::Pool, "avgpool_fwd", pool::avgpool_fwd, 1, 1),
                Kernel::AvgPoolBwd => (Family::Pool, "avgpool_bwd", pool::avgpool_bwd, 1, 1),
                Kernel::AugmentGeom => {
                    (Family::Augment, "augment_geom", augment::augment_geom, 2, 1)
                }
                Kernel::AugmentPhoto => (
                    Family::Augment,
                    "augment_photo",
                    augment::augment_photo,
                    2,
                    1,
                ),
                Kernel::TensorStats => (Family::Stats, "tensor_stats", stats::tensor_stats, 1, 1),
            };
        KernelDef {
            family,
            entry,
            cpu,
            n_in,
            n_out,
        }
    }

    /// Pipeline-overridable constants of this kernel variant.
    pub fn constants(&self) -> Vec<(&'static str, f64)> {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        match *self {
            Kernel::MatMul { ta, tb, bias, .. } => {
                vec![("TA", b(ta)), ("TB", b(tb)), ("BIAS", b(bias))]
            }
            Kernel::ActFwd(a) | Kernel::ActBwd(a) => vec![("ACT", a.code() as f64)],
            Kernel::ToNchw { bias, relu } => vec![("BIAS", b(bias)), ("RELU", b(relu))],
            Kernel::SliceSum { bias } => vec![("BIAS", b(bias))],
            _ => vec![],
        }
    }
}

/// A buffer of the plan: a name (for errors and reports) and its length in f32 elements.
#[derive(Clone, Debug)]
pub struct BufferSpec {
    pub name: String,
    pub len: usize,
}

/// An exact range of one buffer, in f32 elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub buf: usize,
    pub off: usize,
    pub len: usize,
}

/// One kernel invocation.
#[derive(Clone, Debug)]
pub struct Instr {
    pub kernel: Kernel,
    pub p: [u32; 16],
    pub ins: Vec<Slice>,
    pub outs: Vec<Slice>,
}

/// A straight-line list of kernel invocations; replayed as one submission on the GPU.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub instrs: Vec<Instr>,
    /// Where the logits are left after a run (read by `Session::predict`).
    pub logits: Option<Slice>,
}

/// Handle of a program loaded into a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProgramId(pub usize);

/// Where programs run. Buffers are created once ([`Backend::create_buffers`]); programs
/// are loaded once (pipelines and bind groups built) and then replayed.
pub trait Backend {
    /// A one-line description (adapter name, backend API, device type).
    fn describe(&self) -> String;
    /// Offset alignment, in f32 elements, that every [`Slice`] must respect.
    fn align(&self) -> usize;
    /// Allocate the buffers (replacing any previous set). All are zero-initialized.
    fn create_buffers(&mut self, specs: &[BufferSpec]) -> Result<()>;
    /// Append buffers after the existing ones (loaded programs stay valid).
    fn add_buffers(&mut self, specs: &[BufferSpec]) -> Result<()>;
    /// Double-buffer `bufs` (inputs written before every run), before any program is
    /// loaded: from then on, the first write after a run goes to a second copy that no
    /// submitted step reads, and the next run reads it — so the upload of batch n + 1
    /// never waits on step n, which may still be reading batch n. Each run then reads
    /// what was written since the previous run; parts of a written buffer left unwritten
    /// since then are unspecified, and a buffer not written at all keeps its contents.
    /// Backends that run each step to completion (the CPU) need nothing and ignore it.
    fn double_buffer(&mut self, bufs: &[usize]) -> Result<()> {
        let _ = bufs;
        Ok(())
    }
    /// Prepare a program for replay.
    fn load(&mut self, program: &Program) -> Result<ProgramId>;
    /// Write host data into a buffer range (ordered before the next `run`).
    fn write(&mut self, buf: usize, off: usize, data: &[f32]) -> Result<()>;
    /// Replay a program with the given globals. Does not wait for completion.
    fn run(&mut self, id: ProgramId, globals: &Globals) -> Result<()>;
    /// Read a buffer range back (waits for all submitted work).
    fn read(&mut self, buf: usize, off: usize, len: usize) -> Result<Vec<f32>>;
    /// Start reading a buffer range without waiting: the copy is ordered after all work
    /// submitted so far (and before later writes), and [`Backend::read_finish`] hands it
    /// over. One read is pending at a time: starting another drops the first.
    fn read_start(&mut self, buf: usize, off: usize, len: usize) -> Result<()>;
    /// The pending read's values, waiting only if the device has not reached it yet; None
    /// when no read is pending.
    fn read_finish(&mut self) -> Result<Option<Vec<f32>>>;
    /// Wait for all submitted work to finish.
    fn sync(&mut self) -> Result<()>;
    /// Whether this backend runs on a GPU (through wgpu).
    fn is_gpu(&self) -> bool;
    /// (kernel, calls, seconds) when the backend times its kernels (a profiled CPU
    /// backend); empty otherwise.
    fn kernel_times(&self) -> Vec<(String, u64, f64)> {
        Vec::new()
    }
    /// Device buffer bytes allocated by this backend (host vectors for the CPU).
    fn allocated_bytes(&self) -> u64;
    /// Fault injection: make the device unusable, as a driver reset or a GPU falling off
    /// the bus would (wgpu's `Device::destroy`). Every later call returns an error. The
    /// CPU backend has no device to lose.
    fn lose_device(&mut self) {}
}

/// Calls and seconds per kernel name, kept by a profiled backend.
pub type KernelTimes = std::collections::BTreeMap<String, (u64, f64)>;

/// [`KernelTimes`] as (kernel, calls, seconds), the most expensive first.
pub(crate) fn sorted_times(times: Option<&KernelTimes>) -> Vec<(String, u64, f64)> {
    let mut v: Vec<(String, u64, f64)> = times
        .into_iter()
        .flatten()
        .map(|(k, &(n, t))| (k.clone(), n, t))
        .collect();
    v.sort_by(|a, b| b.2.total_cmp(&a.2));
    v
}

/// Bit pattern of an f32 parameter word.
pub fn fbits(x: f32) -> u32 {
    x.to_bits()
}

/// Read an f32 parameter word.
pub fn pf(p: &[u32; 16], i: usize) -> f32 {
    f32::from_bits(p[i])
}

/// Adapters wgpu can see, as (name, device type), without opening a device.
pub fn list_adapters() -> Vec<(String, wgpu::DeviceType)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|a| {
            let i = a.get_info();
            (i.name, i.device_type)
        })
        .collect()
}

/// Open a backend by name, returning it with a line saying which one and why:
///
/// - `auto`: a hardware adapter (discrete, integrated or virtual GPU) through wgpu when one
///   exists; otherwise the fast CPU backend, which outruns a software adapter such as
///   lavapipe by several times on the same cores;
/// - `gpu`: wgpu, whatever the adapter (lavapipe included; `WGPU_ADAPTER_NAME` and
///   `WGPU_BACKEND` choose);
/// - `cpu`: the fast CPU backend ([`cpu::Cpu::fast`]);
/// - `cpu-ref`: the CPU reference kernels ([`cpu::Cpu::new`]).
pub fn open(name: &str) -> Result<(Box<dyn Backend>, String)> {
    match name {
        "auto" => {
            let adapters = list_adapters();
            let hardware = adapters.iter().find(|(_, t)| {
                matches!(
                    t,
                    wgpu::DeviceType::DiscreteGpu
                        | wgpu::DeviceType::IntegratedGpu
                        | wgpu::DeviceType::VirtualGpu
                )
            });
            match hardware {
                Some((n, t)) => {
                    let g = gpu::Gpu::new()?;
                    let why = format!("auto: hardware adapter {n} ({t:?}) found");
                    Ok((Box::new(g), why))
                }
                None => {
                    let seen: Vec<String> = adapters
                        .iter()
                        .map(|(n, t)| format!("{n} ({t:?})"))
                        .collect();
                    let why = format!(
                        "auto: no hardware adapter (found: {}); the fast CPU backend outruns a \
                         software adapter on the same cores (--backend gpu forces wgpu)",
                        if seen.is_empty() {
                            "none".to_string()
                        } else {
                            seen.join(", ")
                        }
                    );
                    Ok((Box::new(cpu::Cpu::fast()), why))
                }
            }
        }
        "gpu" => Ok((Box::new(gpu::Gpu::new()?), "gpu: forced".into())),
        "cpu" => Ok((
            Box::new(cpu::Cpu::fast()),
            "cpu: forced (fast kernels)".into(),
        )),
        "cpu-ref" => Ok((
            Box::new(cpu::Cpu::new()),
            "cpu-ref: forced (reference kernels)".into(),
        )),
        other => Err(crate::error::Error::Hyperparameter {
            name: "backend",
            value: other.into(),
            expected: "auto, gpu, cpu or cpu-ref",
        }),
    }
}
