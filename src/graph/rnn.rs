//! Recurrent layers for the graph builder: LSTM and GRU (PyTorch's `nn.LSTM` / `nn.GRU`,
//! batch-first) with Keras' variational `dropout` / `recurrent_dropout`, PyTorch's
//! between-layer `dropout`, and masking of padded steps.
//!
//! A sequence batch is `[batch, T·F]`: each row holds T steps of F features, step-major
//! (a row-major `[N, T, F]` array). A layer lowers to: (input dropout, one mask per
//! sequence shared by the T steps) → `xp = x·W_ih` as one matmul over the N·T step rows →
//! one fused kernel per step (recurrent matmul, gates, state update) → the sequence of
//! hidden states `[batch, T·H]`. See `shaders/rnn.wgsl` for the formulas.

use super::builder::GraphBuilder;
use super::init::Init;
use super::{DropoutKind, Op, ParamInfo, Rows, Segment, Shape, TensorId};
use crate::error::{Error, Result};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RnnCell {
    /// PyTorch's `nn.LSTM` cell: gates i, f, g, o.
    Lstm,
    /// PyTorch's `nn.GRU` cell (Keras' `reset_after=True`): gates r, z, n.
    Gru,
}

impl RnnCell {
    /// Gates per unit: 4 (LSTM) or 3 (GRU).
    pub fn gates(self) -> usize {
        match self {
            RnnCell::Lstm => 4,
            RnnCell::Gru => 3,
        }
    }
    /// PyTorch's module name.
    pub fn torch_name(self) -> &'static str {
        match self {
            RnnCell::Lstm => "LSTM",
            RnnCell::Gru => "GRU",
        }
    }
}

/// Options of a recurrent layer ([`GraphBuilder::rnn`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnOpts {
    /// LSTM or GRU.
    pub cell: RnnCell,
    /// H: hidden units.
    pub hidden: usize,
    /// Stacked layers (PyTorch's `num_layers`).
    pub layers: usize,
    /// Keras' `dropout`: inverted dropout on each stacked layer's input, one mask per
    /// sequence reused at every step (training only). One mask serves all gates (Keras 3
    /// draws one per gate when `recurrent_dropout` > 0; see docs/sequences.md).
    pub input_dropout: f32,
    /// Keras' `recurrent_dropout`: inverted dropout on the state entering the recurrent
    /// matmul, one mask per sequence reused at every step (training only; variational,
    /// Gal & Ghahramani 2016), shared by all gates.
    pub recurrent_dropout: f32,
    /// PyTorch's `dropout`: ordinary dropout on the outputs of every stacked layer but
    /// the last.
    pub dropout: f32,
    /// Keras' `Masking(mask_value)`: a step whose input features all equal this value is
    /// padding: the state is carried through it unchanged and it adds no gradient.
    pub mask_value: Option<f32>,
    /// Initialization of the input weights W_ih (and of W_hh when `recurrent_init` is
    /// `None`); `None` is PyTorch's default, U(−1/√H, 1/√H) for every weight and bias.
    /// Setting it starts the biases at zero.
    pub init: Option<Init>,
    /// Initialization of the recurrent weights W_hh, e.g. [`Init::Orthogonal`] (Keras'
    /// default for them); `None` follows `init`.
    pub recurrent_init: Option<Init>,
}

impl RnnOpts {
    /// One layer of `hidden` units, no dropout, no masking, PyTorch's initialization.
    pub fn new(cell: RnnCell, hidden: usize) -> Self {
        RnnOpts {
            cell,
            hidden,
            layers: 1,
            input_dropout: 0.0,
            recurrent_dropout: 0.0,
            dropout: 0.0,
            mask_value: None,
            init: None,
            recurrent_init: None,
        }
    }
}

fn check_p(name: &'static str, p: f32) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::Hyperparameter {
            name,
            value: p.to_string(),
            expected: "0 <= p < 1",
        })
    }
}

