//! Tabular data from CSV files: a [`CsvSpec`] says which file and which columns, a
//! [`Table`] holds the raw cells, and a [`Preprocessor`] fitted on the training rows only
//! turns rows into a [`Dataset`]: numeric columns as f32, categorical columns one-hot
//! encoded with the training vocabulary, missing values refused or imputed with the
//! training mean (numeric) or most frequent value (categorical), and the target column
//! mapped to class indices with the class names kept. The fitted preprocessor is plain
//! data (serde), stored in checkpoints, so a prediction starts from a raw CSV row.
//!
//! Missing cells are those pandas' `read_csv` reads as NaN by default: empty, `NA`,
//! `N/A`, `n/a`, `NaN`, `nan`, `-NaN`, `-nan`, `null`, `NULL`, `None`, `<NA>`, `#N/A`,
//! `#NA`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Dataset, Task};
use crate::error::{Error, Result, shown};

/// The largest CSV file read, in bytes after decompression (1 GiB).
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Cells read as missing (pandas' default `na_values`).
pub const MISSING: [&str; 14] = [
    "", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None", "<NA>", "#N/A",
    "#NA",
];

/// Whether a (trimmed) cell is missing.
pub fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell)
}

/// What to do with a missing feature value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// Refuse it, naming the line and column (the default).
    #[default]
    Error,
    /// Replace it by the training split's mean (numeric) or most frequent value
    /// (categorical; ties go to the smallest), scikit-learn's `SimpleImputer` strategies.
    Impute,
}

/// What to do with a category that the training split never showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unseen {
    /// Refuse it, naming the line, column and value (the default; scikit-learn's
    /// `OneHotEncoder(handle_unknown="error")`).
    #[default]
    Error,
    /// Encode it as all zeros (`handle_unknown="ignore"`).
    Zeros,
}

/// Which file holds the table and how its columns are used. Every field has a default, so
/// it can be a `[data]` table of a run config (`deny_unknown_fields`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvSpec {
    /// The CSV file (`.gz` files are decompressed).
    pub path: PathBuf,
    /// A second file holding the target column(s), row for row (scikit-learn's diabetes
    /// table keeps its target apart); read with the same delimiter, header and skip rule.
    /// Its columns are named `target`, `target1`, ... without a header.
    pub target_file: Option<PathBuf>,
    /// `,` (default), `;`, `\t`, or `whitespace` (runs of spaces and tabs).
    pub delimiter: String,
    /// Whether the first line read is a header of column names; without one, columns are
    /// named by their 0-based index: "0", "1", ...
    pub header: bool,
    /// Lines skipped at the start of the file (scikit-learn's `breast_cancer.csv` and
    /// `wine_data.csv` start with a "569,30,malignant,benign" line).
    pub skip_rows: usize,
    /// The target column(s): one for multiclass and binary, one per output otherwise.
    pub target: Vec<String>,
    /// The feature columns; empty = every column that is not a target.
    pub features: Vec<String>,
    /// Feature columns one-hot encoded (the others must be numeric).
    pub categorical: Vec<String>,
    /// Missing feature values: refused or imputed.
    pub missing: Missing,
    /// Categories unseen in training: refused or all zeros.
    pub unseen: Unseen,
}

impl Default for CsvSpec {
    fn default() -> Self {
        CsvSpec {
            path: PathBuf::new(),
            target_file: None,
            delimiter: ",".into(),
            header: true,
            skip_rows: 0,
            target: vec![],
            features: vec![],
            categorical: vec![],
            missing: Missing::Error,
            unseen: Unseen::Error,
        }
    }
}

/// A CSV file's cells as text (trimmed), with the file line of each row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Where the rows came from (for error messages).
    pub path: PathBuf,
    /// Column names: the header, or "0", "1", ... without one.
    pub columns: Vec<String>,
    /// The data rows, each with `columns.len()` cells.
    pub rows: Vec<Vec<String>>,
    /// The 1-based file line of each row.
    pub lines: Vec<usize>,
}

