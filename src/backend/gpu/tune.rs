//! Which matmul variant runs each product: pinned by the caller, the adapter's default
//! kernel, or, on hardware GPUs, the fastest candidate timed on first use of the product's
//! shape class and remembered beside the pipeline cache.
//!
//! Reproducibility: every variant sums each element's products in k order with the same
//! fma operations (shaders/matmul_tiled.wgsl), and the split into K slices is decided
//! before the variant (from the default kernel's grid), so the choice cannot change a bit.
//! The tuner checks that on the adapter as well: a candidate whose result differs in any
//! bit from the default kernel's is never chosen.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::Gpu;
use super::buffers::SCRATCH_BASE;
use super::dispatch;
use super::matmul::{MatmulShape, MatmulVariant, TILES, Tile, vec4_b};
use crate::backend::{BufferSpec, Instr, Kernel, Slice};
use crate::error::{Error, Result};
use crate::kernels::KernelParams;
use crate::kernels::matmul::MatMulParams;

/// How the GPU backend picks the matmul variant of each product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulSelect {
    /// On hardware GPUs, time the candidates (the adapter's default kernel and every tile
    /// shape that fits its limits) on first use of a shape class and keep the fastest,
    /// remembered per adapter and driver; elsewhere (llvmpipe, which the default kernels
    /// were shaped for) the default kernel.
    #[default]
    Auto,
    /// Time the candidates on any adapter, llvmpipe included.
    Tune,
    /// The adapter's default kernel (subgroup where it has fixed-size subgroups, else
    /// portable), never timed.
    Default,
    /// This variant for every product.
    Pin(MatmulVariant),
}

impl MatmulSelect {
    /// Whether this selection times candidates on an adapter that is (or is not) a hardware
    /// GPU: `tune` always, `auto` on hardware only.
    pub fn times(self, hardware: bool) -> bool {
        self == MatmulSelect::Tune || (self == MatmulSelect::Auto && hardware)
    }

    /// How it reads in an adapter report on such an adapter.
    pub(super) fn describe(self, hardware: bool) -> String {
        match self {
            MatmulSelect::Pin(v) => format!("pinned {v}"),
            s if s.times(hardware) => "timed per shape class".into(),
            _ => "default kernel".into(),
        }
    }
}

impl std::str::FromStr for MatmulSelect {
    type Err = Error;

    /// `auto`, `tune`, `default`, or a variant name ([`MatmulVariant`]'s).
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] naming the value and what is accepted.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(MatmulSelect::Auto),
            "tune" => Ok(MatmulSelect::Tune),
            "default" => Ok(MatmulSelect::Default),
            v => v
                .parse()
                .map(MatmulSelect::Pin)
                .map_err(|_| Error::Hyperparameter {
                    name: "SHADEPROP_MATMUL",
                    value: crate::error::shown(v),
                    expected: "auto, tune, default, portable, subgroup, tiled-32x32-4x4, \
                               tiled-64x64-4x4, tiled-128x64-8x4 or tiled-128x128-8x8",
                }),
        }
    }
}

/// Noted in a choice's report when some product of its class ran the default kernel.
const PAST_LIMIT: &str = "; the default kernel for its products past llvmpipe's loop limit";

/// Products whose operands and result together exceed this are not timed (the default
/// kernel runs them): the tuner allocates its own copies.
const TUNE_MAX_BYTES: u64 = 1 << 30;
/// Seconds of running candidates for one shape class, at most (the candidate under way
/// finishes; compiling them is not counted), unless `SHADEPROP_TUNE_BUDGET_S` says
/// otherwise ([`tune_budget_s`]).
const TUNE_BUDGET_S: f64 = 1.0;

/// The tuner's budget per shape class: `SHADEPROP_TUNE_BUDGET_S` (seconds, finite and > 0)
/// or [`TUNE_BUDGET_S`]. A class whose candidates were not all timed within it is not
/// remembered (drivers that compile at the first dispatch, as lavapipe does with a cold
/// shader cache, can spend it on compiling).
///
/// # Errors
/// [`Error::Hyperparameter`] naming a value that is not a positive finite number.
fn tune_budget_s() -> Result<f64> {
    match std::env::var("SHADEPROP_TUNE_BUDGET_S") {
        Err(_) => Ok(TUNE_BUDGET_S),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
            _ => Err(Error::Hyperparameter {
                name: "SHADEPROP_TUNE_BUDGET_S",
                value: v,
                expected: "seconds, a finite number > 0",
            }),
        },
    }
}
/// Each candidate's timed submission lasts about this long (a few dispatches).
const TUNE_SUBMIT_S: f64 = 0.002;

