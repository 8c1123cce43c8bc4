//! A model compiled for a backend: parameters on the device, programs built once per
//! (mode, batch size), a training step = upload one batch + replay one program (one
//! submission on the GPU). Loss, accuracy and the gradient norm accumulate on the device
//! and are read back only by [`Session::take_metrics`].

use std::collections::HashMap;

use crate::backend::{Backend, Globals, ProgramId};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::graph::plan::{self, Layout, Mode, Probe, buf};
use crate::optim::{Every, LrSchedule, Optimizer, Precision, Regularizer};
use crate::rng::Rng;

/// Tensors keyed by name, in model order.
pub type Named = Vec<(String, Vec<f32>)>;

/// Result of [`Session::predict_mc`]: per row and class, row-major [rows, classes].
#[derive(Clone, Debug, PartialEq)]
pub struct McPrediction {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub classes: usize,
}

/// Device state in host memory, in the plan's flat layouts (see [`Session::snapshot`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub params: Vec<f32>,
    pub velocity: Vec<f32>,
    /// Adam's second moments (empty for SGD).
    pub second_moment: Vec<f32>,
    pub state: Vec<f32>,
    pub step: u64,
    /// Optimizer updates applied (steps not skipped for a non-finite gradient): Adam's t
    /// and the position of a per-step learning-rate schedule.
    pub applied_steps: u64,
    /// Mixed precision's loss-scaling state (S, 1/S, finite steps in a row, skipped steps);
    /// empty in f32.
    pub loss_scale: Vec<f32>,
}

/// Statistics of one tensor from [`Session::probe`].
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStat {
    pub name: String,
    pub mean: f32,
    pub std: f32,
    /// sqrt(Σ x²).
    pub norm: f32,
    /// Fraction of exact zeros (dead ReLUs, dropped units).
    pub zero_fraction: f32,
}

/// What [`Session::probe`] measured on one batch.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeReport {
    pub metrics: Metrics,
    /// Per forward op with a batch dimension (`k.kind`; for a `Sequential`, layer k).
    pub activations: Vec<TensorStat>,
    /// Per parameter: its gradient (penalties included, before global-norm clipping).
    pub gradients: Vec<TensorStat>,
    /// Per parameter: its values.
    pub weights: Vec<TensorStat>,
}

/// Metrics accumulated on the device since the last read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Mean cross-entropy over the samples seen.
    pub loss: f32,
    /// Fraction of samples whose arg-max logit is the label.
    pub accuracy: f32,
    /// Samples seen.
    pub samples: usize,
    /// Steps (batches) seen.
    pub steps: usize,
    /// Global gradient norm before clipping, of the last training step.
    pub grad_norm: f32,
    /// Norm penalty of the last training step (not included in `loss`).
    pub penalty: f32,
    /// Mixed precision: the loss scale after the last step (0 in f32).
    pub loss_scale: f32,
    /// Training steps whose update was skipped for a non-finite gradient since the session
    /// began (mixed precision: f16 overflow while the loss scale adapts; f32: a NaN or
    /// infinity, also reported as [`Error::NonFinite`] at the read after it).
    pub skipped_steps: usize,
}

/// A compiled model on a backend.
pub struct Session {
    backend: Box<dyn Backend>,
    graph: Graph,
    layout: Layout,
    opt: Optimizer,
    regularizer: Option<Regularizer>,
    schedule: LrSchedule,
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
}

