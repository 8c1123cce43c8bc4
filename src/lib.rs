//! shadeprop: neural-network training with the regularization toolkit, on any GPU wgpu
//! reaches (WGSL compute shaders) and on a CPU reference backend that replays the same
//! plan.
//!
//! What users build on: [`nn`] (layers, `Sequential`), [`graph`] (the functional
//! builder), [`session`], [`optim`], [`data`], [`train`] (the loop, callbacks,
//! checkpoints), [`metrics`] (host-side evaluation metrics) and [`backend::open`]. The
//! internals that tests and new backends drive — [`kernels`] (the kernel ABI), [`plan`]
//! (lowering a graph to a program) and [`backend::check`] (the equivalence harness) — are
//! documented but not a stable API; the CPU kernel functions are private to the CPU
//! backend.
//!
//! The README follows (its snippets are compiled as doc tests).
#![doc = include_str!("../README.md")]
// `!(x > 0.0)` is used on purpose: it also rejects NaN hyperparameters.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// CPU twins index like their WGSL kernels do, so the two read side by side.
#![allow(clippy::needless_range_loop)]

#[cfg(feature = "cli")]
pub mod app;
pub mod backend;
pub mod error;
pub mod fs;
pub mod limits;
pub mod rng;
pub mod task;

pub use error::{Error, Result};
pub mod data;
pub mod graph;
pub mod kernels;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod plan;
pub mod session;
pub mod train;