/// The shape class of a product: precision, transposes, and M, N and the depth each
/// rounded up to a power of two.
pub fn shape_class(mm: &MatMulParams) -> String {
    let b = |x: usize| x.max(1).next_power_of_two();
    let depth = if mm.split_k > 0 { mm.split_k } else { mm.k };
    format!(
        "{} {}{} m{} n{} k{}",
        if mm.half { "f16" } else { "f32" },
        if mm.ta { "T" } else { "N" },
        if mm.tb { "T" } else { "N" },
        b(mm.m),
        b(mm.n),
        b(depth)
    )
}

/// A choice made for one shape class, for reports.
#[derive(Clone, Debug)]
pub struct MatmulChoice {
    /// [`shape_class`].
    pub class: String,
    /// The variant that runs it.
    pub variant: MatmulVariant,
    /// How it was chosen: `pinned`, `default`, `remembered`, or `timed` with each
    /// candidate's milliseconds.
    pub how: String,
}

impl std::fmt::Display for MatmulChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.class, self.variant, self.how)
    }
}

/// The tuner's state: how variants are selected, the remembered choices and the file they
/// persist to, and the choices made for the programs loaded so far.
pub(super) struct Tuning {
    pub(super) select: MatmulSelect,
    /// Whether `Auto` times candidates on this adapter (a hardware GPU).
    pub(super) timed: bool,
    file: Option<PathBuf>,
    remembered: BTreeMap<String, String>,
    /// Why an existing file was not used, for reports.
    ignored: Option<String>,
    dirty: bool,
    pub(super) chosen: BTreeMap<String, MatmulChoice>,
}

/// The largest remembered-choices file read (one is a few hundred bytes per shape class).
const TUNING_FILE_MAX_BYTES: u64 = 1 << 20;

/// The remembered choices' file format.
#[derive(serde::Serialize, serde::Deserialize)]
struct TuningFile {
    adapter: String,
    driver: String,
    choices: BTreeMap<String, String>,
}

impl Tuning {
    /// The tuner for an adapter: `file` holds what earlier runs chose on this adapter and
    /// driver (read if it exists and names the same ones; anything unreadable is ignored).
    pub(super) fn new(
        select: MatmulSelect,
        timed: bool,
        file: Option<PathBuf>,
        adapter: &str,
        driver: &str,
    ) -> Self {
        let exists = file
            .as_ref()
            .is_some_and(|f| std::fs::symlink_metadata(f).is_ok());
        let read = file
            .as_ref()
            .and_then(|f| crate::fs::read_regular_at_most(f, TUNING_FILE_MAX_BYTES))
            .and_then(|d| serde_json::from_slice::<TuningFile>(&d).ok());
        let (remembered, ignored) = match read {
            Some(t) if t.adapter == adapter && t.driver == driver => (t.choices, None),
            Some(t) => (
                BTreeMap::new(),
                Some(format!(
                    "made on adapter {:?} with driver {:?}, ignored",
                    t.adapter, t.driver
                )),
            ),
            None if exists => (
                BTreeMap::new(),
                Some("not a readable choices file (or over 1 MiB), ignored".into()),
            ),
            None => (BTreeMap::new(), None),
        };
        Tuning {
            select,
            timed,
            file,
            remembered,
            ignored,
            dirty: false,
            chosen: BTreeMap::new(),
        }
    }
}

impl Gpu {
    /// The variant the adapter runs without tuning.
    pub(super) fn default_variant(&self) -> MatmulVariant {
        if self.ctx.report.subgroup_size.is_some() {
            MatmulVariant::Subgroup
        } else {
            MatmulVariant::Portable
        }
    }

    /// Whether this adapter can run `t` (workgroup size, invocations and memory limits).
    pub(super) fn tile_fits(&self, t: &Tile) -> bool {
        let l = &self.ctx.limits;
        t.bn / t.tn <= l.max_compute_workgroup_size_x
            && t.bm / t.tm <= l.max_compute_workgroup_size_y
            && t.invocations() <= l.max_compute_invocations_per_workgroup
            && t.workgroup_bytes() <= l.max_compute_workgroup_storage_size
    }