fn csv_err(path: &Path, line: usize, what: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        line,
        what: what.into(),
    }
}

impl Table {
    /// The index of column `name`, or [`Error::Csv`] listing the columns that exist.
    pub fn column(&self, name: &str, role: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            let mut list: Vec<String> = self.columns.iter().take(40).map(|c| shown(c)).collect();
            if self.columns.len() > 40 {
                list.push(format!("… ({} in all)", self.columns.len()));
            }
            csv_err(
                &self.path,
                0,
                format!(
                    "the {role} column {} is not in the file; its columns are {}",
                    shown(name),
                    list.join(", ")
                ),
            )
        })
    }

    /// Whether the table is rectangular and `rows` are its rows: every row holds
    /// `columns.len()` cells, `lines` holds one line number per row, and every index in
    /// `rows` is `< len()`. [`read_csv`] builds such tables; one built by hand (the fields
    /// are public) may not be. Errors: [`Error::Shape`] naming the first row (0-based
    /// index) that breaks the rule, so that [`Preprocessor`] refuses it instead of
    /// panicking.
    pub fn check_rows(&self, rows: &[usize]) -> Result<()> {
        if self.lines.len() != self.rows.len() {
            return Err(Error::Shape {
                context: format!("table {}: line numbers", self.path.display()),
                got: vec![self.lines.len()],
                expected: format!("one per row ({})", self.rows.len()),
            });
        }
        if let Some((i, r)) = self
            .rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != self.columns.len())
        {
            return Err(Error::Shape {
                context: format!("table {}: cells of row {i}", self.path.display()),
                got: vec![r.len()],
                expected: format!("{} cells, one per column", self.columns.len()),
            });
        }
        if let Some(&i) = rows.iter().find(|&&i| i >= self.rows.len()) {
            return Err(Error::Shape {
                context: format!("table {}: row index", self.path.display()),
                got: vec![i],
                expected: format!("row indices < {} (the number of rows)", self.rows.len()),
            });
        }
        Ok(())
    }

    /// The number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The bytes of `path`, decompressed when it starts with the gzip magic, at most
/// [`MAX_CSV_BYTES`] either way.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(csv_err(path, 0, "is a directory, expected a CSV file"));
    }
    // A regular file only (a FIFO or /dev/zero would block or fill memory).
    let raw = crate::fs::read_file(path, MAX_CSV_BYTES)?;
    let out = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = vec![];
        // Every member of a concatenated gzip file (`cat a.gz b.gz`, bgzip), not the first only.
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(MAX_CSV_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| csv_err(path, 0, format!("corrupt gzip stream: {e}")))?;
        out
    } else {
        raw
    };
    if out.len() as u64 > MAX_CSV_BYTES {
        return Err(csv_err(
            path,
            0,
            format!("larger than {MAX_CSV_BYTES} bytes, the most a CSV file may hold"),
        ));
    }
    Ok(out)
}

/// Read `path` as [`CsvSpec`] describes (delimiter, header, skipped lines). Errors
/// ([`Error::Csv`] naming the file and line): an empty file or one without data rows, a
/// row whose cell count differs from the header's, text that is not UTF-8, duplicate
/// column names, an unknown delimiter.
pub fn read_csv(path: &Path, spec: &CsvSpec) -> Result<Table> {
    let bytes = read_bytes(path)?;
    parse_csv(&bytes, path, spec)
}

