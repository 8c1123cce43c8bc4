//! The wgpu backend: device, pipelines, buffers and bind groups are built once; a program
//! is replayed as one compute pass in one queue submission, without waiting.
//!
//! This file holds the [`Gpu`] struct and its [`Backend`] impl; the rest lives in
//! `buffers` (storage buffers, double-buffered inputs, scratch), `load` (a program's
//! pipelines and bind groups), `textures` (matmul operands in textures), `readback`,
//! `pipelines` (layouts, pipelines, the pipeline cache), `selfcheck` (the narrow matmul
//! tiles' start-up check) and `context` (adapter, device, errors); the shader side in
//! `wgsl` (module text), `matmul` (the subgroup matmul's variants) and `dispatch`
//! (bindings, workgroups, loop trips).

mod buffers;
mod context;
mod dispatch;
mod load;
mod matmul;
mod pipelines;
mod readback;
mod selfcheck;
mod textures;
mod tune;
mod wgsl;

pub use context::{AdapterReport, GpuOptions};
pub use matmul::{MatmulVariant, TILES, Tile, VARIANT_NAMES};
pub use tune::{MatmulChoice, MatmulSelect, shape_class};

use std::collections::HashMap;

use crate::backend::{Backend, BufferSpec, Globals, Kernel, Program, ProgramId};
use crate::error::Result;
use dispatch::LayoutKey;
use load::LoadedProgram;
use readback::PendingRead;
use textures::OperandTexture;

/// The GPU backend.
pub struct Gpu {
    ctx: context::Context,
    buffers: Vec<wgpu::Buffer>,
    specs: Vec<BufferSpec>,
    globals: wgpu::Buffer,
    /// Bind group layouts by [`LayoutKey`].
    layouts: HashMap<LayoutKey, wgpu::BindGroupLayout>,
    pipeline_layouts: HashMap<LayoutKey, wgpu::PipelineLayout>,
    /// Textures for matmul operands, shared by every program: each is filled by a copy
    /// just before the dispatch that reads it, in queue order.
    textures: Vec<OperandTexture>,
    /// Double-buffered inputs (`Backend::double_buffer`): the second copy of each, which
    /// copy the next run reads (`parity`: 0 = `buffers[i]`, 1 = the twin), and the inputs
    /// written since the last run (the first of them moved the writes to the other copy).
    twins: HashMap<usize, wgpu::Buffer>,
    parity: usize,
    written: Vec<usize>,
    modules: HashMap<wgsl::ModuleKey, wgpu::ShaderModule>,
    pipelines: Vec<wgpu::ComputePipeline>,
    pipeline_index: HashMap<(Kernel, matmul::MatmulShape), usize>,
    programs: Vec<LoadedProgram>,
    staging: Option<wgpu::Buffer>,
    /// The staging buffer of asynchronous reads (kept between reads), and the read in
    /// flight: its byte count and the channel its map callback answers on.
    async_staging: Option<wgpu::Buffer>,
    pending: Option<PendingRead>,
    /// Buffers of this backend's own (split-K partial products), addressed from
    /// SCRATCH_BASE on.
    scratch: Vec<(wgpu::Buffer, BufferSpec)>,
    /// The persistent pipeline cache, its file, and whether new pipelines were compiled
    /// since it was last written.
    cache: Option<(wgpu::PipelineCache, std::path::PathBuf)>,
    cache_dirty: bool,
    /// Seconds and calls per kernel when profiling ([`Gpu::profiled`]).
    times: Option<crate::backend::KernelTimes>,
    /// How matmul variants are chosen, and what was chosen.
    tuning: tune::Tuning,
}

impl Gpu {
    /// Open the adapter chosen by `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` (or the default one).
    ///
    /// # Errors
    /// [`crate::Error::NoAdapter`] when none is found or it refuses a device;
    /// [`crate::Error::Hyperparameter`] for an unknown `SHADEPROP_MATMUL`.
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::from_env()?)
    }

    /// Open an adapter with explicit options.
    ///
    /// # Errors
    /// [`crate::Error::NoAdapter`] when none is found or it refuses a device;
    /// [`crate::Error::Gpu`] when a pinned matmul variant does not fit the adapter.
    pub fn with_options(opts: GpuOptions) -> Result<Self> {
        let select = opts.matmul;
        let ctx = context::Context::new(opts)?;
        let tuning = tune::Tuning::new(
            select,
            select.times(ctx.hardware),
            tune::tuning_file(
                pipelines::cache_dir(),
                ctx.cache_key.as_deref(),
                &ctx.report.name,
                &ctx.report.driver,
            ),
            &ctx.report.name,
            &ctx.report.driver,
        );
        let globals = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("globals"),
            size: std::mem::size_of::<Globals>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut g = Gpu {
            ctx,
            buffers: vec![],
            specs: vec![],
            globals,
            layouts: HashMap::new(),
            pipeline_layouts: HashMap::new(),
            textures: vec![],
            twins: HashMap::new(),
            parity: 0,
            written: vec![],
            modules: HashMap::new(),
            pipelines: vec![],
            pipeline_index: HashMap::new(),
            programs: vec![],
            staging: None,
            async_staging: None,
            pending: None,
            scratch: vec![],
            cache: None,
            cache_dirty: false,
            times: None,
            tuning,
        };
        if let MatmulSelect::Pin(v) = select {
            g.check_pinned(v)?;
        }
        g.open_pipeline_cache();
        g.check_narrow_matmul()?;
        Ok(g)
    }

    /// Time every kernel (benchmarks only): each dispatch is then submitted on its own
    /// and waited for, so a step is much slower and each figure includes one
    /// submit-and-wait; see [`Backend::kernel_times`].
    pub fn profiled(mut self) -> Self {
        self.times = Some(Default::default());
        self
    }

    /// What was found: adapter name, backend, device type, subgroup size, matmul variant.
    pub fn report(&self) -> &AdapterReport {
        &self.ctx.report
    }

    /// The device's limits (the adapter's own, requested in full).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.ctx.limits
    }
}