impl GraphBuilder {
    /// A recurrent layer (or a stack of `opts.layers`) over `x [batch, T·F]` with
    /// `steps` = T; returns the last layer's hidden states at every step, `[batch, T·H]`
    /// (PyTorch's `output` of a batch-first `nn.LSTM`, flattened per sample). The initial
    /// state is zero ([`GraphBuilder::rnn_with_state`] takes one). Parameters are named and laid out as PyTorch's:
    /// `<name>.weight_ih_l<k>` `[G·H, F]`, `<name>.weight_hh_l<k>` `[G·H, H]`,
    /// `<name>.bias_ih_l<k>`, `<name>.bias_hh_l<k>` `[G·H]` (stored transposed, as linear
    /// weights are); weights are decayed, biases not.
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not a batch or its columns are not a multiple of
    /// `steps`; [`Error::Hyperparameter`] for 0 hidden units, steps or layers, a dropout
    /// probability outside [0, 1), or a non-finite mask value.
    pub fn rnn(
        &mut self,
        x: TensorId,
        steps: usize,
        opts: &RnnOpts,
        name: &str,
    ) -> Result<TensorId> {
        self.rnn_masked_by(x, steps, opts, name, x)
    }

    /// [`GraphBuilder::rnn`] with the padding flags taken from `mask_from` (a
    /// `[batch, T·F']` sequence of the same T, e.g. the model's input) rather than from x:
    /// how a mask carries through stacked recurrent layers built one by one (Keras passes
    /// a `Masking` layer's mask down every recurrent layer after it). Without
    /// `opts.mask_value` it is [`GraphBuilder::rnn`].
    ///
    /// # Errors
    /// Those of [`GraphBuilder::rnn`], and [`Error::Shape`] when `mask_from` is not a
    /// batch of T steps.
    pub fn rnn_masked_by(
        &mut self,
        x: TensorId,
        steps: usize,
        opts: &RnnOpts,
        name: &str,
        mask_from: TensorId,
    ) -> Result<TensorId> {
        self.rnn_full(x, steps, opts, name, mask_from, None)
    }

    /// [`GraphBuilder::rnn`] from a given initial state (PyTorch's `nn.LSTM(x, (h0, c0))`,
    /// `nn.GRU(x, h0)`; Keras' `initial_state`): `state [batch, layers·S]` holds, for each
    /// stacked layer k in order, its S values: h_0 then c_0 (S = 2H) for the LSTM, h_0
    /// (S = H) for the GRU. The state may be any tensor of the graph (columns of the input
    /// through [`GraphBuilder::columns`], the output of an encoder); its gradient flows
    /// back into it. Under recurrent dropout the initial h enters the recurrent matmul
    /// masked, as every later state does; padded first steps carry it unchanged.
    ///
    /// # Errors
    /// Those of [`GraphBuilder::rnn`], and [`Error::Shape`] when `state` is not a batch of
    /// `layers·S` columns.
    pub fn rnn_with_state(
        &mut self,
        x: TensorId,
        steps: usize,
        opts: &RnnOpts,
        name: &str,
        state: TensorId,
    ) -> Result<TensorId> {
        self.rnn_full(x, steps, opts, name, x, Some(state))
    }

