//! Run configuration files (TOML) for the `shadeprop` command line: everything a training
//! run needs — data, model, optimizer, regularizer, augmentation, training loop and early
//! stopping — with a default for every field, an error naming each unknown key, and a check
//! of every value before anything runs.
//!
//! ```toml
//! seed = 0
//! backend = "auto"             # auto | gpu | cpu | cpu-ref
//!
//! [data]
//! dataset = "mnist"            # mnist | fashion-mnist | folder
//! dir = "data/mnist"           # IDX files, or one sub-folder per class for "folder"
//! train_limit = 0              # use only the first N training images (0 = all)
//! val_fraction = 0.1           # seeded validation split of the training file
//! image_size = [28, 28]        # folder only: resized to (height, width)
//! channels = 1                 # folder only: 1 (grayscale) or 3 (RGB)
//!
//! [model]
//! preset = "w-mlp"             # w-mlp | w-cnn | mlp
//! hidden = [512, 512]          # mlp only: hidden widths
//! batch_norm = true            # mlp only
//! activation = "relu"          # mlp only: relu | tanh | sigmoid
//! dropout = 0.5                # rate of every dropout layer
//! input_dropout = 0.0          # mlp only: dropout on the inputs
//!
//! [optimizer]
//! kind = "sgd"                 # sgd | adam | adamw
//! lr = 0.05
//! momentum = 0.9               # sgd
//! nesterov = false             # sgd
//! beta1 = 0.9                  # adam, adamw
//! beta2 = 0.999
//! eps = 1e-8
//! weight_decay = 5e-4          # coupled L2 (sgd, adam) or decoupled (adamw), weights only
//! clip_norm = 1.0              # global-norm clipping (0 = off)
//! clip_value = 0.0             # clip every gradient to [-v, v] (0 = off)
//! schedule = "cosine"          # constant | cosine (per step, to 0 over the epochs)
//!
//! [regularizer]
//! kind = "none"                # none | l2 | l1 | elastic_net
//! lambda = 0.0                 # penalty (lambda / 2m)·‖W‖² (l2), (lambda / 2m)·‖W‖₁ (l1)
//! beta = 0.5                   # elastic_net: lambda·Σ (beta·|w| + (1 − beta)/2 · w²)
//!
//! [augment]                    # absent = no augmentation
//! preset = "none"              # none | w-cnn (rotation ±10°, translation ±2 px); default none
//! rotation = 0.0               # degrees, uniform in ±rotation
//! translate = 0.0              # fraction of width/height, uniform in ±translate
//! zoom = 0.0                   # scale uniform in [1 − zoom, 1 + zoom]
//! zoom_y = 0.0                 # > 0: height scale drawn on its own in [1 − zoom_y, 1 + zoom_y]
//! shear = 0.0                  # degrees along x, uniform in ±shear
//! shear_y = 0.0                # degrees along y, uniform in ±shear_y
//! hflip = 0.0                  # probability
//! noise_std = 0.0
//! cutout = 0                   # square size in pixels (0 = off), applied with probability 0.5
//!
//! [train]
//! epochs = 20
//! batch = 128
//! monitor = "val_loss"         # early stopping and best checkpoint
//! mode = "auto"                # auto | min | max
//! early_stopping = true        # false = no early stopping (patience is then unused)
//! patience = 5                 # Keras: 0 stops at the first epoch without improvement
//! min_delta = 0.0
//! baseline = nan               # optional (nan = none)
//! start_from_epoch = 0
//! restore_best_weights = true
//! log_every = 50               # steps between device metric reads
//! precision = "f32"            # f32 | mixed (f16 matmul operands, dynamic loss scaling)
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::Sequential;
use crate::nn::augment::Augment;
use crate::optim::{Adam, Optimizer, Regularizer, Sgd};
use crate::train::callbacks::MonitorMode;

