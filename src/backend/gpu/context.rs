//! Adapter selection, device creation and error capture.

use std::fmt;
use std::sync::{Arc, Mutex};

use super::matmul::MatmulVariant;
use super::tune::MatmulSelect;
use crate::error::{Error, Result};

/// How to open the GPU.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Use the subgroup matmul when the adapter has fixed-size subgroups (pinning the
    /// portable variant turns this off).
    pub subgroups: bool,
    /// Let the subgroup matmul read A and B from textures (shaders/texture.wgsl): `None`
    /// decides by adapter (on for llvmpipe, where it measured faster; off elsewhere,
    /// unmeasured).
    pub textures: Option<bool>,
    /// How each product's matmul variant is chosen (timed on hardware GPUs by default).
    pub matmul: MatmulSelect,
}

impl GpuOptions {
    /// Defaults, with `SHADEPROP_MATMUL` choosing the matmul variants (`auto`, `tune`,
    /// `default`, or a variant to pin: `portable`, `subgroup`, `tiled-64x64-4x4`, ...; see
    /// [`MatmulSelect`]) and `SHADEPROP_MATMUL_TEXTURE=0` or `1` turning texture operands
    /// off or on.
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] when `SHADEPROP_MATMUL` names no choice (empty is unset).
    pub fn from_env() -> Result<Self> {
        let matmul = match std::env::var("SHADEPROP_MATMUL") {
            Ok(v) if v.is_empty() => MatmulSelect::Auto,
            Ok(v) => v.parse()?,
            Err(std::env::VarError::NotPresent) => MatmulSelect::Auto,
            Err(std::env::VarError::NotUnicode(v)) => {
                return Err(Error::Hyperparameter {
                    name: "SHADEPROP_MATMUL",
                    value: crate::error::shown(&v.to_string_lossy()),
                    expected: "UTF-8 text naming a choice (auto, tune, default, or a variant)",
                });
            }
        };
        Ok(GpuOptions {
            subgroups: matmul != MatmulSelect::Pin(MatmulVariant::Portable),
            textures: Self::textures_from_env(),
            matmul,
        })
    }

    /// `SHADEPROP_MATMUL_TEXTURE`: `0` or `1` turn texture operands off or on; anything
    /// else leaves the adapter's default.
    pub fn textures_from_env() -> Option<bool> {
        match std::env::var("SHADEPROP_MATMUL_TEXTURE").as_deref() {
            Ok("0") => Some(false),
            Ok("1") => Some(true),
            _ => None,
        }
    }

    /// The defaults with the matmul variant chosen by `matmul`.
    pub fn with_matmul(matmul: MatmulSelect) -> Self {
        GpuOptions {
            subgroups: matmul != MatmulSelect::Pin(MatmulVariant::Portable),
            matmul,
            ..GpuOptions::default()
        }
    }
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            subgroups: true,
            textures: None,
            matmul: MatmulSelect::Auto,
        }
    }
}

/// What was opened, printed at start.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// The subgroup size the matmul kernel was specialized for, or None (portable kernel).
    pub subgroup_size: Option<u32>,
    /// Whether the subgroup matmul packs several row blocks into a workgroup for narrow
    /// outputs (verified against the CPU at start-up; `SHADEPROP_MATMUL_NARROW=0` disables).
    pub narrow_matmul: bool,
    /// Whether the subgroup matmul reads A and B from textures where the shape allows
    /// (shaders/texture.wgsl).
    pub texture_operands: bool,
    /// How matmul variants are chosen: `timed per shape class`, `default kernel`, or
    /// `pinned <variant>`.
    pub matmul_select: String,
}

impl fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {}), ",
            self.name, self.backend, self.device_type, self.driver
        )?;
        // A pinned tile shape runs every product: the default kernel is not used.
        if self.matmul_select.starts_with("pinned tiled") {
            return write!(f, "matmul: {}", self.matmul_select);
        }
        write!(
            f,
            "matmul: {}",
            match self.subgroup_size {
                Some(s) => format!(
                    "subgroup-broadcast (subgroup size {s}{}{})",
                    if self.narrow_matmul {
                        ", narrow-output tiles"
                    } else {
                        ""
                    },
                    if self.texture_operands {
                        ", operands from textures"
                    } else {
                        ""
                    }
                ),
                None => "portable 4x4 register blocks".into(),
            }
        )?;
        write!(f, "; variants: {}", self.matmul_select)
    }
}