/// [`read_csv`] on bytes already read (`path` only names them in errors).
pub fn parse_csv(bytes: &[u8], path: &Path, spec: &CsvSpec) -> Result<Table> {
    // A UTF-8 byte-order mark is not part of the first column's name.
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    // Skip whole lines first, so that the line numbers stay the file's.
    let mut start = 0;
    for _ in 0..spec.skip_rows {
        match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => start += i + 1,
            None => start = bytes.len(),
        }
    }
    let body = &bytes[start..];
    let first_line = spec.skip_rows + 1;
    let mut records: Vec<(usize, Vec<String>)> = vec![];
    match spec.delimiter.as_str() {
        "whitespace" => {
            let text = std::str::from_utf8(body).map_err(|e| {
                let line = first_line
                    + body[..e.valid_up_to()]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count();
                csv_err(path, line, "is not UTF-8 text")
            })?;
            for (i, l) in text.lines().enumerate() {
                if l.trim().is_empty() {
                    continue;
                }
                records.push((
                    first_line + i,
                    l.split_whitespace().map(String::from).collect(),
                ));
            }
        }
        d @ ("," | ";" | "\t" | "|") => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(d.as_bytes()[0])
                .from_reader(body);
            let (mut seen_at, mut seen_line) = (0usize, 0usize);
            for rec in rdr.records() {
                let rec = rec.map_err(|e| {
                    // Newlines before the failing record (once, on the error path).
                    let line = e.position().map_or(0, |p| {
                        let at = (p.byte() as usize).min(body.len());
                        let nl = body.get(at) == Some(&b'\n');
                        first_line
                            + nl as usize
                            + body[..at].iter().filter(|&&b| b == b'\n').count()
                    });
                    let what = match e.kind() {
                        csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text".to_string(),
                        _ => format!("unreadable: {e}"),
                    };
                    csv_err(path, line, what)
                })?;
                // The file line: newlines before the record's first byte (the csv crate's
                // own line count starts a CRLF file's records one line early).
                // Counted from the last record on, so the whole file is scanned once. After a
                // CRLF the csv crate starts the next record at the '\n': step over it.
                let mut at = rec
                    .position()
                    .map_or(0, |p| p.byte() as usize)
                    .min(body.len())
                    .max(seen_at);
                if body.get(at) == Some(&b'\n') {
                    at += 1;
                }
                seen_line += body[seen_at..at].iter().filter(|&&b| b == b'\n').count();
                seen_at = at;
                let line = first_line + seen_line;
                // A blank line ends nothing: skip it (the csv crate yields no record for it).
                if rec.len() == 1 && rec[0].trim().is_empty() {
                    continue;
                }
                records.push((line, rec.iter().map(|c| c.trim().to_string()).collect()));
            }
        }
        other => {
            return Err(Error::Hyperparameter {
                name: "data.delimiter",
                value: shown(other),
                expected: "\",\", \";\", \"\\t\", \"|\" or \"whitespace\"",
            });
        }
    }
    let mut it = records.into_iter();
    let (columns, header_line) = if spec.header {
        match it.next() {
            Some((l, h)) => (h, l),
            None => {
                return Err(csv_err(
                    path,
                    0,
                    "is empty: expected a header line and data rows",
                ));
            }
        }
    } else {
        (vec![], 0)
    };
    let mut rows = vec![];
    let mut lines = vec![];
    let mut columns = columns;
    for (line, cells) in it {
        if columns.is_empty() && !spec.header {
            columns = (0..cells.len()).map(|i| i.to_string()).collect();
        }
        if cells.len() != columns.len() {
            return Err(csv_err(
                path,
                line,
                format!(
                    "has {} cells, expected {} (as {})",
                    cells.len(),
                    columns.len(),
                    if spec.header {
                        format!("the header on line {header_line}")
                    } else {
                        "the first row".to_string()
                    }
                ),
            ));
        }
        rows.push(cells);
        lines.push(line);
    }
    if rows.is_empty() {
        return Err(csv_err(path, 0, "has no data rows"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(csv_err(
            path,
            header_line,
            format!("the column name {} appears twice", shown(d)),
        ));
    }
    Ok(Table {
        path: path.to_path_buf(),
        columns,
        rows,
        lines,
    })
}

/// The table of `spec`: its file and, with `target_file`, the target columns appended
/// (named `target`, `target1`, ... without a header). Errors as [`read_csv`]; target file
/// rows that do not match the feature rows one for one are [`Error::Csv`].
pub fn read_table(spec: &CsvSpec) -> Result<Table> {
    let mut t = read_csv(&spec.path, spec)?;
    if let Some(tp) = &spec.target_file {
        let y = read_csv(tp, spec)?;
        if y.len() != t.len() {
            return Err(csv_err(
                tp,
                0,
                format!(
                    "has {} rows, but {} has {}: a target file holds one row per sample",
                    y.len(),
                    spec.path.display(),
                    t.len()
                ),
            ));
        }
        let names: Vec<String> = if spec.header {
            y.columns.clone()
        } else {
            (0..y.columns.len())
                .map(|i| {
                    if i == 0 {
                        "target".into()
                    } else {
                        format!("target{i}")
                    }
                })
                .collect()
        };
        if let Some(dup) = names.iter().find(|n| t.columns.contains(n)) {
            return Err(csv_err(
                tp,
                0,
                format!(
                    "the column {} is in both {} and the target file: rename one (data.csv.target names a column of either)",
                    shown(dup),
                    spec.path.display()
                ),
            ));
        }
        t.columns.extend(names);
        for (row, yr) in t.rows.iter_mut().zip(y.rows) {
            row.extend(yr);
        }
    }
    Ok(t)
}

/// One fitted feature column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Column {
    /// A number; `impute` is the training mean (with [`Missing::Impute`]).
    Numeric { name: String, impute: Option<f32> },
    /// One-hot over `vocabulary` (sorted, from the training rows); `impute` is the most
    /// frequent training value (with [`Missing::Impute`]).
    Categorical {
        name: String,
        vocabulary: Vec<String>,
        impute: Option<String>,
    },
}

