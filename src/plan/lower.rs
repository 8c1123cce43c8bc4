//! Lowering: each node of the graph becomes kernel invocations over tensor operands, one
//! small function per op family. Operands are still tensors here; [`super::alloc`] gives
//! them buffers.

use super::layout::{Layout, Mode, buf};
use crate::backend::Slice;
use crate::error::Result;
use crate::graph::RnnCell;
use crate::graph::{DropoutKind, Geom2d, Graph, Node, Op, TensorId};
use crate::kernels::augment::{AugmentParams, SPEC_LEN};
use crate::kernels::batchnorm::BatchNormParams;
use crate::kernels::conv::{ToNchwParams, ToNhwcParams, Window};
use crate::kernels::dropout::DropoutParams;
use crate::kernels::elementwise::{BiasGradParams, Len, SliceParams};
use crate::kernels::embedding::EmbeddingParams;
use crate::kernels::layernorm::LayerNormParams;
use crate::kernels::loss::{BceParams, Loss, RegressionParams};
use crate::kernels::matmul::MatMulParams;
use crate::kernels::rnn::RnnParams;
use crate::kernels::softmax_xent::{MetricSums, SoftmaxXentParams};
use crate::kernels::{Kernel, KernelParams, Words};
use crate::rng::dropout_threshold;

/// An operand before buffer assignment.
#[derive(Clone, Copy, Debug)]
pub(super) enum Operand {
    /// A tensor of the graph.
    T(TensorId),
    /// The packed f16 copy of a tensor (mixed precision).
    H(TensorId),
    /// A fixed range of a fixed buffer.
    Fixed(Slice),
}

/// A planned kernel invocation: its parameter words come from a typed parameter struct.
pub(super) struct Pre {
    pub kernel: Kernel,
    pub p: Words,
    pub ins: Vec<Operand>,
    pub outs: Vec<Operand>,
}

impl Pre {
    /// An invocation of `kernel` with the words of `params`.
    pub fn new(
        kernel: Kernel,
        params: &impl KernelParams,
        ins: Vec<Operand>,
        outs: Vec<Operand>,
    ) -> Self {
        Pre {
            kernel,
            p: params.to_words(),
            ins,
            outs,
        }
    }

    /// Retarget to another variant with new parameters (fusion, mixed precision).
    pub fn set(&mut self, kernel: Kernel, params: &impl KernelParams) {
        self.kernel = kernel;
        self.p = params.to_words();
    }
}

/// A fixed range as an operand.
pub(super) fn fixed(buf: usize, off: usize, len: usize) -> Operand {
    Operand::Fixed(Slice { buf, off, len })
}

/// What lowering one node needs to know of the program being built.
pub(super) struct Lowering<'a> {
    pub g: &'a Graph,
    pub layout: &'a Layout,
    pub mode: Mode,
    pub batch: usize,
    /// Offset of this mode's metrics slot in the METRICS buffer.
    pub metrics_off: usize,
    /// Tensors that are another tensor (a dropout that passes its input through).
    pub alias: Vec<Option<TensorId>>,
    pub pre: Vec<Pre>,
}

fn t(x: TensorId) -> Operand {
    Operand::T(x)
}

/// The one-element stand-in bound where a kernel's optional operand is absent.
fn dummy() -> Operand {
    fixed(buf::DUMMY, 0, 4)
}

