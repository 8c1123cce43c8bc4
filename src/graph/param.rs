//! What a graph holds besides its nodes: trainable parameters (with their named parts and
//! initializers) and non-trainable persistent state.

use super::Shape;
use super::init::Init;
use crate::optim::Regularizer;

/// A named part of a parameter with its initializer.
#[derive(Clone, Debug)]
pub struct Segment {
    pub name: String,
    pub len: usize,
    pub init: Init,
    /// The shape PyTorch gives this tensor when it is not [out, in] (conv weights).
    pub torch_shape: Option<Vec<usize>>,
}

/// A trainable parameter. `segments` name its parts (a batch-norm parameter holds
/// gamma then beta, named like PyTorch's `N.weight` and `N.bias`).
#[derive(Clone, Debug)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Shape,
    /// Whether weight decay and the session's default penalty apply (weights yes; biases
    /// and batch-norm parameters no).
    pub decay: bool,
    /// A penalty for this parameter alone (Keras' kernel_regularizer / bias_regularizer);
    /// it overrides the session's default and applies even when `decay` is false.
    pub regularizer: Option<Regularizer>,
    pub segments: Vec<Segment>,
}

impl ParamInfo {
    pub(super) fn single(name: String, shape: Shape, init: Init, decay: bool) -> Self {
        let len = shape.numel(0);
        ParamInfo {
            segments: vec![Segment {
                name: name.clone(),
                len,
                init,
                torch_shape: None,
            }],
            name,
            shape,
            decay,
            regularizer: None,
        }
    }
}

/// Non-trainable persistent state (batch-norm running mean then running variance).
#[derive(Clone, Debug)]
pub struct StateInfo {
    pub name: String,
    pub len: usize,
    /// Initial value of each element.
    pub init: Vec<f32>,
}