/// Whether `info` is a hardware GPU (not a CPU rasterizer such as llvmpipe).
pub fn hardware(info: &wgpu::AdapterInfo) -> bool {
    matches!(
        info.device_type,
        wgpu::DeviceType::DiscreteGpu
            | wgpu::DeviceType::IntegratedGpu
            | wgpu::DeviceType::VirtualGpu
    ) && !info.name.contains("llvmpipe")
}

const INSTALL_HINT: &str = "no Vulkan/Metal/DX12/GL adapter was found. On Debian/Ubuntu \
    without a GPU install Mesa's software Vulkan driver: `apt-get install -y \
    mesa-vulkan-drivers` (lavapipe), or use the CPU backend";

pub(crate) struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub report: AdapterReport,
    /// File name for this adapter's pipeline cache, where the adapter supports one.
    pub cache_key: Option<String>,
    /// Whether the adapter is a hardware GPU ([`hardware`]).
    pub hardware: bool,
    error: Arc<Mutex<Option<String>>>,
}

impl Context {
    /// Open the adapter and device `opts` ask for.
    ///
    /// # Errors
    /// [`crate::Error::Gpu`] when no adapter or device can be opened.
    pub fn new(opts: GpuOptions) -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let adapter = match std::env::var("WGPU_ADAPTER_NAME") {
            Ok(want) => {
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&want.to_lowercase()))
                    .ok_or_else(|| {
                        Error::NoAdapter(format!(
                            "WGPU_ADAPTER_NAME={want:?} matches none of the adapters found: {names:?}"
                        ))
                    })?
            }
            Err(_) => pollster::block_on(
                instance.request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::from_env()
                        .unwrap_or(wgpu::PowerPreference::HighPerformance),
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                }),
            )
            .map_err(|e| Error::NoAdapter(format!("{INSTALL_HINT} ({e})")))?,
        };
        let info = adapter.get_info();
        let features = adapter.features();
        let sg = features.contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == info.subgroup_max_size
            && [4, 8, 16, 32, 64].contains(&info.subgroup_min_size);
        let use_sg =
            opts.subgroups && sg && opts.matmul != MatmulSelect::Pin(MatmulVariant::Portable);
        let mut required_features = if use_sg {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        // A pipeline cache (Vulkan) persists compiled pipelines between runs.
        let cache_key = if features.contains(wgpu::Features::PIPELINE_CACHE) {
            required_features |= wgpu::Features::PIPELINE_CACHE;
            wgpu::util::pipeline_cache_key(&info)
        } else {
            None
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("shadeprop"),
            required_features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::NoAdapter(format!("adapter {} refused a device: {e}", info.name)))?;
        let error = Arc::new(Mutex::new(None));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let lost = error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = lost.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("device lost ({reason:?}): {msg}"));
        });
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info),
            subgroup_size: use_sg.then_some(info.subgroup_min_size),
            narrow_matmul: false,
            texture_operands: use_sg && opts.textures.unwrap_or(info.name.contains("llvmpipe")),
            matmul_select: opts.matmul.describe(hardware(&info)),
        };
        Ok(Context {
            device,
            queue,
            limits,
            report,
            cache_key,
            hardware: hardware(&info),
            error,
        })
    }

    /// Run a resource-creating call inside a validation error scope.
    pub fn checked<T>(&self, f: impl FnOnce(&wgpu::Device) -> T) -> Result<T> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let v = f(&self.device);
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(Error::Gpu(e.to_string())),
            None => Ok(v),
        }
    }

    /// The first error reported asynchronously (validation, out of memory, device lost).
    pub fn take_error(&self) -> Result<()> {
        match self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// Block until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")))
    }
}