    /// Check that the adapter can run a pinned `variant`.
    ///
    /// # Errors
    /// [`Error::Gpu`] naming the variant and what the adapter lacks.
    pub(super) fn check_pinned(&self, variant: MatmulVariant) -> Result<()> {
        match variant {
            MatmulVariant::Subgroup if self.ctx.report.subgroup_size.is_none() => {
                Err(Error::Gpu(format!(
                    "matmul variant subgroup needs fixed-size subgroups of 4 to 64 lanes; adapter {} has none",
                    self.ctx.report.name
                )))
            }
            MatmulVariant::Tiled(t) if !self.tile_fits(&t) => Err(Error::Gpu(format!(
                "matmul variant {variant} needs {} invocations and {} bytes of workgroup memory per workgroup; adapter {} allows {} and {}",
                t.invocations(),
                t.workgroup_bytes(),
                self.ctx.report.name,
                self.ctx.limits.max_compute_invocations_per_workgroup,
                self.ctx.limits.max_compute_workgroup_storage_size
            ))),
            _ => Ok(()),
        }
    }

    /// The shape a matmul instruction runs with in `variant`.
    pub(super) fn shape_for(&self, instr: &Instr, variant: MatmulVariant) -> MatmulShape {
        match (instr.kernel, variant) {
            (Kernel::MatMul { .. }, MatmulVariant::Tiled(t)) => MatmulShape {
                tile: Some(t),
                b4: vec4_b(instr.kernel, MatMulParams::from_words(&instr.p).n as u32),
                ..MatmulShape::default()
            },
            _ => self.matmul_shape(instr.kernel, &instr.p),
        }
    }

    /// The shape `instr` runs with: for a matmul, its variant's, chosen as
    /// [`MatmulSelect`] says (and recorded for [`Gpu::matmul_choices`]).
    pub(super) fn choose_shape(&mut self, instr: &Instr) -> Result<MatmulShape> {
        let Kernel::MatMul { .. } = instr.kernel else {
            return Ok(self.matmul_shape(instr.kernel, &instr.p));
        };
        let class = shape_class(&MatMulParams::from_words(&instr.p));
        let variant = match self.tuning.select {
            MatmulSelect::Pin(v) => self.record(&class, v, "pinned".into()),
            MatmulSelect::Default => self.record(&class, self.default_variant(), "default".into()),
            MatmulSelect::Auto if !self.tuning.timed => {
                self.record(&class, self.default_variant(), "default".into())
            }
            MatmulSelect::Auto | MatmulSelect::Tune => match self.tuning.chosen.get(&class) {
                Some(c) => c.variant,
                None => {
                    let remembered = (self.tuning.remembered.get(&class))
                        .and_then(|v| v.parse::<MatmulVariant>().ok())
                        .filter(|v| self.check_pinned(*v).is_ok())
                        .filter(|v| *v != MatmulVariant::Portable || self.default_variant() == *v);
                    match remembered {
                        Some(v) => self.record(&class, v, "remembered".into()),
                        None => {
                            let (v, how, complete) = self.time_candidates(instr)?;
                            // A class whose candidates were not all timed is timed again
                            // by the next process rather than remembered.
                            if complete {
                                self.tuning.remembered.insert(class.clone(), v.to_string());
                                self.tuning.dirty = true;
                            }
                            self.record(&class, v, how)
                        }
                    }
                }
            },
        };
        // A class spans depths up to twice its smallest: a variant chosen (or remembered)
        // for a shallower product of the class may pass llvmpipe's loop limit on this one.
        // (The default kernel past the limit is refused when the program loads.)
        if variant != self.default_variant()
            && let Some(trips) = self.past_loop_limit(instr, variant)
        {
            if let MatmulSelect::Pin(v) = self.tuning.select {
                let mm = MatMulParams::from_words(&instr.p);
                return Err(Error::Gpu(format!(
                    "the pinned matmul variant {v} would run {trips} loop iterations per \
                     invocation on the {}x{}x{} product (M x N x K); llvmpipe (lavapipe) stops \
                     at {} and would return a wrong result: pin another variant, or `default`",
                    mm.m,
                    mm.n,
                    mm.k,
                    dispatch::LLVMPIPE_LOOP_LIMIT
                )));
            }
            let default = self.default_variant();
            if let Some(c) = self.tuning.chosen.get_mut(&class)
                && !c.how.contains(PAST_LIMIT)
            {
                c.how.push_str(PAST_LIMIT);
            }
            return Ok(self.shape_for(instr, default));
        }
        Ok(self.shape_for(instr, variant))
    }