    /// The general form of [`GraphBuilder::rnn`]: the padding flags from `mask_from` (as
    /// [`GraphBuilder::rnn_masked_by`]; e.g. the token ids before an embedding, with
    /// `opts.mask_value` 0 for Keras' `mask_zero`) and an optional initial state (as
    /// [`GraphBuilder::rnn_with_state`]).
    ///
    /// # Errors
    /// Those of [`GraphBuilder::rnn_masked_by`] and [`GraphBuilder::rnn_with_state`].
    pub fn rnn_full(
        &mut self,
        x: TensorId,
        steps: usize,
        opts: &RnnOpts,
        name: &str,
        mask_from: TensorId,
        state: Option<TensorId>,
    ) -> Result<TensorId> {
        let cols = self.need_batch(x, &format!("{name} input"))?;
        if opts.hidden == 0 || opts.layers == 0 {
            let (what, v) = if opts.hidden == 0 {
                ("rnn.hidden", opts.hidden)
            } else {
                ("rnn.layers", opts.layers)
            };
            return Err(Error::Hyperparameter {
                name: what,
                value: v.to_string(),
                expected: "at least 1",
            });
        }
        // W_hh alone holds G·H² values: a width past the parameter limit is refused before
        // any size is computed from it.
        if opts.hidden >= crate::limits::MAX_PARAMS {
            let h = opts.hidden as u128;
            return Err(Error::too_large(
                "rnn.hidden",
                opts.hidden,
                (opts.cell.gates() as u128 * 4).checked_mul(h * h),
                format!(
                    "fewer than {} (2^24) parameters in the model",
                    crate::limits::MAX_PARAMS
                ),
            ));
        }
        let state_width = match opts.cell {
            RnnCell::Lstm => 2 * opts.hidden,
            RnnCell::Gru => opts.hidden,
        };
        if let Some(s) = state {
            let sc = self.need_batch(s, &format!("{name} initial state"))?;
            if Some(sc) != opts.layers.checked_mul(state_width) || sc == 0 {
                return Err(Error::Shape {
                    context: format!("{name} initial state"),
                    got: vec![0, sc],
                    expected: format!(
                        "[batch, layers·S] = [batch, {}·{state_width}]: per layer h_0{} of {} units",
                        opts.layers,
                        if opts.cell == RnnCell::Lstm {
                            " then c_0"
                        } else {
                            ""
                        },
                        opts.hidden
                    ),
                });
            }
        }
        let bad = |name, value: usize, expected| {
            Err(Error::Hyperparameter {
                name,
                value: value.to_string(),
                expected,
            })
        };
        if steps == 0 {
            return bad("rnn.steps", steps, "at least 1 time step");
        }
        if cols % steps != 0 || cols == 0 {
            return Err(Error::Shape {
                context: format!("{name} input ({steps} time steps)"),
                got: vec![0, cols],
                expected: format!(
                    "[batch, T·F] with T = {steps}: a positive multiple of {steps} columns"
                ),
            });
        }
        let mask_cols = self.need_batch(mask_from, &format!("{name} mask source"))?;
        if steps > 0 && (mask_cols % steps != 0 || mask_cols == 0) {
            return Err(Error::Shape {
                context: format!("{name} mask source ({steps} time steps)"),
                got: vec![0, mask_cols],
                expected: format!("[batch, T·F] with T = {steps}"),
            });
        }
        check_p("rnn.dropout", opts.dropout)?;
        if opts.layers == 1 && opts.dropout > 0.0 {
            // PyTorch warns and ignores it; here it is refused rather than ignored.
            return Err(Error::Hyperparameter {
                name: "rnn.dropout",
                value: format!("{} with 1 layer", opts.dropout),
                expected: "0 with one layer: it applies between stacked layers (use input_dropout or recurrent_dropout)",
            });
        }
        check_p("rnn.input_dropout", opts.input_dropout)?;
        check_p("rnn.recurrent_dropout", opts.recurrent_dropout)?;
        if let Some(v) = opts.mask_value
            && !v.is_finite()
        {
            return Err(Error::Hyperparameter {
                name: "rnn.mask_value",
                value: v.to_string(),
                expected: "a finite value",
            });
        }
        let (h, gh) = (opts.hidden, opts.cell.gates() * opts.hidden);
        let k = 1.0 / (h as f32).sqrt();
        let init = opts.init.unwrap_or(Init::Uniform { low: -k, high: k });
        let features0 = mask_cols / steps;
        let mut seq = x;
        for l in 0..opts.layers {
            let f = self.g.shape(seq).cols / steps;
            if l > 0 && opts.dropout > 0.0 {
                seq = self.dropout(seq, opts.dropout)?;
            }
            let stream = self.next_stream;
            self.next_stream += 1;
            // This layer's initial state: its S columns of the given one.
            let layer_state = state.map(|s| {
                if opts.layers == 1 {
                    s
                } else {
                    self.g.add_node(
                        Op::SliceCols {
                            start: l * state_width,
                            len: state_width,
                        },
                        vec![s],
                        &[Shape::batch(state_width)],
                    )[0]
                }
            });
            let mut aux_in = vec![mask_from];
            aux_in.extend(layer_state);
            let aux = self.g.add_node(
                Op::RnnAux {
                    steps,
                    hidden: h,
                    gates: opts.cell.gates(),
                    features: features0,
                    p: opts.recurrent_dropout,
                    stream,
                    mask_value: opts.mask_value,
                },
                aux_in,
                &[Shape::batch(3 * h + steps)],
            )[0];
            let xin = if opts.input_dropout > 0.0 {
                self.dropout_draws(seq, opts.input_dropout, DropoutKind::Inverted, 1, f)?
            } else {
                seq
            };
            let rows = Shape {
                rows: Rows::BatchTimes(steps),
                cols: f,
            };
            let xr = self.g.add_node(Op::Reshape, vec![xin], &[rows])[0];
            let weight = |b: &mut Self, which: &str, inp: usize, init: Init| {
                let mut p = ParamInfo::single(
                    format!("{name}.weight_{which}_l{l}"),
                    Shape::fixed(inp, gh),
                    init,
                    true,
                );
                p.segments[0].torch_shape = Some(vec![gh, inp]);
                b.param(p)
            };
            let w_ih = weight(self, "ih", f, init)?;
            let w_hh = weight(self, "hh", h, opts.recurrent_init.unwrap_or(init))?;
            let bias_init = if opts.init.is_some() {
                Init::Zeros
            } else {
                Init::Uniform { low: -k, high: k }
            };
            let seg = |which: &str| Segment {
                name: format!("{name}.bias_{which}_l{l}"),
                len: gh,
                init: bias_init,
                torch_shape: None,
            };
            let biases = self.param(ParamInfo {
                name: format!("{name}.bias_l{l}"),
                shape: Shape::fixed(2, gh),
                decay: false,
                regularizer: None,
                segments: vec![seg("ih"), seg("hh")],
            })?;
            let xp = self.g.add_node(
                Op::MatMul {
                    ta: false,
                    tb: false,
                },
                vec![xr, w_ih],
                &[Shape {
                    rows: Rows::BatchTimes(steps),
                    cols: gh,
                }],
            )[0];
            seq = self.g.add_node(
                Op::Rnn {
                    cell: opts.cell,
                    steps,
                    hidden: h,
                },
                [xp, w_hh, biases, aux]
                    .into_iter()
                    .chain(layer_state)
                    .collect(),
                &[
                    Shape::batch(steps * h),
                    Shape::batch(steps * 5 * h),
                    Shape::batch(steps * h),
                ],
            )[0];
        }
        Ok(seq)
    }