impl Column {
    fn name(&self) -> &str {
        match self {
            Column::Numeric { name, .. } | Column::Categorical { name, .. } => name,
        }
    }
    fn width(&self) -> usize {
        match self {
            Column::Numeric { .. } => 1,
            Column::Categorical { vocabulary, .. } => vocabulary.len(),
        }
    }
}

/// The preprocessing fitted on the training rows of a table: the feature columns, the
/// target columns and, for classification, the class names. Serialize it (JSON) to apply
/// the same preprocessing at evaluation and prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub task: Task,
    pub columns: Vec<Column>,
    pub targets: Vec<String>,
    /// Class names by index (multiclass and binary: the target's distinct training values,
    /// sorted numerically when they are all numbers, else as text).
    pub class_names: Option<Vec<String>>,
    pub missing: Missing,
    pub unseen: Unseen,
}

/// A cell as a finite f32, or [`Error::Csv`] naming its line, column and value, with a
/// hint when the cell looks like a category or like several cells run together.
fn number(t: &Table, r: usize, c: usize, role: &str) -> Result<f32> {
    let cell = &t.rows[r][c];
    match cell.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => {
            let hint = if cell.split_whitespace().count() > 1 || cell.contains([';', '\t', '|']) {
                " (several values in one cell: is data.csv.delimiter right?)"
            } else if cell.chars().any(char::is_alphabetic)
                && !cell.to_ascii_lowercase().contains("inf")
            {
                " (text: list the column in data.csv.categorical to one-hot encode it)"
            } else {
                ""
            };
            Err(csv_err(
                &t.path,
                t.lines[r],
                format!(
                    "{role} column {}: {} is not a finite number{hint}",
                    shown(&t.columns[c]),
                    shown(cell)
                ),
            ))
        }
    }
}

