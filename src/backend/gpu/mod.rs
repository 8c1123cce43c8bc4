//! The wgpu backend: device, pipelines, buffers and bind groups are built once; a program
//! is replayed as one compute pass in one queue submission, without waiting.

mod context;
mod shaders;

pub use context::{AdapterReport, GpuOptions};

use std::collections::HashMap;

use crate::backend::{
    Backend, BufferSpec, Globals, Instr, Kernel, Program, ProgramId, Slice, check,
};
use crate::error::{Error, Result};

/// Number of read-only operand slots and their first binding (see shaders/common.wgsl).
const IN_BASE: u32 = 2;
const OUT_BASE: u32 = 6;
/// Stride of one instruction's parameters in a program's uniform buffer.
const PARAM_STRIDE: u64 = 256;

struct LoadedInstr {
    pipeline: usize,
    /// The bind group for each copy of the double-buffered inputs (one when it reads none).
    bind_groups: Vec<wgpu::BindGroup>,
    groups: [u32; 3],
    /// The kernel, for profiles.
    name: String,
    /// A matmul's operands copied into textures before the dispatch (shaders/texture.wgsl).
    copies: Vec<TextureCopy>,
}

impl LoadedInstr {
    fn bind_group(&self, parity: usize) -> &wgpu::BindGroup {
        &self.bind_groups[parity.min(self.bind_groups.len() - 1)]
    }
}

/// Copy `bytes` of operand buffer `buf` from byte `offset` into texture `tex`, row after
/// row of TEX_WIDTH texels.
struct TextureCopy {
    buf: usize,
    offset: u64,
    bytes: u64,
    tex: usize,
}

/// A texture that holds matmul operands: `rows` rows of TEX_WIDTH texels.
struct OperandTexture {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    format: wgpu::TextureFormat,
    texel: u64,
    rows: u32,
}

struct LoadedProgram {
    instrs: Vec<LoadedInstr>,
    _params: wgpu::Buffer,
}

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
    modules: HashMap<shaders::ModuleKey, wgpu::ShaderModule>,
    pipelines: Vec<wgpu::ComputePipeline>,
    pipeline_index: HashMap<(Kernel, shaders::MatmulShape), usize>,
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
}

use shaders::LayoutKey;

/// Split K when a matmul is at least this deep and its grid has fewer workgroups than
/// this; slices of about SPLIT_K_SLICE.
const SPLIT_K_MIN_DEPTH: u32 = 4096;
const SPLIT_K_FEW_GROUPS: u32 = 32;
const SPLIT_K_SLICE: u32 = 2048;
/// Operand indices from here on name the backend's scratch buffers.
const SCRATCH_BASE: usize = 1 << 24;

/// The mappable buffer in `slot`, replaced by a larger one when it holds fewer than `bytes`.
fn readback_buffer(
    device: &wgpu::Device,
    slot: &mut Option<wgpu::Buffer>,
    bytes: u64,
) -> wgpu::Buffer {
    match slot {
        Some(b) if b.size() >= bytes => b.clone(),
        _ => {
            let b = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes.max(256),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            *slot = Some(b.clone());
            b
        }
    }
}

/// An asynchronous read in flight ([`Backend::read_start`]).
struct PendingRead {
    bytes: u64,
    done: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

/// Where pipeline caches live: `SHADEPROP_PIPELINE_CACHE` (a folder; `off` disables),
/// else `$XDG_CACHE_HOME/shadeprop`, else `$HOME/.cache/shadeprop`.
fn cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    match std::env::var("SHADEPROP_PIPELINE_CACHE") {
        Ok(v) if v == "off" => None,
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) => std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .ok()
            .map(|d| d.join("shadeprop")),
    }
}

