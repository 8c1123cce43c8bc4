//! What a run needs before it trains: the data of a [`RunConfig`] (loaded, split and
//! standardized, its sizes checked) and a session for it on the configured backend.

use super::config::RunConfig;
use crate::data::folder::{FolderOptions, load_image_folder};
use crate::data::tabular::{Preprocessor, read_table};
use crate::data::{Dataset, Scaler, Standardizer, load_mnist, split3_indices};
use crate::error::{Error, Result};
use crate::nn::Layer;
use crate::optim::LrSchedule;
use crate::session::Session;
use crate::task::Task;

/// Training, validation and test data of a config, standardized as the run needs.
pub struct Prepared {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    /// (channels, height, width); (1, 1, features) for tabular data.
    pub image: (usize, usize, usize),
    /// The global standardization of image data (what the augmentation layer applies).
    pub stdz: Standardizer,
    /// The input scaling applied (global for images, per feature for tables), stored in
    /// checkpoints.
    pub scaler: Scaler,
    /// The fitted CSV preprocessing (tabular data only).
    pub preprocessing: Option<Preprocessor>,
}

impl Prepared {
    /// The model's output units: the classes (multiclass), 1 (binary), one per label
    /// or regression target.
    pub fn outputs(&self) -> usize {
        match self.train.task {
            Task::Multiclass => self.train.classes.max(2),
            Task::Binary => 1,
            _ => self.train.width(),
        }
    }
}

/// The input preprocessing a checkpoint stores: what evaluation and prediction apply
/// instead of fitting anew on the training data.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    /// The input scaling (global for images, per feature for tables).
    pub scaler: Option<Scaler>,
    /// The fitted CSV preprocessing (tabular runs).
    pub preprocessing: Option<Preprocessor>,
}

impl Stored {
    /// Read what `checkpoint` stores ([`crate::train::checkpoint::read_preprocessing`]).
    /// Errors: an unreadable checkpoint, malformed stored JSON.
    pub fn read(checkpoint: &std::path::Path) -> Result<Self> {
        let (scaler, pre) = crate::train::checkpoint::read_preprocessing(checkpoint)?;
        Ok(Stored {
            scaler,
            preprocessing: pre.map(|v| Preprocessor::from_json(&v)).transpose()?,
        })
    }
}

/// Tabular data: the table of `data.csv`, split (seeded) into train / validation / test
/// rows, the preprocessing fitted on the training rows, and per-feature standardization
/// fitted on them too — or, with `stored`, the checkpoint's preprocessing and scaling
/// applied as they are.
fn prepare_csv(cfg: &RunConfig, stored: Option<&Stored>) -> Result<Prepared> {
    let d = &cfg.data;
    let spec = d.csv.as_ref().ok_or_else(|| Error::Hyperparameter {
        name: "data.csv",
        value: "missing".into(),
        expected: "a [data.csv] table with data.dataset = \"csv\"",
    })?;
    let table = read_table(spec)?;
    let (test_f, val_f) = (d.test_fraction, d.val_fraction);
    let (mut tr, va, te) =
        split3_indices(table.len(), (1.0 - val_f - test_f, val_f, test_f), cfg.seed)?;
    if d.train_limit > 0 {
        tr.truncate(d.train_limit);
    }
    let pre = match stored.and_then(|s| s.preprocessing.clone()) {
        Some(pre) if pre.task != cfg.task => {
            return Err(Error::Hyperparameter {
                name: "task",
                value: format!("{:?} in the config", cfg.task.name()),
                expected: "the task the checkpoint was trained for: pass the run's own config (--config)",
            });
        }
        Some(pre) => pre,
        None => Preprocessor::fit(spec, &table, cfg.task, &tr)?,
    };
    // Every row encoded once, in file order (the first bad cell named is the file's
    // first), then split.
    let all: Vec<usize> = (0..table.len()).collect();
    let full = pre.dataset(&table, &all)?;
    let (mut train, mut val, mut test) = (full.gather(&tr)?, full.gather(&va)?, full.gather(&te)?);
    let scaler = match stored.and_then(|s| s.scaler.clone()) {
        Some(sc) => sc,
        None => Scaler::fit_per_feature(&train)?,
    };
    for ds in [&mut train, &mut val, &mut test] {
        scaler.apply(ds)?;
    }
    let f = train.features;
    Ok(Prepared {
        train,
        val,
        test,
        image: (1, 1, f),
        stdz: Standardizer {
            mean: 0.0,
            std: 1.0,
        },
        scaler,
        preprocessing: Some(pre),
    })
}

