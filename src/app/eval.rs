//! A run's checkpoint put back to use: a session with its weights, and its loss and
//! accuracy on a split.

use std::path::Path;

use super::config::RunConfig;
use super::folder::check_output;
use super::prepare::{Prepared, Stored, prepare_with, session};
use crate::error::{Error, Result};
use crate::session::{Metrics, Session};
use crate::train::evaluate;

/// A session with the weights of `checkpoint`, and the data of `cfg` prepared with the
/// preprocessing the checkpoint stores ([`super::prepare::prepare_with`]: nothing refitted).
pub fn restore(cfg: &RunConfig, checkpoint: &Path) -> Result<(Session, Prepared)> {
    let stored = Stored::read(checkpoint)?;
    let p = prepare_with(cfg, Some(&stored))?;
    let mut s = session(cfg, &p, false)?;
    crate::train::checkpoint::load(checkpoint, &mut s)?;
    Ok((s, p))
}

/// Loss and accuracy of a checkpoint on a split (`train`, `val` or `test`).
pub fn eval_checkpoint(cfg: &RunConfig, checkpoint: &Path, split: &str) -> Result<Metrics> {
    Ok(eval_report(cfg, checkpoint, split)?.metrics)
}

/// A checkpoint's evaluation on one split: the device metrics, the task's metrics from
/// the predictions ([`crate::metrics::task_metrics`]) and, for multiclass and binary
/// tasks, the confusion matrix (rows: true class, columns: predicted; scikit-learn's
/// convention) with the class names when the data has them.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    pub metrics: Metrics,
    pub task_metrics: Vec<(&'static str, f64)>,
    pub confusion: Option<Vec<Vec<u64>>>,
    pub class_names: Option<Vec<String>>,
}

/// [`EvalReport`] of `checkpoint` on `split` (`train`, `val` or `test`); errors as
/// [`eval_checkpoint`].
pub fn eval_report(cfg: &RunConfig, checkpoint: &Path, split: &str) -> Result<EvalReport> {
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
            what: format!(
                "the {split} split of {}",
                match &cfg.data.csv {
                    Some(c) if cfg.data.dataset == "csv" => c.path.display(),
                    _ => cfg.data.dir.display(),
                }
            ),
            expected: match (split, cfg.data.dataset == "csv") {
                ("val", _) => "a validation split (data.val_fraction > 0) with at least one sample",
                ("test", true) => "a test split (data.test_fraction > 0) with at least one row",
                _ => "at least one sample to evaluate",
            }
            .into(),
        });
    }
    let metrics = evaluate(&mut s, ds, 1000)?;
    let task = s.graph().task();
    let k = s.graph().outputs();
    let probs = s.predict_proba(&ds.x)?;
    // Metrics that are not defined on this split (one class only for AUC, one row for R²)
    // are left out rather than failing the evaluation.
    let task_metrics =
        crate::metrics::task_metrics(task, &probs, &ds.y, ds.len(), k).unwrap_or_default();
    let confusion = match task {
        crate::task::Task::Multiclass | crate::task::Task::Binary => {
            let pred: Vec<usize> = crate::session::classes_from(task, &probs, k, 0.5)?
                .iter()
                .map(|&c| c as usize)
                .collect();
            let truth: Vec<usize> = ds.y.iter().map(|&c| c as usize).collect();
            let classes = if task == crate::task::Task::Binary {
                2
            } else {
                k
            };
            Some(crate::metrics::confusion_matrix(&pred, &truth, classes)?)
        }
        _ => None,
    };
    Ok(EvalReport {
        metrics,
        task_metrics,
        confusion,
        class_names: p.preprocessing.and_then(|pp| pp.class_names),
    })
}

/// What [`predict_csv`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvPredictions {
    /// Rows predicted.
    pub rows: usize,
    /// The CSV header written: `row`, then `predicted` and one `p(<class>)` column per
    /// class (multiclass), `predicted` and `p(<positive class>)` (binary), `p(<label>)`
    /// and `predicted(<label>)` per label (multi-label), or one column per target
    /// (regression); with MC dropout, a `std(...)` column after each probability or value.
    pub header: Vec<String>,
    /// The rows as written.
    pub lines: Vec<Vec<String>>,
}

