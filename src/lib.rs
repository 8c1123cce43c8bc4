//! shadeprop: neural-network training in Rust with the regularization toolkit, on any GPU
//! wgpu reaches (WGSL compute shaders) and on CPU backends that replay the same plan —
//! reference kernels that every GPU kernel is checked against, and a fast path for machines
//! without a GPU.
//!
//! It trains multiclass, binary and multi-label classifiers and regression models on images
//! and tables, with L1/L2/elastic-net penalties, coupled and decoupled weight decay,
//! dropout variants, batch normalization, gradient clipping, early stopping with Keras'
//! semantics, GPU augmentation, initialization schemes, and seeded splits with
//! standardization fitted on the training split only.
//!
//! # Quickstart
//!
//! ```
//! use shadeprop::data::{Dataset, Scaler};
//! use shadeprop::nn::Sequential;
//! use shadeprop::optim::Sgd;
//! use shadeprop::session::Session;
//! use shadeprop::train::{callbacks::EarlyStopping, evaluate, fit::{FitConfig, Trainer}, EpochConfig};
//!
//! # fn main() -> shadeprop::Result<()> {
//! // 512 samples of 8 features, classes 0 and 1 (a seeded normal draw, shifted by the class).
//! let rng = shadeprop::rng::Rng::new(1);
//! let y: Vec<f32> = (0..512).map(|i| (i % 2) as f32).collect();
//! let x: Vec<f32> = (0..512 * 8).map(|i| rng.normal(9, 0, i as u32) + 1.5 * y[i / 8]).collect();
//! let (mut train, mut val) = Dataset::new(x, y, 8, 2)?.split(0.25, /* seed */ 0)?;
//! let scaler = Scaler::fit_per_feature(&train)?;       // fitted on the training split only
//! scaler.apply(&mut train)?;
//! scaler.apply(&mut val)?;
//!
//! let (backend, why) = shadeprop::backend::open("auto")?;   // a hardware GPU, else the fast CPU backend
//! println!("{why}");
//! let model = Sequential::new(8).linear(32).batch_norm().relu().dropout(0.2).linear(2);
//! let mut s = Session::builder(model.build()?)         // named settings, defaults for the rest
//!     .backend(backend)
//!     .optimizer(Sgd::w_mlp())
//!     .seed(0)                                          // init, dropout and shuffling
//!     .max_batch(64)
//!     .build()?;
//! let epoch = EpochConfig { batch_size: 64, ..Default::default() };
//! let trainer = Trainer::new(FitConfig { epochs: 20, epoch, ..Default::default() });   // prints a line per epoch
//! let mut early = EarlyStopping::new("val_loss").patience(3).restore_best_weights(true);
//! let history = trainer.fit(&mut s, &train, Some(&val), &mut [&mut early])?;
//! let v = evaluate(&mut s, &val, 64)?;
//! println!("best epoch {:?}: validation accuracy {:.3}", history.best_epoch, v.accuracy);
//! # Ok(())
//! # }
//! ```
//!
//! # Where things are
//!
//! What users build on: [`nn`] (layers, `Sequential`), [`graph`] (the functional
//! builder), [`session`], [`optim`], [`data`], [`train`] (the loop, callbacks,
//! checkpoints), [`metrics`] (host-side evaluation metrics) and [`backend::open`]. The
//! internals that tests and new backends drive — [`kernels`] (the kernel ABI), [`plan`]
//! (lowering a graph to a program) and [`backend::check`] (the equivalence harness) — are
//! documented but not a stable API; the CPU kernel functions are private to the CPU
//! backend.
//!
//! # Cargo features
//!
//! - `cli` (default): the `shadeprop` command and `app` (run configs, sweeps,
//!   diagnosis); clap, toml, and the three features below.
//! - `plots`: learning curves, the augmentation preview and sweep plots (plotters).
//! - `image-folders`: datasets from folders of PNG/JPEG images (`data::folder`).
//! - `ctrlc`: Ctrl-C writes an interrupt checkpoint
//!   (`train::interrupt::install_sigint_handler`).
//!
//! With `default-features = false` the library keeps training, data (IDX, CSV),
//! checkpoints and the CPU and GPU backends.
//!
//! # The guide
//!
//! The repository's `README.md` (installation, the two commands, the command line,
//! concepts, limitations) and its `docs/` folder (the training loop, the regularization
//! toolkit and its formulas, tasks and losses, images and augmentation, mixed precision,
//! the command line, backends, errors, benchmarks, internals, tests) are the user guide;
//! their Rust snippets are compiled as doc-tests of this crate.
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
/// The JSON crate of [`train::checkpoint::save_weights`]' `info` argument and of
/// checkpoint metadata, re-exported so that callers need no dependency of their own.
pub use serde_json;
pub mod data;
pub mod graph;
pub mod kernels;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod plan;
pub mod session;
pub mod train;

/// The Rust snippets of `README.md` and of the `docs/` pages, compiled (and, unless marked
/// `no_run`, run) as doc-tests; never built into the library.
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/library.md")]
    struct Library;
    #[doc = include_str!("../docs/training-loop.md")]
    struct TrainingLoop;
    #[doc = include_str!("../docs/regularization.md")]
    struct Regularization;
    #[doc = include_str!("../docs/mixed-precision.md")]
    struct MixedPrecision;
    #[doc = include_str!("../docs/sequences.md")]
    struct Sequences;
    #[cfg(feature = "image-folders")]
    #[doc = include_str!("../docs/images.md")]
    struct Images;
}
