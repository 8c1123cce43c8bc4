//! The MNIST / Fashion-MNIST trainer shared by the examples `mnist_mlp`, `mnist_cnn` and
//! `sequential_mnist`: flags, data (seeded validation split, standardization fitted on it),
//! the Trainer with EarlyStopping, checkpoints, logs and curves, and the test accuracy at
//! the end.

use std::path::PathBuf;
use std::time::Instant;

use shadeprop::data::{Standardizer, load_mnist};
use shadeprop::graph::RnnCell;
use shadeprop::nn::augment::Augment;
use shadeprop::nn::{Layer, Sequential};
use shadeprop::optim::{Adam, LrSchedule, Optimizer, Precision, Sgd};
use shadeprop::session::Session;
use shadeprop::train::callbacks::{Callback, EarlyStopping, ModelCheckpoint, TerminateOnNan};
use shadeprop::train::fit::{FitConfig, Trainer};
use shadeprop::train::plot::preview_png;
use shadeprop::train::{EpochConfig, evaluate};

struct Args {
    name: &'static str,
    backend: String,
    epochs: usize,
    batch: usize,
    optimizer: OptimizerArg,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    model: ModelFlags,
    clip_norm: f32,
    seed: u64,
    data: PathBuf,
    val_fraction: f32,
    train_limit: usize,
    patience: u64,
    early_stopping: bool,
    schedule: String,
    out: PathBuf,
    resume: Option<PathBuf>,
    overwrite: bool,
    precision: Precision,
    quiet: bool,
}

