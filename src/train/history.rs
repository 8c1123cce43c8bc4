//! The record of a run: each epoch's metrics ([`EpochLog`]), the [`History`] of every
//! epoch, the recorded metrics with their direction of improvement, and their JSON and
//! CSV rows.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::task::Task;

/// The metrics of one epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochLog {
    /// 0-based epoch.
    pub epoch: u64,
    pub values: BTreeMap<String, f64>,
}

impl EpochLog {
    /// The value of metric `k` (`loss`, `val_accuracy`, …) in this epoch, if logged.
    pub fn get(&self, k: &str) -> Option<f64> {
        self.values.get(k).copied()
    }
}

/// Every epoch's metrics, and where early stopping ended and found its best.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochLog>,
    pub stopped_epoch: Option<u64>,
    pub best_epoch: Option<u64>,
}

impl History {
    /// One metric over the epochs (NaN where missing).
    pub fn metric(&self, k: &str) -> Vec<f64> {
        self.epochs
            .iter()
            .map(|e| e.get(k).unwrap_or(f64::NAN))
            .collect()
    }

    /// The history as JSON (every epoch's metrics, and where early stopping ended and found
    /// its best), as checkpoints store it.
    pub fn to_json(&self) -> Value {
        json!({
            "epochs": self.epochs.iter().map(|e| {
                let mut m: Map<String, Value> = e.values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                m.insert("epoch".into(), json!(e.epoch));
                Value::Object(m)
            }).collect::<Vec<_>>(),
            "stopped_epoch": self.stopped_epoch,
            "best_epoch": self.best_epoch,
        })
    }

    /// The inverse of [`History::to_json`]; None for JSON of another shape.
    pub fn from_json(v: &Value) -> Option<History> {
        let epochs = v["epochs"]
            .as_array()?
            .iter()
            .map(|e| {
                let o = e.as_object()?;
                let epoch = o.get("epoch")?.as_u64()?;
                let values = o
                    .iter()
                    .filter(|(k, _)| *k != "epoch")
                    .map(|(k, v)| Some((k.clone(), v.as_f64().unwrap_or(f64::NAN))))
                    .collect::<Option<_>>()?;
                Some(EpochLog { epoch, values })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(History {
            epochs,
            stopped_epoch: v["stopped_epoch"].as_u64(),
            best_epoch: v["best_epoch"].as_u64(),
        })
    }
}

/// The direction in which a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Larger is better (accuracy).
    Up,
    /// Smaller is better (losses).
    Down,
}

/// Every recorded metric with its declared direction of improvement (Keras' metric
/// `_direction`); None for quantities that are not objectives (throughput, learning rate,
/// gradient norm, time, loss scaling), which mode Auto refuses to monitor.
pub const METRICS: [(&str, Option<Direction>); 12] = [
    ("loss", Some(Direction::Down)),
    ("data_loss", Some(Direction::Down)),
    ("penalty", Some(Direction::Down)),
    ("accuracy", Some(Direction::Up)),
    ("val_loss", Some(Direction::Down)),
    ("val_accuracy", Some(Direction::Up)),
    ("lr", None),
    ("grad_norm", None),
    ("samples_per_sec", None),
    ("seconds", None),
    ("loss_scale", None),
    ("skipped_steps", None),
];

/// The evaluation metrics of [`crate::metrics::task_metrics`] (by their Keras names) that
/// [`METRICS`] does not list, with their direction of improvement: scores up, errors down
/// (`r2_score` is a score). A separate table so that [`METRICS`], whose names are the
/// columns of `metrics.csv`, keeps its 12 columns.
pub const EVAL_METRICS: [(&str, Direction); 9] = [
    ("precision", Direction::Up),
    ("recall", Direction::Up),
    ("f1_score", Direction::Up),
    ("auc", Direction::Up),
    ("sparse_top_k_categorical_accuracy", Direction::Up),
    ("mae", Direction::Down),
    ("mse", Direction::Down),
    ("root_mean_squared_error", Direction::Down),
    ("r2_score", Direction::Up),
];

/// The declared direction of a metric ([`METRICS`], then [`EVAL_METRICS`]), looked up (as
/// Keras 3 does) without a `val_` prefix; None for unknown names and metrics without a
/// direction.
pub fn metric_direction(name: &str) -> Option<Direction> {
    let base = name.strip_prefix("val_").unwrap_or(name);
    METRICS
        .iter()
        .find(|(n, _)| *n == base)
        .map(|(_, d)| *d)
        .or_else(|| {
            EVAL_METRICS
                .iter()
                .find(|(n, _)| *n == base)
                .map(|(_, d)| Some(*d))
        })
        .flatten()
}

pub(super) const COLUMNS: [&str; 12] = {
    let mut c = [""; 12];
    let mut i = 0;
    while i < 12 {
        c[i] = METRICS[i].0;
        i += 1;
    }
    c
};

/// The `metrics.csv` columns of a run of `task` with `outputs` output units: [`METRICS`],
/// then the task's own: `mae` for regression (the device's training metric), and the
/// validation metrics of [`crate::metrics::task_metrics`] that [`METRICS`] does not hold,
/// `val_`-prefixed, when `val` is set and `task_metrics` is on.
pub fn csv_columns(task: Task, outputs: usize, val: bool, task_metrics: bool) -> Vec<String> {
    let mut c: Vec<String> = COLUMNS.iter().map(|s| s.to_string()).collect();
    if task == Task::Regression {
        c.push("mae".into());
        if val {
            c.push("val_mae".into());
        }
    }
    if val && task_metrics {
        // The device already records accuracy (classification) and mae (regression).
        c.extend(
            crate::metrics::task_metric_names(task, outputs)
                .into_iter()
                .filter(|n| !matches!(*n, "accuracy" | "mae"))
                .map(|n| format!("val_{n}")),
        );
    }
    c
}

/// `v` in the shortest decimal form that reads back to it: as an `f32` when it is an `f32`
/// widened to `f64` (every metric the device measures: `0.1f32` prints `0.1`, not
/// `0.10000000149011612`), else as an `f64`. Non-finite values print as `NaN`, `inf` and
/// `-inf`.
pub fn shortest(v: f64) -> String {
    let f = v as f32;
    if f as f64 == v {
        f.to_string()
    } else {
        v.to_string()
    }
}

/// [`shortest`] as a JSON number (the `f64` nearest to that decimal, which serde_json
/// prints as it); null for a non-finite value, which JSON cannot hold.
pub fn shortest_json(v: f64) -> Value {
    shortest(v)
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map_or(Value::Null, |x| json!(x))
}

/// One CSV record, newline-terminated, written by the csv crate (a field holding a comma,
/// a quote or a line break is quoted).
pub(crate) fn csv_record<I, T>(fields: I) -> String
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(vec![]);
    // Cannot fail: one record (no length to disagree with), written into memory (no I/O).
    w.write_record(fields)
        .expect("a CSV record written into memory");
    String::from_utf8(w.into_inner().expect("a CSV record in memory"))
        .expect("CSV of UTF-8 fields is UTF-8")
}

