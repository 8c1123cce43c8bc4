//! The metrics accumulated on the device ([`Metrics`]): reading them (waiting, or started
//! and finished without waiting), decoding the metrics buffer, and naming a non-finite
//! loss or gradient with the place it shows.

use super::Session;
use crate::error::{Error, Result};
use crate::kernels::clip::{ClipInfo, LossScaleState};
use crate::kernels::softmax_xent::MetricSums;
use crate::plan::{Mode, buf};

/// Metrics accumulated on the device since the last read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Mean loss over the samples seen (weighted by the sample weights, and by the
    /// targets' class weights for class-weighted cross-entropy).
    pub loss: f32,
    /// Classification: the fraction of samples whose arg-max logit is the label
    /// (multiclass), or of correct decisions at probability 0.5 (binary and multilabel,
    /// Keras' `binary_accuracy`); 0 for regression.
    pub accuracy: f32,
    /// Regression: the mean absolute error over the samples and outputs; 0 otherwise.
    pub mae: f32,
    /// Samples seen.
    pub samples: usize,
    /// The total weight of the samples seen (their number without sample or class
    /// weights): the denominator of `loss`, used to merge reads.
    pub weight: f32,
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

impl Session {
    /// Read and reset the training (`Mode::Train`) or evaluation metrics (waits for the
    /// device). Drops a read started by [`Session::start_metrics`] and not finished.
    pub fn take_metrics(&mut self, mode: Mode) -> Result<Metrics> {
        self.pending_metrics = None;
        let _ = self.backend.read_finish()?;
        // One readback holds both metric slots and the clip info.
        let all = self
            .backend
            .read(buf::METRICS, 0, self.layout.metrics_len())?;
        self.backend.write(
            buf::METRICS,
            self.metrics_off(mode),
            &[0.0; MetricSums::LEN],
        )?;
        self.metrics_from(&all, mode, self.step)
    }

    /// Start reading the metrics of `mode` without waiting for the device, and reset them
    /// there (in queue order, so no step is counted twice or lost): the device keeps
    /// working while the copy is in flight. [`Session::finish_metrics`] returns them.
    pub fn start_metrics(&mut self, mode: Mode) -> Result<()> {
        self.backend
            .read_start(buf::METRICS, 0, self.layout.metrics_len())?;
        self.backend.write(
            buf::METRICS,
            self.metrics_off(mode),
            &[0.0; MetricSums::LEN],
        )?;
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
        let m = MetricSums::read(&all[off..off + MetricSums::LEN]);
        let clip = ClipInfo::read(&all[self.layout.clip_off()..]);
        let scaling = self
            .layout
            .mixed
            .map(|_| LossScaleState::read(&all[self.layout.amp_off()..]));
        let n = m.samples.max(1.0);
        let metric = m.correct / n;
        let regression = self.graph.task() == crate::task::Task::Regression;
        let out = Metrics {
            // A zero total weight (no samples, or weights that are all 0) gives 0, a NaN
            // loss stays NaN.
            loss: m.loss / m.weight.max(f32::MIN_POSITIVE),
            accuracy: if regression { 0.0 } else { metric },
            mae: if regression { metric } else { 0.0 },
            weight: m.weight,
            samples: m.samples as usize,
            steps: m.steps as usize,
            grad_norm: clip.norm,
            penalty: clip.penalty,
            loss_scale: scaling.map_or(0.0, |a| a.scale),
            skipped_steps: clip.skipped as usize,
        };
        // Skipped steps in total, and those that were not f16 overflows the loss scale
        // absorbs (mixed precision counts those): every f32 skip, and a mixed skip at the
        // loss scale's floor of 1.
        let skipped = clip.skipped as u64;
        let overflows = scaling.map_or(0, |a| a.overflows as u64);
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
            let place = self.locate_non_finite().unwrap_or_default();
            let params_bad = place.contains("non-finite parameter");
            let what = if new_bad > 0 {
                let scale = if self.layout.mixed.is_some() {
                    " at the loss scale's floor of 1"
                } else {
                    ""
                };
                // Skipped updates keep the parameters; when those are not finite all the
                // same, an earlier update overflowed (a finite gradient times the rate).
                let state = if params_bad {
                    "the parameters were already not finite: an earlier update overflowed f32 (lower the learning rate)"
                } else {
                    "the parameters are those of the last finite step"
                };
                format!(
                    "{what} (the update of {new_bad} step(s) since the last read was skipped{scale}; {state})"
                )
            } else {
                what.to_string()
            };
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
    pub(super) fn locate_non_finite(&mut self) -> Result<String> {
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
}
