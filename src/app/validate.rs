//! The check of every value of a [`RunConfig`]: the error names the field, the value and
//! what was expected.

use super::config::{RunConfig, bad};
use crate::error::{Error, Result};

fn one_of(name: &'static str, v: &str, allowed: &[&str], expected: &'static str) -> Result<()> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(bad(name, format!("{v:?}"), expected))
    }
}

fn rate(name: &'static str, p: f32) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(bad(name, p, "a rate in [0, 1)"))
    }
}

impl RunConfig {
    /// Check every value; the error names the field, the value and what was expected.
    pub fn validate(&self) -> Result<()> {
        crate::backend::check_name(&self.backend)?;
        let d = &self.data;
        one_of(
            "data.dataset",
            &d.dataset,
            &["mnist", "fashion-mnist", "folder", "csv"],
            "mnist, fashion-mnist, folder or csv",
        )?;
        if d.dataset == "csv" {
            let Some(csv) = &d.csv else {
                return Err(bad(
                    "data.csv",
                    "missing",
                    "a [data.csv] table (path, target, ...) with data.dataset = \"csv\"",
                ));
            };
            if csv.target.is_empty() {
                return Err(bad(
                    "data.csv.target",
                    "[]",
                    "the target column(s), e.g. target = [\"species\"]",
                ));
            }
            if !(0.0..1.0).contains(&d.test_fraction) || d.val_fraction + d.test_fraction >= 1.0 {
                return Err(bad(
                    "data.test_fraction",
                    d.test_fraction,
                    "a fraction in [0, 1) leaving training rows beside data.val_fraction",
                ));
            }
            if self.model.preset != "mlp" {
                return Err(bad(
                    "model.preset",
                    format!("{:?}", self.model.preset),
                    "\"mlp\" for tabular data (the presets take 28×28 images)",
                ));
            }
            if self.augment.is_some() {
                return Err(bad(
                    "augment",
                    "a table",
                    "no [augment] table for tabular data (augmentation warps images)",
                ));
            }
        } else if self.task != crate::task::Task::Multiclass {
            return Err(bad(
                "task",
                self.task,
                "multiclass for image datasets (their labels are classes); other tasks read data.dataset = \"csv\"",
            ));
        }
        self.loss()?;
        if !(0.0..1.0).contains(&d.val_fraction) {
            return Err(bad(
                "data.val_fraction",
                d.val_fraction,
                "a fraction in [0, 1)",
            ));
        }
        if d.image_size.contains(&0) {
            return Err(bad(
                "data.image_size",
                format!("{:?}", d.image_size),
                "[height, width], both >= 1",
            ));
        }
        if d.channels != 1 && d.channels != 3 {
            return Err(bad("data.channels", d.channels, "1 or 3"));
        }
        let m = &self.model;
        one_of(
            "model.preset",
            &m.preset,
            &["w-mlp", "w-cnn", "mlp"],
            "w-mlp, w-cnn or mlp",
        )?;
        one_of(
            "model.activation",
            &m.activation,
            &["relu", "tanh", "sigmoid"],
            "relu, tanh or sigmoid",
        )?;
        rate("model.dropout", m.dropout)?;
        rate("model.input_dropout", m.input_dropout)?;
        if m.hidden.contains(&0) {
            return Err(bad(
                "model.hidden",
                format!("{:?}", m.hidden),
                "widths >= 1",
            ));
        }
        let o = &self.optimizer;
        one_of(
            "optimizer.kind",
            &o.kind,
            &["sgd", "adam", "adamw"],
            "sgd, adam or adamw",
        )?;
        one_of(
            "optimizer.schedule",
            &o.schedule,
            &["constant", "cosine"],
            "constant or cosine",
        )?;
        if o.warmup_steps > 0 {
            crate::optim::Warmup::new(o.warmup_steps, o.warmup_start_factor)
                .validate()
                .map_err(|e| match e {
                    Error::Hyperparameter {
                        name: "warmup.steps",
                        value,
                        expected,
                    } => bad("optimizer.warmup_steps", value, expected),
                    Error::Hyperparameter {
                        value, expected, ..
                    } => bad("optimizer.warmup_start_factor", value, expected),
                    e => e,
                })?;
        }
        // One rule for both clipping settings: a finite value, 0 for off (an infinite one
        // would clip nothing, and WGSL does not promise IEEE infinities).
        if !(o.clip_norm >= 0.0 && o.clip_norm.is_finite()) {
            return Err(bad(
                "optimizer.clip_norm",
                o.clip_norm,
                "a finite value >= 0 (0 = off)",
            ));
        }
        if !(o.clip_value >= 0.0 && o.clip_value.is_finite()) {
            return Err(bad(
                "optimizer.clip_value",
                o.clip_value,
                "a finite value >= 0 (0 = off)",
            ));
        }
        self.optimizer()?.validate()?;
        let r = &self.regularizer;
        one_of(
            "regularizer.kind",
            &r.kind,
            &["none", "l2", "l1", "elastic_net"],
            "none, l2, l1 or elastic_net",
        )?;
        if let Some(reg) = self.regularizer()? {
            reg.validate()?;
        }
        if let Some(a) = &self.augment {
            one_of(
                "augment.preset",
                &a.preset,
                &["none", "w-cnn"],
                "none or w-cnn",
            )?;
            for (name, v, ok) in [
                (
                    "augment.rotation",
                    a.rotation,
                    (0.0..=180.0).contains(&a.rotation),
                ),
                (
                    "augment.translate",
                    a.translate,
                    (0.0..1.0).contains(&a.translate),
                ),
                // Scales in [1 − zoom, 1 + zoom], the smallest at least 0.001.
                ("augment.zoom", a.zoom, (0.0..=0.999).contains(&a.zoom)),
                (
                    "augment.zoom_y",
                    a.zoom_y,
                    (0.0..=0.999).contains(&a.zoom_y),
                ),
                ("augment.shear", a.shear, (0.0..89.0).contains(&a.shear)),
                (
                    "augment.shear_y",
                    a.shear_y,
                    (0.0..89.0).contains(&a.shear_y),
                ),
                ("augment.hflip", a.hflip, (0.0..=1.0).contains(&a.hflip)),
                (
                    "augment.noise_std",
                    a.noise_std,
                    a.noise_std >= 0.0 && a.noise_std.is_finite(),
                ),
            ] {
                if !ok {
                    return Err(bad(
                        name,
                        v,
                        "within its documented range (rotation [0, 180], translate [0, 1), zoom and zoom_y [0, 0.999], shear and shear_y [0, 89), hflip [0, 1], noise_std finite >= 0)",
                    ));
                }
            }
            if a.cutout > 65536 {
                return Err(bad("augment.cutout", a.cutout, "at most 65536 pixels"));
            }
            if m.preset != "w-cnn" {
                return Err(bad(
                    "augment",
                    format!("with model.preset {:?}", m.preset),
                    "augmentation only with an image model (model.preset = \"w-cnn\")",
                ));
            }
        }
        let t = &self.train;
        if t.epochs == 0 {
            return Err(bad("train.epochs", 0, ">= 1"));
        }
        if t.batch == 0 {
            return Err(bad("train.batch", 0, ">= 1"));
        }
        // What the run records: the loss, the task's device metric and, for tables (whose
        // runs compute them), the validation metrics from predictions.
        use crate::task::Task;
        let device: &[&str] = if self.task == Task::Regression {
            &["loss", "val_loss", "mae", "val_mae"]
        } else {
            &["loss", "val_loss", "accuracy", "val_accuracy"]
        };
        let predicted: Vec<String> = if d.dataset == "csv" {
            crate::metrics::task_metric_names(self.task, 0)
                .into_iter()
                .map(|n| format!("val_{n}"))
                .collect()
        } else {
            vec![]
        };
        if !device.contains(&t.monitor.as_str()) && !predicted.contains(&t.monitor) {
            return Err(Error::Hyperparameter {
                name: "train.monitor",
                value: format!("{:?} (task {})", t.monitor, self.task),
                expected: match (self.task == Task::Regression, d.dataset == "csv") {
                    (true, true) => {
                        "loss, val_loss, mae, val_mae, val_mse, val_root_mean_squared_error or val_r2_score"
                    }
                    (true, false) => "loss, val_loss, mae or val_mae",
                    (false, true) => {
                        "loss, val_loss, accuracy, val_accuracy, val_precision, val_recall, val_f1_score (and val_auc for binary and multilabel)"
                    }
                    (false, false) => "val_loss, val_accuracy, loss or accuracy",
                },
            });
        }
        if t.monitor.starts_with("val_") && d.val_fraction == 0.0 {
            return Err(bad(
                "train.monitor",
                format!("{:?} with data.val_fraction 0", t.monitor),
                "a validation split (data.val_fraction > 0) to monitor val_ metrics",
            ));
        }
        one_of(
            "train.mode",
            &t.mode,
            &["auto", "min", "max"],
            "auto, min or max",
        )?;
        if !(t.reduce_lr_factor >= 0.0 && t.reduce_lr_factor < 1.0) {
            return Err(bad(
                "train.reduce_lr_factor",
                t.reduce_lr_factor,
                "0 (off) or 0 < factor < 1",
            ));
        }
        if !(t.reduce_lr_min_lr >= 0.0 && t.reduce_lr_min_lr.is_finite()) {
            return Err(bad("train.reduce_lr_min_lr", t.reduce_lr_min_lr, ">= 0"));
        }
        if !(t.min_delta >= 0.0 && t.min_delta.is_finite()) {
            return Err(bad("train.min_delta", t.min_delta, "a finite value >= 0"));
        }
        if t.log_every == 0 {
            return Err(bad("train.log_every", 0, ">= 1"));
        }
        one_of(
            "train.precision",
            &t.precision,
            &["f32", "mixed"],
            "f32 or mixed",
        )?;
        Ok(())
    }
}
