//! The library half of the `shadeprop` command: what it does, as library functions (so that
//! it is tested like the rest): one training run from a [`RunConfig`] into an output
//! folder, evaluation and prediction from a checkpoint, sweeps (grid and random search over
//! any config field), and the merge of trial folders into one table, plots, a single
//! test-set evaluation of the chosen trial, and a bias/variance diagnosis.
//!
//! The top layer: it uses the layers below it (train, session, data, nn, …), and none of
//! them uses it. One idea per file:
//!
//! - [`config`]: the run configuration (TOML) with its defaults; its checks
//!   ([`RunConfig::validate`], in `validate.rs`) and what it builds (optimizer, model, …,
//!   in `build.rs`) are methods of [`RunConfig`];
//! - [`overrides`]: fields set by dotted key (`--set`, sweep trials);
//! - [`prepare`](mod@prepare): the data and the session of a config;
//! - [`run`]: one training run into an output folder;
//! - [`folder`]: what a run folder holds, and `result.json`;
//! - [`eval`]: a checkpoint restored and evaluated;
//! - [`sweep`]: grid and random search, planned into trials;
//! - [`report`]: trial folders merged into a table, plots (`plot.rs`) and diagnoses;
//! - [`diagnose`](mod@diagnose): avoidable bias and variance, and the next step.

mod build;
pub mod config;
pub mod diagnose;
pub mod eval;
pub mod folder;
pub mod overrides;
mod plot;
pub mod prepare;
pub mod report;
pub mod run;
pub mod sweep;
mod validate;

pub use config::{
    AugmentConfig, DataConfig, ModelConfig, OptimConfig, RegConfig, RunConfig, TrainConfig,
};
pub use diagnose::{Diagnosis, Verdict, diagnose, diagnose_run};
pub use eval::{
    CsvPredictions, EvalReport, eval_checkpoint, eval_report, export_weights, mc_dropout,
    predict_csv, predict_images, restore,
};
pub use folder::{RunResult, Swept, config_beside, read_result};
pub use overrides::{load_with_overrides, set_path};
pub use prepare::{Prepared, Stored, prepare, prepare_with, session};
pub use report::{Summary, merge, print_summary};
pub use run::{TrainOptions, train, train_with};
pub use sweep::{ParamSpec, RangeSpec, SweepConfig, Trial, plan, run_sweep, write_plan};