/// Load the data of `cfg`: the training file split (seeded) into training and validation,
/// standardization fitted on the training split only and applied to all three (or, with
/// augmentation, done by the model's first layer after augmenting).
pub fn prepare(cfg: &RunConfig) -> Result<Prepared> {
    prepare_with(cfg, None)
}

/// [`prepare`] with the preprocessing a checkpoint stores: the data are loaded and split
/// exactly as in training (same seed and fractions), but the scaling and the CSV encoding
/// are `stored`'s, never refitted — so evaluation sees what training saw even when the
/// training file has changed since. Fields of `stored` that are None are fitted as in
/// training (checkpoints written without them).
///
/// Errors: those of [`prepare`]; a stored scaling of the wrong kind for the data (a
/// per-feature scaler for images) or of the wrong width.
pub fn prepare_with(cfg: &RunConfig, stored: Option<&Stored>) -> Result<Prepared> {
    let d = &cfg.data;
    if d.dataset == "csv" {
        return prepare_csv(cfg, stored);
    }
    let (full, test, image) = match d.dataset.as_str() {
        "folder" => {
            check_image_size(cfg)?;
            let opts = FolderOptions {
                height: d.image_size[0] as u32,
                width: d.image_size[1] as u32,
                rgb: d.channels == 3,
            };
            let (all, _names) = load_image_folder(&d.dir, opts)?;
            // No separate test folder: hold out 10% of the images (seeded) as the test set.
            let (rest, test) = all.split(0.1, cfg.seed ^ 0x7e57)?;
            (rest, test, (d.channels, d.image_size[0], d.image_size[1]))
        }
        _ => {
            let image = idx_image(cfg)?;
            let (a, t) = load_mnist(&d.dir)?;
            (a, t, image)
        }
    };
    let full = if d.train_limit > 0 {
        full.take(d.train_limit)?
    } else {
        full
    };
    let (mut train, mut val) = full.split(d.val_fraction, cfg.seed)?;
    let mut test = test;
    let stdz = match stored.and_then(|s| s.scaler.clone()) {
        None => Standardizer::fit(&train)?,
        Some(Scaler::Global(s)) => s,
        Some(_) => {
            return Err(Error::Hyperparameter {
                name: "data.dataset",
                value: format!("{:?} (images)", d.dataset),
                expected: "the data the checkpoint was trained on (it stores a per-feature scaling, made for a CSV run): pass the run's own config (--config)",
            });
        }
    };
    if cfg.augment.is_none() {
        stdz.apply(&mut train)?;
        stdz.apply(&mut val)?;
        stdz.apply(&mut test)?;
    }
    Ok(Prepared {
        train,
        val,
        test,
        image,
        stdz,
        scaler: stdz.into(),
        preprocessing: None,
    })
}

/// The image size of the IDX files of `cfg` (1, rows, cols), read from their headers: the
/// training and test images must have one size, and the presets take 28×28; an error names
/// the file and both sizes.
fn idx_image(cfg: &RunConfig) -> Result<(usize, usize, usize)> {
    let (train, h, w) = crate::data::idx_image_size(&cfg.data.dir, "train")?;
    let (test, th, tw) = crate::data::idx_image_size(&cfg.data.dir, "t10k")?;
    if (th, tw) != (h, w) {
        return Err(Error::Idx {
            path: test,
            what: format!(
                "images are {th}×{tw}, but the training images ({}) are {h}×{w}",
                train.display()
            ),
        });
    }
    let preset = &cfg.model.preset;
    if preset != "mlp" && (h, w) != (28, 28) {
        return Err(Error::Idx {
            path: train,
            what: format!(
                "images are {h}×{w}, but model.preset {preset:?} takes 28×28 images (model.preset = \"mlp\" takes any size)"
            ),
        });
    }
    Ok((1, h, w))
}

