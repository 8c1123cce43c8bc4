//! Run configuration files (TOML) for the `shadeprop` command line: everything a training
//! run needs — data, model, optimizer, regularizer, augmentation, training loop and early
//! stopping — with a default for every field, an error naming each unknown key, and a check
//! of every value before anything runs.
//!
//! Relative paths in a config file are relative to the file's folder (a config in
//! `configs/` names the data `../data/mnist`); a path given with `--set` on the command
//! line is relative to the working directory. The `config.toml` a run writes holds them
//! absolute.
//!
//! ```toml
//! seed = 0
//! backend = "auto"             # auto | gpu | cpu | cpu-ref | gpu:<matmul variant>
//! task = "multiclass"          # multiclass | binary | multilabel | regression
//!
//! [data]
//! dataset = "mnist"            # mnist | fashion-mnist | folder | csv
//! dir = "data/mnist"           # relative to this file's folder; IDX files, or one sub-folder per class for "folder"
//! train_limit = 0              # use only the first N training images (0 = all)
//! val_fraction = 0.1           # seeded validation split of the training file (csv: of all rows)
//! test_fraction = 0.2          # csv only: seeded test split (images have their own test set)
//! image_size = [28, 28]        # folder only: resized to [height, width] (exactly 2 values)
//! channels = 1                 # folder only: 1 (grayscale) or 3 (RGB)
//!
//! [data.csv]                   # csv only (data::tabular::CsvSpec)
//! path = "data/palmerpenguins/penguins.csv"
//! target = ["species"]         # one column (multiclass, binary) or several
//! features = []                # empty = every other column
//! categorical = ["island", "sex"]  # one-hot, vocabulary from the training rows
//! missing = "error"            # error | impute (features only: training mean / most frequent value)
//! unseen = "error"             # error | zeros: a category not seen in training
//! header = true                # false: columns are named "0", "1", ...
//! skip_rows = 0                # lines skipped before the header
//! delimiter = ","              # , ; \t | or whitespace
//! target_file = "..."          # optional: the target column(s) in a second file
//! weight = "w"                 # optional: a column of per-sample weights (the loss's weighted mean)
//!
//! [loss]
//! kind = "auto"                # auto (the task's) | cross_entropy | bce_with_logits | mse | mae | huber
//! label_smoothing = 0.0        # cross_entropy (PyTorch's label_smoothing)
//! class_weights = []           # cross_entropy: one weight per class (PyTorch's weight)
//! pos_weight = []              # bce_with_logits: one weight per output
//! delta = 1.0                  # huber
//!
//! [model]
//! preset = "w-mlp"             # w-mlp | w-cnn | mlp
//! hidden = [512, 512]          # mlp only: hidden widths
//! batch_norm = true            # mlp only
//! activation = "relu"          # mlp only: relu | tanh | sigmoid
//! dropout = 0.5                # rate of every dropout layer
//! input_dropout = 0.0          # mlp only: dropout on the inputs
//! weights = "w.safetensors"    # optional initial weights: `shadeprop export` or a PyTorch state_dict
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
//! warmup_steps = 0             # linear warm-up over this many updates (0 = off), PyTorch's LinearLR
//! warmup_start_factor = 0.333  # the first update's share of the rate, in (0, 1]
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
//! baseline = nan               # optional: nan = none; any other value, ±inf included, is one
//! start_from_epoch = 0
//! restore_best_weights = true
//! log_every = 50               # steps between device metric reads
//! reduce_lr_factor = 0.0       # > 0: ReduceLROnPlateau on `monitor` with this factor (0 = off)
//! reduce_lr_patience = 10      # epochs without improvement before a reduction
//! reduce_lr_cooldown = 0       # epochs after a reduction before counting again
//! reduce_lr_min_lr = 0.0       # the rate never goes below this
//! precision = "f32"            # f32 | mixed (f16 matmul operands, dynamic loss scaling)
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::tabular::CsvSpec;
use crate::error::{Error, Result};
use crate::task::Task;

pub(super) fn bad(name: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::Hyperparameter {
        name,
        value: value.to_string(),
        expected,
    }
}

/// A fixed-size array read from a TOML array of exactly `N` values: serde reads `[T; N]`
/// from the first `N` values of a longer array and drops the rest, so `[8, 8, 3]` would
/// silently be `[8, 8]`. The error names what was expected (`expected`: the key and its
/// form) and the length given.
pub(crate) fn exactly<'de, D, T, const N: usize>(
    d: D,
    expected: &'static str,
) -> std::result::Result<[T; N], D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v = Vec::<T>::deserialize(d)?;
    let n = v.len();
    <[T; N]>::try_from(v).map_err(|_| serde::de::Error::invalid_length(n, &expected))
}