    /// The loop iterations per invocation of `instr` in `variant` if they pass llvmpipe's
    /// limit on llvmpipe (see `dispatch::LLVMPIPE_LOOP_LIMIT`).
    fn past_loop_limit(&self, instr: &Instr, variant: MatmulVariant) -> Option<u64> {
        let trips = dispatch::loop_trips(instr, &self.shape_for(instr, variant), &self.ctx.report);
        (self.ctx.report.name.contains("llvmpipe") && trips > dispatch::LLVMPIPE_LOOP_LIMIT)
            .then_some(trips)
    }

    fn record(&mut self, class: &str, variant: MatmulVariant, how: String) -> MatmulVariant {
        self.tuning
            .chosen
            .entry(class.to_string())
            .or_insert_with(|| MatmulChoice {
                class: class.to_string(),
                variant,
                how,
            })
            .variant
    }

    /// Time each candidate on `instr`'s shape (its own copies of the operands, filled with
    /// uniform values in [-0.5, 0.5)), the default kernel first; the fastest of those whose
    /// result equals the default's bit for bit, how it was chosen, and whether every
    /// candidate was timed (not cut short by the budget or the size).
    fn time_candidates(&mut self, instr: &Instr) -> Result<(MatmulVariant, String, bool)> {
        let default = self.default_variant();
        let mm = MatMulParams::from_words(&instr.p);
        let lens = [instr.ins[0].len, instr.ins[1].len, mm.n, instr.outs[0].len];
        let bytes: u64 = lens.iter().map(|&l| 4 * l as u64).sum();
        if bytes > TUNE_MAX_BYTES {
            return Ok((
                default,
                format!("default: {bytes} bytes is too large to time"),
                false,
            ));
        }
        let base = self.scratch.len();
        let result = self.time_on_scratch(instr, lens, default);
        self.scratch.truncate(base);
        let _ = self.ctx.take_error();
        result
    }

