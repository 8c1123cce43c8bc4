//! Training over a [`Session`](crate::session::Session): the epoch loop ([`epoch`]), the
//! record of a run ([`history`]), the [`fit::Trainer`] with [`callbacks`], [`checkpoint`]s,
//! metric logs and learning-curve [`plot`]s, and the Ctrl-C flag ([`interrupt`]).

pub mod callbacks;
pub mod checkpoint;
pub mod epoch;
pub mod fit;
pub mod history;
pub mod interrupt;
#[cfg(feature = "plots")]
pub mod plot;

pub use epoch::{
    EpochConfig, EpochStats, Event, evaluate, evaluate_held_out, train_epoch, train_epoch_with,
};
pub use history::{EpochLog, History};
