//! What training changes on the device, seen from the host: parameter initialization and
//! penalty coefficients, reading parameters, momentum and running statistics, and the
//! [`Snapshot`] that saves and restores all of it.

use super::{Named, Session};
use crate::error::{Error, Result};
use crate::kernels::clip::ClipInfo;
use crate::plan::{self, buf};
use crate::rng::Rng;

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

impl Session {
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

    pub(super) fn write_penalty_coefficients(&mut self) -> Result<()> {
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

    /// Every parameter and running statistic finite (one readback), else
    /// [`Error::NonFiniteParameter`] naming the first tensor in model order.
    pub fn check_finite_parameters(&mut self) -> Result<()> {
        for (name, v) in self.params()? {
            check_finite_tensor(&name, "values", &v)?;
        }
        for (name, v) in self.state()? {
            match name.strip_suffix(".running_mean+running_var") {
                Some(prefix) => {
                    let (mean, var) = v.split_at(v.len() / 2);
                    check_finite_tensor(&format!("{prefix}.running_mean"), "values", mean)?;
                    check_finite_tensor(&format!("{prefix}.running_var"), "values", var)?;
                }
                None => check_finite_tensor(&name, "values", &v)?,
            }
        }
        Ok(())
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

    pub(super) fn slice_params(&self, all: &[f32]) -> Vec<(String, Vec<f32>)> {
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
                    .read(buf::METRICS, self.layout.clip_off() + ClipInfo::SKIPPED, 1)?[0]
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
    /// optimizer), after [`Session::check_snapshot`]: nothing is written when it fails.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<()> {
        self.check_snapshot(snap)?;
        let want_m2 = if self.layout.second_moment {
            self.layout.params_len
        } else {
            0
        };
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

    /// Whether [`Session::restore`] would take `snap`, writing nothing: the lengths of
    /// the [`Session`]'s layout ([`Error::Shape`]), step counts the device can hold, a
    /// loss-scaling state that is one, every value finite ([`Error::NonFiniteParameter`]),
    /// and running variances and second moments >= 0 ([`Error::ParameterDomain`]), each
    /// error naming the tensor and the index. What a snapshot read from a file (a
    /// callback's, restored only at the end of training) is checked with when it is read.
    pub fn check_snapshot(&self, snap: &Snapshot) -> Result<()> {
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
            let count = |x: f32| x >= 0.0 && x.fract() == 0.0;
            let checks = [
                (
                    pow2(a[0]) && a[0] >= 1.0,
                    "a loss scale S that is a power of two >= 1",
                ),
                (a[1] == 1.0 / a[0], "1/S after the loss scale S"),
                (count(a[2]), "a count of finite steps (a whole number >= 0)"),
                (
                    count(a[3]) && a[3] as u64 <= snap.step - snap.applied_steps,
                    "a count of overflow skips (a whole number >= 0, at most the skipped steps)",
                ),
            ];
            if let Some(index) = checks.iter().position(|(ok, _)| !ok) {
                return Err(Error::ParameterDomain {
                    tensor: "optimizer.loss_scale".into(),
                    index,
                    value: a[index] as f64,
                    expected: checks[index].1,
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
            let v = &snap.state[o..o + st.len];
            // A batch-norm layer's buffers by their own (PyTorch) names.
            match st.name.strip_suffix(".running_mean+running_var") {
                Some(prefix) => {
                    let (mean, var) = v.split_at(st.len / 2);
                    check_finite_tensor(&format!("{prefix}.running_mean"), "values", mean)?;
                    check_finite_tensor(&format!("{prefix}.running_var"), "values", var)?;
                }
                None => check_finite_tensor(&st.name, "values", v)?,
            }
        }
        check_domains(self, snap)
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
}

/// The values of a snapshot that have a domain besides being finite: batch-norm running
/// variances and Adam's second moments are >= 0 (a layer divides by the square root of the
/// one, Adam by that of the other: a negative value makes NaN, which a ReLU would then
/// hide). Errors: [`Error::ParameterDomain`] naming the tensor (`<layer>.running_var`, as
/// PyTorch names it) and the index within it.
fn check_domains(s: &Session, snap: &Snapshot) -> Result<()> {
    let negative = |v: &[f32]| v.iter().position(|&x| x < 0.0);
    for (i, st) in s.graph.states.iter().enumerate() {
        let Some(prefix) = st.name.strip_suffix(".running_mean+running_var") else {
            continue;
        };
        let o = s.layout.state_off[i];
        let c = st.len / 2;
        let var = &snap.state[o + c..o + 2 * c];
        if let Some(index) = negative(var) {
            return Err(Error::ParameterDomain {
                tensor: format!("{prefix}.running_var"),
                index,
                value: var[index] as f64,
                expected: "a running variance >= 0",
            });
        }
    }
    if !snap.second_moment.is_empty() {
        for (name, v) in s.slice_params(&snap.second_moment) {
            if let Some(index) = negative(&v) {
                return Err(Error::ParameterDomain {
                    tensor: format!("the second moment of {name}"),
                    index,
                    value: v[index] as f64,
                    expected: "a second moment >= 0 (a running mean of squared gradients)",
                });
            }
        }
    }
    Ok(())
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