fn bad(name: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::Hyperparameter {
        name,
        value: value.to_string(),
        expected,
    }
}

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub seed: u64,
    pub backend: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub optimizer: OptimConfig,
    pub regularizer: RegConfig,
    pub augment: Option<AugmentConfig>,
    pub train: TrainConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 0,
            backend: "auto".into(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            optimizer: OptimConfig::default(),
            regularizer: RegConfig::default(),
            augment: None,
            train: TrainConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dataset: String,
    pub dir: PathBuf,
    pub train_limit: usize,
    pub val_fraction: f32,
    pub image_size: [usize; 2],
    pub channels: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: "mnist".into(),
            dir: PathBuf::from("data/mnist"),
            train_limit: 0,
            val_fraction: 0.1,
            image_size: [28, 28],
            channels: 1,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub preset: String,
    pub hidden: Vec<usize>,
    pub batch_norm: bool,
    pub activation: String,
    pub dropout: f32,
    pub input_dropout: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            preset: "w-mlp".into(),
            hidden: vec![512, 512],
            batch_norm: true,
            activation: "relu".into(),
            dropout: 0.5,
            input_dropout: 0.0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub kind: String,
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub clip_norm: f32,
    pub clip_value: f32,
    pub schedule: String,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            kind: "sgd".into(),
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 5e-4,
            clip_norm: 1.0,
            clip_value: 0.0,
            schedule: "cosine".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegConfig {
    pub kind: String,
    pub lambda: f32,
    pub beta: f32,
}

impl Default for RegConfig {
    fn default() -> Self {
        RegConfig {
            kind: "none".into(),
            lambda: 0.0,
            beta: 0.5,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    pub preset: String,
    pub rotation: f32,
    pub translate: f32,
    pub zoom: f32,
    pub zoom_y: f32,
    pub shear: f32,
    pub shear_y: f32,
    pub hflip: f32,
    pub noise_std: f32,
    pub cutout: usize,
}

impl Default for AugmentConfig {
    /// The documented defaults: preset "none", every transform off.
    fn default() -> Self {
        AugmentConfig {
            preset: "none".into(),
            rotation: 0.0,
            translate: 0.0,
            zoom: 0.0,
            zoom_y: 0.0,
            shear: 0.0,
            shear_y: 0.0,
            hflip: 0.0,
            noise_std: 0.0,
            cutout: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: u64,
    pub batch: usize,
    pub monitor: String,
    pub mode: String,
    /// Whether early stopping runs at all (`patience` keeps Keras' meaning).
    pub early_stopping: bool,
    pub patience: u64,
    pub min_delta: f64,
    pub baseline: f64,
    pub start_from_epoch: u64,
    pub restore_best_weights: bool,
    pub log_every: usize,
    pub precision: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            batch: 128,
            monitor: "val_loss".into(),
            mode: "auto".into(),
            early_stopping: true,
            patience: 5,
            min_delta: 0.0,
            baseline: f64::NAN,
            start_from_epoch: 0,
            restore_best_weights: true,
            log_every: 50,
            precision: "f32".into(),
        }
    }
}

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
    /// Parse TOML text: unknown keys and wrongly typed values are errors naming the key
    /// (and line); then every value is checked ([`RunConfig::validate`]).
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let c: RunConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_path_buf(),
            msg: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Read and parse a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_toml(&text, path)
    }

    /// The config as TOML (every field, defaults included).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Check every value; the error names the field, the value and what was expected.
    pub fn validate(&self) -> Result<()> {
        one_of(
            "backend",
            &self.backend,
            &["auto", "gpu", "cpu", "cpu-ref"],
            "auto, gpu, cpu or cpu-ref",
        )?;
        let d = &self.data;
        one_of(
            "data.dataset",
            &d.dataset,
            &["mnist", "fashion-mnist", "folder"],
            "mnist, fashion-mnist or folder",
        )?;
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
        if !(o.clip_norm >= 0.0) {
            return Err(bad("optimizer.clip_norm", o.clip_norm, ">= 0 (0 = off)"));
        }
        if !(o.clip_value >= 0.0) {
            return Err(bad("optimizer.clip_value", o.clip_value, ">= 0 (0 = off)"));
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
                ("augment.zoom", a.zoom, (0.0..1.0).contains(&a.zoom)),
                ("augment.zoom_y", a.zoom_y, (0.0..1.0).contains(&a.zoom_y)),
                ("augment.shear", a.shear, (0.0..89.0).contains(&a.shear)),
                (
                    "augment.shear_y",
                    a.shear_y,
                    (0.0..89.0).contains(&a.shear_y),
                ),
                ("augment.hflip", a.hflip, (0.0..=1.0).contains(&a.hflip)),
                ("augment.noise_std", a.noise_std, a.noise_std >= 0.0),
            ] {
                if !ok {
                    return Err(bad(name, v, "within its documented range"));
                }
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
        one_of(
            "train.monitor",
            &t.monitor,
            &["val_loss", "val_accuracy", "loss", "accuracy"],
            "val_loss, val_accuracy, loss or accuracy",
        )?;
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
        if !(t.min_delta >= 0.0) {
            return Err(bad("train.min_delta", t.min_delta, ">= 0"));
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
    /// (channels, height, width) and `classes` outputs.
    pub fn model(&self, image: (usize, usize, usize), classes: usize) -> Result<Sequential> {
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

/// Set `key` (dotted path, e.g. `regularizer.lambda`) in a TOML table to `value`, creating
/// tables on the way; the result is then parsed as a [`RunConfig`], so that a sweep can
/// vary any field and a wrong key is reported by the same checks as a config file.
pub fn set_path(root: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut t = root;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(bad(
                "sweep parameter",
                format!("{key:?}"),
                "a dotted key such as regularizer.lambda",
            ));
        }
        if i + 1 == parts.len() {
            t.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().ok_or_else(|| {
            bad(
                "sweep parameter",
                format!("{key:?}"),
                "a path through tables (a prefix is not a table)",
            )
        })?;
    }
    Ok(())
}