impl Lowering<'_> {
    fn numel(&self, x: TensorId) -> usize {
        self.g.shape(x).numel(self.batch)
    }

    fn push(
        &mut self,
        kernel: Kernel,
        params: &impl KernelParams,
        ins: Vec<Operand>,
        outs: Vec<Operand>,
    ) {
        self.pre.push(Pre::new(kernel, params, ins, outs));
    }

    /// The loss-scaling state (S, 1/S, finite steps, overflow skips).
    pub fn amp(&self) -> Operand {
        fixed(buf::METRICS, self.layout.amp_off(), 4)
    }

    /// Lower one node.
    pub fn node(&mut self, node: &Node) -> Result<()> {
        let (ins, outs) = (&node.inputs[..], &node.outputs[..]);
        match node.op {
            Op::Input | Op::Labels | Op::Param(_) => {}
            Op::Linear => self.linear(ins, outs),
            Op::MatMul { ta, tb } => self.matmul(ta, tb, ins, outs),
            Op::Act(a) => self.push(
                Kernel::ActFwd(a),
                &Len {
                    n: self.numel(outs[0]),
                },
                vec![t(ins[0])],
                vec![t(outs[0])],
            ),
            Op::ActBwd(a) => self.push(
                Kernel::ActBwd(a),
                &Len {
                    n: self.numel(outs[0]),
                },
                vec![t(ins[0]), t(ins[1])],
                vec![t(outs[0])],
            ),
            Op::Add => self.push(
                Kernel::Add,
                &Len {
                    n: self.numel(outs[0]),
                },
                vec![t(ins[0]), t(ins[1])],
                vec![t(outs[0])],
            ),
            Op::Dropout {
                p,
                stream,
                kind,
                group,
                period,
            } => self.dropout(p, stream, kind, (group, period), ins, outs),
            Op::BatchNorm {
                eps,
                momentum,
                state,
                spatial,
            } => self.batch_norm(eps, momentum, state, spatial, ins, outs),
            Op::BatchNormBwd { spatial } => {
                let params = BatchNormParams {
                    rows: self.batch,
                    channels: self.g.shape(outs[0]).cols / spatial,
                    spatial,
                    ..Default::default()
                };
                self.push(
                    Kernel::BnBwd,
                    &params,
                    ins.iter().map(|&i| t(i)).collect(),
                    vec![t(outs[0]), t(outs[1])],
                );
            }
            Op::LayerNorm { eps } => {
                let params = LayerNormParams {
                    rows: self.batch,
                    features: self.g.shape(outs[0]).cols,
                    eps,
                };
                self.push(
                    Kernel::LnFwd,
                    &params,
                    vec![t(ins[0]), t(ins[1])],
                    vec![t(outs[0]), t(outs[1])],
                );
            }
            Op::Reshape => self.alias[outs[0]] = Some(ins[0]),
            Op::SliceCols { start, len } | Op::SliceColsBwd { start, len } => {
                let fwd = matches!(node.op, Op::SliceCols { .. });
                let params = SliceParams {
                    rows: self.g.shape(outs[0]).rows_at(self.batch),
                    cols: self.g.shape(if fwd { ins[0] } else { outs[0] }).cols,
                    start,
                    len,
                };
                let k = if fwd {
                    Kernel::SliceCols
                } else {
                    Kernel::SliceColsBwd
                };
                self.push(k, &params, vec![t(ins[0])], vec![t(outs[0])]);
            }
            Op::Embedding { vocab, dim } | Op::EmbeddingBwd { vocab, dim } => {
                let ids = self.g.shape(ins[0]);
                let params = EmbeddingParams {
                    positions: ids.rows_at(self.batch) * ids.cols,
                    dim,
                    vocab,
                };
                let k = if matches!(node.op, Op::Embedding { .. }) {
                    Kernel::Embedding
                } else {
                    Kernel::EmbeddingBwd
                };
                self.push(k, &params, vec![t(ins[0]), t(ins[1])], vec![t(outs[0])]);
            }
            Op::RnnAux {
                steps,
                hidden,
                gates,
                features,
                p,
                stream,
                mask_value,
            } => {
                // Recurrent dropout as Op::Dropout: a mask in training (and Monte Carlo
                // inference), all ones otherwise.
                let (threshold, scale) = if self.mode == Mode::Eval || p == 0.0 {
                    (0, 1.0)
                } else {
                    (dropout_threshold(p), 1.0 / (1.0 - p))
                };
                let params = RnnParams {
                    batch: self.batch,
                    steps,
                    hidden,
                    features,
                    threshold,
                    scale,
                    stream,
                    masking: mask_value.is_some(),
                    mask_value: mask_value.unwrap_or(0.0),
                    gates,
                    state: ins.len() > 1,
                    ..Default::default()
                };
                // Without a state, x again as the unread second operand.
                let state = t(*ins.get(1).unwrap_or(&ins[0]));
                self.push(
                    Kernel::RnnAux,
                    &params,
                    vec![t(ins[0]), state],
                    vec![t(outs[0])],
                );
            }
            Op::Rnn {
                cell,
                steps,
                hidden,
            } => {
                let kernel = match cell {
                    RnnCell::Lstm => Kernel::LstmStep,
                    RnnCell::Gru => Kernel::GruStep,
                };
                for step in 0..steps {
                    let params = RnnParams {
                        batch: self.batch,
                        steps,
                        hidden,
                        gates: cell.gates(),
                        t: step,
                        state: ins.len() > 4,
                        ..Default::default()
                    };
                    // The initial state (ins[4]) reaches the kernels through aux.
                    self.push(
                        kernel,
                        &params,
                        ins[..4].iter().map(|&i| t(i)).collect(),
                        outs.iter().map(|&o| t(o)).collect(),
                    );
                }
            }
            Op::RnnBwd {
                cell,
                steps,
                hidden,
            } => {
                // outs = [dxp, drec, dbiases, carry]; the LSTM's drec is its dxp.
                let (kernel, step_outs) = match cell {
                    RnnCell::Lstm => {
                        self.alias[outs[1]] = Some(outs[0]);
                        (Kernel::LstmStepBwd, vec![t(outs[0]), t(outs[3])])
                    }
                    RnnCell::Gru => (Kernel::GruStepBwd, vec![t(outs[0]), t(outs[1]), t(outs[3])]),
                };
                let base = RnnParams {
                    batch: self.batch,
                    steps,
                    hidden,
                    gates: cell.gates(),
                    ..Default::default()
                };
                for step in (0..steps).rev() {
                    let params = RnnParams { t: step, ..base };
                    self.push(
                        kernel,
                        &params,
                        ins.iter().map(|&i| t(i)).collect(),
                        step_outs.clone(),
                    );
                }
                self.push(
                    Kernel::RnnBiasGrad,
                    &base,
                    vec![t(outs[0]), t(outs[1])],
                    vec![t(outs[2])],
                );
                if let Some(&dstate) = outs.get(4) {
                    // ins = [dhs, W_hh, saved, aux]; drec is the LSTM's dgates (outs[0]).
                    let drec = match cell {
                        RnnCell::Lstm => outs[0],
                        RnnCell::Gru => outs[1],
                    };
                    self.push(
                        Kernel::RnnStateGrad,
                        &base,
                        vec![t(drec), t(ins[1]), t(ins[3]), t(outs[3])],
                        vec![t(dstate)],
                    );
                }
            }
            Op::LayerNormBwd => {
                let params = LayerNormParams {
                    rows: self.batch,
                    features: self.g.shape(outs[0]).cols,
                    ..Default::default()
                };
                // ins = [x, dy, γβ, saved]
                self.push(
                    Kernel::LnBwdParams,
                    &params,
                    vec![t(ins[0]), t(ins[1]), t(ins[3])],
                    vec![t(outs[1])],
                );
                self.push(
                    Kernel::LnBwdX,
                    &params,
                    ins.iter().map(|&i| t(i)).collect(),
                    vec![t(outs[0])],
                );
            }
            Op::BiasGrad => {
                let params = BiasGradParams {
                    rows: self.g.shape(ins[0]).rows_at(self.batch),
                    cols: self.g.shape(outs[0]).cols,
                };
                self.push(Kernel::BiasGrad, &params, vec![t(ins[0])], vec![t(outs[0])]);
            }
            Op::Augment {
                c,
                h,
                w,
                state,
                stream,
                random,
            } => self.augment(c, h, w, state, stream, random, ins, outs),
            Op::Im2Col(geom) => self.window(Kernel::Im2Col, geom, ins, outs),
            Op::Col2Im(geom) => self.window(Kernel::Col2Im, geom, ins, outs),
            Op::MaxPool(geom) => self.window(Kernel::MaxPoolFwd, geom, ins, outs),
            Op::MaxPoolBwd(geom) => self.window(Kernel::MaxPoolBwd, geom, ins, outs),
            Op::AvgPool(geom) => self.window(Kernel::AvgPoolFwd, geom, ins, outs),
            Op::AvgPoolBwd(geom) => self.window(Kernel::AvgPoolBwd, geom, ins, outs),
            Op::ToNchw { spatial, channels } => {
                let params = ToNchwParams {
                    batch: self.batch,
                    spatial,
                    channels,
                    bias: ins.len() > 1,
                    relu: false,
                };
                let bias = ins.get(1).map(|&b| t(b)).unwrap_or(dummy());
                self.push(
                    params.kernel(),
                    &params,
                    vec![t(ins[0]), bias],
                    vec![t(outs[0])],
                );
            }
            Op::ToNhwc { spatial, channels } => {
                let params = ToNhwcParams {
                    batch: self.batch,
                    spatial,
                    channels,
                };
                self.push(Kernel::ToNhwc, &params, vec![t(ins[0])], vec![t(outs[0])]);
            }
            Op::Loss { ref loss, weights } => self.loss(loss, weights, ins, outs),
        }
        Ok(())
    }

    /// `y = x·W (+ b)`.
    fn linear(&mut self, ins: &[TensorId], outs: &[TensorId]) {
        let s_w = self.g.shape(ins[1]);
        let mm = MatMulParams {
            m: self.batch,
            n: s_w.cols,
            k: s_w.rows_at(self.batch),
            bias: ins.len() > 2,
            ..Default::default()
        };
        let bias = ins.get(2).map(|&b| t(b)).unwrap_or(dummy());
        self.push(
            mm.kernel(),
            &mm,
            vec![t(ins[0]), t(ins[1]), bias],
            vec![t(outs[0])],
        );
    }

    /// `C = op(A)·op(B)` (the weight and input gradients of a linear layer).
    fn matmul(&mut self, ta: bool, tb: bool, ins: &[TensorId], outs: &[TensorId]) {
        let sa = self.g.shape(ins[0]);
        let so = self.g.shape(outs[0]);
        let mm = MatMulParams {
            m: so.rows_at(self.batch),
            n: so.cols,
            k: if ta { sa.rows_at(self.batch) } else { sa.cols },
            ta,
            tb,
            ..Default::default()
        };
        self.push(
            mm.kernel(),
            &mm,
            vec![t(ins[0]), t(ins[1]), dummy()],
            vec![t(outs[0])],
        );
    }

    /// Dropout: a mask in training (and Monte Carlo inference); at inference, nothing for
    /// inverted dropout and the scale 1 − p for classic dropout.
    fn dropout(
        &mut self,
        p: f32,
        stream: u32,
        kind: DropoutKind,
        (group, period): (usize, usize),
        ins: &[TensorId],
        outs: &[TensorId],
    ) {
        let deterministic = self.mode == Mode::Eval;
        if p == 0.0 || (deterministic && kind == DropoutKind::Inverted) {
            self.alias[outs[0]] = Some(ins[0]);
            return;
        }
        let (threshold, scale) = if deterministic {
            // Classic dropout at inference: y = (1 − p)·x (threshold 0 keeps all).
            (0, 1.0 - p)
        } else if kind == DropoutKind::Inverted {
            (dropout_threshold(p), 1.0 / (1.0 - p))
        } else {
            (dropout_threshold(p), 1.0)
        };
        let params = DropoutParams {
            n: self.numel(outs[0]),
            threshold,
            scale,
            stream,
            group,
            period,
            row: if period > 0 {
                self.g.shape(outs[0]).cols
            } else {
                0
            },
        };
        self.push(Kernel::Dropout, &params, vec![t(ins[0])], vec![t(outs[0])]);
    }

    /// Batch norm: batch statistics (updating the running ones) when training, the
    /// running statistics at inference.
    fn batch_norm(
        &mut self,
        eps: f32,
        momentum: f32,
        state: usize,
        spatial: usize,
        ins: &[TensorId],
        outs: &[TensorId],
    ) {
        let c = self.g.shape(outs[0]).cols / spatial;
        let running = fixed(buf::STATE, self.layout.state_off[state], 2 * c);
        let params = BatchNormParams {
            rows: self.batch,
            channels: c,
            eps,
            momentum,
            spatial,
        };
        if !self.mode.inference() {
            self.push(
                Kernel::BnFwdTrain,
                &params,
                vec![t(ins[0]), t(ins[1])],
                vec![t(outs[0]), t(outs[1]), running],
            );
        } else {
            self.push(
                Kernel::BnFwdEval,
                &params,
                vec![t(ins[0]), t(ins[1]), running],
                vec![t(outs[0])],
            );
        }
    }

    /// Augmentation: the geometric warp then the photometric stage in training, only the
    /// photometric (standardization) at inference or when nothing is random.
    #[allow(clippy::too_many_arguments)]
    fn augment(
        &mut self,
        c: usize,
        h: usize,
        w: usize,
        state: usize,
        stream: u32,
        random: bool,
        ins: &[TensorId],
        outs: &[TensorId],
    ) {
        let spec = fixed(buf::STATE, self.layout.state_off[state], SPEC_LEN);
        let mut params = AugmentParams {
            batch: self.batch,
            channels: c,
            height: h,
            width: w,
            stream,
            train: false,
        };
        if self.mode.inference() || !random {
            self.push(
                Kernel::AugmentPhoto,
                &params,
                vec![t(ins[0]), spec],
                vec![t(outs[0])],
            );
        } else {
            params.train = true;
            self.push(
                Kernel::AugmentGeom,
                &params,
                vec![t(ins[0]), spec],
                vec![t(outs[1])],
            );
            self.push(
                Kernel::AugmentPhoto,
                &params,
                vec![t(outs[1]), spec],
                vec![t(outs[0])],
            );
        }
    }

    /// A kernel over a window geometry (im2col, col2im, pooling).
    fn window(&mut self, kernel: Kernel, g: Geom2d, ins: &[TensorId], outs: &[TensorId]) {
        let params = Window {
            batch: self.batch,
            g,
        };
        let def = kernel.def();
        self.push(
            kernel,
            &params,
            ins[..def.n_in].iter().map(|&i| t(i)).collect(),
            outs[..def.n_out].iter().map(|&o| t(o)).collect(),
        );
    }

    /// The loss and its gradient, then the metrics accumulation of this mode's slot.
    fn loss(&mut self, loss: &Loss, weights: Option<usize>, ins: &[TensorId], outs: &[TensorId]) {
        let cols = self.g.shape(ins[0]).cols;
        let width = self.g.shape(ins[1]).cols;
        let amp = self.amp();
        let w = match (weights, loss.weights()) {
            (Some(state), Some(v)) => fixed(buf::STATE, self.layout.state_off[state], v.len()),
            _ => dummy(),
        };
        let (z, labels) = (t(ins[0]), t(ins[1]));
        let outs_ops = vec![t(outs[0]), t(outs[1])];
        match *loss {
            Loss::CrossEntropy {
                label_smoothing,
                ref class_weights,
            } => {
                let params = SoftmaxXentParams {
                    rows: self.batch,
                    classes: cols,
                    width,
                    smoothing: label_smoothing,
                    weighted: class_weights.is_some(),
                };
                self.push(
                    Kernel::SoftmaxXent,
                    &params,
                    vec![z, labels, amp, w],
                    outs_ops,
                );
            }
            Loss::BceWithLogits { ref pos_weight } => {
                let params = BceParams {
                    rows: self.batch,
                    outputs: cols,
                    width,
                    pos_weighted: pos_weight.is_some(),
                };
                self.push(
                    Kernel::BceWithLogits,
                    &params,
                    vec![z, labels, amp, w],
                    outs_ops,
                );
            }
            Loss::Mse | Loss::Mae | Loss::Huber { .. } => {
                let (kind, delta) = match *loss {
                    Loss::Mae => (1, 0.0),
                    Loss::Huber { delta } => (2, delta),
                    _ => (0, 0.0),
                };
                let params = RegressionParams {
                    rows: self.batch,
                    outputs: cols,
                    width,
                    kind,
                    delta,
                };
                self.push(
                    Kernel::RegressionLoss,
                    &params,
                    vec![z, labels, amp],
                    outs_ops,
                );
            }
        }
        let slot = fixed(buf::METRICS, self.metrics_off, MetricSums::LEN);
        self.push(
            Kernel::MetricsAccum,
            &Len { n: self.batch },
            vec![t(outs[1])],
            vec![slot],
        );
    }
}
