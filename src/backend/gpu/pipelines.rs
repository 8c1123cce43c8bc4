//! Pipelines: bind group and pipeline layouts, shader modules, compute pipelines, and the
//! persistent pipeline cache they are compiled through.

use super::Gpu;
use super::dispatch::{ATEX_BINDING, IN_BASE, LayoutKey, OUT_BASE, layout_key};
use super::matmul::MatmulShape;
use super::wgsl::{ModuleKey, module_source};
use crate::backend::Kernel;
use crate::error::Result;

/// Where pipeline caches live: `SHADEPROP_PIPELINE_CACHE` (a folder; `off` disables; empty
/// is unset), else `$XDG_CACHE_HOME/shadeprop`, else `$HOME/.cache/shadeprop`.
pub(super) fn cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    match std::env::var_os("SHADEPROP_PIPELINE_CACHE").filter(|v| !v.is_empty()) {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => {
            let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
            set("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("shadeprop"))
        }
    }
}

/// The largest pipeline cache file read back.
const PIPELINE_CACHE_MAX_BYTES: u64 = 256 << 20;

impl Gpu {
    /// Open (or start) the adapter's persistent pipeline cache, where wgpu offers one.
    /// Unreadable or stale data falls back to an empty cache (wgpu's `fallback`).
    pub(super) fn open_pipeline_cache(&mut self) {
        let (Some(key), Some(dir)) = (self.ctx.cache_key.clone(), cache_dir()) else {
            return;
        };
        let path = dir.join(key);
        // A pipeline cache is a few MiB; anything larger, or not a regular file, is ignored.
        let data = crate::fs::read_regular_at_most(&path, PIPELINE_CACHE_MAX_BYTES);
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
    pub(super) fn save_pipeline_cache(&mut self) {
        if !self.cache_dirty {
            return;
        }
        self.cache_dirty = false;
        if let Some((cache, path)) = &self.cache
            && let Some(data) = cache.get_data()
        {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
                let _ = crate::fs::remove_stale_temporaries(dir);
            }
            let _ = crate::fs::write_atomic(path, &data);
        }
    }

    /// The pipeline layout for `key` and its bind group layout, each made once.
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
                entries.push(texture(ATEX_BINDING, sample_type));
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
    pub(super) fn pipeline(&mut self, kernel: Kernel, shape: MatmulShape) -> Result<usize> {
        if let Some(&i) = self.pipeline_index.get(&(kernel, shape)) {
            return Ok(i);
        }
        let def = kernel.def();
        let key = ModuleKey::for_kernel(&def, &self.ctx.report, shape);
        if !self.modules.contains_key(&key) {
            let src = module_source(key)?;
            let m = self.ctx.checked(|d| {
                d.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(def.entry),
                    source: wgpu::ShaderSource::Wgsl(src.into()),
                })
            })?;
            self.modules.insert(key, m);
        }
        let mut consts = kernel.constants();
        if shape.tile.is_some() {
            consts.push(("B4", if shape.b4 { 1.0 } else { 0.0 }));
        } else if shape.lanes > 0 {
            consts.push(("CWL", shape.lanes as f64));
            consts.push(("WG", shape.workgroup as f64));
            consts.push(("FULL", if shape.full { 1.0 } else { 0.0 }));
            consts.push(("B4", if shape.b4 { 1.0 } else { 0.0 }));
            consts.push(("TB4", if shape.tb4 { 1.0 } else { 0.0 }));
        }
        let layout = self.layout(layout_key(kernel, &shape)).clone();
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
}
