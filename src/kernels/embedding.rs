//! The embedding ABI (`shaders/embedding.wgsl`; CPU twins in `backend/cpu/embedding.rs`):
//! PyTorch's `nn.Embedding` / Keras' `Embedding`, a table lookup of token ids.

params! {
    /// [`super::Kernel::Embedding`] and [`super::Kernel::EmbeddingBwd`] over P token
    /// positions (every id of the batch), a table of V rows of D values.
    ///
    /// # Shapes
    /// - `Embedding`: `ins = [ids [P], W [V, D]]`, `outs = [y [P, D]]`:
    ///   `y[p, d] = W[ids[p], d]` (ids are f32 holding integers in [0, V), checked on
    ///   the host before upload; any other value gives a zero row).
    /// - `EmbeddingBwd`: `ins = [ids [P], dy [P, D]]`, `outs = [dW [V, D]]`:
    ///   `dW[v, d] = Σ_{p : ids[p] = v} dy[p, d]`, summed in increasing p (no float
    ///   atomics, so the sum is the same on every backend and run).
    pub struct EmbeddingParams {
        /// P: token positions (batch · ids per sample).
        positions: usize = 0,
        /// D: values per embedding vector.
        dim: usize = 1,
        /// V: rows of the table.
        vocab: usize = 2,
    }
}

pub use crate::limits::token_index;