/// An epoch's `metrics.csv` row: its 0-based epoch, then `columns` (empty where not
/// recorded), each value in its [`shortest`] form.
pub(super) fn csv_row(e: &EpochLog, columns: &[String]) -> String {
    let mut row = vec![e.epoch.to_string()];
    row.extend(
        columns
            .iter()
            .map(|c| e.get(c).map(shortest).unwrap_or_default()),
    );
    csv_record(row)
}

/// An epoch's `metrics.jsonl` line: its 0-based epoch and values ([`shortest_json`]).
pub(super) fn epoch_json(e: &EpochLog) -> Value {
    let mut m: Map<String, Value> = e
        .values
        .iter()
        .map(|(k, v)| (k.clone(), shortest_json(*v)))
        .collect();
    m.insert("epoch".into(), json!(e.epoch));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_in_their_shortest_round_trip_form() {
        // f32 values widened to f64: the f32's shortest form.
        assert_eq!(shortest(0.1f32 as f64), "0.1");
        assert_eq!(shortest(2.5e-3f32 as f64), "0.0025");
        assert_eq!(shortest(1.0f32 as f64), "1");
        // f64 values that are no f32: the f64's.
        assert_eq!(shortest(0.1), "0.1");
        assert_eq!(shortest(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(shortest(f64::NAN), "NaN");
        assert_eq!(shortest(f64::INFINITY), "inf");
        assert_eq!(shortest_json(0.1f32 as f64).to_string(), "0.1");
        assert_eq!(shortest_json(f64::NAN), Value::Null);
    }

    #[test]
    fn csv_records_quote_what_needs_it() {
        assert_eq!(csv_record(["a", "b"]), "a,b\n");
        assert_eq!(csv_record(["[128, 64]", "x"]), "\"[128, 64]\",x\n");
        assert_eq!(csv_record(["say \"hi\""]), "\"say \"\"hi\"\"\"\n");
        let e = EpochLog {
            epoch: 2,
            values: [("loss".to_string(), 0.1f32 as f64)].into_iter().collect(),
        };
        assert_eq!(
            csv_row(&e, &["loss".to_string(), "val_loss".to_string()]),
            "2,0.1,\n"
        );
    }
}