impl Session {
    /// Compile `graph` for `backend` with batches of at most `max_batch` samples, and
    /// initialize parameters from `seed` (the same values on every backend).
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
        graph: Graph,
        opt: impl Into<Optimizer>,
        seed: u64,
        max_batch: usize,
        precision: Precision,
    ) -> Result<Self> {
        let opt = opt.into();
        opt.validate()?;
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
        let mut s = Session {
            backend,
            graph,
            layout,
            opt,
            regularizer: None,
            schedule: LrSchedule::Constant,
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
        };
        s.init_params()?;
        Ok(s)
    }

    /// (Re)initialize parameters, momentum, running statistics and metrics from the seed.
    pub fn init_params(&mut self) -> Result<()> {
        let rng = Rng::new(self.seed);
        let n = self.layout.params_len;
        let (mut w, mut wd) = (vec![0f32; n], vec![0f32; n]);
        for (pid, p) in self.graph.params.iter().enumerate() {
            let (fan_in, fan_out) = (p.shape.rows_at(1), p.shape.cols);
            let mut off = self.layout.param_off[pid];
            for (si, seg) in p.segments.iter().enumerate() {
                let vals = seg
                    .init
                    .sample(&rng, (pid * 16 + si) as u32, seg.len, fan_in, fan_out);
                w[off..off + seg.len].copy_from_slice(&vals);
                if p.decay {
                    wd[off..off + seg.len]
                        .iter_mut()
                        .for_each(|x| *x = self.opt.weight_decay());
                }
                off += seg.len;
            }
        }
        let mut st = vec![0f32; self.layout.state_len];
        for (i, s) in self.graph.states.iter().enumerate() {
            let o = self.layout.state_off[i];
            st[o..o + s.len].copy_from_slice(&s.init);
        }
        let b = &mut self.backend;
        b.write(buf::PARAMS, 0, &w)?;
        b.write(buf::WD, 0, &wd)?;
        b.write(buf::VELOCITY, 0, &vec![0.0; n])?;
        if self.layout.second_moment {
            b.write(buf::M2, 0, &vec![0.0; n])?;
        }
        b.write(buf::STATE, 0, &st)?;
        b.write(buf::METRICS, 0, &vec![0.0; self.layout.metrics_len()])?;
        if let Some(l) = self.layout.mixed {
            b.write(
                buf::METRICS,
                self.layout.amp_off(),
                &[l.init, 1.0 / l.init, 0.0, 0.0],
            )?;
        }
        self.step = 0;
        self.skipped_known = 0;
        self.nonfinite_known = 0;
        self.write_penalty_coefficients()
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

    fn write_penalty_coefficients(&mut self) -> Result<()> {
        let n = self.layout.params_len;
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        let mut any = false;
        for (pid, p) in self.graph.params.iter().enumerate() {
            let r = p
                .regularizer
                .or(if p.decay { self.regularizer } else { None });
            if let Some(r) = r {
                let (ca, cb) = r.coefficients(self.layout.max_batch);
                any |= ca != 0.0 || cb != 0.0;
                let o = self.layout.param_off[pid];
                let len = p.shape.numel(0);
                a[o..o + len].iter_mut().for_each(|x| *x = ca);
                b[o..o + len].iter_mut().for_each(|x| *x = cb);
            }
        }
        self.penalty = any;
        self.backend.write(buf::L2C, 0, &a)?;
        self.backend.write(buf::L1C, 0, &b)
    }

    /// Set the learning-rate schedule (applied from the next step).
    pub fn set_schedule(&mut self, s: LrSchedule) -> Result<()> {
        s.validate()?;
        self.schedule = s;
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
        self.schedule
            .lr(self.opt.lr(), self.epoch, self.step - self.skipped_known)
    }

    /// The backend, mutably (diagnostics and fault injection: [`Backend::lose_device`]).
    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
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

    /// Every parameter and running statistic finite (one readback), else
    /// [`Error::NonFiniteParameter`] naming the first tensor in model order.
    pub fn check_finite_parameters(&mut self) -> Result<()> {
        for (name, v) in self.params()? {
            check_finite_tensor(&name, "values", &v)?;
        }
        for (name, v) in self.state()? {
            check_finite_tensor(&name, "values", &v)?;
        }
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
        if let Some(&p) = self.programs.get(&(mode, batch)) {
            return Ok(p);
        }
        self.check_batch_norm(mode, batch)?;
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

    /// The batch size of `x` and `y`, checked before anything reaches the device: a
    /// non-empty batch of at most the maximum batch, whole rows, labels that are class
    /// indices, and finite inputs. On the host, one pass over the batch (as the upload
    /// itself); the device never sees a label it cannot index or a NaN a ReLU would hide.
    fn check_batch(&self, x: &[f32], y: &[f32], context: &str) -> Result<usize> {
        let f = self.graph.in_features();
        let b = y.len();
        if b > self.layout.max_batch {
            return Err(Error::BatchTooLarge {
                batch: b,
                max: self.layout.max_batch,
            });
        }
        if b == 0 || x.len() != b * f {
            return Err(Error::Shape {
                context: context.into(),
                got: vec![x.len(), y.len()],
                expected: format!(
                    "x of batch·{f} values and 1..={} labels",
                    self.layout.max_batch
                ),
            });
        }
        crate::data::check_labels(y, self.graph.classes(), context)?;
        crate::data::check_finite(x, f, context)?;
        Ok(b)
    }

    /// Refuse a training-mode pass in which a batch-norm layer would see one value per
    /// channel (PyTorch: "Expected more than 1 value per channel when training"): its
    /// batch variance is 0 and its running variance would be pulled towards 0. Checked
    /// when the program for (mode, batch) is first compiled, so it costs nothing per step.
    fn check_batch_norm(&self, mode: Mode, batch: usize) -> Result<()> {
        if mode.inference() {
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

    /// Write a checked batch to the input and label buffers.
    fn upload(&mut self, x: &[f32], y: &[f32]) -> Result<()> {
        self.backend.write(buf::INPUT, 0, x)?;
        self.backend.write(buf::LABELS, 0, y)?;
        self.last_batch = y.len();
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
            flags: if self.penalty { Globals::PENALTY } else { 0 }
                | if self.layout.mixed.is_some() {
                    Globals::MIXED
                } else {
                    0
                },
        }
    }

    /// One training step on a batch (`x` row-major [b, features], `y` class indices).
    /// Never waits for the device.
    ///
    /// Errors: a batch over the session's maximum, labels that are not class indices, a
    /// non-finite input (row and feature), one value per channel into a batch-norm layer.
    /// A gradient that is not finite for another reason (an overflow) is found on the
    /// device: the update is skipped and the next metrics read names it
    /// ([`Session::take_metrics`]).
    pub fn train_batch(&mut self, x: &[f32], y: &[f32]) -> Result<()> {
        let b = self.check_batch(x, y, "training batch")?;
        let id = self.program(Mode::Train, b)?;
        self.upload(x, y)?;
        let g = self.globals();
        self.backend.run(id, &g)?;
        self.step += 1;
        Ok(())
    }

    /// Forward pass in inference mode (running statistics, no dropout), accumulating
    /// evaluation metrics. Errors as [`Session::train_batch`]; a loss that is not finite
    /// (logits overflowing f32) is named at the next read.
    pub fn eval_batch(&mut self, x: &[f32], y: &[f32]) -> Result<()> {
        let b = self.check_batch(x, y, "evaluation batch")?;
        let id = self.program(Mode::Eval, b)?;
        self.upload(x, y)?;
        let g = self.globals();
        self.backend.run(id, &g)
    }

    /// Inference-mode logits [b, classes] for a batch (waits for the device). Labels are
    /// not needed; the evaluation metrics are left untouched.
    pub fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        self.logits(x, Mode::Eval, self.step as u32)
    }

    /// Logits of `mode` (Eval or McEval) for any number of rows, in chunks of the maximum
    /// batch; the evaluation metrics are left as they were.
    fn logits(&mut self, x: &[f32], mode: Mode, step: u32) -> Result<Vec<f32>> {
        let f = self.graph.in_features();
        if x.is_empty() || !x.len().is_multiple_of(f) {
            return Err(Error::Shape {
                context: "predict input".into(),
                got: vec![x.len()],
                expected: format!("a non-empty multiple of {f} values"),
            });
        }
        crate::data::check_finite(x, f, "predict input")?;
        let saved = self
            .backend
            .read(buf::METRICS, self.layout.eval_metrics_off(), 4)?;
        let mut out = vec![];
        for chunk in x.chunks(self.layout.max_batch * f) {
            let b = chunk.len() / f;
            self.upload(chunk, &vec![0f32; b])?;
            let (id, logits) = self.program_with_logits(mode, b)?;
            let g = Globals {
                step,
                ..self.globals()
            };
            self.backend.run(id, &g)?;
            let l = logits.ok_or_else(|| Error::Graph("the graph has no logits".into()))?;
            let z = self.backend.read(l.buf, l.off, l.len)?;
            if let Some(i) = z.iter().position(|v| !v.is_finite()) {
                let c = l.len / b;
                let place = self.locate_non_finite().unwrap_or_default();
                self.backend
                    .write(buf::METRICS, self.layout.eval_metrics_off(), &saved)?;
                return Err(Error::NonFinite {
                    what: format!(
                        "logit {} of input row {} (the output overflows f32, or the parameters are not finite){place}",
                        i % c,
                        out.len() / c + i / c
                    ),
                    value: z[i],
                    step: self.step,
                });
            }
            out.extend(z);
        }
        self.backend
            .write(buf::METRICS, self.layout.eval_metrics_off(), &saved)?;
        Ok(out)
    }

    /// Monte Carlo dropout: `passes` stochastic forward passes with dropout active (batch
    /// norm on running statistics), each with its own masks (pass t uses step 2³¹ + t, which
    /// training never reaches). Returns the per-class predictive mean and variance of the
    /// softmax probabilities: mean = (1/T) Σ p_t, var = (1/T) Σ (p_t − mean)².
    pub fn predict_mc(&mut self, x: &[f32], passes: usize) -> Result<McPrediction> {
        if passes == 0 {
            return Err(Error::Hyperparameter {
                name: "mc_dropout.passes",
                value: "0".into(),
                expected: ">= 1",
            });
        }
        let mut sum: Vec<f64> = vec![];
        let mut sumsq: Vec<f64> = vec![];
        let mut classes = 0;
        for t in 0..passes {
            let z = self.logits(x, Mode::McEval, (1u32 << 31) + t as u32)?;
            classes = z.len() / (x.len() / self.graph.in_features());
            if sum.is_empty() {
                sum = vec![0.0; z.len()];
                sumsq = vec![0.0; z.len()];
            }
            for (r, row) in z.chunks(classes).enumerate() {
                let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let e: Vec<f64> = row.iter().map(|&v| (v as f64 - mx).exp()).collect();
                let tot: f64 = e.iter().sum();
                for (j, ej) in e.iter().enumerate() {
                    let p = ej / tot;
                    sum[r * classes + j] += p;
                    sumsq[r * classes + j] += p * p;
                }
            }
        }
        let t = passes as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / t) as f32).collect();
        let var = sum
            .iter()
            .zip(&sumsq)
            .map(|(s, q)| ((q / t) - (s / t).powi(2)).max(0.0) as f32)
            .collect();
        Ok(McPrediction { mean, var, classes })
    }

    /// Forward and backward in training mode without a parameter update (batch-norm running
    /// statistics do move); returns the metrics (data loss, penalty, norm) and every
    /// parameter's gradient (penalties and value clipping included, before norm scaling), for
    /// gradient checks. Does not advance the step, so dropout masks repeat.
    pub fn gradients(&mut self, x: &[f32], y: &[f32]) -> Result<(Metrics, Named)> {
        let b = self.check_batch(x, y, "gradient batch")?;
        let id = self.program(Mode::Grad, b)?;
        self.upload(x, y)?;
        let g = self.globals();
        self.backend.run(id, &g)?;
        let m = self.take_metrics(Mode::Grad)?;
        let all = self.backend.read(buf::GRADS, 0, self.layout.params_len)?;
        Ok((m, self.slice_params(&all)))
    }

    /// Diagnose vanishing / exploding activations and gradients on one batch: a training-mode
    /// forward and backward pass (no update; the step does not advance) with statistics of
    /// every activation, gradient and weight computed on the device and read back at once.
    pub fn probe(&mut self, x: &[f32], y: &[f32]) -> Result<ProbeReport> {
        let b = self.check_batch(x, y, "probe batch")?;
        let id = self.program(Mode::Probe, b)?;
        self.upload(x, y)?;
        let g = self.globals();
        self.backend.run(id, &g)?;
        let metrics = self.take_metrics(Mode::Grad)?;
        let stride = self.layout.stats_stride();
        let raw = self
            .backend
            .read(buf::STATS, 0, self.layout.stats_slots * stride)?;
        let mut report = ProbeReport {
            metrics,
            activations: vec![],
            gradients: vec![],
            weights: vec![],
        };
        for (k, probe) in plan::probe_slots(&self.graph).into_iter().enumerate() {
            let r = &raw[k * stride..k * stride + 4];
            let n = r[3].max(1.0) as f64;
            let mean = r[0] as f64 / n;
            let name = match &probe {
                Probe::Activation(_, name) => name.clone(),
                Probe::ParamGrad(p) | Probe::ParamWeight(p) => self.graph.params[*p].name.clone(),
            };
            let stat = TensorStat {
                name,
                mean: mean as f32,
                std: ((r[1] as f64 / n - mean * mean).max(0.0)).sqrt() as f32,
                norm: (r[1] as f64).sqrt() as f32,
                zero_fraction: (r[2] as f64 / n) as f32,
            };
            match probe {
                Probe::Activation(..) => report.activations.push(stat),
                Probe::ParamGrad(_) => report.gradients.push(stat),
                Probe::ParamWeight(_) => report.weights.push(stat),
            }
        }
        Ok(report)
    }

    /// Read and reset the training (`Mode::Train`) or evaluation metrics (waits for the
    /// device). Drops a read started by [`Session::start_metrics`] and not finished.
    pub fn take_metrics(&mut self, mode: Mode) -> Result<Metrics> {
        self.pending_metrics = None;
        let _ = self.backend.read_finish()?;
        // One readback holds both metric slots and the clip info.
        let all = self
            .backend
            .read(buf::METRICS, 0, self.layout.metrics_len())?;
        self.backend
            .write(buf::METRICS, self.metrics_off(mode), &[0.0; 4])?;
        self.metrics_from(&all, mode, self.step)
    }

    /// Start reading the metrics of `mode` without waiting for the device, and reset them
    /// there (in queue order, so no step is counted twice or lost): the device keeps
    /// working while the copy is in flight. [`Session::finish_metrics`] returns them.
    pub fn start_metrics(&mut self, mode: Mode) -> Result<()> {
        self.backend
            .read_start(buf::METRICS, 0, self.layout.metrics_len())?;
        self.backend
            .write(buf::METRICS, self.metrics_off(mode), &[0.0; 4])?;
        self.pending_metrics = Some((mode, self.step));
        Ok(())
    }

    /// The metrics of the last [`Session::start_metrics`] with the step count at that
    /// point (waiting only if the device has not got there yet), or None when none was
    /// started. A non-finite training loss is reported here, naming the step it was read at.
    pub fn finish_metrics(&mut self) -> Result<Option<(u64, Metrics)>> {
        let Some((mode, step)) = self.pending_metrics.take() else {
            return Ok(None);
        };
        let Some(all) = self.backend.read_finish()? else {
            return Ok(None);
        };
        Ok(Some((step, self.metrics_from(&all, mode, step)?)))
    }

    fn metrics_off(&self, mode: Mode) -> usize {
        if mode.inference() {
            self.layout.eval_metrics_off()
        } else {
            0
        }
    }

    /// Metrics of `mode` from a readback of the whole metrics buffer.
    fn metrics_from(&mut self, all: &[f32], mode: Mode, step: u64) -> Result<Metrics> {
        let off = self.metrics_off(mode);
        let (m, clip) = (&all[off..off + 4], &all[self.layout.clip_off()..]);
        let n = m[2].max(1.0);
        let out = Metrics {
            loss: m[0] / n,
            accuracy: m[1] / n,
            samples: m[2] as usize,
            steps: m[3] as usize,
            grad_norm: clip[0],
            penalty: clip[2],
            loss_scale: if self.layout.mixed.is_some() {
                all[self.layout.amp_off()]
            } else {
                0.0
            },
            skipped_steps: clip[plan::CLIP_SKIPPED] as usize,
        };
        // Skipped steps in total, and those that were not f16 overflows the loss scale
        // absorbs (mixed precision counts those at amp[3]): every f32 skip, and a mixed
        // skip at the loss scale's floor of 1.
        let skipped = clip[plan::CLIP_SKIPPED] as u64;
        let overflows = if self.layout.mixed.is_some() {
            all[self.layout.amp_off() + 3] as u64
        } else {
            0
        };
        let bad = skipped.saturating_sub(overflows);
        let new_bad = bad.saturating_sub(self.nonfinite_known);
        self.skipped_known = skipped;
        self.nonfinite_known = bad;
        let non_finite_loss = !(out.loss.is_finite() && out.grad_norm.is_finite());
        if mode.inference() && out.samples > 0 && !out.loss.is_finite() {
            let place = self.locate_non_finite().unwrap_or_default();
            return Err(Error::NonFinite {
                what: format!(
                    "evaluation loss (logits overflowing f32, or non-finite parameters){place}"
                ),
                value: out.loss,
                step,
            });
        }
        if mode == Mode::Train && out.samples > 0 && (new_bad > 0 || non_finite_loss) {
            let (what, value) = if !out.loss.is_finite() {
                ("training loss", out.loss)
            } else if !out.grad_norm.is_finite() {
                ("gradient norm", out.grad_norm)
            } else {
                // The skipped step's norm was overwritten by a later finite step's: the
                // skip itself is what is known.
                ("gradient (NaN or infinity)", f32::NAN)
            };
            // Mixed precision: activations past f16's range (65504) make the forward pass
            // non-finite whatever the loss scale.
            let hint = if self.layout.mixed.is_some() && !out.loss.is_finite() {
                " (mixed precision: an activation beyond f16's range of 65504 overflows; standardize the inputs, lower the learning rate, or train in f32)"
            } else {
                ""
            };
            let what = if new_bad > 0 {
                let scale = if self.layout.mixed.is_some() {
                    " at the loss scale's floor of 1"
                } else {
                    ""
                };
                format!(
                    "{what} (the update of {new_bad} step(s) since the last read was skipped{scale}; the parameters are those of the last finite step)"
                )
            } else {
                what.to_string()
            };
            let place = self.locate_non_finite().unwrap_or_default();
            return Err(Error::NonFinite {
                what: format!("{what}{hint}{place}"),
                value,
                step,
            });
        }
        Ok(out)
    }

    /// Where a non-finite loss shows, found cheaply after the fact (one readback of the last
    /// input batch and of the parameters): a non-finite input value (row, feature), then
    /// the first parameter, in layer order, holding a non-finite value.
    fn locate_non_finite(&mut self) -> Result<String> {
        let f = self.graph.in_features();
        let mut place = String::new();
        if self.last_batch > 0 {
            let x = self.backend.read(buf::INPUT, 0, self.last_batch * f)?;
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                place += &format!(
                    "; the last input batch holds {} at row {}, feature {}",
                    x[i],
                    i / f,
                    i % f
                );
            }
        }
        let params = self.params()?;
        let bad: Vec<&str> = params
            .iter()
            .filter(|(_, v)| v.iter().any(|x| !x.is_finite()))
            .map(|(n, _)| n.as_str())
            .collect();
        if let Some(first) = bad.first() {
            place += &format!(
                "; first non-finite parameter: {first} (layer {}), {} of {} parameter tensors non-finite",
                first.split('.').next().unwrap_or(first),
                bad.len(),
                params.len()
            );
        }
        Ok(place)
    }

    /// All parameters (flat buffer layout, padding removed), keyed by name, in order.
    pub fn params(&mut self) -> Result<Named> {
        let all = self.backend.read(buf::PARAMS, 0, self.layout.params_len)?;
        Ok(self.slice_params(&all))
    }

    /// Momentum buffers, same keys as [`Session::params`].
    pub fn velocity(&mut self) -> Result<Named> {
        let all = self
            .backend
            .read(buf::VELOCITY, 0, self.layout.params_len)?;
        Ok(self.slice_params(&all))
    }

    /// Running statistics of every batch-norm layer.
    pub fn state(&mut self) -> Result<Named> {
        let all = self.backend.read(buf::STATE, 0, self.layout.state_len)?;
        Ok(self
            .graph
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.name.clone(),
                    all[self.layout.state_off[i]..self.layout.state_off[i] + s.len].to_vec(),
                )
            })
            .collect())
    }

    fn slice_params(&self, all: &[f32]) -> Vec<(String, Vec<f32>)> {
        self.graph
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let o = self.layout.param_off[i];
                (p.name.clone(), all[o..o + p.shape.numel(0)].to_vec())
            })
            .collect()
    }

    /// A host copy of everything training changes on the device: parameters, optimizer
    /// moments, running statistics, and the step counter.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        let n = self.layout.params_len;
        Ok(Snapshot {
            params: self.backend.read(buf::PARAMS, 0, n)?,
            velocity: self.backend.read(buf::VELOCITY, 0, n)?,
            second_moment: if self.layout.second_moment {
                self.backend.read(buf::M2, 0, n)?
            } else {
                vec![]
            },
            state: self.backend.read(buf::STATE, 0, self.layout.state_len)?,
            step: self.step,
            applied_steps: self.step.saturating_sub(
                self.backend
                    .read(buf::METRICS, self.layout.clip_off() + plan::CLIP_SKIPPED, 1)?[0]
                    as u64,
            ),
            loss_scale: if self.layout.mixed.is_some() {
                self.backend.read(buf::METRICS, self.layout.amp_off(), 4)?
            } else {
                vec![]
            },
        })
    }

    /// Put a snapshot back (taken from this `Session` or one with the same model and
    /// optimizer).
    pub fn restore(&mut self, snap: &Snapshot) -> Result<()> {
        let n = self.layout.params_len;
        let want_m2 = if self.layout.second_moment { n } else { 0 };
        if snap.params.len() != n
            || snap.velocity.len() != n
            || snap.second_moment.len() != want_m2
            || snap.state.len() != self.layout.state_len
        {
            return Err(Error::Shape {
                context: "snapshot".into(),
                got: vec![
                    snap.params.len(),
                    snap.velocity.len(),
                    snap.second_moment.len(),
                    snap.state.len(),
                ],
                expected: format!(
                    "[{n}, {n}, {want_m2}, {}] (params, velocity, second moment, state)",
                    self.layout.state_len
                ),
            });
        }
        if snap.applied_steps > snap.step {
            return Err(Error::Shape {
                context: "snapshot step counts".into(),
                got: vec![snap.step as usize, snap.applied_steps as usize],
                expected: "applied_steps <= step".into(),
            });
        }
        // The device keys dropout by a u32 step and counts skipped steps in f32 (exact to
        // 2^24).
        if snap.step > u32::MAX as u64 || snap.step - snap.applied_steps > 1 << 24 {
            return Err(Error::Shape {
                context: "snapshot step counts (step, skipped steps)".into(),
                got: vec![
                    snap.step as usize,
                    (snap.step - snap.applied_steps) as usize,
                ],
                expected: format!("step <= {} and at most 2^24 skipped steps", u32::MAX),
            });
        }
        if self.layout.mixed.is_some() && snap.loss_scale.len() == 4 {
            let a = &snap.loss_scale;
            let pow2 = |x: f32| x.is_finite() && x > 0.0 && x.to_bits() & 0x7F_FFFF == 0;
            let ok = pow2(a[0])
                && a[0] >= 1.0
                && a[1] == 1.0 / a[0]
                && a[2] >= 0.0
                && a[2].fract() == 0.0
                && a[3] >= 0.0
                && a[3].fract() == 0.0
                && a[3] as u64 <= snap.step - snap.applied_steps;
            if !ok {
                return Err(Error::NonFiniteParameter {
                    tensor: "optimizer.loss_scale".into(),
                    what: "loss-scaling state (S a power of two >= 1, 1/S, counts)",
                    index: 0,
                    value: a[0],
                });
            }
        }
        for (what, flat) in [
            ("values", &snap.params),
            ("momentum (first moment)", &snap.velocity),
            ("second moment", &snap.second_moment),
        ] {
            if flat.is_empty() {
                continue;
            }
            for (name, v) in self.slice_params(flat) {
                check_finite_tensor(&name, what, &v)?;
            }
        }
        for (i, st) in self.graph.states.iter().enumerate() {
            let o = self.layout.state_off[i];
            check_finite_tensor(&st.name, "values", &snap.state[o..o + st.len])?;
        }
        self.backend.write(buf::PARAMS, 0, &snap.params)?;
        self.backend.write(buf::VELOCITY, 0, &snap.velocity)?;
        if want_m2 > 0 {
            self.backend.write(buf::M2, 0, &snap.second_moment)?;
        }
        self.backend.write(buf::STATE, 0, &snap.state)?;
        // A snapshot without loss-scaling state (f32, or an older checkpoint) keeps the
        // current one.
        if self.layout.mixed.is_some() && snap.loss_scale.len() == 4 {
            self.backend
                .write(buf::METRICS, self.layout.amp_off(), &snap.loss_scale)?;
        }
        self.step = snap.step;
        let skipped = snap.step - snap.applied_steps;
        self.backend.write(
            buf::METRICS,
            self.layout.clip_off() + plan::CLIP_SKIPPED,
            &[skipped as f32],
        )?;
        self.skipped_known = skipped;
        // Overflow skips (amp[3]): the snapshot's, or the state kept when it has none.
        let overflows = match (&self.layout.mixed, snap.loss_scale.get(3)) {
            (None, _) => 0.0,
            (Some(_), Some(&n)) => n,
            (Some(_), None) => self
                .backend
                .read(buf::METRICS, self.layout.amp_off() + 3, 1)?[0],
        };
        self.nonfinite_known = skipped.saturating_sub(overflows as u64);
        Ok(())
    }

    /// [`Session::restore`], keeping the step counter: the snapshot's parameters, optimizer
    /// moments, running statistics and skipped-step counts come back, and steps go on
    /// counting from the current one (restoring the best weights at the end of training).
    pub fn restore_keeping_step(&mut self, snap: &Snapshot) -> Result<()> {
        let step = self.step;
        self.restore(snap)?;
        self.step = step;
        Ok(())
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

    /// Overwrite one parameter by name.
    pub fn set_param(&mut self, name: &str, values: &[f32]) -> Result<()> {
        let (i, p) = self
            .graph
            .params
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
            .ok_or_else(|| Error::Graph(format!("no parameter named {name:?}")))?;
        if values.len() != p.shape.numel(0) {
            return Err(Error::Shape {
                context: format!("parameter {name}"),
                got: vec![values.len()],
                expected: format!("{} values", p.shape.numel(0)),
            });
        }
        check_finite_tensor(name, "values", values)?;
        let off = self.layout.param_off[i];
        self.backend.write(buf::PARAMS, off, values)
    }

    /// Wait for all submitted steps.
    pub fn sync(&mut self) -> Result<()> {
        self.backend.sync()
    }
}

/// Every value finite, else a named error with the tensor, which values and the index.
pub(crate) fn check_finite_tensor(tensor: &str, what: &'static str, v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFiniteParameter {
            tensor: tensor.into(),
            what,
            index,
            value: v[index],
        }),
        None => Ok(()),
    }
}