/// Predict from a raw CSV file with the preprocessing stored in `checkpoint` (a run of
/// `data.dataset = "csv"`): the columns are found by name (read with the run's
/// `data.csv` delimiter and header rule, after `skip_rows` lines — the training file's own
/// `skip_rows` is not applied, it describes that file; target columns may be absent), encoded as
/// in training (one-hot vocabularies, imputation values, per-feature scaling), and the
/// model's predictions are written to `output` (atomically) when given. `count` limits
/// the rows to the first `count` (more than the file holds is an error, never silently
/// fewer); `mc_passes` averages that many MC-dropout passes and adds their spread.
///
/// Errors: a checkpoint without stored preprocessing (not a CSV run), a feature column
/// missing from the file, any cell the preprocessing refuses (named by line and column),
/// `count` of 0 or above the rows, and those of building the session and loading.
pub fn predict_csv(
    cfg: &RunConfig,
    checkpoint: &Path,
    input: &Path,
    output: Option<&Path>,
    count: Option<usize>,
    mc_passes: Option<usize>,
    skip_rows: usize,
) -> Result<CsvPredictions> {
    use crate::data::tabular::{CsvSpec, Preprocessor, read_csv};
    use crate::task::Task;
    if input.is_dir() {
        return Err(Error::Hyperparameter {
            name: "--input",
            value: format!("{} (a folder)", input.display()),
            expected: "a CSV file of raw rows for this run's table model (image folders are for image runs)",
        });
    }
    let (scaler, pre) = crate::train::checkpoint::read_preprocessing(checkpoint)?;
    let pre = pre.ok_or_else(|| Error::Checkpoint {
        path: checkpoint.to_path_buf(),
        what: "holds no tabular preprocessing: --input reads CSV rows for runs trained with data.dataset = \"csv\"".into(),
    })?;
    let pre = Preprocessor::from_json(&pre)?;
    if pre.task != cfg.task {
        return Err(Error::Checkpoint {
            path: checkpoint.to_path_buf(),
            what: format!(
                "was trained for the {} task, but the config says task = {:?}: pass the run's own config (--config)",
                pre.task,
                cfg.task.name()
            ),
        });
    }
    if let Some(out) = output {
        // Nor the run's own data files.
        let mut read = vec![input, checkpoint];
        if let Some(c) = &cfg.data.csv {
            read.push(&c.path);
            read.extend(c.target_file.as_deref());
        }
        check_output("--output", out, &read)?;
    }
    let spec = CsvSpec {
        skip_rows,
        ..cfg.data.csv.clone().unwrap_or_default()
    };
    let table = read_csv(input, &spec)?;
    let n = match count {
        None => table.len(),
        Some(0) => {
            return Err(Error::Hyperparameter {
                name: "--count",
                value: "0".into(),
                expected: ">= 1 rows to predict",
            });
        }
        Some(c) if c > table.len() => {
            return Err(Error::Hyperparameter {
                name: "--count",
                value: format!("{c} (the file holds {} rows)", table.len()),
                expected: "at most the number of rows in --input",
            });
        }
        Some(c) => c,
    };
    let rows: Vec<usize> = (0..n).collect();
    let x = pre.transform_features(&table, &rows)?;
    let f = pre.features();
    let mut ds = crate::data::Dataset {
        x,
        y: vec![0.0; n],
        features: f,
        classes: 1,
        ..Default::default()
    };
    if let Some(sc) = &scaler {
        sc.apply(&mut ds)?;
    }
    let task = pre.task;
    let outputs = match task {
        Task::Multiclass => pre.class_names.as_ref().map_or(2, Vec::len),
        Task::Binary => 1,
        _ => pre.targets(),
    };
    let mut s = super::prepare::build_session(
        cfg,
        (1, 1, f),
        outputs,
        n,
        crate::data::Standardizer {
            mean: 0.0,
            std: 1.0,
        },
        false,
    )?;
    crate::train::checkpoint::load(checkpoint, &mut s)?;
    let names: Vec<String> = match &pre.class_names {
        Some(c) => c.clone(),
        None => pre.targets.clone(),
    };
    let ids: Vec<Vec<String>> = (1..=n).map(|i| vec![i.to_string()]).collect();
    predict_into(&mut s, &names, &ds.x, &["row"], ids, mc_passes, output)
}

