//! Diagnosing vanishing and exploding activations and gradients on one batch
//! ([`Session::probe`], [`ProbeReport`]).

use super::{Metrics, Session};
use crate::error::Result;
use crate::plan::{self, Mode, Probe, buf};

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

impl Session {
    /// Diagnose vanishing / exploding activations and gradients on one batch: a training-mode
    /// forward and backward pass (no update; the step does not advance) with statistics of
    /// every activation, gradient and weight computed on the device and read back at once.
    pub fn probe(&mut self, x: &[f32], y: &[f32]) -> Result<ProbeReport> {
        let b = self.check_batch(x, y, None, "probe batch")?;
        let id = self.program(Mode::Probe, b)?;
        self.upload(x, y, None)?;
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
}