impl Gpu {
    /// Open the adapter chosen by `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` (or the default one).
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::from_env())
    }

    /// Open an adapter with explicit options.
    pub fn with_options(opts: GpuOptions) -> Result<Self> {
        let ctx = context::Context::new(opts)?;
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
        };
        g.open_pipeline_cache();
        g.check_narrow_matmul()?;
        Ok(g)
    }

    /// Open (or start) the adapter's persistent pipeline cache, where wgpu offers one.
    /// Unreadable or stale data falls back to an empty cache (wgpu's `fallback`).
    fn open_pipeline_cache(&mut self) {
        let (Some(key), Some(dir)) = (self.ctx.cache_key.clone(), cache_dir()) else {
            return;
        };
        let path = dir.join(key);
        let data = std::fs::read(&path).ok();
        // SAFETY: the data was written by `PipelineCache::get_data` for an adapter with the
        // same cache key (wgpu's key covers the adapter, driver and wgpu version); anything
        // else is rejected by the driver's own header check and `fallback` starts empty.
        let cache = unsafe {
            self.ctx
                .device
                .create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("shadeprop"),
                    data: data.as_deref(),
                    fallback: true,
                })
        };
        self.cache = Some((cache, path));
    }

    /// Write the pipeline cache if new pipelines were compiled (atomically; a failure to
    /// write only costs start-up time next run, so it is not an error).
    fn save_pipeline_cache(&mut self) {
        if !self.cache_dirty {
            return;
        }
        self.cache_dirty = false;
        if let Some((cache, path)) = &self.cache
            && let Some(data) = cache.get_data()
        {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = crate::train::checkpoint::write_atomic(path, &data);
        }
    }

    /// Enable the narrow-output matmul tiles if they give the CPU reference's results on
    /// this adapter (they assume that a subgroup is made of consecutive invocations).
    fn check_narrow_matmul(&mut self) -> Result<()> {
        let off = std::env::var("SHADEPROP_MATMUL_NARROW").is_ok_and(|v| v == "0");
        if self.ctx.report.subgroup_size.is_none() || off {
            return Ok(());
        }
        self.ctx.report.narrow_matmul = true;
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
            let kern = Kernel::MatMul {
                ta,
                tb,
                bias: false,
                half: false,
            };
            let p = crate::backend::cpu::matmul::params(kern, m, n, k);
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
        self.ctx.report.narrow_matmul = ok;
        let _ = self.ctx.take_error();
        self.create_buffers(&[])?;
        Ok(())
    }

    /// A storage buffer for `s`, refused (naming it) beyond the adapter's buffer size.
    fn make_buffer(&self, s: &BufferSpec) -> Result<wgpu::Buffer> {
        let bytes = (s.len.max(1) * 4) as u64;
        let limit = self.ctx.limits.max_buffer_size;
        if bytes > limit {
            return Err(Error::BufferTooLarge {
                name: s.name.clone(),
                bytes,
                limit_name: "max_buffer_size",
                limit,
            });
        }
        self.ctx.checked(|d| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&s.name),
                // 16-byte multiples: a vec4 view of a range ending at the buffer's end
                // (the matmul's B) stays inside.
                size: bytes.next_multiple_of(16),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })
    }

    /// The buffer behind an operand index: the caller's buffers, or from SCRATCH_BASE on
    /// this backend's own scratch (kept apart, so that buffers the caller adds later keep
    /// the indices it expects).
    fn operand_buffer(&self, buf: usize) -> Result<(&wgpu::Buffer, &BufferSpec)> {
        self.operand_buffer_at(buf, self.parity)
    }

    /// [`Gpu::operand_buffer`] in copy `parity` of a double-buffered input (the buffer
    /// itself for the others).
    fn operand_buffer_at(&self, buf: usize, parity: usize) -> Result<(&wgpu::Buffer, &BufferSpec)> {
        if parity == 1
            && let (Some(twin), Some(spec)) = (self.twins.get(&buf), self.specs.get(buf))
        {
            return Ok((twin, spec));
        }
        let found = if buf >= SCRATCH_BASE {
            self.scratch.get(buf - SCRATCH_BASE).map(|(b, s)| (b, s))
        } else {
            self.buffers.get(buf).zip(self.specs.get(buf))
        };
        found.ok_or_else(|| Error::Graph(format!("no buffer {buf}")))
    }

    /// Deep products that would leave the device nearly idle (few workgroups: the
    /// convolutions' weight gradients, e.g. 25 × 32 outputs over K = 73,728) become two
    /// dispatches: the subgroup matmul over K slices into a scratch buffer of partial
    /// products, then `slice_sum` adding them in slice order (+ bias). `SHADEPROP_SPLIT_K=0`
    /// turns this off.
    fn split_k(&mut self, instrs: &[Instr]) -> Result<Vec<Instr>> {
        let Some(sg) = self.ctx.report.subgroup_size else {
            return Ok(instrs.to_vec());
        };
        if std::env::var("SHADEPROP_SPLIT_K").is_ok_and(|v| v == "0") {
            return Ok(instrs.to_vec());
        }
        let report = self.ctx.report.clone();
        // (slice length, slices) of each product to split.
        let plan = |i: &Instr| -> Option<(u32, u32)> {
            let Kernel::MatMul { .. } = i.kernel else {
                return None;
            };
            let k = i.p[2];
            let g = shaders::workgroups(i, &report);
            if k < SPLIT_K_MIN_DEPTH || g[0] * g[1] >= SPLIT_K_FEW_GROUPS {
                return None;
            }
            let s = k.div_ceil(SPLIT_K_SLICE).clamp(2, 64);
            let ks = k.div_ceil(s).next_multiple_of(sg);
            Some((ks, k.div_ceil(ks)))
        };
        let parts_len = |i: &Instr, s: u32| s as usize * (i.p[0] * i.p[1]) as usize;
        let need = instrs
            .iter()
            .filter_map(|i| plan(i).map(|(_, s)| parts_len(i, s)))
            .max();
        let Some(need) = need else {
            return Ok(instrs.to_vec());
        };
        // Programs run one after another on the queue, so they can share one scratch
        // buffer: reuse one that is large enough, else add one.
        let scratch = match self.scratch.iter().position(|(_, s)| s.len >= need) {
            Some(j) => SCRATCH_BASE + j,
            None => {
                let spec = BufferSpec {
                    name: "split-K partial products".into(),
                    len: need,
                };
                self.scratch.push((self.make_buffer(&spec)?, spec));
                SCRATCH_BASE + self.scratch.len() - 1
            }
        };
        let mut out = Vec::with_capacity(instrs.len() + 2);
        for i in instrs {
            let (Some((ks, s)), Kernel::MatMul { ta, tb, bias, half }) = (plan(i), i.kernel) else {
                out.push(i.clone());
                continue;
            };
            let part = Slice {
                buf: scratch,
                off: 0,
                len: parts_len(i, s),
            };
            let mut p = i.p;
            p[3] = ks;
            p[15] = 0;
            out.push(Instr {
                kernel: Kernel::MatMul {
                    ta,
                    tb,
                    bias: false,
                    half,
                },
                p,
                ins: i.ins.clone(),
                outs: vec![part],
            });
            let mut q = [0u32; 16];
            q[0] = i.p[0] * i.p[1];
            q[1] = i.p[1];
            q[2] = s;
            q[15] = bias as u32;
            out.push(Instr {
                kernel: Kernel::SliceSum { bias },
                p: q,
                ins: vec![part, i.ins[2]],
                outs: i.outs.clone(),
            });
        }
        Ok(out)
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

    /// The subgroup matmul's shape for `kernel` with parameters `p` (the default shape for
    /// other kernels or without subgroups).
    fn matmul_shape(&self, kernel: Kernel, p: &[u32; 16]) -> shaders::MatmulShape {
        match (kernel, self.ctx.report.subgroup_size) {
            (Kernel::MatMul { .. }, Some(sg)) => {
                let mut s = shaders::matmul_shape(p[0], p[1], p[2], &self.ctx.report);
                s.b4 = shaders::vec4_b(kernel, p[1]);
                s.tb4 = shaders::vec4_tb(kernel, p[2], sg);
                s
            }
            _ => shaders::MatmulShape::default(),
        }
    }

    /// The rows of the textures for A and B (ranges of `bytes`) if the matmul `kernel` with
    /// parameters `p` and `shape` reads its operands from textures on this adapter.
    fn texture_rows(
        &self,
        kernel: Kernel,
        p: &[u32; 16],
        shape: &shaders::MatmulShape,
        bytes: (u64, u64),
    ) -> Option<(u32, u32)> {
        let sg = self.ctx.report.subgroup_size?;
        let max_dim = self.ctx.limits.max_texture_dimension_2d;
        (self.ctx.report.texture_operands)
            .then(|| shaders::texture_operands(kernel, shape, p, sg, bytes, max_dim))?
    }

    /// Whether the matmul `kernel` with parameters `p` (see `cpu::matmul::params`), its
    /// operands whole buffers, reads them from textures (shaders/texture.wgsl).
    pub fn texture_operands_for(&self, kernel: Kernel, p: &[u32; 16]) -> bool {
        let half = matches!(kernel, Kernel::MatMul { half: true, .. });
        let bytes = |n: u64| 4 * if half { n.div_ceil(2) } else { n };
        let (m, n, k) = (p[0] as u64, p[1] as u64, p[2] as u64);
        let shape = self.matmul_shape(kernel, p);
        (self.texture_rows(kernel, p, &shape, (bytes(m * k), bytes(k * n)))).is_some()
    }

    /// The device's limits (the adapter's own, requested in full).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.ctx.limits
    }

    /// Bytes of every buffer (double-buffered inputs twice) and operand texture this
    /// backend holds.
    pub fn buffer_bytes(&self) -> u64 {
        let own = self.scratch.iter().map(|(b, _)| b.size());
        let twins = self.twins.values().map(|b| b.size());
        let bufs: u64 = (self.buffers.iter().map(|b| b.size()))
            .chain(own)
            .chain(twins)
            .sum();
        bufs + self.texture_bytes()
    }

    /// Bytes of the textures that hold matmul operands (none until a loaded program reads
    /// an operand from one).
    pub fn texture_bytes(&self) -> u64 {
        (self.textures.iter())
            .map(|t| t.rows as u64 * shaders::TEX_WIDTH as u64 * t.texel)
            .sum()
    }

    /// A texture of `rows` rows for an operand of `format`: the smallest one held that is
    /// large enough (other than `other`, the same dispatch's other operand), or a new one.
    fn texture(
        &mut self,
        format: wgpu::TextureFormat,
        texel: u64,
        rows: u32,
        other: Option<usize>,
    ) -> Result<usize> {
        let best = (self.textures.iter().enumerate())
            .filter(|&(i, t)| t.format == format && t.rows >= rows && Some(i) != other)
            .min_by_key(|(_, t)| t.rows)
            .map(|(i, _)| i);
        if let Some(i) = best {
            return Ok(i);
        }
        let texture = self.ctx.checked(|d| {
            d.create_texture(&wgpu::TextureDescriptor {
                label: Some("matmul operand"),
                size: wgpu::Extent3d {
                    width: shaders::TEX_WIDTH,
                    height: rows,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        })?;
        let view = texture.create_view(&Default::default());
        self.textures.push(OperandTexture {
            texture,
            view,
            format,
            texel,
            rows,
        });
        Ok(self.textures.len() - 1)
    }

    /// Before a run: copy every double-buffered input that was not written since the last
    /// run from the other copy into the one this run reads (the run then ends the write
    /// cycle).
    fn sync_twins(&self, enc: &mut wgpu::CommandEncoder) {
        if !self.written.is_empty() {
            for (&b, twin) in &self.twins {
                if !self.written.contains(&b) {
                    let (from, to) = if self.parity == 1 {
                        (&self.buffers[b], twin)
                    } else {
                        (twin, &self.buffers[b])
                    };
                    enc.copy_buffer_to_buffer(from, 0, to, 0, to.size());
                }
            }
        }
    }

    /// Record `c`: whole rows of TEX_WIDTH texels, then the last, partial one.
    fn record_copy(&self, enc: &mut wgpu::CommandEncoder, c: &TextureCopy) -> Result<()> {
        let t = &self.textures[c.tex];
        let (buffer, _) = self.operand_buffer(c.buf)?;
        let row_bytes = shaders::TEX_WIDTH as u64 * t.texel;
        let (full, rest) = (c.bytes / row_bytes, c.bytes % row_bytes);
        for (y, rows, width) in [
            (0, full, shaders::TEX_WIDTH as u64),
            (full, rest.min(1), rest / t.texel),
        ] {
            if rows == 0 || width == 0 {
                continue;
            }
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: c.offset + y * row_bytes,
                        bytes_per_row: Some(row_bytes as u32),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &t.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: y as u32,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width: width as u32,
                    height: rows as u32,
                    depth_or_array_layers: 1,
                },
            );
        }
        Ok(())
    }

    fn layout(&mut self, key: LayoutKey) -> &wgpu::PipelineLayout {
        let device = &self.ctx.device;
        let (n_in, n_out, tex) = key;
        let bgl = self.layouts.entry(key).or_insert_with(|| {
            let mut entries = vec![];
            let uniform = |binding| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            };
            let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            };
            let texture = |binding, sample_type| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Texture {
                    sample_type,
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            };
            entries.push(uniform(0));
            entries.push(uniform(1));
            for i in 0..n_in {
                let binding = IN_BASE + i as u32;
                entries.push(match tex {
                    // The matmul's B as a texture (in3).
                    Some(sample_type) if i == 3 => texture(binding, sample_type),
                    _ => storage(binding, true),
                });
            }
            for i in 0..n_out {
                entries.push(storage(OUT_BASE + i as u32, false));
            }
            if let Some(sample_type) = tex {
                entries.push(texture(shaders::ATEX_BINDING, sample_type));
            }
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("kernel"),
                entries: &entries,
            })
        });
        let bgl = &*bgl;
        self.pipeline_layouts.entry(key).or_insert_with(|| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: None,
                bind_group_layouts: &[Some(bgl)],
                immediate_size: 0,
            })
        })
    }

    /// The pipeline of `kernel`; `shape` is the subgroup matmul's lanes per row group and
    /// workgroup size (zeros otherwise).
    fn pipeline(&mut self, kernel: Kernel, shape: shaders::MatmulShape) -> Result<usize> {
        if let Some(&i) = self.pipeline_index.get(&(kernel, shape)) {
            return Ok(i);
        }
        let def = kernel.def();
        let key = shaders::ModuleKey::for_kernel(&def, &self.ctx.report, shape);
        if !self.modules.contains_key(&key) {
            let src = shaders::module_source(key)?;
            let m = self.ctx.checked(|d| {
                d.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(def.entry),
                    source: wgpu::ShaderSource::Wgsl(src.into()),
                })
            })?;
            self.modules.insert(key, m);
        }
        let mut consts = kernel.constants();
        if shape.lanes > 0 {
            consts.push(("CWL", shape.lanes as f64));
            consts.push(("WG", shape.workgroup as f64));
            consts.push(("FULL", if shape.full { 1.0 } else { 0.0 }));
            consts.push(("B4", if shape.b4 { 1.0 } else { 0.0 }));
            consts.push(("TB4", if shape.tb4 { 1.0 } else { 0.0 }));
        }
        let layout = self.layout(shaders::layout_key(kernel, &shape)).clone();
        let module = &self.modules[&key];
        let p = self.ctx.checked(|d| {
            d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(def.entry),
                layout: Some(&layout),
                module,
                entry_point: Some(def.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &consts,
                    zero_initialize_workgroup_memory: false,
                },
                cache: self.cache.as_ref().map(|c| &c.0),
            })
        })?;
        self.cache_dirty = true;
        self.pipelines.push(p);
        self.pipeline_index
            .insert((kernel, shape), self.pipelines.len() - 1);
        Ok(self.pipelines.len() - 1)
    }

    fn staging(&mut self, bytes: u64) -> wgpu::Buffer {
        readback_buffer(&self.ctx.device, &mut self.staging, bytes)
    }

    /// Whether `len` elements from `off` of buffer `buf` can be read.
    fn check_read(&self, buf: usize, off: usize, len: usize) -> Result<()> {
        let spec = self
            .specs
            .get(buf)
            .ok_or_else(|| Error::Graph(format!("no buffer {buf}")))?;
        if off + len > spec.len {
            return Err(Error::Graph(format!(
                "read {off}..{} of {} ({} elements)",
                off + len,
                spec.name,
                spec.len
            )));
        }
        Ok(())
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
        self.buffers.clear();
        self.specs.clear();
        self.scratch.clear();
        self.programs.clear();
        self.twins.clear();
        self.parity = 0;
        self.written.clear();
        // The programs that read them are gone.
        self.textures.clear();
        self.add_buffers(specs)
    }

    /// A second copy of each of `bufs`: a write after a run goes to the copy that no
    /// submitted step reads, so the next batch's upload never waits on (nor is ordered
    /// behind barriers of) the step still reading the previous one.
    fn double_buffer(&mut self, bufs: &[usize]) -> Result<()> {
        if !self.programs.is_empty() {
            return Err(Error::Graph(
                "double_buffer must come before the first program is loaded".into(),
            ));
        }
        for &b in bufs {
            let spec = (self.specs.get(b).cloned())
                .ok_or_else(|| Error::Graph(format!("double_buffer: no buffer {b}")))?;
            let twin = self.make_buffer(&spec)?;
            self.twins.insert(b, twin);
        }
        Ok(())
    }

    fn add_buffers(&mut self, specs: &[BufferSpec]) -> Result<()> {
        let bufs = specs
            .iter()
            .map(|s| self.make_buffer(s))
            .collect::<Result<Vec<_>>>()?;
        self.buffers.extend(bufs);
        self.specs.extend_from_slice(specs);
        Ok(())
    }

    fn load(&mut self, program: &Program) -> Result<ProgramId> {
        let instrs = self.split_k(&program.instrs)?;
        let n = instrs.len().max(1) as u64;
        let params = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("program params"),
            size: n * PARAM_STRIDE,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut staged = vec![0u8; (n * PARAM_STRIDE) as usize];
        let max_binding = self.ctx.limits.max_storage_buffer_binding_size;
        let align = self.align();
        let mut loaded = vec![];
        for (i, instr) in instrs.iter().enumerate() {
            let mut shape = self.matmul_shape(instr.kernel, &instr.p);
            // A and B from textures: copied there (whole texels, from texel-aligned
            // offsets) just before the dispatch.
            let (format, texel, _) = shaders::texture_format(instr.kernel);
            let mut copies = vec![];
            if let (Kernel::MatMul { .. }, [a, b, ..]) = (instr.kernel, &instr.ins[..])
                && let bytes = ((a.len * 4) as u64, (b.len * 4) as u64)
                && let Some((a_rows, b_rows)) =
                    self.texture_rows(instr.kernel, &instr.p, &shape, bytes)
                && [a, b]
                    .iter()
                    .all(|s| ((s.off * 4) as u64).is_multiple_of(texel))
            {
                shape.tex = true;
                let a_tex = self.texture(format, texel, a_rows, None)?;
                let b_tex = self.texture(format, texel, b_rows, Some(a_tex))?;
                for (s, bytes, tex) in [(a, bytes.0, a_tex), (b, bytes.1, b_tex)] {
                    copies.push(TextureCopy {
                        buf: s.buf,
                        offset: (s.off * 4) as u64,
                        bytes,
                        tex,
                    });
                }
            }
            let pipeline = self.pipeline(instr.kernel, shape)?;
            let def = instr.kernel.def();
            let o = i * PARAM_STRIDE as usize;
            staged[o..o + 64].copy_from_slice(bytemuck::cast_slice(&instr.p));
            // One bind group per copy of the double-buffered inputs it reads (see
            // `Backend::double_buffer`), else one for both.
            let parities =
                if (instr.ins.iter().chain(&instr.outs)).any(|s| self.twins.contains_key(&s.buf)) {
                    2
                } else {
                    1
                };
            let mut bind_groups = Vec::with_capacity(2);
            for parity in 0..parities {
                let mut entries = vec![
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params,
                            offset: o as u64,
                            size: std::num::NonZeroU64::new(64),
                        }),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: self.globals.as_entire_binding(),
                    },
                ];
                // (binding, range, as a vec4 array: the size rounded up to 16 bytes).
                let mut operands: Vec<(u32, &Slice, bool)> = instr
                    .ins
                    .iter()
                    .enumerate()
                    .map(|(j, s)| (IN_BASE + j as u32, s, false))
                    .chain(
                        instr
                            .outs
                            .iter()
                            .enumerate()
                            .map(|(j, s)| (OUT_BASE + j as u32, s, false)),
                    )
                    .collect();
                if let [a, b] = &copies[..] {
                    // A's texture, and B's in place of its vector view.
                    let view = |c: &TextureCopy| {
                        wgpu::BindingResource::TextureView(&self.textures[c.tex].view)
                    };
                    entries.push(wgpu::BindGroupEntry {
                        binding: shaders::ATEX_BINDING,
                        resource: view(a),
                    });
                    entries.push(wgpu::BindGroupEntry {
                        binding: IN_BASE + 3,
                        resource: view(b),
                    });
                } else if shaders::arity(instr.kernel).0 > def.n_in {
                    // The matmul's B again, as in3: vectors of 4 values (see shaders::vec4_b).
                    operands.push((IN_BASE + 3, &instr.ins[1], true));
                }
                for (binding, s, vec4) in operands {
                    let (buffer, spec) = self.operand_buffer_at(s.buf, parity)?;
                    let bytes = (s.len.max(1) * 4) as u64;
                    // (Buffers are 16-byte multiples, so with offsets aligned to 16 bytes the
                    // rounded range stays inside; the clamp covers smaller offset alignments.)
                    let bytes = if vec4 {
                        bytes
                            .next_multiple_of(16)
                            .min(buffer.size() - (s.off * 4) as u64)
                    } else {
                        bytes
                    };
                    if bytes > max_binding {
                        return Err(Error::BufferTooLarge {
                            name: format!("{} operand of {:?}", spec.name, instr.kernel),
                            bytes,
                            limit_name: "max_storage_buffer_binding_size",
                            limit: max_binding,
                        });
                    }
                    if s.off % align != 0 || s.off + s.len.max(1) > spec.len.max(1) {
                        return Err(Error::Graph(format!(
                            "{:?}: operand {s:?} misaligned or outside buffer {}",
                            instr.kernel, spec.name
                        )));
                    }
                    entries.push(wgpu::BindGroupEntry {
                        binding,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer,
                            offset: (s.off * 4) as u64,
                            size: std::num::NonZeroU64::new(bytes),
                        }),
                    });
                }
                let layout = &self.layouts[&shaders::layout_key(instr.kernel, &shape)];
                bind_groups.push(self.ctx.checked(|d| {
                    d.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(def.entry),
                        layout,
                        entries: &entries,
                    })
                })?);
            }
            let groups = shaders::workgroups(instr, &self.ctx.report);
            let trips = shaders::loop_trips(instr, &self.ctx.report);
            if self.ctx.report.name.contains("llvmpipe") && trips > shaders::LLVMPIPE_LOOP_LIMIT {
                return Err(Error::Gpu(format!(
                    "{:?} with parameters {:?} would run {trips} loop iterations per invocation; \
                     llvmpipe (lavapipe) stops at {} and would return a wrong result: use a \
                     smaller batch or the CPU backend",
                    instr.kernel,
                    &instr.p[..6],
                    shaders::LLVMPIPE_LOOP_LIMIT
                )));
            }
            loaded.push(LoadedInstr {
                pipeline,
                bind_groups,
                groups,
                name: format!("{:?}", instr.kernel),
                copies,
            });
        }
        self.ctx.queue.write_buffer(&params, 0, &staged);
        self.save_pipeline_cache();
        self.programs.push(LoadedProgram {
            instrs: loaded,
            _params: params,
        });
        Ok(ProgramId(self.programs.len() - 1))
    }

    fn write(&mut self, buf: usize, off: usize, data: &[f32]) -> Result<()> {
        let spec = self
            .specs
            .get(buf)
            .ok_or_else(|| Error::Graph(format!("no buffer {buf}")))?;
        if off + data.len() > spec.len {
            return Err(Error::Shape {
                context: format!("write into buffer {}", spec.name),
                got: vec![off + data.len()],
                expected: format!("at most {} elements", spec.len),
            });
        }
        if self.twins.contains_key(&buf) {
            // The first write after a run goes to the other copy, which no submitted step
            // reads: the next run reads that copy.
            if self.written.is_empty() {
                self.parity ^= 1;
            }
            if !self.written.contains(&buf) {
                self.written.push(buf);
            }
        }
        if !data.is_empty() {
            let (buffer, _) = self.operand_buffer(buf)?;
            self.ctx
                .queue
                .write_buffer(buffer, (off * 4) as u64, bytemuck::cast_slice(data));
        }
        Ok(())
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
        self.check_read(buf, off, len)?;
        if len == 0 {
            return Ok(vec![]);
        }
        let bytes = (len * 4) as u64;
        let staging = self.staging(bytes);
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        let (buffer, _) = self.operand_buffer(buf)?;
        enc.copy_buffer_to_buffer(buffer, (off * 4) as u64, &staging, 0, bytes);
        self.ctx.queue.submit([enc.finish()]);
        let slice = staging.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // A failure here is usually the symptom of an earlier asynchronous error (device
        // lost, out of memory): report that one, with the symptom.
        let cause = |what: String| match self.ctx.take_error() {
            Err(Error::Gpu(first)) => Error::Gpu(format!("{first} (then: {what})")),
            _ => Error::Gpu(what),
        };
        self.ctx.wait().map_err(|e| cause(e.to_string()))?;
        rx.recv()
            .map_err(|_| cause("readback callback never ran".into()))?
            .map_err(|e| cause(format!("mapping the readback buffer failed: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("readback view: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.ctx.take_error()?;
        Ok(out)
    }

    fn read_start(&mut self, buf: usize, off: usize, len: usize) -> Result<()> {
        // Drop a read nobody finished (its buffer must be unmapped before reuse).
        if self.pending.is_some() {
            self.read_finish()?;
        }
        self.check_read(buf, off, len)?;
        let bytes = (len.max(1) * 4) as u64;
        let staging = readback_buffer(&self.ctx.device, &mut self.async_staging, bytes);
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        if len > 0 {
            let (buffer, _) = self.operand_buffer(buf)?;
            enc.copy_buffer_to_buffer(buffer, (off * 4) as u64, &staging, 0, bytes);
        }
        self.ctx.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.pending = Some(PendingRead {
            bytes: if len == 0 { 0 } else { bytes },
            done: rx,
        });
        self.ctx.take_error()
    }

    fn read_finish(&mut self) -> Result<Option<Vec<f32>>> {
        let Some(p) = self.pending.take() else {
            return Ok(None);
        };
        let staging = self
            .async_staging
            .clone()
            .ok_or_else(|| Error::Gpu("asynchronous read without its buffer".into()))?;
        // Map callbacks run inside poll: look without blocking first, then wait.
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        let r = match p.done.try_recv() {
            Ok(r) => r,
            Err(_) => {
                self.ctx.wait()?;
                p.done
                    .recv()
                    .map_err(|_| Error::Gpu("readback callback never ran".into()))?
            }
        };
        r.map_err(|e| Error::Gpu(format!("mapping the readback buffer failed: {e}")))?;
        let out = if p.bytes == 0 {
            vec![]
        } else {
            let view = staging
                .slice(..p.bytes)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("readback view: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        self.ctx.take_error()?;
        Ok(Some(out))
    }

    fn sync(&mut self) -> Result<()> {
        self.ctx.wait()?;
        self.ctx.take_error()
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
