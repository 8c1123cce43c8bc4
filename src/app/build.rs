//! What a [`RunConfig`] builds from the library: the optimizer, the norm penalty, the
//! arithmetic, the monitor mode, the augmentation pipeline and the model.

use super::config::{RunConfig, bad};
use crate::error::Result;
use crate::kernels::loss::Loss;
use crate::nn::Sequential;
use crate::nn::augment::Augment;
use crate::optim::{Adam, Optimizer, Regularizer, Sgd};
use crate::task::Task;
use crate::train::callbacks::MonitorMode;

impl RunConfig {
    /// The arithmetic of this config (mixed: PyTorch GradScaler's loss-scale defaults);
    /// [`RunConfig::validate`] has checked the name.
    pub fn precision(&self) -> crate::optim::Precision {
        self.train.precision.parse().unwrap_or_default()
    }

    /// The optimizer of this config.
    pub fn optimizer(&self) -> Result<Optimizer> {
        let o = &self.optimizer;
        let clip_norm = (o.clip_norm > 0.0).then_some(o.clip_norm);
        let clip_value = (o.clip_value > 0.0).then_some((-o.clip_value, o.clip_value));
        Ok(match o.kind.as_str() {
            "sgd" => Sgd {
                lr: o.lr,
                momentum: o.momentum,
                nesterov: o.nesterov,
                weight_decay: o.weight_decay,
                clip_norm,
                clip_value,
                clip_per_tensor: false,
            }
            .into(),
            "adam" | "adamw" => Adam {
                lr: o.lr,
                beta1: o.beta1,
                beta2: o.beta2,
                eps: o.eps,
                weight_decay: o.weight_decay,
                decoupled: o.kind == "adamw",
                clip_norm,
                clip_value,
                clip_per_tensor: false,
            }
            .into(),
            other => {
                return Err(bad(
                    "optimizer.kind",
                    format!("{other:?}"),
                    "sgd, adam or adamw",
                ));
            }
        })
    }

    /// The norm penalty of this config, if any.
    pub fn regularizer(&self) -> Result<Option<Regularizer>> {
        let r = &self.regularizer;
        Ok(match r.kind.as_str() {
            "none" => None,
            "l2" => Some(Regularizer::l2(r.lambda)),
            "l1" => Some(Regularizer::l1(r.lambda)),
            "elastic_net" => Some(Regularizer::ElasticNet {
                lambda: r.lambda,
                beta: r.beta,
            }),
            other => {
                return Err(bad(
                    "regularizer.kind",
                    format!("{other:?}"),
                    "none, l2, l1 or elastic_net",
                ));
            }
        })
    }

    /// The loss of this config: `loss.kind` (`auto`: the task's usual loss) with its
    /// settings. Errors: a kind that does not fit the task (cross_entropy is multiclass,
    /// bce_with_logits binary or multilabel, mse / mae / huber regression), settings of
    /// another kind, unknown kinds. Vector lengths and ranges are checked when the model
    /// is built.
    pub fn loss(&self) -> Result<Loss> {
        let l = &self.loss;
        let kind = match (l.kind.as_str(), self.task) {
            ("auto", Task::Multiclass) => "cross_entropy",
            ("auto", Task::Binary | Task::Multilabel) => "bce_with_logits",
            ("auto", Task::Regression) => "mse",
            (k, _) => k,
        };
        let fits = match kind {
            "cross_entropy" => self.task == Task::Multiclass,
            "bce_with_logits" => matches!(self.task, Task::Binary | Task::Multilabel),
            "mse" | "mae" | "huber" => self.task == Task::Regression,
            other => {
                return Err(bad(
                    "loss.kind",
                    format!("{other:?}"),
                    "auto, cross_entropy, bce_with_logits, mse, mae or huber",
                ));
            }
        };
        if !fits {
            return Err(bad(
                "loss.kind",
                format!("{kind:?} with task = {:?}", self.task.name()),
                "cross_entropy for multiclass, bce_with_logits for binary and multilabel, mse, mae or huber for regression",
            ));
        }
        if kind != "cross_entropy" && (l.label_smoothing != 0.0 || !l.class_weights.is_empty()) {
            return Err(bad(
                "loss.label_smoothing / loss.class_weights",
                format!("set with loss {kind:?}"),
                "cross_entropy settings only with cross_entropy",
            ));
        }
        if kind != "bce_with_logits" && !l.pos_weight.is_empty() {
            return Err(bad(
                "loss.pos_weight",
                format!("set with loss {kind:?}"),
                "pos_weight only with bce_with_logits",
            ));
        }
        let some = |v: &Vec<f32>| (!v.is_empty()).then(|| v.clone());
        Ok(match kind {
            "cross_entropy" => Loss::CrossEntropy {
                label_smoothing: l.label_smoothing,
                class_weights: some(&l.class_weights),
            },
            "bce_with_logits" => Loss::BceWithLogits {
                pos_weight: some(&l.pos_weight),
            },
            "mae" => Loss::Mae,
            "huber" => Loss::Huber { delta: l.delta },
            _ => Loss::Mse,
        })
    }

