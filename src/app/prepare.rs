//! What a run needs before it trains: the data of a [`RunConfig`] (loaded, split and
//! standardized, its sizes checked) and a session for it on the configured backend.

use super::config::RunConfig;
use crate::data::folder::{FolderOptions, load_image_folder};
use crate::data::{Dataset, Standardizer, load_mnist};
use crate::error::{Error, Result};
use crate::nn::Layer;
use crate::optim::LrSchedule;
use crate::session::Session;

/// Training, validation and test data of a config, standardized as the run needs.
pub struct Prepared {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    /// (channels, height, width)
    pub image: (usize, usize, usize),
    pub stdz: Standardizer,
    /// The fitted CSV preprocessing (tabular data only).
    pub preprocessing: Option<crate::data::tabular::Preprocessor>,
}

/// Load the data of `cfg`: the training file split (seeded) into training and validation,
/// standardization fitted on the training split only and applied to all three (or, with
/// augmentation, done by the model's first layer after augmenting).
pub fn prepare(cfg: &RunConfig) -> Result<Prepared> {
    let d = &cfg.data;
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
    let stdz = Standardizer::fit(&train)?;
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
    if total.is_none_or(|t| t > crate::limits::MAX_PARAMS) {
        return Err(Error::too_large(
            "model.hidden",
            format!("{:?} on {features} inputs", m.hidden),
            total.and_then(crate::limits::f32_bytes),
            format!(
                "at most {} (2^24) parameters in the model",
                crate::limits::MAX_PARAMS
            ),
        ));
    }
    Ok(())
}

/// A session for `cfg` on its backend: the model (with the augmentation layer first when
/// configured), optimizer, regularizer and learning-rate schedule.
pub fn session(cfg: &RunConfig, p: &Prepared, announce: bool) -> Result<Session> {
    let (backend, why) = crate::backend::open(&cfg.backend)?;
    if announce {
        println!("{why}\nbackend: {}", backend.describe());
    }
    let (c, h, w) = p.image;
    check_hidden(cfg, c * h * w, p.train.classes.max(2))?;
    let mut model = cfg.model(p.image, p.train.classes.max(2))?;
    if let Some(aug) = cfg.augment(p.stdz.mean, p.stdz.std) {
        model.layers.insert(0, Layer::Augment(aug));
        model.image = Some(p.image);
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
            p.train.len(),
            cfg.train.batch,
            cfg.train.epochs,
        ))?;
    }
    Ok(s)
}