impl Preprocessor {
    /// Fit on the rows `train` of `table` for `task`, as `spec` says. Errors
    /// ([`Error::Csv`] with line and column): unknown column names, no feature column, a
    /// target also a feature, a missing target, a missing feature value with
    /// [`Missing::Error`], a non-numeric cell in a numeric column, a binary target with
    /// other than 2 classes, a multiclass target with fewer than 2, a multi-label task
    /// with one target column or a classification task with several. Only the `train`
    /// rows are read (cells of the other rows are checked when they are transformed).
    /// [`Error::Shape`]: a `train` index that is not a row of `table`, or a table that is
    /// not rectangular ([`Table::check_rows`]).
    pub fn fit(spec: &CsvSpec, table: &Table, task: Task, train: &[usize]) -> Result<Self> {
        table.check_rows(train)?;
        // In file order, so that the first bad cell reported is the first in the file.
        let mut sorted = train.to_vec();
        sorted.sort_unstable();
        let train = &sorted[..];
        let err = |what: String| csv_err(&table.path, 0, what);
        if spec.target.is_empty() {
            return Err(err("no target column: set data.target".into()));
        }
        let n_t = spec.target.len();
        match task {
            Task::Multiclass | Task::Binary if n_t != 1 => {
                return Err(err(format!(
                    "the {task} task takes one target column, {n_t} are named"
                )));
            }
            _ => {}
        }
        let tcols: Vec<usize> = spec
            .target
            .iter()
            .map(|n| table.column(n, "target"))
            .collect::<Result<_>>()?;
        let fnames: Vec<String> = if spec.features.is_empty() {
            table
                .columns
                .iter()
                .filter(|c| !spec.target.contains(c))
                .cloned()
                .collect()
        } else {
            spec.features.clone()
        };
        if let Some(t) = fnames.iter().find(|f| spec.target.contains(f)) {
            return Err(err(format!(
                "the column {} is both a target and a feature",
                shown(t)
            )));
        }
        if fnames.is_empty() {
            return Err(err("no feature column: every column is a target".into()));
        }
        for (list, what) in [
            (&spec.target, "data.csv.target"),
            (&fnames, "data.csv.features"),
            (&spec.categorical, "data.csv.categorical"),
        ] {
            if let Some(d) = list
                .iter()
                .enumerate()
                .find(|(i, n)| list[..*i].contains(n))
            {
                return Err(err(format!("{what} lists the column {} twice", shown(d.1))));
            }
        }
        for c in &spec.categorical {
            table.column(c, "categorical")?;
            if !fnames.contains(c) {
                return Err(err(format!(
                    "the categorical column {} is not one of the features",
                    shown(c)
                )));
            }
        }
        if train.is_empty() {
            return Err(err("no training rows to fit the preprocessing on".into()));
        }
        let mut columns = vec![];
        for name in &fnames {
            let c = table.column(name, "feature")?;
            let missing_err = |r: usize| {
                csv_err(
                    &table.path,
                    table.lines[r],
                    format!(
                        "feature column {}: missing value {} (set missing = \"impute\" in [data.csv] to fill missing features with the training mean or most frequent value)",
                        shown(name),
                        shown(&table.rows[r][c])
                    ),
                )
            };
            if spec.categorical.contains(name) {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for &r in train {
                    let v = table.rows[r][c].as_str();
                    if is_missing(v) {
                        if spec.missing == Missing::Error {
                            return Err(missing_err(r));
                        }
                        continue;
                    }
                    *counts.entry(v).or_default() += 1;
                }
                // Most frequent, the smallest on ties (BTreeMap order, first maximum).
                let mut best: Option<(&str, usize)> = None;
                for (&v, &n) in &counts {
                    if best.is_none_or(|(_, b)| n > b) {
                        best = Some((v, n));
                    }
                }
                let impute = match spec.missing {
                    Missing::Impute => Some(best.map(|(v, _)| v.to_string()).ok_or_else(|| {
                        err(format!(
                            "categorical column {}: no value in the training rows to impute with",
                            shown(name)
                        ))
                    })?),
                    Missing::Error => None,
                };
                columns.push(Column::Categorical {
                    name: name.clone(),
                    vocabulary: counts.keys().map(|s| s.to_string()).collect(),
                    impute,
                });
            } else {
                let (mut sum, mut n) = (0f64, 0usize);
                for &r in train {
                    if is_missing(&table.rows[r][c]) {
                        if spec.missing == Missing::Error {
                            return Err(missing_err(r));
                        }
                        continue;
                    }
                    sum += number(table, r, c, "numeric feature")? as f64;
                    n += 1;
                }
                let impute = match spec.missing {
                    Missing::Impute if n == 0 => {
                        return Err(err(format!(
                            "numeric column {}: no value in the training rows to impute with",
                            shown(name)
                        )));
                    }
                    Missing::Impute => Some((sum / n as f64) as f32),
                    Missing::Error => None,
                };
                columns.push(Column::Numeric {
                    name: name.clone(),
                    impute,
                });
            }
        }
        // Targets: never missing; classes from the training rows.
        for &tc in &tcols {
            for &r in train {
                if is_missing(&table.rows[r][tc]) {
                    return Err(csv_err(
                        &table.path,
                        table.lines[r],
                        format!(
                            "target column {}: missing value {}",
                            shown(&table.columns[tc]),
                            shown(&table.rows[r][tc])
                        ),
                    ));
                }
            }
        }
        let class_names = match task {
            Task::Multiclass | Task::Binary => {
                let tc = tcols[0];
                let mut names: Vec<String> =
                    train.iter().map(|&r| table.rows[r][tc].clone()).collect();
                names.sort();
                names.dedup();
                if names
                    .iter()
                    .all(|s| s.parse::<f64>().is_ok_and(f64::is_finite))
                {
                    // "1" and "1.0" are one number written two ways: refuse rather than
                    // make two classes of it.
                    let mut v: Vec<(f64, &String)> = names
                        .iter()
                        .map(|s| (s.parse::<f64>().unwrap_or(0.0), s))
                        .collect();
                    v.sort_by(|a, b| a.0.total_cmp(&b.0));
                    if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
                        return Err(err(format!(
                            "the target {} holds {} and {}, one number written two ways: write each class one way",
                            shown(&spec.target[0]),
                            shown(w[0].1),
                            shown(w[1].1)
                        )));
                    }
                    names.sort_by(|a, b| {
                        let (x, y) = (
                            a.parse::<f64>().unwrap_or(0.0),
                            b.parse::<f64>().unwrap_or(0.0),
                        );
                        x.total_cmp(&y)
                    });
                }
                let want = if task == Task::Binary {
                    "exactly 2"
                } else {
                    "at least 2"
                };
                if (task == Task::Binary && names.len() != 2) || names.len() < 2 {
                    return Err(err(format!(
                        "the {task} target {} has {} distinct value(s) in the training rows, expected {want}",
                        shown(&spec.target[0]),
                        names.len()
                    )));
                }
                Some(names)
            }
            Task::Multilabel if n_t < 2 => {
                return Err(err(
                    "the multilabel task takes at least 2 target columns (use binary for one)"
                        .into(),
                ));
            }
            _ => None,
        };
        Ok(Preprocessor {
            task,
            columns,
            targets: spec.target.clone(),
            class_names,
            missing: spec.missing,
            unseen: spec.unseen,
        })
    }

    /// Input features per row after one-hot encoding.
    pub fn features(&self) -> usize {
        self.columns.iter().map(Column::width).sum()
    }

    /// Target values per row: 1 for multiclass and binary, one per column otherwise.
    pub fn targets(&self) -> usize {
        match self.task {
            Task::Multiclass | Task::Binary => 1,
            _ => self.targets.len(),
        }
    }

    /// Names of the encoded features: a numeric column's name, `column=value` for each
    /// one-hot column.
    pub fn feature_names(&self) -> Vec<String> {
        let mut v = vec![];
        for c in &self.columns {
            match c {
                Column::Numeric { name, .. } => v.push(name.clone()),
                Column::Categorical {
                    name, vocabulary, ..
                } => v.extend(vocabulary.iter().map(|x| format!("{name}={x}"))),
            }
        }
        v
    }

    /// The encoded features of rows `rows` of `table` (columns found by name), row-major
    /// `[rows, features()]`. Errors ([`Error::Csv`] with line and column): a feature
    /// column not in the table, a missing value with [`Missing::Error`], a non-numeric
    /// cell, a category unseen in training with [`Unseen::Error`]; [`Error::Shape`] as
    /// [`Table::check_rows`]. The table needs only the feature columns (a prediction
    /// input may lack the targets).
    pub fn transform_features(&self, table: &Table, rows: &[usize]) -> Result<Vec<f32>> {
        table.check_rows(rows)?;
        let idx: Vec<usize> = self
            .columns
            .iter()
            .map(|c| table.column(c.name(), "feature"))
            .collect::<Result<_>>()?;
        let mut x = Vec::with_capacity(rows.len() * self.features());
        for &r in rows {
            for (col, &c) in self.columns.iter().zip(&idx) {
                let cell = table.rows[r][c].as_str();
                let missing = is_missing(cell);
                let at = |what: String| csv_err(&table.path, table.lines[r], what);
                match col {
                    Column::Numeric { name, impute } => {
                        if missing {
                            x.push(impute.ok_or_else(|| {
                                at(format!(
                                    "feature column {}: missing value {}",
                                    shown(name),
                                    shown(cell)
                                ))
                            })?);
                        } else {
                            x.push(number(table, r, c, "numeric feature")?);
                        }
                    }
                    Column::Categorical {
                        name,
                        vocabulary,
                        impute,
                    } => {
                        let v = if missing {
                            impute.as_deref().ok_or_else(|| {
                                at(format!(
                                    "feature column {}: missing value {}",
                                    shown(name),
                                    shown(cell)
                                ))
                            })?
                        } else {
                            cell
                        };
                        let hot = vocabulary.iter().position(|w| w == v);
                        if hot.is_none() && self.unseen == Unseen::Error {
                            return Err(at(format!(
                                "categorical column {}: {} was not seen in the training rows (known: {}); set unseen = \"zeros\" in [data.csv] (and train again) to encode unseen categories as all zeros",
                                shown(name),
                                shown(v),
                                vocabulary
                                    .iter()
                                    .map(|s| shown(s))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )));
                        }
                        x.extend(
                            (0..vocabulary.len()).map(|j| if Some(j) == hot { 1.0 } else { 0.0 }),
                        );
                    }
                }
            }
        }
        Ok(x)
    }

    /// The targets of rows `rows`, `[rows, targets()]`: class indices for multiclass and
    /// binary (a class unseen in training is [`Error::Csv`]), numbers otherwise. Errors
    /// ([`Error::Csv`] with line and column): a target column not in the table, a missing
    /// or (numeric targets) non-finite value; [`Error::Shape`] as [`Table::check_rows`].
    pub fn transform_targets(&self, table: &Table, rows: &[usize]) -> Result<Vec<f32>> {
        table.check_rows(rows)?;
        let idx: Vec<usize> = self
            .targets
            .iter()
            .map(|n| table.column(n, "target"))
            .collect::<Result<_>>()?;
        let mut y = Vec::with_capacity(rows.len() * idx.len());
        for &r in rows {
            for &c in &idx {
                let cell = &table.rows[r][c];
                let at = |what: String| csv_err(&table.path, table.lines[r], what);
                if is_missing(cell) {
                    return Err(at(format!(
                        "target column {}: missing value {}",
                        shown(&table.columns[c]),
                        shown(cell)
                    )));
                }
                match &self.class_names {
                    Some(names) => {
                        let k = names.iter().position(|n| n == cell).ok_or_else(|| {
                            at(format!(
                                "target column {}: class {} was not seen in the training rows",
                                shown(&table.columns[c]),
                                shown(cell)
                            ))
                        })?;
                        y.push(k as f32);
                    }
                    None => y.push(number(table, r, c, "target")?),
                }
            }
        }
        Ok(y)
    }

    /// Rows `rows` of `table` as a [`Dataset`] of this task (features and targets as
    /// above, then checked by [`Dataset::for_task`]).
    pub fn dataset(&self, table: &Table, rows: &[usize]) -> Result<Dataset> {
        self.check_size(rows.len())?;
        let x = self.transform_features(table, rows)?;
        let y = self.transform_targets(table, rows)?;
        let width = match self.task {
            Task::Multiclass => self.class_names.as_ref().map_or(0, Vec::len),
            Task::Binary => 1,
            _ => self.targets.len(),
        };
        // A target the task cannot take is named by its file line, not its index here.
        let lines: Vec<usize> = rows
            .iter()
            .map(|&r| table.lines.get(r).copied().unwrap_or(0))
            .collect();
        Dataset::for_task(self.task, x, y, self.features(), width).map_err(|e| {
            e.in_data(
                &format!("{} (rows are file lines)", table.path.display()),
                |r| lines.get(r).copied().unwrap_or(r),
            )
        })
    }

    /// The encoded table of `rows` rows must fit the kernels' element counts and the host's
    /// memory: a categorical column of 200,000 distinct values one-hot encodes to 200,000
    /// features per row. Checked before anything is allocated; the error names the widest
    /// categorical column.
    fn check_size(&self, rows: usize) -> Result<()> {
        let f = self.features();
        let n = rows.checked_mul(f);
        let bytes = n.and_then(crate::limits::f32_bytes);
        if n.is_none_or(|n| n > crate::limits::MAX_ELEMENTS)
            || bytes.is_none_or(|b| b > crate::limits::host_memory_bytes())
        {
            let widest = self
                .columns
                .iter()
                .filter_map(|c| match c {
                    Column::Categorical {
                        name, vocabulary, ..
                    } => Some((vocabulary.len(), name)),
                    Column::Numeric { .. } => None,
                })
                .max();
            return Err(Error::too_large(
                "the encoded table",
                format!(
                    "{rows} rows × {f} features{}",
                    widest.map_or(String::new(), |(k, name)| format!(
                        " (categorical column {} has {k} distinct values)",
                        shown(name)
                    ))
                ),
                bytes,
                "a one-hot encoding that fits the host's memory and 2^32 − 1 values: drop or bucket high-cardinality categorical columns",
            ));
        }
        Ok(())
    }

    /// As JSON (stored in checkpoints).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// From [`Preprocessor::to_json`]'s JSON; [`Error::Checkpoint`]-style message on
    /// another shape.
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        serde_json::from_value(v.clone()).map_err(|e| Error::Config {
            path: PathBuf::from("(stored preprocessing)"),
            msg: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let spec = CsvSpec {
            target: vec!["y".into()],
            ..Default::default()
        };
        parse_csv(b"a,y\n1,0\n2,1\n", Path::new("t.csv"), &spec).unwrap()
    }

    fn spec() -> CsvSpec {
        CsvSpec {
            target: vec!["y".into()],
            ..Default::default()
        }
    }

    #[test]
    fn row_indices_past_the_table_are_shape_errors_not_panics() {
        let t = table();
        let e = Preprocessor::fit(&spec(), &t, Task::Binary, &[0, 2]).unwrap_err();
        assert!(matches!(&e, Error::Shape { got, .. } if got == &[2]), "{e}");
        let pre = Preprocessor::fit(&spec(), &t, Task::Binary, &[0, 1]).unwrap();
        for e in [
            pre.transform_features(&t, &[5]).unwrap_err(),
            pre.transform_targets(&t, &[1, 9]).unwrap_err(),
            pre.dataset(&t, &[usize::MAX]).unwrap_err(),
        ] {
            assert!(
                matches!(e, Error::Shape { .. }) && e.to_string().contains("< 2"),
                "{e}"
            );
        }
    }

    #[test]
    fn hand_built_ragged_tables_are_shape_errors_not_panics() {
        let mut t = table();
        t.rows[1].pop();
        let e = Preprocessor::fit(&spec(), &t, Task::Binary, &[0]).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, Error::Shape { got, .. } if got == &[1]) && msg.contains("row 1"),
            "{msg}"
        );
        let mut t = table();
        t.lines.pop();
        let e = Preprocessor::fit(&spec(), &t, Task::Binary, &[0]).unwrap_err();
        assert!(e.to_string().contains("line numbers"), "{e}");
    }

    #[test]
    fn check_rows_accepts_what_parse_csv_builds() {
        let t = table();
        assert!(t.check_rows(&[]).is_ok());
        assert!(t.check_rows(&[1, 0, 1]).is_ok());
    }
}