    /// The early-stopping / checkpoint monitor mode.
    pub fn monitor_mode(&self) -> MonitorMode {
        match self.train.mode.as_str() {
            "min" => MonitorMode::Min,
            "max" => MonitorMode::Max,
            _ => MonitorMode::Auto,
        }
    }

    /// The augmentation pipeline, given the training split's (mean, std); `None` without
    /// an `[augment]` table.
    pub fn augment(&self, mean: f32, std: f32) -> Option<Augment> {
        let a = self.augment.as_ref()?;
        let mut aug = if a.preset == "w-cnn" {
            Augment::w_cnn(mean, std)
        } else {
            Augment::default().standardize(mean, std)
        };
        if a.rotation > 0.0 {
            aug = aug.rotate(a.rotation);
        }
        if a.translate > 0.0 {
            aug = aug.translate(a.translate, a.translate);
        }
        if a.zoom > 0.0 {
            aug.zoom = (1.0 - a.zoom, 1.0 + a.zoom);
        }
        if a.zoom_y > 0.0 {
            aug.zoom_y = Some((1.0 - a.zoom_y, 1.0 + a.zoom_y));
        }
        if a.shear > 0.0 {
            aug.shear = (-a.shear, a.shear);
        }
        if a.shear_y > 0.0 {
            aug.shear_y = (-a.shear_y, a.shear_y);
        }
        if a.hflip > 0.0 {
            aug.hflip = a.hflip;
        }
        if a.noise_std > 0.0 {
            aug.noise_std = a.noise_std;
        }
        if a.cutout > 0 {
            aug.cutout_size = a.cutout;
            aug.cutout_p = 0.5;
        }
        Some(aug)
    }

    /// The model (without the augmentation layer) for `features` inputs of shape `image`
    /// (channels, height, width) and `classes` output units (the classes, 1 for binary,
    /// one per label or regression target), ending in [`RunConfig::loss`].
    pub fn model(&self, image: (usize, usize, usize), classes: usize) -> Result<Sequential> {
        Ok(self.layers(image, classes)?.loss(self.loss()?))
    }

    fn layers(&self, image: (usize, usize, usize), classes: usize) -> Result<Sequential> {
        let m = &self.model;
        let (c, h, w) = image;
        Ok(match m.preset.as_str() {
            "w-mlp" if c * h * w == 784 && classes == 10 => Sequential::w_mlp(m.dropout),
            "w-cnn" if (c, h, w) == (1, 28, 28) && classes == 10 => Sequential::w_cnn(m.dropout),
            "w-mlp" | "w-cnn" => {
                return Err(bad(
                    "model.preset",
                    format!(
                        "{:?} for {c}×{h}×{w} inputs and {classes} classes",
                        m.preset
                    ),
                    "28×28 grayscale inputs and 10 classes for the presets (use \"mlp\")",
                ));
            }
            _ => {
                let mut s = Sequential::new(c * h * w);
                if m.input_dropout > 0.0 {
                    s = s.dropout(m.input_dropout);
                }
                for &width in &m.hidden {
                    s = s.linear(width);
                    if m.batch_norm {
                        s = s.batch_norm();
                    }
                    s = match m.activation.as_str() {
                        "tanh" => s.tanh(),
                        "sigmoid" => s.sigmoid(),
                        _ => s.relu(),
                    };
                    if m.dropout > 0.0 {
                        s = s.dropout(m.dropout);
                    }
                }
                s.linear(classes)
            }
        })
    }
}
