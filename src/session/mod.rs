//! A model compiled for a backend: parameters on the device, programs built once per
//! (mode, batch size), a training step = upload one batch + replay one program (one
//! submission on the GPU). Loss, accuracy and the gradient norm accumulate on the device
//! and are read back only by [`Session::take_metrics`].
//!
//! This file holds compilation and the steps (train, evaluate, gradients); the device
//! state and snapshots are in `state.rs`, the metrics in `metrics.rs`, inference in
//! `predict.rs` and activation/gradient statistics in `probe.rs`.

use std::collections::HashMap;

use crate::backend::{Backend, Globals, ProgramId};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::kernels::loss::Loss;
use crate::optim::{Every, LrSchedule, Optimizer, Precision, Regularizer, Warmup};
use crate::plan::{self, Layout, Mode, buf};

mod metrics;
mod predict;
mod probe;
mod state;

pub use metrics::Metrics;
pub use predict::{McPrediction, classes_from, link};
pub use probe::{ProbeReport, TensorStat};
pub use state::Snapshot;
pub(crate) use state::check_finite_tensor;

/// Tensors keyed by name, in model order.
pub type Named = Vec<(String, Vec<f32>)>;

/// A compiled model on a backend.
pub struct Session {
    backend: Box<dyn Backend>,
    graph: Graph,
    layout: Layout,
    opt: Optimizer,
    regularizer: Option<Regularizer>,
    schedule: LrSchedule,
    warmup: Option<Warmup>,
    /// Current epoch (for per-epoch schedules); set by [`Session::set_epoch`].
    epoch: u64,
    seed: u64,
    /// Training steps taken (keys dropout masks).
    step: u64,
    programs: HashMap<(Mode, usize), (ProgramId, Option<crate::backend::Slice>)>,
    /// Instructions (kernel dispatches) of each loaded program.
    dispatches: HashMap<(Mode, usize), usize>,
    /// Rows of the last uploaded batch (to locate a non-finite value).
    last_batch: usize,
    /// Some parameter has a nonzero penalty coefficient ([`Globals::PENALTY`]).
    penalty: bool,
    /// The metrics read started by [`Session::start_metrics`]: its mode and step count.
    pending_metrics: Option<(Mode, u64)>,
    /// Skipped training steps (non-finite gradient) as of the last metrics read: a read
    /// that finds more names the non-finite step (f32), and the host's view of the
    /// schedule position ([`Session::current_lr`]) counts applied updates only.
    skipped_known: u64,
    /// Of those, the skips that were not f16 overflows absorbed by the loss scale, as of
    /// the last read: more at a read is a [`Error::NonFinite`].
    nonfinite_known: u64,
    /// The label rows of the last upload (reused: no allocation per step).
    label_rows: Vec<f32>,
    /// The input columns embeddings read as token ids, with their vocabularies
    /// ([`Graph::token_columns`]): every batch is checked against them.
    token_columns: Vec<(std::ops::Range<usize>, usize)>,
}

/// Named settings for a [`Session`], from [`Session::builder`]: the graph is required,
/// everything else has a default.
///
/// | setting | default |
/// |---|---|
/// | [`backend`](SessionBuilder::backend) | [`crate::backend::open`]`("auto")`: a hardware GPU, else the fast CPU backend |
/// | [`optimizer`](SessionBuilder::optimizer) | [`crate::optim::Adam::default`] (lr 0.001, Keras' and PyTorch's defaults) |
/// | [`seed`](SessionBuilder::seed) | 0: keys initialization, dropout and (unless [`crate::train::fit::FitConfig::seed`] overrides it) the shuffling |
/// | [`max_batch`](SessionBuilder::max_batch) | 128, the default batch of [`crate::train::EpochConfig`] |
/// | [`precision`](SessionBuilder::precision) | [`Precision::F32`] |
/// | [`regularizer`](SessionBuilder::regularizer) | none |
/// | [`schedule`](SessionBuilder::schedule) | [`LrSchedule::Constant`] |
/// | [`warmup`](SessionBuilder::warmup) | none |
///
/// ```
/// # fn main() -> shadeprop::Result<()> {
/// use shadeprop::nn::Sequential;
/// use shadeprop::optim::{Sgd, Warmup};
/// use shadeprop::session::Session;
///
/// let graph = Sequential::new(4).linear(8).relu().linear(3).build()?;
/// let s = Session::builder(graph)
///     .backend(shadeprop::backend::open("cpu")?.0)
///     .optimizer(Sgd { lr: 0.1, ..Default::default() })
///     .seed(7)
///     .max_batch(32)
///     .warmup(Warmup::new(100, 0.1))
///     .build()?;
/// assert_eq!(s.seed(), 7);
/// # Ok(())
/// # }
/// ```
pub struct SessionBuilder {
    graph: Graph,
    backend: Option<Box<dyn Backend>>,
    opt: Optimizer,
    seed: u64,
    max_batch: usize,
    precision: Precision,
    regularizer: Option<Regularizer>,
    schedule: LrSchedule,
    warmup: Option<Warmup>,
}

