//! Loading a program: split-K, operand textures, pipelines, parameters and bind groups
//! for each instruction, built once.

use super::Gpu;
use super::buffers::SCRATCH_BASE;
use super::dispatch::{self, IN_BASE, OUT_BASE};
use super::matmul::MatmulShape;
use super::textures::TextureCopy;
use crate::backend::{Backend, BufferSpec, Instr, Kernel, Program, ProgramId, Slice};
use crate::error::{Error, Result};
use crate::kernels::KernelParams;
use crate::kernels::elementwise::SliceSumParams;
use crate::kernels::matmul::MatMulParams;

/// Stride of one instruction's parameters in a program's uniform buffer.
const PARAM_STRIDE: u64 = 256;

pub(super) struct LoadedInstr {
    pub(super) pipeline: usize,
    /// The bind group for each copy of the double-buffered inputs (one when it reads none).
    pub(super) bind_groups: Vec<wgpu::BindGroup>,
    pub(super) groups: [u32; 3],
    /// The kernel, for profiles.
    pub(super) name: String,
    /// A matmul's operands copied into textures before the dispatch (shaders/texture.wgsl).
    pub(super) copies: Vec<TextureCopy>,
}

impl LoadedInstr {
    pub(super) fn bind_group(&self, parity: usize) -> &wgpu::BindGroup {
        &self.bind_groups[parity.min(self.bind_groups.len() - 1)]
    }
}

pub(super) struct LoadedProgram {
    pub(super) instrs: Vec<LoadedInstr>,
    pub(super) _params: wgpu::Buffer,
}

/// Split K when a matmul is at least this deep and its grid has fewer workgroups than
/// this; slices of about SPLIT_K_SLICE.
const SPLIT_K_MIN_DEPTH: u32 = 4096;
const SPLIT_K_FEW_GROUPS: u32 = 32;
const SPLIT_K_SLICE: u32 = 2048;

impl Gpu {
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
            let k = MatMulParams::from_words(&i.p).k as u32;
            // The default kernel's grid, whichever variant runs the product: the split
            // (and so the order of the sums) does not depend on the variant.
            let g = dispatch::workgroups(i, &MatmulShape::default(), &report);
            if k < SPLIT_K_MIN_DEPTH || g[0] * g[1] >= SPLIT_K_FEW_GROUPS {
                return None;
            }
            let s = k.div_ceil(SPLIT_K_SLICE).clamp(2, 64);
            let ks = k.div_ceil(s).next_multiple_of(sg);
            Some((ks, k.div_ceil(ks)))
        };
        let parts_len = |i: &Instr, s: u32| {
            let mm = MatMulParams::from_words(&i.p);
            s as usize * (mm.m as u32 * mm.n as u32) as usize
        };
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
            let (Some((ks, s)), Kernel::MatMul { .. }) = (plan(i), i.kernel) else {
                out.push(i.clone());
                continue;
            };
            let mm = MatMulParams::from_words(&i.p);
            let part = Slice {
                buf: scratch,
                off: 0,
                len: parts_len(i, s),
            };
            // The slices of the product, without the bias, then their sum (+ bias).
            let slices = MatMulParams {
                split_k: ks as usize,
                bias: false,
                ..mm
            };
            out.push(Instr {
                kernel: slices.kernel(),
                p: slices.to_words(),
                ins: i.ins.clone(),
                outs: vec![part],
            });
            let sum = SliceSumParams {
                n: (mm.m as u32 * mm.n as u32) as usize,
                cols: mm.n,
                slices: s as usize,
                bias: mm.bias,
            };
            out.push(Instr {
                kernel: sum.kernel(),
                p: sum.to_words(),
                ins: vec![part, i.ins[2]],
                outs: i.outs.clone(),
            });
        }
        Ok(out)
    }

    /// [`Backend::load`]: split-K, then for each instruction its operand textures,
    /// pipeline, parameters and bind groups; the parameters in one uniform buffer.
    pub(super) fn load_program(&mut self, program: &Program) -> Result<ProgramId> {
        for i in &program.instrs {
            i.check_arity()?;
        }
        let instrs = self.split_k(&program.instrs)?;
        let n = instrs.len().max(1) as u64;
        let params = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("program params"),
            size: n * PARAM_STRIDE,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut staged = vec![0u8; (n * PARAM_STRIDE) as usize];
        let mut loaded = vec![];
        for (i, instr) in instrs.iter().enumerate() {
            let mut shape = self.choose_shape(instr)?;
            let copies = self.texture_copies(instr, &mut shape)?;
            let pipeline = self.pipeline(instr.kernel, shape)?;
            let o = i * PARAM_STRIDE as usize;
            staged[o..o + 64].copy_from_slice(bytemuck::cast_slice(&instr.p));
            let bind_groups = self.bind_groups(instr, &shape, &copies, &params, o as u64)?;
            let groups = dispatch::workgroups(instr, &shape, &self.ctx.report);
            self.check_loop_trips(instr, &shape)?;
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
        self.save_tuning();
        self.programs.push(LoadedProgram {
            instrs: loaded,
            _params: params,
        });
        Ok(ProgramId(self.programs.len() - 1))
    }

    /// The bind groups of `instr` with `shape`, its operands in `copies`' textures or in
    /// buffers, its parameters at byte `offset` of `params`.
    pub(super) fn bind_groups(
        &self,
        instr: &Instr,
        shape: &MatmulShape,
        copies: &[TextureCopy],
        params: &wgpu::Buffer,
        offset: u64,
    ) -> Result<Vec<wgpu::BindGroup>> {
        let def = instr.kernel.def();
        let max_binding = self.ctx.limits.max_storage_buffer_binding_size;
        let align = self.align();
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
                        buffer: params,
                        offset,
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
            if let [a, b] = copies {
                // A's texture, and B's in place of its vector view.
                let view = |c: &TextureCopy| {
                    wgpu::BindingResource::TextureView(&self.textures[c.tex].view)
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: dispatch::ATEX_BINDING,
                    resource: view(a),
                });
                entries.push(wgpu::BindGroupEntry {
                    binding: IN_BASE + 3,
                    resource: view(b),
                });
            } else if dispatch::arity(instr.kernel).0 > def.n_in {
                // The matmul's B again, as in3: vectors of 4 values (see matmul::vec4_b).
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
            let layout = &self.layouts[&dispatch::layout_key(instr.kernel, shape)];
            bind_groups.push(self.ctx.checked(|d| {
                d.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(def.entry),
                    layout,
                    entries: &entries,
                })
            })?);
        }
        Ok(bind_groups)
    }

    /// Refuse `instr` on llvmpipe (lavapipe) if one invocation would run more loop
    /// iterations than it allows.
    fn check_loop_trips(&self, instr: &Instr, shape: &MatmulShape) -> Result<()> {
        let trips = dispatch::loop_trips(instr, shape, &self.ctx.report);
        if self.ctx.report.name.contains("llvmpipe") && trips > dispatch::LLVMPIPE_LOOP_LIMIT {
            return Err(Error::Gpu(format!(
                "{:?} with parameter words {:?} would run {trips} loop iterations per invocation; \
                 llvmpipe (lavapipe) stops at {} and would return a wrong result: use a \
                 smaller batch or the CPU backend",
                instr.kernel,
                &instr.p[..6],
                dispatch::LLVMPIPE_LOOP_LIMIT
            )));
        }
        Ok(())
    }
}