    fn time_on_scratch(
        &mut self,
        instr: &Instr,
        lens: [usize; 4],
        default: MatmulVariant,
    ) -> Result<(MatmulVariant, String, bool)> {
        let base = self.scratch.len();
        let rng = crate::rng::Rng::new(0x7u64);
        let mut slices = vec![];
        for (j, &len) in lens.iter().enumerate() {
            let spec = BufferSpec {
                name: format!("matmul tuning operand {j}"),
                len,
            };
            let buf = self.make_buffer(&spec)?;
            // Operands as the kernel reads them: f32 values, or words of packed f16 for A
            // and B of the half matmul (`len` words: twice as many values).
            let half = j < 2 && matches!(instr.kernel, Kernel::MatMul { half: true, .. });
            let n = if half { 2 * len } else { len };
            let values: Vec<f32> = (0..n)
                .map(|i| rng.uniform(j as u32, 0, i as u32) - 0.5)
                .collect();
            let data = if half {
                let mut w = vec![0.0; len];
                crate::backend::cpu::half::pack_into(&values, &mut w);
                w
            } else {
                values
            };
            if j < 3 {
                self.ctx
                    .queue
                    .write_buffer(&buf, 0, bytemuck::cast_slice(&data));
            }
            self.scratch.push((buf, spec));
            slices.push(Slice {
                buf: SCRATCH_BASE + base + j,
                off: 0,
                len,
            });
        }
        let probe = Instr {
            kernel: instr.kernel,
            p: instr.p,
            ins: slices[..3].to_vec(),
            outs: vec![slices[3]],
        };
        let params = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("matmul tuning params"),
            size: 256,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.ctx
            .queue
            .write_buffer(&params, 0, bytemuck::cast_slice(&probe.p));
        let mut candidates = vec![default];
        candidates.extend(
            TILES
                .iter()
                .filter(|t| self.tile_fits(t))
                .map(|&t| MatmulVariant::Tiled(t)),
        );
        // Seconds spent running candidates (compiling them is not counted: it is bounded
        // by the number of candidates, and cached).
        let mut spent = 0.0;
        let mut want: Option<Vec<u32>> = None;
        let mut timed: Vec<(MatmulVariant, f64)> = vec![];
        let mut notes: Vec<String> = vec![];
        let mut complete = true;
        let budget = tune_budget_s()?;
        for v in candidates {
            if spent > budget && !timed.is_empty() {
                notes.push(format!("{v} not timed (budget spent)"));
                complete = false;
                continue;
            }
            let shape = self.shape_for(&probe, v);
            if self.past_loop_limit(&probe, v).is_some() {
                notes.push(format!("{v} skipped (llvmpipe's loop limit)"));
                continue;
            }
            let pipeline = self.pipeline(probe.kernel, shape)?;
            let bind_group = self.bind_groups(&probe, &shape, &[], &params, 0)?.remove(0);
            let groups = dispatch::workgroups(&probe, &shape, &self.ctx.report);
            let run = |g: &Gpu, reps: usize| -> Result<f64> {
                let t0 = Instant::now();
                let mut enc = g.ctx.device.create_command_encoder(&Default::default());
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&g.pipelines[pipeline]);
                    pass.set_bind_group(0, &bind_group, &[]);
                    for _ in 0..reps {
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    }
                }
                g.ctx.queue.submit([enc.finish()]);
                g.ctx.wait()?;
                g.ctx.take_error()?;
                Ok(t0.elapsed().as_secs_f64())
            };
            let once = run(self, 1)?;
            spent += once;
            let got: Vec<u32> = self
                .read_blocking(slices[3].buf, 0, lens[3])?
                .iter()
                .map(|x| x.to_bits())
                .collect();
            match &want {
                None => want = Some(got),
                Some(w) if *w != got => {
                    let at = w.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(0);
                    notes.push(format!(
                        "{v} excluded: element {at} differs from {default}'s bits"
                    ));
                    continue;
                }
                Some(_) => {}
            }
            let reps = ((TUNE_SUBMIT_S / once.max(1e-7)).ceil() as usize).clamp(1, 64);
            let mut ts = vec![];
            for _ in 0..3 {
                let t = run(self, reps)?;
                spent += t;
                ts.push(t / reps as f64);
            }
            ts.sort_by(f64::total_cmp);
            timed.push((v, ts[1]));
        }
        let best = timed
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(default, |b| b.0);
        let mut how: Vec<String> = timed
            .iter()
            .map(|(v, t)| format!("{v} {:.3} ms", t * 1e3))
            .collect();
        how.extend(notes);
        if !complete {
            how.push("not remembered: timed again next run".into());
        }
        Ok((best, format!("timed: {}", how.join(", ")), complete))
    }

    /// Write the remembered choices if new ones were made (atomically; a failure only
    /// costs timing them again next run, so it is not an error).
    pub(super) fn save_tuning(&mut self) {
        if !self.tuning.dirty {
            return;
        }
        self.tuning.dirty = false;
        let Some(path) = &self.tuning.file else {
            return;
        };
        let file = TuningFile {
            adapter: self.ctx.report.name.clone(),
            driver: self.ctx.report.driver.clone(),
            choices: self.tuning.remembered.clone(),
        };
        if let Ok(data) = serde_json::to_vec_pretty(&file) {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
                let _ = crate::fs::remove_stale_temporaries(dir);
            }
            let _ = crate::fs::write_atomic(path, &data);
        }
    }

    /// The matmul variant chosen for each shape class of the programs loaded so far, and
    /// how (pinned, default, remembered from an earlier run, or timed, with each
    /// candidate's milliseconds).
    pub fn matmul_choices(&self) -> Vec<MatmulChoice> {
        self.tuning.chosen.values().cloned().collect()
    }

    /// Why the remembered-choices file that exists was not used (unreadable, too large, or
    /// made on another adapter or driver); `None` when it was read or there is none.
    pub fn remembered_file_ignored(&self) -> Option<&str> {
        self.tuning.ignored.as_deref()
    }

    /// The choices remembered for this adapter and driver (shape class, variant), and the
    /// file they live in.
    pub fn remembered_matmul_choices(&self) -> (Option<PathBuf>, Vec<(String, String)>) {
        (
            self.tuning.file.clone(),
            self.tuning
                .remembered
                .iter()
                .map(|(c, v)| (c.clone(), v.clone()))
                .collect(),
        )
    }
}

/// The file that remembers the tuner's choices for an adapter: in the pipeline cache's
/// folder, named after the adapter's pipeline-cache key or, without one, its name and
/// driver (letters, digits, '-' and '_' kept).
pub(super) fn tuning_file(
    dir: Option<PathBuf>,
    cache_key: Option<&str>,
    name: &str,
    driver: &str,
) -> Option<PathBuf> {
    let key = match cache_key {
        Some(k) => k.to_string(),
        None => format!("{name}-{driver}"),
    };
    let key: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.map(|d| d.join(format!("matmul-variants-{key}.json")))
}