impl SessionBuilder {
    /// The backend to run on (default: [`crate::backend::open`]`("auto")`).
    pub fn backend(mut self, backend: Box<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The optimizer (default: Adam with PyTorch's defaults).
    pub fn optimizer(mut self, opt: impl Into<Optimizer>) -> Self {
        self.opt = opt.into();
        self
    }

    /// The run's seed: parameter initialization, dropout masks and, by default, the
    /// shuffling of [`crate::train::fit::Trainer`] (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The largest batch the session will be given, in samples (default 128).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }

    /// f32 or mixed precision (default f32).
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The default norm penalty ([`Session::set_regularizer`]; default none).
    pub fn regularizer(mut self, r: Regularizer) -> Self {
        self.regularizer = Some(r);
        self
    }

    /// The learning-rate schedule ([`Session::set_schedule`]; default constant).
    pub fn schedule(mut self, s: LrSchedule) -> Self {
        self.schedule = s;
        self
    }

    /// A linear warm-up in front of the schedule ([`Session::set_warmup`]; default none).
    pub fn warmup(mut self, w: Warmup) -> Self {
        self.warmup = Some(w);
        self
    }

    /// Compile the session.
    ///
    /// # Errors
    /// Those of [`crate::backend::open`] when no backend was given, of
    /// [`Session::with_precision`], and [`Error::Hyperparameter`] for a regularizer,
    /// schedule or warm-up out of range.
    pub fn build(self) -> Result<Session> {
        let backend = match self.backend {
            Some(b) => b,
            None => crate::backend::open("auto")?.0,
        };
        let mut s = Session::with_precision(
            backend,
            self.graph,
            self.opt,
            self.seed,
            self.max_batch,
            self.precision,
        )?;
        s.set_regularizer(self.regularizer)?;
        s.set_schedule(self.schedule)?;
        s.set_warmup(self.warmup)?;
        Ok(s)
    }
}

impl Session {
    /// Named settings with defaults, for [`SessionBuilder::build`]: the alternative to the
    /// positional [`Session::new`].
    pub fn builder(graph: Graph) -> SessionBuilder {
        SessionBuilder {
            graph,
            backend: None,
            opt: crate::optim::Adam::default().into(),
            seed: 0,
            max_batch: 128,
            precision: Precision::F32,
            regularizer: None,
            schedule: LrSchedule::Constant,
            warmup: None,
        }
    }

    /// Compile `graph` for `backend` with batches of at most `max_batch` samples, and
    /// initialize parameters from `seed` (the same values on every backend). A forward
    /// graph (from [`crate::graph::GraphBuilder`]) is differentiated first
    /// ([`crate::graph::autodiff::differentiate`]).
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for an invalid optimizer or batch size; [`Error::Graph`]
    /// or [`Error::TooLarge`] for a graph the planner cannot lay out; the backend's error
    /// when its buffers or programs cannot be created.
    pub fn new(
        backend: Box<dyn Backend>,
        graph: Graph,
        opt: impl Into<Optimizer>,
        seed: u64,
        max_batch: usize,
    ) -> Result<Self> {
        Self::with_precision(backend, graph, opt, seed, max_batch, Precision::F32)
    }

    /// [`Session::new`] with f32 or mixed-precision arithmetic ([`Precision`]).
    pub fn with_precision(
        mut backend: Box<dyn Backend>,
        mut graph: Graph,
        opt: impl Into<Optimizer>,
        seed: u64,
        max_batch: usize,
        precision: Precision,
    ) -> Result<Self> {
        let opt = opt.into();
        opt.validate()?;
        // A forward graph from the builder gets its backward pass here (a model's
        // `Sequential::build` has appended it already).
        if !graph.is_differentiated() {
            crate::graph::autodiff::differentiate(&mut graph)?;
        }
        let mut layout = Layout::with_precision(&graph, backend.align(), max_batch, precision)?;
        layout.second_moment = opt.is_adam();
        // Compile the largest programs first to size the pool, then freeze it.
        let train = plan::compile(&graph, &mut layout, Mode::Train, max_batch, &opt)?;
        let eval = plan::compile(&graph, &mut layout, Mode::Eval, max_batch, &opt)?;
        layout.frozen = true;
        backend.create_buffers(&layout.specs(&graph))?;
        // The next batch's upload goes to the copy no submitted step reads.
        backend.double_buffer(&[buf::INPUT, buf::LABELS])?;
        let mut programs = HashMap::new();
        let dispatches = HashMap::from([
            ((Mode::Train, max_batch), train.instrs.len()),
            ((Mode::Eval, max_batch), eval.instrs.len()),
        ]);
        programs.insert(
            (Mode::Train, max_batch),
            (backend.load(&train)?, train.logits),
        );
        programs.insert((Mode::Eval, max_batch), (backend.load(&eval)?, eval.logits));
        let token_columns = graph.token_columns();
        let mut s = Session {
            backend,
            graph,
            layout,
            opt,
            regularizer: None,
            schedule: LrSchedule::Constant,
            warmup: None,
            epoch: 0,
            seed,
            step: 0,
            programs,
            dispatches,
            last_batch: 0,
            penalty: false,
            pending_metrics: None,
            skipped_known: 0,
            nonfinite_known: 0,
            label_rows: vec![],
            token_columns,
        };
        s.init_params()?;
        Ok(s)
    }

    /// Set the default norm penalty, applied to every parameter marked `decay` (weights)
    /// that has no regularizer of its own. m in the course scaling is the session's batch
    /// size.
    pub fn set_regularizer(&mut self, r: Option<Regularizer>) -> Result<()> {
        if let Some(r) = &r {
            r.validate()?;
        }
        self.regularizer = r;
        self.write_penalty_coefficients()
    }

    /// Set the learning-rate schedule (applied from the next step).
    pub fn set_schedule(&mut self, s: LrSchedule) -> Result<()> {
        s.validate()?;
        self.schedule = s;
        Ok(())
    }

    /// Set (or remove) a linear warm-up in front of the schedule, counted in applied
    /// updates from the session's first step ([`Warmup`]).
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for a warm-up out of range ([`Warmup::validate`]).
    pub fn set_warmup(&mut self, w: Option<Warmup>) -> Result<()> {
        if let Some(w) = &w {
            w.validate()?;
        }
        self.warmup = w;
        Ok(())
    }

    /// Tell per-epoch schedules which epoch the next steps belong to.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// The learning rate the next step will use, if no step was skipped since the last
    /// metrics read (a per-step schedule advances with applied updates only; the device
    /// evaluates it, see [`Globals::lr`]).
    pub fn current_lr(&self) -> f32 {
        let t = self.step - self.skipped_known;
        let lr = self.schedule.lr(self.opt.lr(), self.epoch, t);
        match &self.warmup {
            Some(w) => lr * w.factor(t),
            None => lr,
        }
    }

    /// The backend, mutably (diagnostics and fault injection: [`Backend::lose_device`]).
    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// The backend the session runs on.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The differentiated graph the session runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Where the session's buffers are laid out.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The optimizer settings the training program was compiled with.
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// Set the learning rate used by the following steps.
    /// Set the base learning rate (schedules scale it).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        let mut opt = self.opt.clone();
        opt.set_lr(lr);
        opt.validate()?;
        self.opt = opt;
        Ok(())
    }

    /// Whether a training step on a batch of `batch` samples is possible: an error when a
    /// batch-norm layer would see one value per channel ([`Error::OneValuePerChannel`]).
    pub fn trainable_batch(&self, batch: usize) -> Result<()> {
        self.check_batch_norm(Mode::Train, batch)
    }

    /// Kernel dispatches in one training step of `batch` rows (compiling the program if it
    /// is not yet).
    pub fn dispatches_per_step(&mut self, batch: usize) -> Result<usize> {
        self.program(Mode::Train, batch)?;
        Ok(self.dispatches[&(Mode::Train, batch)])
    }

    fn program(&mut self, mode: Mode, batch: usize) -> Result<ProgramId> {
        Ok(self.program_with_logits(mode, batch)?.0)
    }

    fn program_with_logits(
        &mut self,
        mode: Mode,
        batch: usize,
    ) -> Result<(ProgramId, Option<crate::backend::Slice>)> {
        // Checked on every call, not only when a program is first compiled: the programs
        // at the maximum batch are compiled by `Session::new`, before any batch is seen.
        self.check_batch_norm(mode, batch)?;
        if let Some(&p) = self.programs.get(&(mode, batch)) {
            return Ok(p);
        }
        let before = self.layout.pool.len();
        let prog = plan::compile(&self.graph, &mut self.layout, mode, batch, &self.opt)?;
        if self.layout.pool.len() > before {
            let specs = self.layout.specs(&self.graph);
            self.backend
                .add_buffers(&specs[buf::POOL_BASE + before..])?;
        }
        let p = (self.backend.load(&prog)?, prog.logits);
        self.programs.insert((mode, batch), p);
        self.dispatches.insert((mode, batch), prog.instrs.len());
        Ok(p)
    }

    /// The batch size of `x`, `y` and `w`, checked before anything reaches the device: a
    /// non-empty batch of at most the maximum batch, whole rows, targets the task can take
    /// ([`crate::data::check_targets`]: class indices, values in [0, 1], finite values),
    /// sample weights finite and ≥ 0, and finite inputs. On the host, one pass over the
    /// batch (as the upload itself); the device never sees a label it cannot index or a
    /// NaN a ReLU would hide.
    fn check_batch(&self, x: &[f32], y: &[f32], w: Option<&[f32]>, context: &str) -> Result<usize> {
        let f = self.graph.in_features();
        let t = self.graph.targets();
        let b = y.len() / t;
        if b > self.layout.max_batch {
            return Err(Error::BatchTooLarge {
                batch: b,
                max: self.layout.max_batch,
            });
        }
        let whole = y.len().is_multiple_of(t) && w.is_none_or(|w| w.len() == b);
        if b == 0 || x.len() != b * f || !whole {
            let mut got = vec![x.len(), y.len()];
            got.extend(w.map(<[f32]>::len));
            return Err(Error::Shape {
                context: context.into(),
                got,
                expected: format!(
                    "x of batch·{f} values, batch·{t} targets{} for a batch of 1..={}",
                    if w.is_some() {
                        " and batch sample weights"
                    } else {
                        ""
                    },
                    self.layout.max_batch
                ),
            });
        }
        crate::data::check_targets(y, self.graph.task(), self.graph.classes(), t, context)?;
        if let Some(w) = w {
            crate::data::check_weights(w, context)?;
        }
        crate::data::check_finite(x, f, context)?;
        for (cols, vocab) in &self.token_columns {
            crate::data::check_token_ids(x, f, cols.clone(), *vocab, context)?;
        }
        Ok(b)
    }

    /// Refuse a training-mode pass in which a batch-norm layer would see one value per
    /// channel (PyTorch: "Expected more than 1 value per channel when training"): its
    /// batch variance is 0 and its running variance would be pulled towards 0. Checked
    /// when the program for (mode, batch) is first compiled, so it costs nothing per step.
    fn check_batch_norm(&self, mode: Mode, batch: usize) -> Result<()> {
        // Spatial sizes are >= 1, so only a batch of one can give one value per channel:
        // every other step returns here without looking at the graph.
        if mode.inference() || batch > 1 {
            return Ok(());
        }
        for n in &self.graph.nodes[..self.graph.n_forward] {
            if let crate::graph::Op::BatchNorm { state, spatial, .. } = n.op
                && batch.saturating_mul(spatial) <= 1
            {
                let name = &self.graph.states[state].name;
                let layer = name.split('.').next().unwrap_or(name).to_string();
                return Err(Error::OneValuePerChannel {
                    layer,
                    batch,
                    spatial,
                });
            }
        }
        Ok(())
    }

    /// Write a checked batch to the input and label buffers. The label rows are
    /// `[targets.., s_i, g_i]` ([`crate::kernels::loss`]): the sample weight (1 without
    /// `w`) and the gradient factor `s_i / D`, D = Σ s_j (times the target's class weight
    /// for class-weighted cross-entropy; `g_i = 0` when D = 0, a batch that weighs
    /// nothing). Without any weight, g = 1/b: the mean over the batch.
    fn upload(&mut self, x: &[f32], y: &[f32], w: Option<&[f32]>) -> Result<()> {
        let t = self.graph.targets();
        let b = y.len() / t.max(1);
        let class_w = match self.graph.loss_node() {
            Some((Loss::CrossEntropy { class_weights, .. }, _)) => class_weights.as_deref(),
            _ => None,
        };
        let rows = &mut self.label_rows;
        rows.clear();
        let s = |i: usize| w.map_or(1.0, |w| w[i]);
        let scale = |i: usize| -> f64 {
            // A label's class weight; labels are checked class indices here.
            let cw = class_w
                .as_ref()
                .and_then(|cw| cw.get(y[i * t] as usize))
                .copied()
                .unwrap_or(1.0);
            s(i) as f64 * cw as f64
        };
        let plain = w.is_none() && class_w.is_none();
        let total: f64 = if plain {
            b as f64
        } else {
            (0..b).map(scale).sum()
        };
        for i in 0..b {
            rows.extend_from_slice(&y[i * t..(i + 1) * t]);
            rows.push(s(i));
            rows.push(if plain {
                1.0 / b as f32
            } else if total > 0.0 {
                (s(i) as f64 / total) as f32
            } else {
                0.0
            });
        }
        self.backend.write(buf::INPUT, 0, x)?;
        self.backend.write(buf::LABELS, 0, &self.label_rows)?;
        self.last_batch = b;
        Ok(())
    }

    fn globals(&self) -> Globals {
        // A per-step schedule is evaluated on the device at the count of applied updates
        // (ClipFinalize), so that a skipped step does not advance it; per-epoch schedules
        // are evaluated here. Adam's bias corrections are computed there too.
        let lr0 = self.opt.lr();
        let (lr, sched_kind, sched_n, sched_x) = match self.schedule {
            LrSchedule::Step {
                step_size,
                gamma,
                every: Every::Step,
            } => (lr0, 1, step_size.min(u32::MAX as u64) as u32, gamma),
            LrSchedule::Exponential {
                gamma,
                every: Every::Step,
            } => (lr0, 2, 0, gamma),
            LrSchedule::Cosine {
                t_max,
                eta_min,
                every: Every::Step,
            } => (lr0, 3, t_max.min(u32::MAX as u64) as u32, eta_min),
            s => (s.lr(lr0, self.epoch, 0), 0, 0, 0.0),
        };
        Globals {
            seed_lo: self.seed as u32,
            seed_hi: (self.seed >> 32) as u32,
            step: self.step as u32,
            lr,
            sched_x,
            sched_n,
            sched_kind,
            warmup_steps: self
                .warmup
                .map_or(0, |w| w.steps.min(u32::MAX as u64) as u32),
            warmup_start: self.warmup.map_or(1.0, |w| w.start_factor),
            _pad: [0; 2],
            flags: if self.penalty { Globals::PENALTY } else { 0 }
                | if self.layout.mixed.is_some() {
                    Globals::MIXED
                } else {
                    0
                },
        }
    }

    /// One training step on a batch (`x` row-major [b, features], `y` the targets
    /// `[b, T]`: class indices for cross-entropy, values in [0, 1] for binary
    /// cross-entropy, real values for regression). Never waits for the device. The same as
    /// [`Session::train_batch_weighted`] without weights.
    ///
    /// Errors: a batch over the session's maximum, targets the task cannot take, a
    /// non-finite input (row and feature), one value per channel into a batch-norm layer.
    /// A gradient that is not finite for another reason (an overflow) is found on the
    /// device: the update is skipped and the next metrics read names it
    /// ([`Session::take_metrics`]).
    pub fn train_batch(&mut self, x: &[f32], y: &[f32]) -> Result<()> {
        self.train_batch_weighted(x, y, None)
    }

    /// One training step with per-sample weights `w` `[b]` (finite, ≥ 0): the loss is
    /// the weighted mean `Σ s_i·loss_i / Σ s_i` over the batch (with class weights,
    /// `Σ s_i·w_{y_i}` below). Errors as [`Session::train_batch`], and a weight that is
    /// negative or not finite ([`Error::Target`] naming its row).
    pub fn train_batch_weighted(&mut self, x: &[f32], y: &[f32], w: Option<&[f32]>) -> Result<()> {
        let b = self.check_batch(x, y, w, "training batch")?;
        let id = self.program(Mode::Train, b)?;
        self.upload(x, y, w)?;
        let g = self.globals();
        self.backend.run(id, &g)?;
        self.step += 1;
        Ok(())
    }

    /// Forward pass in inference mode (running statistics, no dropout), accumulating
    /// evaluation metrics. Errors as [`Session::train_batch`]; a loss that is not finite
    /// (logits overflowing f32) is named at the next read.
    pub fn eval_batch(&mut self, x: &[f32], y: &[f32]) -> Result<()> {
        self.eval_batch_weighted(x, y, None)
    }

    /// [`Session::eval_batch`] with per-sample weights (the evaluation loss is then their
    /// weighted mean).
    pub fn eval_batch_weighted(&mut self, x: &[f32], y: &[f32], w: Option<&[f32]>) -> Result<()> {
        let b = self.check_batch(x, y, w, "evaluation batch")?;
        let id = self.program(Mode::Eval, b)?;
        self.upload(x, y, w)?;
        let g = self.globals();
        self.backend.run(id, &g)
    }

    /// Forward and backward in training mode without a parameter update (batch-norm running
    /// statistics do move); returns the metrics (data loss, penalty, norm) and every
    /// parameter's gradient (penalties and value clipping included, before norm scaling), for
    /// gradient checks. Does not advance the step, so dropout masks repeat.
    pub fn gradients(&mut self, x: &[f32], y: &[f32]) -> Result<(Metrics, Named)> {
        self.gradients_weighted(x, y, None)
    }

    /// [`Session::gradients`] with per-sample weights.
    pub fn gradients_weighted(
        &mut self,
        x: &[f32],
        y: &[f32],
        w: Option<&[f32]>,
    ) -> Result<(Metrics, Named)> {
        let b = self.check_batch(x, y, w, "gradient batch")?;
        let id = self.program(Mode::Grad, b)?;
        self.upload(x, y, w)?;
        let g = self.globals();
        self.backend.run(id, &g)?;
        let m = self.take_metrics(Mode::Grad)?;
        let all = self.backend.read(buf::GRADS, 0, self.layout.params_len)?;
        Ok((m, self.slice_params(&all)))
    }

    /// The seed that keys initialization, dropout masks and shuffling.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Training steps taken (keys dropout masks and per-step schedules).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The epoch per-epoch schedules use for the next steps ([`Session::set_epoch`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Wait for all submitted steps.
    pub fn sync(&mut self) -> Result<()> {
        self.backend.sync()
    }
}