/// [`Session::predict_mc`] for `--mc-dropout`, refusing a model without dropout (its
/// passes are all the same: a spread of 0 would read as certainty).
pub fn mc_dropout(
    s: &mut Session,
    x: &[f32],
    passes: usize,
) -> Result<crate::session::McPrediction> {
    let dropout = s
        .graph()
        .nodes
        .iter()
        .any(|n| matches!(n.op, crate::graph::Op::Dropout { .. }));
    if !dropout {
        return Err(Error::Hyperparameter {
            name: "--mc-dropout",
            value: format!("{passes} (the model has no dropout layer)"),
            expected: "a model with dropout: Monte Carlo dropout samples its masks",
        });
    }
    s.predict_mc(x, passes)
}

/// The model's predictions for the rows `x` (already preprocessed), one output row per
/// input row: the `id_header` columns with `ids`, then the task's columns (see
/// [`CsvPredictions::header`]) named by `names` (classes, labels or targets; indices when
/// missing); `mc_passes` averages that many MC-dropout passes and adds their spread.
/// Written to `output` when given ([`write_predictions`]).
fn predict_into(
    s: &mut Session,
    names: &[String],
    x: &[f32],
    id_header: &[&str],
    ids: Vec<Vec<String>>,
    mc_passes: Option<usize>,
    output: Option<&Path>,
) -> Result<CsvPredictions> {
    use crate::task::Task;
    let task = s.graph().task();
    let outputs = s.graph().outputs();
    let n = ids.len();
    let (p, std) = match mc_passes {
        Some(t) => {
            let mc = mc_dropout(s, x, t)?;
            let sd = mc.var.iter().map(|v| v.sqrt()).collect::<Vec<f32>>();
            (mc.mean, Some(sd))
        }
        None => (s.predict_proba(x)?, None),
    };
    let width = if task == Task::Binary { 2 } else { outputs };
    let names: Vec<String> = (0..width)
        .map(|i| names.get(i).cloned().unwrap_or_else(|| i.to_string()))
        .collect();
    let mut header: Vec<String> = id_header.iter().map(|h| h.to_string()).collect();
    let prob = |name: &str| format!("p({name})");
    match task {
        Task::Multiclass => {
            header.push("predicted".into());
            for c in &names {
                header.push(prob(c));
                if std.is_some() {
                    header.push(format!("std({c})"));
                }
            }
        }
        Task::Binary => {
            header.push("predicted".into());
            let pos = names[1].clone();
            header.push(prob(&pos));
            if std.is_some() {
                header.push(format!("std({pos})"));
            }
        }
        Task::Multilabel => {
            for c in &names {
                header.push(prob(c));
                if std.is_some() {
                    header.push(format!("std({c})"));
                }
                header.push(format!("predicted({c})"));
            }
        }
        Task::Regression => {
            for c in &names {
                header.push(c.clone());
                if std.is_some() {
                    header.push(format!("std({c})"));
                }
            }
        }
    }
    let labels = crate::session::classes_from(task, &p, outputs, 0.5).ok();
    let mut lines = vec![];
    for (i, id) in ids.into_iter().enumerate().take(n) {
        let row = &p[i * outputs..(i + 1) * outputs];
        let sd = std.as_ref().map(|s| &s[i * outputs..(i + 1) * outputs]);
        let mut line = id;
        let with_sd = |line: &mut Vec<String>, j: usize, v: f32| {
            line.push(v.to_string());
            if let Some(sd) = sd {
                line.push(sd[j].to_string());
            }
        };
        match task {
            Task::Multiclass | Task::Binary => {
                let k = labels.as_ref().map_or(0, |l| l[i] as usize);
                line.push(names.get(k).cloned().unwrap_or_else(|| k.to_string()));
                for (j, &v) in row.iter().enumerate() {
                    with_sd(&mut line, j, v);
                }
            }
            Task::Multilabel => {
                for (j, &v) in row.iter().enumerate() {
                    with_sd(&mut line, j, v);
                    let on = labels.as_ref().is_some_and(|l| l[i * outputs + j] > 0.5);
                    line.push(if on { "1" } else { "0" }.into());
                }
            }
            Task::Regression => {
                for (j, &v) in row.iter().enumerate() {
                    with_sd(&mut line, j, v);
                }
            }
        }
        lines.push(line);
    }
    if let Some(out) = output {
        write_predictions(out, &header, &lines)?;
    }
    Ok(CsvPredictions {
        rows: n,
        header,
        lines,
    })
}