    /// Columns `[start, start + len)` of every row of a batch `x` (e.g. one part of an
    /// input row that holds several: a sequence and an initial state). Its gradient puts
    /// dy back in those columns.
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not a batch, `len` is 0 or the columns exceed x's.
    pub fn columns(&mut self, x: TensorId, start: usize, len: usize) -> Result<TensorId> {
        let cols = self.need_batch(x, "columns input")?;
        if len == 0 || start.checked_add(len).is_none_or(|end| end > cols) {
            return Err(Error::Shape {
                context: format!("columns {start}..{}", start.saturating_add(len)),
                got: vec![0, cols],
                expected: format!("a non-empty range within the {cols} columns"),
            });
        }
        Ok(self
            .g
            .add_node(Op::SliceCols { start, len }, vec![x], &[Shape::batch(len)])[0])
    }

    /// The last `len` columns of every row: the hidden state at the last step of a
    /// sequence output `[batch, T·H]` with `len` = H (PyTorch's `output[:, -1]`; with
    /// masking, the state after the last unpadded step, which padded steps carry).
    ///
    /// # Errors
    /// [`Error::Shape`] when x is not a batch of at least `len` columns, or `len` is 0.
    pub fn last_step(&mut self, x: TensorId, len: usize) -> Result<TensorId> {
        let cols = self.need_batch(x, "last step input")?;
        if len == 0 || len > cols || cols % len != 0 {
            return Err(Error::Shape {
                context: "last step".into(),
                got: vec![0, cols],
                expected: format!("[batch, T·{len}] (a sequence of {len}-wide steps)"),
            });
        }
        Ok(self.g.add_node(
            Op::SliceCols {
                start: cols - len,
                len,
            },
            vec![x],
            &[Shape::batch(len)],
        )[0])
    }
}