/// Train this example's model on MNIST or Fashion-MNIST: a seeded validation split,
/// early stopping, checkpoints (Ctrl-C writes one; --resume continues), logs and curves,
/// and the test accuracy at the end.
#[derive(clap::Parser)]
struct Cli {
    /// auto | gpu | cpu | cpu-ref | gpu:<matmul variant>
    #[arg(long, default_value = "auto")]
    backend: String,
    /// The dataset's usual folder (data/mnist or data/fashion-mnist); --data overrides it.
    #[arg(long, value_enum)]
    dataset: Option<DatasetArg>,
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// sgd (with momentum) or adam (default: sgd; sequential_mnist: adam).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Learning rate (default: 0.05 with sgd, 0.001 with adam).
    #[arg(long)]
    lr: Option<f32>,
    /// SGD's momentum (default 0.9; refused with adam, whose betas are PyTorch's).
    #[arg(long)]
    momentum: Option<f32>,
    /// Coupled L2 weight decay on weights (default: 5e-4 with sgd, 0 with adam).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Dropout probability (default 0.5); in sequential_mnist the recurrent layer's
    /// recurrent dropout (default 0.25).
    #[arg(long)]
    dropout: Option<f32>,
    /// The recurrent cell of sequential_mnist (default lstm; refused by the other examples).
    #[arg(long, value_enum)]
    cell: Option<CellArg>,
    /// Global-norm clipping (0 = off).
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A folder of IDX files (train-*/t10k-*, optionally .gz).
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f32,
    /// Use only the first N training images (0 = all).
    #[arg(long, default_value_t = 0)]
    train_limit: usize,
    /// Keras: 0 stops at the first epoch without improvement.
    #[arg(long, default_value_t = 5)]
    patience: u64,
    #[arg(long)]
    no_early_stopping: bool,
    /// cosine: the learning rate annealed to 0 per step over --epochs (default: cosine
    /// with sgd, constant with adam).
    #[arg(long, value_enum)]
    schedule: Option<ScheduleArg>,
    /// Output folder (default: runs/<example>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from a checkpoint (Ctrl-C writes <out>/checkpoints/interrupt.safetensors).
    #[arg(long, value_name = "CHECKPOINT")]
    resume: Option<PathBuf>,
    /// Replace the run that the output folder holds (refused otherwise).
    #[arg(long)]
    overwrite: bool,
    /// f32 | mixed (f16 matmul operands, f32 master weights, dynamic loss scaling).
    #[arg(long, default_value = "f32")]
    precision: String,
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DatasetArg {
    Mnist,
    FashionMnist,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ScheduleArg {
    Cosine,
    Constant,
}

/// The optimizer of a run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CellArg {
    Lstm,
    Gru,
}

/// What an example's model is built from.
pub struct ModelFlags {
    /// `--dropout`, or the example's default.
    pub dropout: f32,
    /// `--cell`, when given.
    pub cell: Option<RnnCell>,
}

/// An example's model from its flags; an error names a flag the model cannot take.
pub type ModelFn = fn(&ModelFlags) -> Result<Sequential, String>;

/// The flag defaults that differ between the examples.
pub struct Defaults {
    pub optimizer: OptimizerArg,
    pub dropout: f32,
}

/// SGD with momentum 0.9, lr 0.05 with cosine annealing, weight decay 5e-4, dropout 0.5.
#[allow(dead_code)] // sequential_mnist has its own
pub const SGD: Defaults = Defaults {
    optimizer: OptimizerArg::Sgd,
    dropout: 0.5,
};

fn parse(name: &'static str, d: &Defaults) -> Result<Args, String> {
    use clap::Parser;
    let c = Cli::try_parse().map_err(|e| {
        // --help and --version print and exit 0, as clap does.
        if matches!(
            e.kind(),
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
        ) {
            let _ = e.print();
            std::process::exit(0);
        }
        e.to_string()
    })?;
    // The repository's data folder, from any working directory.
    let data = c.data.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(match c.dataset {
            Some(DatasetArg::FashionMnist) => "data/fashion-mnist",
            _ => "data/mnist",
        })
    });
    let optimizer = c.optimizer.unwrap_or(d.optimizer);
    let adam = optimizer == OptimizerArg::Adam;
    if adam && let Some(m) = c.momentum {
        return Err(format!(
            "--momentum {m}: momentum is SGD's; Adam's betas are PyTorch's (0.9, 0.999)"
        ));
    }
    Ok(Args {
        name,
        backend: c.backend,
        epochs: c.epochs,
        batch: c.batch,
        optimizer,
        lr: c.lr.unwrap_or(if adam { 1e-3 } else { 0.05 }),
        momentum: c.momentum.unwrap_or(0.9),
        weight_decay: c.weight_decay.unwrap_or(if adam { 0.0 } else { 5e-4 }),
        model: ModelFlags {
            dropout: c.dropout.unwrap_or(d.dropout),
            cell: c.cell.map(|c| match c {
                CellArg::Lstm => RnnCell::Lstm,
                CellArg::Gru => RnnCell::Gru,
            }),
        },
        clip_norm: c.clip_norm,
        seed: c.seed,
        data,
        val_fraction: c.val_fraction,
        train_limit: c.train_limit,
        patience: c.patience,
        early_stopping: !c.no_early_stopping,
        schedule: if c.schedule.unwrap_or(if adam {
            ScheduleArg::Constant
        } else {
            ScheduleArg::Cosine
        }) == ScheduleArg::Cosine
        {
            "cosine"
        } else {
            "constant"
        }
        .into(),
        // Without --out: runs/<example>, or the first runs/<example>-<k> that holds no
        // run, so that running the example again keeps the earlier run.
        out: c.out.unwrap_or_else(|| {
            let base = PathBuf::from(format!("runs/{name}"));
            std::iter::once(base.clone())
                .chain((2..).map(|k| PathBuf::from(format!("runs/{name}-{k}"))))
                .find(|d| held(d).is_empty())
                .unwrap_or(base)
        }),
        resume: c.resume,
        overwrite: c.overwrite,
        precision: c
            .precision
            .parse()
            .map_err(|e| format!("--precision: {e}"))?,
        quiet: c.quiet,
    })
}

/// An augmentation pipeline given the training split's (mean, std).
pub type AugmentFor = fn(f32, f32) -> Augment;

