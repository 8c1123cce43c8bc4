//! The recurrent-layer ABI (`shaders/rnn.wgsl`, formulas and layouts there; CPU twins in
//! `backend/cpu/rnn.rs`): PyTorch's `nn.LSTM` and `nn.GRU` cells (gate order i, f, g, o
//! and r, z, n; both bias vectors), unrolled one dispatch per time step.

params! {
    /// [`super::Kernel::RnnAux`], [`super::Kernel::LstmStep`], [`super::Kernel::GruStep`],
    /// [`super::Kernel::LstmStepBwd`], [`super::Kernel::GruStepBwd`] and
    /// [`super::Kernel::RnnBiasGrad`].
    ///
    /// # Shapes (N sequences of T steps, H hidden units, G gates: 4 LSTM, 3 GRU)
    /// - `RnnAux`: `ins = [x [N, T·F], state [N, S]]`, `outs = [aux [N, 3H + T]]`: the
    ///   recurrent-dropout mask (`scale` where kept, else 0; threshold 0 keeps all) keyed
    ///   by `(stream, step, n·H + j)`, then the step flags (0 at a padded step: every
    ///   feature equal to `mask_value`, when `masking`), then the initial state h_{-1},
    ///   c_{-1} (`[2H]`; from `state` when `state` is set — S = 2H values, h then c, for
    ///   the LSTM, H for the GRU — else zeros).
    /// - `LstmStep` / `GruStep` (step `t`): `ins = [xp [N·T, G·H], W_hh [H, G·H],
    ///   biases [2, G·H], aux]`, `outs = [hs [N, T·H], saved [N, T, 5, H], hprev [N, T, H]]`.
    /// - `LstmStepBwd` (step `t`, run from T − 1 down to 0): `ins = [dhs, W_hh, saved,
    ///   aux]`, `outs = [dgates [N·T, 4H], carry [N, 2H]]`.
    /// - `GruStepBwd`: `ins` as the LSTM's, `outs = [dxp [N·T, 3H], drec [N·T, 3H],
    ///   carry [N, H]]`.
    /// - `RnnBiasGrad`: `ins = [dxp, drec]`, `outs = [dbiases [2, G·H]]`.
    /// - `RnnStateGrad` (after step 0's backward): `ins = [drec, W_hh, aux, carry]`,
    ///   `outs = [dstate [N, S]]`: `dh_{-1} = carry_h + m ⊙ (drec_0·W_hhᵀ)`,
    ///   `dc_{-1} = carry_c`.
    pub struct RnnParams {
        /// N: sequences.
        batch: usize = 0,
        /// T: time steps.
        steps: usize = 1,
        /// H: hidden units.
        hidden: usize = 2,
        /// G: gates (4 LSTM, 3 GRU).
        gates: usize = 3,
        /// The time step of a step kernel.
        t: usize = 4,
        /// F: input features per step (`RnnAux`'s masking).
        features: usize = 5,
        /// Recurrent-dropout threshold ([`crate::rng::dropout_threshold`]; 0 keeps all).
        threshold: u32 = 6,
        /// The kept mask value: 1/(1 − p) in training (inverted dropout), 1 otherwise.
        scale: f32 = 7,
        /// The generator stream of the recurrent-dropout mask.
        stream: u32 = 8,
        /// Whether steps whose features all equal `mask_value` are padding.
        masking: bool = 9,
        mask_value: f32 = 10,
        /// An initial state is given (`RnnAux` reads it; the step kernels then run the
        /// recurrent matmul at t = 0 too).
        state: bool = 11,
    }
}

impl RnnParams {
    /// The width of an aux row: mask `[H]`, step flags `[T]`, initial h and c `[2H]`.
    pub fn aux_width(&self) -> usize {
        3 * self.hidden + self.steps
    }
    /// S, the initial-state values per sequence: h and c (2H) for the LSTM, h (H) for
    /// the GRU.
    pub fn state_width(&self) -> usize {
        if self.gates == 4 {
            2 * self.hidden
        } else {
            self.hidden
        }
    }
}
