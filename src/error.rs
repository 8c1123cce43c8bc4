//! One error type for the whole public API.

use std::path::PathBuf;

/// Everything that can go wrong in shadeprop. Each variant names the offending value and
/// what was expected, so a message can be acted on without reading the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An IDX file (MNIST format) is malformed.
    #[error("IDX file {path}: {what}")]
    Idx { path: PathBuf, what: String },

    /// An image file or image folder that cannot be read as the run asks (undecodable,
    /// no class sub-folders, no images).
    #[error("image {path}: {what}")]
    Image { path: PathBuf, what: String },

    /// A CSV file that cannot be read as the run asks: `line` is the 1-based file line
    /// (0 when the problem is not on one line), `what` says what is wrong and what was
    /// expected.
    #[error("CSV {path}{}: {what}", if *line > 0 { format!(" line {line}") } else { String::new() })]
    Csv {
        path: PathBuf,
        line: usize,
        what: String,
    },

    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A tensor or batch has the wrong shape.
    #[error("shape mismatch in {context}: got {got:?}, expected {expected}")]
    Shape {
        context: String,
        got: Vec<usize>,
        expected: String,
    },

    /// A setting is outside its valid range: a hyperparameter, a config key or a
    /// command-line option (`name` says which: `optimizer.lr`, `--out`, ...).
    #[error("invalid {name} = {value}: expected {expected}")]
    Hyperparameter {
        name: &'static str,
        value: String,
        expected: &'static str,
    },

    /// No wgpu adapter could be found or the device could not be created.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),

    /// A buffer would exceed one of the adapter's limits.
    #[error("buffer {name} needs {bytes} bytes but the adapter's {limit_name} is {limit} bytes")]
    BufferTooLarge {
        name: String,
        bytes: u64,
        limit_name: &'static str,
        limit: u64,
    },

    /// The GPU reported an error (validation, out of memory, device lost).
    #[error("GPU error: {0}")]
    Gpu(String),

    /// The loss or a gradient became NaN or infinite.
    #[error("non-finite {what} ({value}) at step {step}")]
    NonFinite { what: String, value: f32, step: u64 },

    /// A graph was built or used inconsistently.
    #[error("graph error: {0}")]
    Graph(String),

    /// A checkpoint file is malformed or does not fit the model.
    #[error("checkpoint {path}: {what}")]
    Checkpoint { path: PathBuf, what: String },

    /// Training was interrupted (Ctrl-C); the state at that step was saved.
    #[error("interrupted by the user at step {step}; state saved to {checkpoint}")]
    Interrupted { step: u64, checkpoint: PathBuf },

    /// A configuration file is unreadable, has an unknown key or a wrongly typed value.
    #[error("config {path}: {msg}")]
    Config { path: PathBuf, msg: String },

    /// A plot could not be drawn.
    #[error("plot {path}: {what}")]
    Plot { path: PathBuf, what: String },

    /// A label is not an integer class index in [0, classes): e.g. 10 with 10 classes,
    /// 255, −1, 2.5 or NaN. `origin` is the file it was read from, or the dataset.
    #[error(
        "label {value} at row {row} of {origin}: expected an integer class index in [0, {classes})"
    )]
    Label {
        value: f32,
        row: usize,
        classes: usize,
        origin: String,
    },

    /// An input value read as a token id by an embedding that is not an integer in
    /// `[0, vocab)` (PyTorch: "index out of range in self"). Names the row, the column
    /// (the id's position in the row) and `origin`.
    #[error(
        "token id {value} at row {row}, column {column} of {origin}: expected an integer in [0, {vocab}) (the embedding's vocabulary)"
    )]
    TokenId {
        value: f32,
        row: usize,
        column: usize,
        vocab: usize,
        origin: String,
    },

    /// A target value or sample weight that the task cannot take: a binary target
    /// outside [0, 1], a regression target or weight that is not finite, a negative
    /// weight. Names the row (0-based), the column of the row's targets (not shown for a
    /// sample weight: one per row, `column` 0), and `origin`.
    #[error(
        "{what} {value} at row {row}{} of {origin}: expected {expected}",
        if *what == "sample weight" { String::new() } else { format!(", column {column}") }
    )]
    Target {
        what: &'static str,
        value: f32,
        row: usize,
        column: usize,
        expected: &'static str,
        origin: String,
    },

    /// A class index given as an integer (a prediction or a truth passed to a metric) is not
    /// below the number of classes.
    #[error(
        "{what}: class index {index} at row {row} is out of range; expected an index in [0, {classes})"
    )]
    ClassIndex {
        what: String,
        index: usize,
        row: usize,
        classes: usize,
    },

    /// A split cannot be made as asked: a class too small for both sides or for the
    /// folds, or a side that would hold no samples.
    #[error("split: {0}")]
    Split(String),

    /// A batch holds more samples than the session was created for.
    #[error(
        "a batch of {batch} samples is larger than the session's maximum batch {max} (the max_batch it was created with)"
    )]
    BatchTooLarge { batch: usize, max: usize },

    /// A training-mode pass would give a batch-norm layer one value per channel (a batch
    /// of one sample with one spatial position): its batch variance would be 0.
    #[error(
        "batch norm layer {layer}: expected more than 1 value per channel when training, got a batch of {batch} with {spatial} spatial position(s) per channel; train with batches of at least 2 samples (evaluation with one sample is fine)"
    )]
    OneValuePerChannel {
        layer: String,
        batch: usize,
        spatial: usize,
    },

    /// An input value is NaN or infinite where a finite one is needed (evaluation,
    /// prediction).
    #[error(
        "{context}: input holds {value} at row {row}, feature {feature}; inputs must be finite"
    )]
    NonFiniteInput {
        context: String,
        row: usize,
        feature: usize,
        value: f32,
    },

    /// A parameter or optimizer tensor being loaded holds NaN or infinity.
    #[error(
        "{what} of {tensor} holds {value} at index {index}; refusing to load non-finite values"
    )]
    NonFiniteParameter {
        tensor: String,
        what: &'static str,
        index: usize,
        value: f32,
    },

    /// A tensor being loaded holds a finite value outside its domain: a negative batch-norm
    /// running variance (the layer would divide by the square root of a negative number:
    /// NaN), a negative Adam second moment, a negative `num_batches_tracked` or step, a
    /// loss-scaling state that is not one. Names the tensor, the index and the value.
    #[error("{tensor} holds {value} at index {index}; expected {expected}")]
    ParameterDomain {
        tensor: String,
        index: usize,
        value: f64,
        expected: &'static str,
    },

    /// A callback was configured inconsistently (e.g. it monitors a metric that is never
    /// recorded).
    #[error("callback {callback}: {what}")]
    Callback {
        callback: &'static str,
        what: String,
    },

    /// A size, count or byte total is too large to represent or to allocate (a layer width,
    /// a parameter count, a batch, an image size); refused before anything is allocated.
    /// `name` is the argument or config key, `needs` the bytes it would take.
    #[error("{name} = {value} is too large: {needs}; expected {expected}")]
    TooLarge {
        name: String,
        value: String,
        needs: String,
        expected: String,
    },

    /// A dataset or split that must hold samples holds none.
    #[error("{what} has 0 samples; expected {expected}")]
    Empty { what: String, expected: String },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A value as an error message shows it: quoted (so that spaces and control characters
/// are visible), and cut after 80 characters with the length said.
pub(crate) fn shown(v: &str) -> String {
    let n = v.chars().count();
    if n <= 80 {
        format!("{v:?}")
    } else {
        let head: String = v.chars().take(80).collect();
        format!("{head:?}… ({n} characters)")
    }
}

impl Error {
    /// A [`Error::Label`], [`Error::Target`], [`Error::TokenId`] or
    /// [`Error::NonFiniteInput`] re-addressed to the data it came
    /// from: `origin` names it and `row` maps the row (e.g. a batch row to its dataset
    /// row); any other error as it is.
    pub(crate) fn in_data(self, origin: &str, row: impl Fn(usize) -> usize) -> Self {
        match self {
            Error::Label {
                value,
                row: r,
                classes,
                ..
            } => Error::Label {
                value,
                row: row(r),
                classes,
                origin: origin.into(),
            },
            Error::NonFiniteInput {
                row: r,
                feature,
                value,
                ..
            } => Error::NonFiniteInput {
                context: origin.into(),
                row: row(r),
                feature,
                value,
            },
            Error::Target {
                what,
                value,
                row: r,
                column,
                expected,
                ..
            } => Error::Target {
                what,
                value,
                row: row(r),
                column,
                expected,
                origin: origin.into(),
            },
            Error::TokenId {
                value,
                row: r,
                column,
                vocab,
                ..
            } => Error::TokenId {
                value,
                row: row(r),
                column,
                vocab,
                origin: origin.into(),
            },
            e => e,
        }
    }

    /// [`Error::TooLarge`] for `name` = `value`, which needs `bytes` bytes (None: the count
    /// overflows 64-bit arithmetic).
    pub(crate) fn too_large(
        name: impl Into<String>,
        value: impl ToString,
        bytes: Option<u128>,
        expected: impl Into<String>,
    ) -> Self {
        Error::TooLarge {
            name: name.into(),
            value: value.to_string(),
            needs: match bytes {
                Some(b) => format!("it needs {b} bytes"),
                None => "it needs more bytes than 64-bit arithmetic can count (overflow)".into(),
            },
            expected: expected.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