/// `data.image_size` × `data.channels` of an image folder: one image's values must fit the
/// kernels' element counts and its bytes the host's memory, and a first layer on it must
/// be possible (at most 2^24 parameters), checked before any image is decoded.
fn check_image_size(cfg: &RunConfig) -> Result<()> {
    use crate::limits::{MAX_ELEMENTS, MAX_PARAMS, f32_bytes, host_memory_bytes, product};
    let d = &cfg.data;
    let f = product(&[d.channels, d.image_size[0], d.image_size[1]]);
    let bytes = f.and_then(f32_bytes);
    if f.is_none_or(|f| f > MAX_ELEMENTS || f >= MAX_PARAMS)
        || bytes.is_none_or(|b| b > host_memory_bytes())
    {
        return Err(Error::too_large(
            "data.image_size",
            format!("{:?} × {} channel(s)", d.image_size, d.channels),
            bytes,
            format!(
                "images whose values fit a first layer of at most 2^24 parameters (fewer than {MAX_PARAMS} values), and one image in the host's memory"
            ),
        ));
    }
    Ok(())
}

/// The parameter count of a `model.preset = "mlp"` config on `features` inputs and
/// `classes` outputs, checked: an error names `model.hidden` with the bytes when it would
/// exceed 2^24 parameters or overflow.
fn check_hidden(cfg: &RunConfig, features: usize, classes: usize) -> Result<()> {
    let m = &cfg.model;
    if m.preset != "mlp" {
        return Ok(());
    }
    let mut total = Some(0usize);
    let mut prev = features;
    for (i, &w) in m.hidden.iter().chain([&classes]).enumerate() {
        // Weights and bias, and on hidden layers with batch norm gamma and beta.
        let bn = if m.batch_norm && i < m.hidden.len() {
            2
        } else {
            0
        };
        total = total.and_then(|t| t.checked_add(prev.checked_add(1 + bn)?.checked_mul(w)?));
        prev = w;
    }
    if total.is_none_or(|t| t >= crate::limits::MAX_PARAMS) {
        return Err(Error::too_large(
            "model.hidden",
            format!("{:?} on {features} inputs", m.hidden),
            total.and_then(crate::limits::f32_bytes),
            format!(
                "fewer than {} (2^24) parameters in the model",
                crate::limits::MAX_PARAMS
            ),
        ));
    }
    Ok(())
}

/// A session for `cfg` on its backend: the model (with the augmentation layer first when
/// configured), optimizer, regularizer and learning-rate schedule.
pub fn session(cfg: &RunConfig, p: &Prepared, announce: bool) -> Result<Session> {
    build_session(cfg, p.image, p.outputs(), p.train.len(), p.stdz, announce)
}

/// [`session`] from sizes alone: inputs of shape `image`, `outputs` output units, and
/// `train_len` training samples (for the per-epoch schedule); `stdz` is what the
/// augmentation layer standardizes with. Prediction builds its session this way, without
/// the training data.
pub fn build_session(
    cfg: &RunConfig,
    image: (usize, usize, usize),
    outputs: usize,
    train_len: usize,
    stdz: Standardizer,
    announce: bool,
) -> Result<Session> {
    let (backend, why) = crate::backend::open(&cfg.backend)?;
    if announce {
        println!("{why}\nbackend: {}", backend.describe());
    }
    let (c, h, w) = image;
    check_hidden(cfg, c * h * w, outputs)?;
    let mut model = cfg.model(image, outputs)?;
    if let Some(aug) = cfg.augment(stdz.mean, stdz.std) {
        model.layers.insert(0, Layer::Augment(aug));
        model.image = Some(image);
    }
    let graph = model.build()?;
    let mut s = Session::with_precision(
        backend,
        graph,
        cfg.optimizer()?,
        cfg.seed,
        cfg.train.batch,
        cfg.precision(),
    )
    .map_err(|e| match e {
        // The session's maximum batch is this config's train.batch.
        Error::TooLarge {
            name,
            value,
            needs,
            expected,
        } if name == "max_batch" => Error::TooLarge {
            name: "train.batch".into(),
            value,
            needs,
            expected,
        },
        e => e,
    })?;
    s.set_regularizer(cfg.regularizer()?)?;
    if cfg.optimizer.schedule == "cosine" {
        s.set_schedule(LrSchedule::cosine_over_epochs(
            train_len.max(1),
            cfg.train.batch,
            cfg.train.epochs,
        ))?;
    }
    if cfg.optimizer.warmup_steps > 0 {
        s.set_warmup(Some(crate::optim::Warmup::new(
            cfg.optimizer.warmup_steps,
            cfg.optimizer.warmup_start_factor,
        )))?;
    }
    Ok(s)
}