/// The files of a run that `dir` holds (none: a new or empty folder).
fn held(dir: &std::path::Path) -> Vec<&'static str> {
    [
        "metrics.csv",
        "metrics.jsonl",
        "checkpoints",
        "result.json",
        "config.toml",
    ]
    .into_iter()
    .filter(|f| dir.join(f).exists())
    .collect()
}

/// Parse the flags, train `model(flags)` (with `augment` as its first layer when given),
/// report. Exits with 2 on bad flags, 1 on errors.
pub fn main(name: &'static str, model: ModelFn, augment: Option<AugmentFor>, d: Defaults) {
    let args = match parse(name, &d).and_then(|a| {
        let m = model(&a.model)?;
        Ok((a, m))
    }) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = shadeprop::train::interrupt::install_sigint_handler() {
        eprintln!("warning: {e}");
    }
    match run(args.0, args.1, augment) {
        Ok(()) => {}
        Err(e @ shadeprop::Error::Interrupted { .. }) => {
            eprintln!("{e}; continue with --resume <that file>");
            std::process::exit(130);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(a: Args, mut seq: Sequential, augment: Option<AugmentFor>) -> shadeprop::Result<()> {
    // A run never destroys another: a folder holding one is refused unless --overwrite
    // (or --resume, which continues it).
    let held = held(&a.out);
    if !held.is_empty() && a.resume.is_none() && !a.overwrite {
        return Err(shadeprop::Error::Hyperparameter {
            name: "--out",
            value: format!("{} (it holds a run: {})", a.out.display(), held.join(", ")),
            expected: "a folder without a run; pass --overwrite to replace it, or --resume CHECKPOINT to continue it",
        });
    }
    let (backend, why) = shadeprop::backend::open(&a.backend)?;
    println!("{why}");
    println!("backend: {}", backend.describe());

    let (full_train, mut test) = load_mnist(&a.data)?;
    let full_train = if a.train_limit > 0 {
        full_train.take(a.train_limit)?
    } else {
        full_train
    };
    let (mut train, mut val) = full_train.split(a.val_fraction, a.seed)?;
    let stdz = Standardizer::fit(&train)?;
    let augment = augment.map(|f| f(stdz.mean, stdz.std));
    if augment.is_none() {
        stdz.apply(&mut train)?;
        stdz.apply(&mut val)?;
        stdz.apply(&mut test)?;
    }
    // With augmentation the data stays in [0, 1]: the model augments (training only) and
    // standardizes with the training split's statistics as its first layer.
    println!(
        "data: {} train / {} validation / {} test; standardized with the training split's mean {:.4} std {:.4}",
        train.len(),
        val.len(),
        test.len(),
        stdz.mean,
        stdz.std
    );

    // 0 or less: off; NaN stays, for the optimizer's check to name it.
    let clip_norm = (a.clip_norm > 0.0 || a.clip_norm.is_nan()).then_some(a.clip_norm);
    let opt: Optimizer = match a.optimizer {
        OptimizerArg::Sgd => Sgd {
            lr: a.lr,
            momentum: a.momentum,
            nesterov: false,
            weight_decay: a.weight_decay,
            clip_norm,
            clip_value: None,
            clip_per_tensor: false,
        }
        .into(),
        OptimizerArg::Adam => Adam {
            lr: a.lr,
            weight_decay: a.weight_decay,
            clip_norm,
            ..Adam::default()
        }
        .into(),
    };
    if let Some(aug) = augment {
        seq.layers.insert(0, Layer::Augment(aug));
        std::fs::create_dir_all(&a.out).map_err(|e| shadeprop::Error::Io {
            path: a.out.clone(),
            source: e,
        })?;
        let n = 8.min(train.len());
        let before = &train.x[..n * 784];
        // The draws the first training step makes for batch positions 0..n: the same
        // (seed, stream, step) as the layer (stream 1024, the first op stream; step 0).
        let after = aug.apply_cpu(
            before,
            n,
            (1, 28, 28),
            a.seed,
            shadeprop::rng::stream::OP_BASE,
            0,
        )?;
        let path = a.out.join("augment_preview.png");
        preview_png(&path, before, &after, n, (28, 28), 3, aug.standardize)?;
        println!(
            "augmentation: {aug}\nwrote {} (top: originals, bottom: augmented)",
            path.display()
        );
    }
    let graph = seq.build()?;
    println!("model: {}, {} parameters", a.name, graph.param_count());
    print!("{}", seq.summary());
    println!("optimizer: {opt:?}");
    let mut s = Session::with_precision(backend, graph, opt, a.seed, a.batch, a.precision)?;
    println!("precision: {}", a.precision.name());
    if a.schedule == "cosine" {
        // Cosine annealing (PyTorch's CosineAnnealingLR) per step, from --lr down to 0 at
        // the end of the epoch budget; early stopping may end the run before that.
        s.set_schedule(LrSchedule::cosine_over_epochs(
            train.len(),
            a.batch,
            a.epochs as u64,
        ))?;
        println!(
            "schedule: cosine from lr {} to 0 over {} epochs",
            a.lr, a.epochs
        );
    }
    println!(
        "plan: {:.1} MiB of buffers",
        s.layout().total_bytes(s.graph()) as f64 / (1 << 20) as f64
    );

    let cfg = FitConfig {
        epochs: a.epochs as u64,
        epoch: EpochConfig {
            batch_size: a.batch,
            progress: !a.quiet,
            ..Default::default()
        },
        seed: Some(a.seed),
        log_dir: Some(a.out.clone()),
        log_steps: false,
        standardizer: Some(stdz.into()),
        interrupt_checkpoint: Some(a.out.join("checkpoints").join("interrupt.safetensors")),
        verbose: true,
        ..Default::default()
    };
    let trainer = Trainer::new(cfg);
    let val_ref = (!val.is_empty()).then_some(&val);
    let monitor = if val_ref.is_some() {
        "val_loss"
    } else {
        "loss"
    };
    let mut early = EarlyStopping::new(monitor)
        .patience(a.patience)
        .restore_best_weights(true);
    let mut best = ModelCheckpoint::best_only(a.out.join("checkpoints"), monitor);
    let mut last = ModelCheckpoint::every(a.out.join("checkpoints"), 1);
    let mut nan = TerminateOnNan;
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut nan, &mut best, &mut last];
    if a.early_stopping {
        callbacks.insert(0, &mut early);
    }
    let t0 = Instant::now();
    let h = match &a.resume {
        Some(p) => {
            println!("resuming from {}", p.display());
            trainer.resume(p, &mut s, &train, val_ref, &mut callbacks)?
        }
        None => trainer.fit(&mut s, &train, val_ref, &mut callbacks)?,
    };
    println!(
        "{} epochs in {:.1}s; best at Epoch {} ({monitor}), early stop at Epoch {}; weights restored from the best epoch: {}",
        h.epochs.len(),
        t0.elapsed().as_secs_f64(),
        // Printed as the progress lines are (Keras: k/N, k = epoch + 1); the files and
        // the history keep the 0-based epoch.
        h.best_epoch
            .map_or("-".into(), |e| format!("{}/{}", e + 1, h.epochs.len())),
        h.stopped_epoch
            .map_or("-".into(), |e| format!("{}/{}", e + 1, h.epochs.len())),
        a.early_stopping
    );
    println!(
        "wrote {0}/metrics.csv, metrics.jsonl, curves.png, curves.svg, checkpoints/",
        a.out.display()
    );
    let t = evaluate(&mut s, &test, 1000)?;
    println!(
        "test loss {:.4} accuracy {:.4} ({} samples)",
        t.loss, t.accuracy, t.samples
    );
    for c in s.backend().kernel_choices() {
        println!("kernel variant: {c}");
    }
    // A fingerprint of the final parameters (FNV-1a over their bits), to compare runs.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (_, v) in s.params()? {
        for x in v {
            for b in x.to_bits().to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    println!("parameter fingerprint {h:016x} after step {}", s.step());
    Ok(())
}