/// Write predictions as CSV (the csv crate; atomically: a reader never sees half a file).
fn write_predictions(out: &Path, header: &[String], lines: &[Vec<String>]) -> Result<()> {
    let io = |e: String| Error::Csv {
        path: out.to_path_buf(),
        line: 0,
        what: format!("cannot be written: {e}"),
    };
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(header).map_err(|e| io(e.to_string()))?;
    for l in lines {
        w.write_record(l).map_err(|e| io(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| io(e.to_string()))?;
    crate::fs::write_atomic(out, &bytes)
}

/// Predict for the user's own images with the standardization stored in `checkpoint`
/// (a run on IDX files or an image folder): `input` is an IDX image file (`[N, rows,
/// cols]` u8, gzipped or not; the run's image size) or a folder of PNG/JPEG images (and
/// its sub-folders), resized to the run's image size (`data.image_size` and
/// `data.channels` of a folder run; the training IDX files' size, else 28×28, for an IDX
/// run). The output has a `row` column (1-based) and, for a folder, `file`; then as
/// [`predict_csv`]. Class names are a folder run's class folders (read from `data.dir`
/// when it is there), else the class indices. `count` and `mc_passes` as for
/// [`predict_csv`].
///
/// Errors: a checkpoint without a stored standardization; an IDX file of another image
/// size or not of images (named); an undecodable image (named); `count` of 0 or above the
/// images; those of building the session and loading.
pub fn predict_images(
    cfg: &RunConfig,
    checkpoint: &Path,
    input: &Path,
    output: Option<&Path>,
    count: Option<usize>,
    mc_passes: Option<usize>,
) -> Result<CsvPredictions> {
    if let Some(out) = output {
        check_output("--output", out, &[input, checkpoint])?;
    }
    let stored = Stored::read(checkpoint)?;
    let stdz = match stored.scaler {
        Some(crate::data::Scaler::Global(s)) => s,
        Some(_) => {
            return Err(Error::Checkpoint {
                path: checkpoint.to_path_buf(),
                what: "stores a per-feature scaling (a CSV run): --input takes CSV rows for it"
                    .into(),
            });
        }
        None => {
            return Err(Error::Checkpoint {
                path: checkpoint.to_path_buf(),
                what: "stores no input standardization: cannot scale new images as in training"
                    .into(),
            });
        }
    };
    let folder_run = cfg.data.dataset == "folder";
    let image = if folder_run {
        (
            cfg.data.channels,
            cfg.data.image_size[0],
            cfg.data.image_size[1],
        )
    } else {
        match crate::data::idx_image_size(&cfg.data.dir, "train") {
            Ok((_, h, w)) => (1, h, w),
            Err(_) => (1, 28, 28),
        }
    };
    let (c, h, w) = image;
    let (mut x, files) = if input.is_dir() {
        let opts = crate::data::folder::FolderOptions {
            height: h as u32,
            width: w as u32,
            rgb: c == 3,
        };
        let (x, files) = crate::data::folder::load_images(input, opts)?;
        (x, Some(files))
    } else {
        // A table given to an image model: say so, not "bad IDX magic".
        let ext = input
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("csv" | "tsv" | "txt")) {
            return Err(Error::Hyperparameter {
                name: "--input",
                value: format!("{} (a table)", input.display()),
                expected: "images for this run's image model: an IDX image file or a folder of PNG/JPEG images (CSV rows are for runs on data.dataset = \"csv\")",
            });
        }
        let idx = crate::data::idx::read_u8(input)?;
        if idx.dims.len() != 3 || idx.dims[1..] != [h, w] || c != 1 {
            return Err(Error::Idx {
                path: input.to_path_buf(),
                what: format!(
                    "dimensions {:?}, expected [N, {h}, {w}] images (the run's {c}×{h}×{w} input)",
                    idx.dims
                ),
            });
        }
        (idx.data.iter().map(|&p| p as f32 / 255.0).collect(), None)
    };
    let f = c * h * w;
    let total = x.len() / f;
    let n = match count {
        None => total,
        Some(0) => {
            return Err(Error::Hyperparameter {
                name: "--count",
                value: "0".into(),
                expected: ">= 1 images to predict",
            });
        }
        Some(k) if k > total => {
            return Err(Error::Hyperparameter {
                name: "--count",
                value: format!("{k} ({} holds {total} images)", input.display()),
                expected: "at most the number of images in --input",
            });
        }
        Some(k) => k,
    };
    x.truncate(n * f);
    if cfg.augment.is_none() {
        let mut ds = crate::data::Dataset {
            x,
            y: vec![0.0; n],
            features: f,
            classes: 1,
            ..Default::default()
        };
        stdz.apply(&mut ds)?;
        x = ds.x;
    }
    let classes: Vec<String> = if folder_run {
        std::fs::read_dir(&cfg.data.dir)
            .map(|rd| {
                let mut v: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default()
    } else {
        (0..10).map(|i| i.to_string()).collect()
    };
    let outputs = match cfg.task {
        crate::task::Task::Binary => 1,
        _ if !classes.is_empty() => classes.len(),
        _ => crate::train::checkpoint::output_units(checkpoint)?,
    };
    let mut s = super::prepare::build_session(cfg, image, outputs, n, stdz, false)?;
    crate::train::checkpoint::load(checkpoint, &mut s)?;
    let ids: Vec<Vec<String>> = match &files {
        Some(files) => files
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, p)| {
                let rel = p.strip_prefix(input).unwrap_or(p);
                vec![(i + 1).to_string(), rel.display().to_string()]
            })
            .collect(),
        None => (1..=n).map(|i| vec![i.to_string()]).collect(),
    };
    let id_header: &[&str] = if files.is_some() {
        &["row", "file"]
    } else {
        &["row"]
    };
    predict_into(&mut s, &classes, &x, id_header, ids, mc_passes, output)
}

/// Write the weights of `checkpoint` as a weights-only file (`out`,
/// [`crate::train::checkpoint::save_weights`]): what PyTorch's `load_state_dict(strict=True)`
/// takes for the equivalent `nn.Sequential`, with metadata `shadeprop` = JSON
/// `{"architecture": {"torch": [modules by index], "input": [C, H, W], "outputs": K},
/// "task", "loss", "preprocessing": {"standardizer", "class_names", "csv"}}` (the input
/// scaling, the class names when the data has them, and the fitted CSV preprocessing).
/// Returns that JSON.
pub fn export_weights(cfg: &RunConfig, checkpoint: &Path, out: &Path) -> Result<serde_json::Value> {
    check_output("--out", out, &[checkpoint])?;
    let (mut s, p) = restore(cfg, checkpoint)?;
    let model = cfg.model(p.image, p.outputs())?;
    let mut modules = model.torch_modules();
    if cfg.augment.is_some() {
        modules.insert(0, "Identity()  # augmentation, training only".into());
    }
    let info = serde_json::json!({
        "architecture": {
            "torch": modules,
            "input": [p.image.0, p.image.1, p.image.2],
            "outputs": p.outputs(),
        },
        "task": cfg.task,
        "loss": s.graph().loss_node().map(|(l, _)| l.name()),
        "preprocessing": {
            "standardizer": p.scaler.to_json(),
            "class_names": p.preprocessing.as_ref().and_then(|pp| pp.class_names.clone()),
            "csv": p.preprocessing.as_ref().map(|pp| pp.to_json()),
        },
    });
    crate::train::checkpoint::save_weights(out, &mut s, &info)?;
    Ok(info)
}
