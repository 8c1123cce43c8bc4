//! A run's checkpoint put back to use: a session with its weights, and its loss and
//! accuracy on a split.

use std::path::Path;

use super::config::RunConfig;
use super::prepare::{Prepared, prepare, session};
use crate::error::{Error, Result};
use crate::session::{Metrics, Session};
use crate::train::evaluate;

/// A session with the weights of `checkpoint`, and the data of `cfg`.
pub fn restore(cfg: &RunConfig, checkpoint: &Path) -> Result<(Session, Prepared)> {
    let p = prepare(cfg)?;
    let mut s = session(cfg, &p, false)?;
    crate::train::checkpoint::load(checkpoint, &mut s)?;
    Ok((s, p))
}

/// Loss and accuracy of a checkpoint on a split (`train`, `val` or `test`).
pub fn eval_checkpoint(cfg: &RunConfig, checkpoint: &Path, split: &str) -> Result<Metrics> {
    let (mut s, p) = restore(cfg, checkpoint)?;
    let ds = match split {
        "train" => &p.train,
        "val" => &p.val,
        "test" => &p.test,
        other => {
            return Err(Error::Hyperparameter {
                name: "split",
                value: other.into(),
                expected: "train, val or test",
            });
        }
    };
    if ds.is_empty() {
        return Err(Error::Empty {
            what: format!("the {split} split of {}", cfg.data.dir.display()),
            expected: match split {
                "val" => "a validation split (data.val_fraction > 0) with at least one image",
                _ => "at least one image to evaluate",
            }
            .into(),
        });
    }
    evaluate(&mut s, ds, 1000)
}
