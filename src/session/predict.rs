//! Inference: logits for any number of rows ([`Session::predict`]) and Monte Carlo dropout
//! ([`Session::predict_mc`], [`McPrediction`]).

use super::Session;
use crate::backend::Globals;
use crate::error::{Error, Result};
use crate::kernels::softmax_xent::MetricSums;
use crate::plan::{Mode, buf};

/// Result of [`Session::predict_mc`]: per row and class, row-major [rows, classes].
#[derive(Clone, Debug, PartialEq)]
pub struct McPrediction {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub classes: usize,
}

impl Session {
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
            .read(buf::METRICS, self.layout.eval_metrics_off(), MetricSums::LEN)?;
        let mut out = vec![];
        for chunk in x.chunks(self.layout.max_batch * f) {
            let b = chunk.len() / f;
            self.upload(chunk, &vec![0f32; b * self.graph.targets()], None)?;
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
}
