//! Inference: raw outputs for any number of rows ([`Session::predict`]), probabilities or
//! values by task ([`Session::predict_proba`], [`Session::predict_classes`]) and Monte
//! Carlo dropout ([`Session::predict_mc`], [`McPrediction`]).

use super::Session;
use crate::backend::Globals;
use crate::error::{Error, Result};
use crate::kernels::softmax_xent::MetricSums;
use crate::plan::{Mode, buf};
use crate::task::Task;

/// Result of [`Session::predict_mc`]: per row and output, row-major [rows, classes]
/// (`classes` is the number of outputs: classes, labels, or regression targets).
#[derive(Clone, Debug, PartialEq)]
pub struct McPrediction {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub classes: usize,
}

/// The model's outputs turned into what its task predicts, in place, rows of `k`:
/// softmax for multiclass, the logistic sigmoid for binary and multi-label, unchanged for
/// regression. Computed in f64 from f32 outputs.
pub fn link(task: Task, z: &mut [f32], k: usize) {
    match task {
        Task::Multiclass => {
            for row in z.chunks_mut(k.max(1)) {
                let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let tot: f64 = row.iter().map(|&v| (v as f64 - mx).exp()).sum();
                for v in row.iter_mut() {
                    *v = ((*v as f64 - mx).exp() / tot) as f32;
                }
            }
        }
        Task::Binary | Task::Multilabel => {
            for v in z.iter_mut() {
                *v = (1.0 / (1.0 + (-(*v as f64)).exp())) as f32;
            }
        }
        Task::Regression => {}
    }
}

/// Class labels from [`Session::predict_proba`]'s output `p` (rows of `k`): the arg-max
/// class for multiclass (the first on ties), `p > threshold` per output for binary and
/// multi-label (as 0/1). Regression has no classes: [`Error::Hyperparameter`].
pub fn classes_from(task: Task, p: &[f32], k: usize, threshold: f32) -> Result<Vec<f32>> {
    match task {
        Task::Multiclass => Ok(p
            .chunks(k.max(1))
            .map(|row| {
                let mut best = 0;
                for (j, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = j;
                    }
                }
                best as f32
            })
            .collect()),
        Task::Binary | Task::Multilabel => Ok(p
            .iter()
            .map(|&v| if v > threshold { 1.0 } else { 0.0 })
            .collect()),
        Task::Regression => Err(Error::Hyperparameter {
            name: "task",
            value: "regression".into(),
            expected: "a classification task to predict class labels",
        }),
    }
}

impl Session {
    /// Inference-mode raw outputs [b, k] for a batch (logits for classification, values
    /// for regression; waits for the device). Targets are not needed; the evaluation
    /// metrics are left untouched.
    pub fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        self.logits(x, Mode::Eval, self.step as u32)
    }

    /// What the task predicts, [b, k] ([`link`]): class probabilities (softmax) for
    /// multiclass, P(y = 1) per output (sigmoid) for binary and multi-label, values for
    /// regression. Errors as [`Session::predict`].
    pub fn predict_proba(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let mut z = self.predict(x)?;
        let k = self.graph.outputs();
        link(self.graph.task(), &mut z, k);
        Ok(z)
    }

    /// Class labels `[b]` (multiclass: the arg-max class) or `[b, k]` 0/1 decisions (binary
    /// and multi-label: probability > 0.5, Keras' threshold). Regression is refused.
    pub fn predict_classes(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let task = self.graph.task();
        if task == Task::Regression {
            return classes_from(task, &[], 1, 0.5);
        }
        let p = self.predict_proba(x)?;
        classes_from(task, &p, self.graph.outputs(), 0.5)
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
        for (cols, vocab) in &self.token_columns {
            crate::data::check_token_ids(x, f, cols.clone(), *vocab, "predict input")?;
        }
        let saved = self.backend.read(
            buf::METRICS,
            self.layout.eval_metrics_off(),
            MetricSums::LEN,
        )?;
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
    /// training never reaches). Returns the predictive mean and variance, per row and
    /// output, of what the task predicts ([`link`]: softmax probabilities, sigmoid
    /// probabilities, or regression values): mean = (1/T) Σ p_t,
    /// var = (1/T) Σ (p_t − mean)².
    ///
    /// # Errors
    /// [`Error::Hyperparameter`] for `passes` outside 1 ..= 100000; those of
    /// [`Session::predict`]. (A model without dropout gives T identical passes: a
    /// variance of 0.)
    pub fn predict_mc(&mut self, x: &[f32], passes: usize) -> Result<McPrediction> {
        const MAX_MC_PASSES: usize = 100_000;
        if passes == 0 || passes > MAX_MC_PASSES {
            return Err(Error::Hyperparameter {
                name: "mc_dropout.passes",
                value: passes.to_string(),
                expected: "1 ..= 100000 passes",
            });
        }
        let mut sum: Vec<f64> = vec![];
        let mut sumsq: Vec<f64> = vec![];
        let classes = self.graph.outputs();
        let task = self.graph.task();
        for t in 0..passes {
            let mut z = self.logits(x, Mode::McEval, (1u32 << 31) + t as u32)?;
            if sum.is_empty() {
                sum = vec![0.0; z.len()];
                sumsq = vec![0.0; z.len()];
            }
            link(task, &mut z, classes);
            for (i, &p) in z.iter().enumerate() {
                let p = p as f64;
                sum[i] += p;
                sumsq[i] += p * p;
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