impl Backend for Gpu {
    fn describe(&self) -> String {
        self.ctx.report.to_string()
    }

    fn align(&self) -> usize {
        (self.ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1)
    }

    fn create_buffers(&mut self, specs: &[BufferSpec]) -> Result<()> {
        self.reset_buffers(specs)
    }

    fn double_buffer(&mut self, bufs: &[usize]) -> Result<()> {
        self.add_twins(bufs)
    }

    fn add_buffers(&mut self, specs: &[BufferSpec]) -> Result<()> {
        self.push_buffers(specs)
    }

    fn load(&mut self, program: &Program) -> Result<ProgramId> {
        self.load_program(program)
    }

    fn write(&mut self, buf: usize, off: usize, data: &[f32]) -> Result<()> {
        self.write_buffer(buf, off, data)
    }

    fn run(&mut self, id: ProgramId, globals: &Globals) -> Result<()> {
        self.ctx
            .queue
            .write_buffer(&self.globals, 0, bytemuck::bytes_of(globals));
        let prog = &self.programs[id.0];
        if self.times.is_some() {
            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
            self.sync_twins(&mut enc);
            self.ctx.queue.submit([enc.finish()]);
            for li in &prog.instrs {
                let t0 = std::time::Instant::now();
                let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                for c in &li.copies {
                    self.record_copy(&mut enc, c)?;
                }
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&self.pipelines[li.pipeline]);
                    pass.set_bind_group(0, li.bind_group(self.parity), &[]);
                    pass.dispatch_workgroups(li.groups[0], li.groups[1], li.groups[2]);
                }
                self.ctx.queue.submit([enc.finish()]);
                self.ctx.wait()?;
                if let Some(times) = &mut self.times {
                    let e = times.entry(li.name.clone()).or_default();
                    e.0 += 1;
                    e.1 += t0.elapsed().as_secs_f64();
                }
            }
            self.written.clear();
            return self.ctx.take_error();
        }
        // One submission: compute passes, split where a matmul's operands are copied into
        // textures. A double-buffered input not written since the last run is brought into
        // the copy this run reads first.
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        self.sync_twins(&mut enc);
        let mut rest = &prog.instrs[..];
        while let Some(first) = rest.first() {
            for c in &first.copies {
                self.record_copy(&mut enc, c)?;
            }
            let n = 1 + rest[1..]
                .iter()
                .take_while(|li| li.copies.is_empty())
                .count();
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            for li in &rest[..n] {
                pass.set_pipeline(&self.pipelines[li.pipeline]);
                pass.set_bind_group(0, li.bind_group(self.parity), &[]);
                pass.dispatch_workgroups(li.groups[0], li.groups[1], li.groups[2]);
            }
            drop(pass);
            rest = &rest[n..];
        }
        self.ctx.queue.submit([enc.finish()]);
        self.written.clear();
        self.ctx.take_error()
    }

    fn read(&mut self, buf: usize, off: usize, len: usize) -> Result<Vec<f32>> {
        self.read_blocking(buf, off, len)
    }

    fn read_start(&mut self, buf: usize, off: usize, len: usize) -> Result<()> {
        self.start_read(buf, off, len)
    }

    fn read_finish(&mut self) -> Result<Option<Vec<f32>>> {
        self.finish_read()
    }

    fn sync(&mut self) -> Result<()> {
        self.ctx.wait()?;
        self.ctx.take_error()
    }

    fn kernel_choices(&self) -> Vec<String> {
        self.matmul_choices()
            .iter()
            .map(|c| format!("matmul {c}"))
            .collect()
    }

    fn is_gpu(&self) -> bool {
        true
    }
    fn allocated_bytes(&self) -> u64 {
        self.buffer_bytes()
    }
    fn kernel_times(&self) -> Vec<(String, u64, f64)> {
        crate::backend::sorted_times(self.times.as_ref())
    }
    fn lose_device(&mut self) {
        self.ctx.device.destroy();
    }
}
