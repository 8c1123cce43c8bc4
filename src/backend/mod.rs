//! The seam between "what to compute" and "where": a [`Program`] is a list of kernel
//! invocations ([`Instr`]) over exact ranges of a fixed set of buffers, and a [`Backend`]
//! replays it. Every [`Kernel`] names its CPU twin and its WGSL entry point in one place
//! ([`Kernel::def`]), so the two cannot drift apart.

pub mod check;
pub mod cpu;
pub mod gpu;

use crate::error::Result;
pub use crate::kernels::{Act, Family, Globals, Kernel, KernelDef};

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

impl Instr {
    /// Refuse an instruction whose operand counts are not its kernel's
    /// ([`crate::kernels::Kernel::def`]), before a backend binds or runs it.
    ///
    /// # Errors
    /// [`crate::Error::Graph`] naming the kernel and both counts.
    pub fn check_arity(&self) -> Result<()> {
        let def = self.kernel.def();
        if self.ins.len() != def.n_in || self.outs.len() != def.n_out {
            return Err(crate::error::Error::Graph(format!(
                "{:?} takes {} inputs and {} outputs; the instruction has {} and {}",
                self.kernel,
                def.n_in,
                def.n_out,
                self.ins.len(),
                self.outs.len()
            )));
        }
        Ok(())
    }
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
    /// The kernel variants chosen for the programs loaded so far, one line each (the GPU's
    /// matmul: shape class, variant, and how it was chosen, with timings when it was
    /// timed); empty where a backend has no choice to make.
    fn kernel_choices(&self) -> Vec<String> {
        Vec::new()
    }
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

/// A multi-line, human-readable description of every adapter wgpu can see, without opening
/// a device: for each, its name, backend API and device type, PCI vendor and device ids,
/// driver name and driver info, the subgroup (warp, wave) sizes it may use (min and max, in
/// invocations), the compute limits the kernels depend on, and whether it offers the
/// optional features they can use. Units: buffer and workgroup-storage sizes in bytes,
/// workgroup sizes and invocation counts in invocations, workgroup counts per dimension.
/// The limits are the adapter's own (what it could grant), not the ones a
/// [`gpu::Gpu`] requests. An empty machine gives "no wgpu adapter found".
pub fn describe_adapters() -> String {
    use std::fmt::Write as _;
    use wgpu::Features as F;
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if adapters.is_empty() {
        return "no wgpu adapter found".into();
    }
    let mut s = String::new();
    for (n, a) in adapters.iter().enumerate() {
        let (i, l, f) = (a.get_info(), a.limits(), a.features());
        let yes = |x: F| if f.contains(x) { "yes" } else { "no" };
        // Writing into a String cannot fail.
        let _ = writeln!(
            s,
            "adapter {n}: {} ({:?}, {:?}), vendor 0x{:04x} device 0x{:04x}\n  \
             driver: {} ({})\n  \
             subgroup size: min {} max {} invocations\n  \
             limits: max_compute_workgroup_storage_size {} B, \
             max_compute_invocations_per_workgroup {}, \
             max_compute_workgroup_size {}x{}x{}, \
             max_compute_workgroups_per_dimension {}, \
             max_buffer_size {} B, max_storage_buffer_binding_size {} B, \
             max_storage_buffers_per_shader_stage {}\n  \
             features: shader-f16 {}, subgroups {}, subgroup barrier {}, \
             timestamp queries {} (inside encoders {}, inside passes {})",
            i.name,
            i.backend,
            i.device_type,
            i.vendor,
            i.device,
            if i.driver.is_empty() { "-" } else { &i.driver },
            if i.driver_info.is_empty() {
                "-"
            } else {
                &i.driver_info
            },
            i.subgroup_min_size,
            i.subgroup_max_size,
            l.max_compute_workgroup_storage_size,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_workgroups_per_dimension,
            l.max_buffer_size,
            l.max_storage_buffer_binding_size,
            l.max_storage_buffers_per_shader_stage,
            yes(F::SHADER_F16),
            yes(F::SUBGROUP),
            yes(F::SUBGROUP_BARRIER),
            yes(F::TIMESTAMP_QUERY),
            yes(F::TIMESTAMP_QUERY_INSIDE_ENCODERS),
            yes(F::TIMESTAMP_QUERY_INSIDE_PASSES),
        );
    }
    s
}

/// Open a backend by name, returning it with a line saying which one and why:
///
/// - `auto`: a hardware adapter (discrete, integrated or virtual GPU) through wgpu when one
///   exists; otherwise the fast CPU backend, which outruns a software adapter such as
///   lavapipe by several times on the same cores;
/// - `gpu`: wgpu, whatever the adapter (lavapipe included; `WGPU_ADAPTER_NAME` and
///   `WGPU_BACKEND` choose);
/// - `cpu`: the fast CPU backend ([`cpu::Cpu::fast`]);
/// - `cpu-ref`: the CPU reference kernels ([`cpu::Cpu::new`]);
/// - `gpu:<matmul>`: wgpu with the matmul variants chosen by `<matmul>`
///   ([`gpu::MatmulSelect`]: `auto`, `tune`, `default`, or a variant to pin such as
///   `tiled-64x64-4x4`), whatever `SHADEPROP_MATMUL` says.
///
/// # Errors
/// [`crate::Error::Hyperparameter`] for an unknown name ([`BACKEND_NAMES`]);
/// [`crate::Error::NoAdapter`] when a GPU is asked for and none opens.
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
        other => match other.strip_prefix("gpu:") {
            Some(select) => {
                let matmul: gpu::MatmulSelect =
                    select
                        .parse()
                        .map_err(|_| crate::error::Error::Hyperparameter {
                            name: "backend",
                            value: crate::error::shown(other),
                            expected: BACKEND_NAMES,
                        })?;
                // The name's choice, whatever SHADEPROP_MATMUL says.
                let g = gpu::Gpu::with_options(gpu::GpuOptions {
                    textures: gpu::GpuOptions::textures_from_env(),
                    ..gpu::GpuOptions::with_matmul(matmul)
                })?;
                Ok((
                    Box::new(g),
                    format!("gpu: forced, matmul variants {select}"),
                ))
            }
            None => Err(crate::error::Error::Hyperparameter {
                name: "backend",
                value: crate::error::shown(other),
                expected: BACKEND_NAMES,
            }),
        },
    }
}

/// The backend names [`open`] takes.
pub const BACKEND_NAMES: &str = "auto, gpu, cpu, cpu-ref, or gpu:<matmul> with <matmul> one of \
    auto, tune, default, portable, subgroup, tiled-32x32-4x4, tiled-64x64-4x4, \
    tiled-128x64-8x4, tiled-128x128-8x8";

/// Check a backend name without opening it.
///
/// # Errors
/// [`crate::Error::Hyperparameter`] naming the value and [`BACKEND_NAMES`].
pub fn check_name(name: &str) -> crate::error::Result<()> {
    let ok = match name {
        "auto" | "gpu" | "cpu" | "cpu-ref" => true,
        other => other
            .strip_prefix("gpu:")
            .is_some_and(|s| s.parse::<gpu::MatmulSelect>().is_ok()),
    };
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::Hyperparameter {
            name: "backend",
            value: crate::error::shown(name),
            expected: BACKEND_NAMES,
        })
    }
}
