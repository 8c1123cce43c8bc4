//! shadeprop: neural-network training with the regularization toolkit, on any GPU wgpu
//! reaches (WGSL compute shaders) and on a CPU reference backend that replays the same
//! plan.

pub mod backend;
pub mod error;
pub mod rng;

pub use error::{Error, Result};
pub mod graph;
pub mod nn;
pub mod optim;
pub mod session;
pub mod data;
pub mod train;