fn image_size<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<[usize; 2], D::Error> {
    exactly(d, "data.image_size = [height, width]: exactly 2 sizes")
}

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub seed: u64,
    pub backend: String,
    /// What the targets are: it picks the loss (`loss.kind = "auto"`), the output units,
    /// the metrics and how predictions read.
    pub task: Task,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub optimizer: OptimConfig,
    pub regularizer: RegConfig,
    pub augment: Option<AugmentConfig>,
    pub train: TrainConfig,
    pub loss: LossConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 0,
            backend: "auto".into(),
            task: Task::Multiclass,
            loss: LossConfig::default(),
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
    /// csv only: the seeded share of rows held out as the test set.
    pub test_fraction: f32,
    /// (height, width): exactly 2 values.
    #[serde(deserialize_with = "image_size")]
    pub image_size: [usize; 2],
    pub channels: usize,
    /// csv only: the file and how its columns are used.
    pub csv: Option<CsvSpec>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: "mnist".into(),
            dir: PathBuf::from("data/mnist"),
            train_limit: 0,
            val_fraction: 0.1,
            test_fraction: 0.2,
            image_size: [28, 28],
            channels: 1,
            csv: None,
        }
    }
}

/// The `[loss]` table: which loss and its settings ([`crate::kernels::loss::Loss`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `auto` (cross_entropy for multiclass, bce_with_logits for binary and multi-label,
    /// mse for regression) or one of those, `mae`, `huber`.
    pub kind: String,
    pub label_smoothing: f32,
    pub class_weights: Vec<f32>,
    pub pos_weight: Vec<f32>,
    pub delta: f32,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            kind: "auto".into(),
            label_smoothing: 0.0,
            class_weights: vec![],
            pos_weight: vec![],
            delta: 1.0,
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
    /// Initial weights: a weights file (`shadeprop export`) or a PyTorch `state_dict` of
    /// the equivalent `nn.Sequential` saved with `safetensors.torch.save_file`.
    pub weights: Option<PathBuf>,
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
            weights: None,
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
    /// Linear warm-up over this many updates (0: none), [`crate::optim::Warmup`].
    pub warmup_steps: u64,
    /// The warm-up's first factor (PyTorch's `LinearLR` default 1/3).
    pub warmup_start_factor: f32,
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
            warmup_steps: 0,
            warmup_start_factor: 1.0 / 3.0,
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
    /// Above 0: ReduceLROnPlateau on `monitor` (and `mode`, `min_delta`) with this
    /// factor; 0: off. [`crate::train::callbacks::ReduceLrOnPlateau`].
    pub reduce_lr_factor: f32,
    pub reduce_lr_patience: u64,
    pub reduce_lr_cooldown: u64,
    pub reduce_lr_min_lr: f32,
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
            reduce_lr_factor: 0.0,
            reduce_lr_patience: 10,
            reduce_lr_cooldown: 0,
            reduce_lr_min_lr: 0.0,
        }
    }
}

impl RunConfig {
    /// Parse TOML text: unknown keys and wrongly typed values are errors naming the key
    /// (and line); then every value is checked ([`RunConfig::validate`]). Relative paths
    /// (`data.dir`, `data.csv.path`, `data.csv.target_file`, `model.weights`, defaults
    /// included) are relative to the folder of `origin`, the config file, and are made
    /// absolute here, so that a run's saved `config.toml` works from any folder.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        Self::from_toml_in(text, origin, origin.parent().unwrap_or(Path::new("")))
    }

    /// [`RunConfig::from_toml`] with relative paths resolved against `base` (a folder)
    /// instead of `origin`'s folder; `origin` only names the text in errors.
    pub(crate) fn from_toml_in(text: &str, origin: &Path, base: &Path) -> Result<Self> {
        let mut c: RunConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_path_buf(),
            msg: e.to_string(),
        })?;
        c.resolve_paths(base);
        c.validate()?;
        Ok(c)
    }

    /// Make every relative path of the config absolute, relative to `base` (itself made
    /// absolute against the working directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        // A bare file name's folder is "" (the working directory), which `absolute`
        // refuses: make it ".".
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data.dir);
        if let Some(csv) = &mut self.data.csv {
            fix(&mut csv.path);
            if let Some(t) = &mut csv.target_file {
                fix(t);
            }
        }
        if let Some(w) = &mut self.model.weights {
            fix(w);
        }
    }

    /// Read and parse a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::fs::read_text(path, crate::fs::MAX_TEXT_BYTES)?;
        Self::from_toml(&text, path)
    }

    /// The settings where `other` differs from this config, as `key: this → other`
    /// (dotted keys, in order), for people.
    pub fn differences(&self, other: &RunConfig) -> Vec<String> {
        fn flat(
            prefix: &str,
            v: &toml::Value,
            out: &mut std::collections::BTreeMap<String, String>,
        ) {
            match v {
                toml::Value::Table(t) => {
                    for (k, x) in t {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        flat(&key, x, out);
                    }
                }
                x => {
                    out.insert(prefix.to_string(), x.to_string());
                }
            }
        }
        let table = |c: &RunConfig| {
            let mut m = std::collections::BTreeMap::new();
            if let Ok(v) = toml::Value::try_from(c) {
                flat("", &v, &mut m);
            }
            m
        };
        let (a, b) = (table(self), table(other));
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                let show = |m: &std::collections::BTreeMap<String, String>| {
                    m.get(k).cloned().unwrap_or_else(|| "(absent)".into())
                };
                format!("{k}: {} → {}", show(&a), show(&b))
            })
            .collect()
    }

    /// The config as TOML (every field, defaults included).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
