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
//! `#NA`, `#N/A N/A`, `-1.#IND`, `1.#IND`, `-1.#QNAN`, `1.#QNAN` (after trimming, so a
//! cell of spaces is missing too).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Dataset, Task};
use crate::error::{Error, Result, shown};

/// The largest CSV file read, in bytes after decompression (1 GiB).
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Cells read as missing (pandas' default `na_values`, `STR_NA_VALUES` in
/// `pandas/_libs/parsers.pyx`).
pub const MISSING: [&str; 19] = [
    "", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None", "<NA>", "#N/A",
    "#NA", "#N/A N/A", "-1.#IND", "1.#IND", "-1.#QNAN", "1.#QNAN",
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
/// A list of column names, or one name as a string (`target = "species"`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a column name or a list of column names")
        })? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        },
    )
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvSpec {
    /// The CSV file (`.gz` files are decompressed).
    pub path: PathBuf,
    /// A second file holding the target column(s), row for row (scikit-learn's diabetes
    /// table keeps its target apart); read with the same delimiter, header and skip rule.
    /// Its columns are named `target`, `target1`, ... without a header.
    pub target_file: Option<PathBuf>,
    /// `,` (default), `;`, `\t`, `|`, or `whitespace` (runs of whitespace, no quoting).
    /// Lines end at `\n`, `\r\n` or a lone `\r`.
    pub delimiter: String,
    /// Whether the first line read is a header of column names; without one, columns are
    /// named by their 0-based index: "0", "1", ...
    pub header: bool,
    /// Lines skipped at the start of the file, after a UTF-8 byte-order mark (scikit-learn's
    /// `breast_cancer.csv` and `wine_data.csv` start with a "569,30,malignant,benign"
    /// line); a file with fewer lines is [`Error::Csv`].
    pub skip_rows: usize,
    /// The target column(s): one for multiclass and binary, one per output otherwise (a
    /// single name may be given as a string).
    #[serde(deserialize_with = "one_or_many")]
    pub target: Vec<String>,
    /// The feature columns; empty = every column that is not a target.
    #[serde(deserialize_with = "one_or_many")]
    pub features: Vec<String>,
    /// Feature columns one-hot encoded (the others must be numeric).
    #[serde(deserialize_with = "one_or_many")]
    pub categorical: Vec<String>,
    /// Missing feature values: refused or imputed.
    pub missing: Missing,
    /// Categories unseen in training: refused or all zeros.
    pub unseen: Unseen,
    /// A column of per-sample weights (finite, >= 0; Keras' `sample_weight`): the loss is
    /// their weighted mean. Neither a feature nor a target; not read at prediction.
    pub weight: Option<String>,
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
            weight: None,
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
    /// The columns [`read_table`] appended from a `target_file` (None for one file).
    pub appended: Option<Appended>,
}

/// Columns of a [`Table`] read from a second file (a `target_file`), row for row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Appended {
    /// The index in [`Table::columns`] of the first appended column; the rest follow it.
    pub first_column: usize,
    /// The file they were read from.
    pub path: PathBuf,
    /// The 1-based line of each row in that file.
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
            csv_err(
                &self.path,
                0,
                format!(
                    "the {role} column {} is not in the file; its columns are {}",
                    shown(name),
                    shown_list(&self.columns)
                ),
            )
        })
    }

    /// The number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The file and 1-based line that cell (row `r`, column `c`) was read from: the
    /// target file's for an appended column.
    pub fn origin(&self, r: usize, c: usize) -> (&Path, usize) {
        match &self.appended {
            Some(a) if c >= a.first_column => (&a.path, a.lines.get(r).copied().unwrap_or(0)),
            _ => (&self.path, self.lines.get(r).copied().unwrap_or(0)),
        }
    }

    /// [`Error::Csv`] about cell (`r`, `c`), on the file and line it was read from.
    fn cell_err(&self, r: usize, c: usize, what: String) -> Error {
        let (path, line) = self.origin(r, c);
        csv_err(path, line, what)
    }

    /// Whether the table is rectangular and `rows` are its rows: every row holds
    /// `columns.len()` cells, `lines` holds one line number per row (and so do the
    /// [`Table::appended`] columns' lines), and every index in `rows` is `< len()`.
    /// [`read_csv`] and [`read_table`] build such tables; one built by hand (the fields
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
        if let Some(a) = &self.appended {
            if a.lines.len() != self.rows.len() {
                return Err(Error::Shape {
                    context: format!(
                        "table {}: line numbers of {}",
                        self.path.display(),
                        a.path.display()
                    ),
                    got: vec![a.lines.len()],
                    expected: format!("one per row ({})", self.rows.len()),
                });
            }
            if a.first_column > self.columns.len() {
                return Err(Error::Shape {
                    context: format!(
                        "table {}: first column of {}",
                        self.path.display(),
                        a.path.display()
                    ),
                    got: vec![a.first_column],
                    expected: format!("a column index <= {}", self.columns.len()),
                });
            }
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
}

/// The bytes of `path`, decompressed when it starts with the gzip magic (every member of
/// a multi-member stream, as `gzip -d` does), at most [`MAX_CSV_BYTES`] either way.
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

/// The delimiter byte of `spec` (None: runs of whitespace), or [`Error::Hyperparameter`]
/// naming `data.delimiter`.
fn delimiter(spec: &CsvSpec) -> Result<Option<u8>> {
    match spec.delimiter.as_str() {
        "whitespace" => Ok(None),
        d @ ("," | ";" | "\t" | "|") => Ok(Some(d.as_bytes()[0])),
        other => Err(Error::Hyperparameter {
            name: "data.delimiter",
            value: shown(other),
            expected: "\",\", \";\", \"\\t\", \"|\" or \"whitespace\"",
        }),
    }
}

/// Read `path` as [`CsvSpec`] describes (delimiter, header, skipped lines). Errors: an
/// unknown delimiter ([`Error::Hyperparameter`], before the file is read); a missing or
/// unreadable file ([`Error::Io`]); and as [`Error::Csv`] naming the file and line: a
/// directory, a corrupt gzip stream, an empty file or one without data rows, a row whose
/// cell count differs from the header's, text that is not UTF-8 (naming the column and the
/// bytes), duplicate column names.
pub fn read_csv(path: &Path, spec: &CsvSpec) -> Result<Table> {
    delimiter(spec)?;
    let bytes = read_bytes(path)?;
    parse_csv(&bytes, path, spec)
}

/// Whether `body[i]` ends a line: `\n`, or `\r` not followed by `\n` (the CSV reader's
/// terminators are `\n`, `\r\n` and a lone `\r`; a `\r\n` ends its line at the `\n`).
fn ends_line(body: &[u8], i: usize) -> bool {
    match body[i] {
        b'\n' => true,
        b'\r' => body.get(i + 1) != Some(&b'\n'),
        _ => false,
    }
}

/// Line ends in `body[from..to]`.
fn line_ends(body: &[u8], from: usize, to: usize) -> usize {
    (from..to).filter(|&i| ends_line(body, i)).count()
}

/// The lines of `body` (without their terminators), split as [`ends_line`] says.
fn split_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut out = vec![];
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        if ends_line(body, i) {
            let end = if body[i] == b'\n' && i > start && body[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            out.push(&body[start..end]);
            start = i + 1;
        }
        i += 1;
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

/// Bytes that are not UTF-8 as an error message shows them: quoted, `\xff` escapes, cut
/// after 80 characters.
fn shown_bytes(b: &[u8]) -> String {
    let s = b.escape_ascii().to_string();
    let n = s.chars().count();
    if n <= 80 {
        format!("\"{s}\"")
    } else {
        format!(
            "\"{}\"… ({} bytes)",
            s.chars().take(80).collect::<String>(),
            b.len()
        )
    }
}

/// The error for cell `k` of a record on `line` that is not UTF-8: the column is named by
/// the header (read already, as `records[0]`) or its index.
fn not_utf8(
    path: &Path,
    line: usize,
    spec: &CsvSpec,
    records: &[(usize, Vec<String>)],
    k: usize,
    cell: &[u8],
) -> Error {
    let column = if !spec.header {
        format!("column {}", shown(&k.to_string()))
    } else if let Some((_, h)) = records.first() {
        h.get(k).map_or(format!("cell {}", k + 1), |n| {
            format!("column {}", shown(n))
        })
    } else {
        format!("the header's cell {}", k + 1)
    };
    csv_err(
        path,
        line,
        format!("{column}: {} is not UTF-8 text", shown_bytes(cell)),
    )
}

/// [`read_csv`] on bytes already read (`path` only names them in errors).
pub fn parse_csv(bytes: &[u8], path: &Path, spec: &CsvSpec) -> Result<Table> {
    let delim = delimiter(spec)?;
    // A UTF-8 byte-order mark is not part of the first column's name.
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    // Skip whole lines first, so that the line numbers stay the file's; at most to the end
    // of the file, however large skip_rows is.
    let (mut start, mut skipped) = (0, 0);
    while skipped < spec.skip_rows && start < bytes.len() {
        start = (start..bytes.len())
            .find(|&i| ends_line(bytes, i))
            .map_or(bytes.len(), |i| i + 1);
        skipped += 1;
    }
    let body = &bytes[start..];
    let first_line = skipped + 1;
    let mut records: Vec<(usize, Vec<String>)> = vec![];
    match delim {
        None => {
            for (i, l) in split_lines(body).into_iter().enumerate() {
                let line = first_line + i;
                let Ok(text) = std::str::from_utf8(l) else {
                    let (k, cell) = l
                        .split(u8::is_ascii_whitespace)
                        .filter(|c| !c.is_empty())
                        .enumerate()
                        .find(|(_, c)| std::str::from_utf8(c).is_err())
                        .unwrap_or((0, l));
                    return Err(not_utf8(path, line, spec, &records, k, cell));
                };
                if text.trim().is_empty() {
                    continue;
                }
                records.push((line, text.split_whitespace().map(String::from).collect()));
            }
        }
        Some(d) => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(d)
                .from_reader(body);
            // The file line of a record: line ends before its first byte, counted on from
            // the previous record so that the file is scanned once. The csv crate puts a
            // record's start at the end of the previous one (before any blank lines, and at
            // the '\n' of a CRLF): no record starts with '\r' or '\n', so step over them.
            let (mut seen_at, mut seen_line) = (0usize, 0usize);
            let mut line_of = |pos: u64| {
                let mut at = (pos as usize).clamp(seen_at, body.len());
                while matches!(body.get(at), Some(b'\r' | b'\n')) {
                    at += 1;
                }
                seen_line += line_ends(body, seen_at, at);
                seen_at = at;
                first_line + seen_line
            };
            let mut rec = csv::ByteRecord::new();
            loop {
                match rdr.read_byte_record(&mut rec) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        let line = e.position().map_or(0, |p| line_of(p.byte()));
                        return Err(csv_err(path, line, format!("unreadable: {e}")));
                    }
                }
                let line = line_of(rec.position().map_or(0, |p| p.byte()));
                let mut cells = Vec::with_capacity(rec.len());
                for (k, c) in rec.iter().enumerate() {
                    match std::str::from_utf8(c) {
                        Ok(s) => cells.push(s.trim().to_string()),
                        Err(_) => return Err(not_utf8(path, line, spec, &records, k, c)),
                    }
                }
                // A line of blanks is skipped like an empty one (which the csv crate skips).
                if cells.len() == 1 && cells[0].is_empty() {
                    continue;
                }
                records.push((line, cells));
            }
        }
    }
    if skipped < spec.skip_rows {
        return Err(csv_err(
            path,
            0,
            format!(
                "has {skipped} line(s), fewer than the {} to skip (data.skip_rows, or --skip-rows of predict)",
                spec.skip_rows
            ),
        ));
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
        appended: None,
    })
}

/// The table of `spec`: its file and, with `target_file`, the target columns appended
/// (named `target`, `target1`, ... without a header) with their own file and lines
/// ([`Table::appended`]), so that errors about them name the target file. Errors as
/// [`read_csv`]; target file rows that do not match the feature rows one for one, and a
/// column name in both files, are [`Error::Csv`].
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
        t.appended = Some(Appended {
            first_column: t.columns.len(),
            path: tp.clone(),
            lines: y.lines,
        });
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
    /// The sample-weight column, if any ([`CsvSpec::weight`]).
    #[serde(default)]
    pub weight: Option<String>,
}

/// What a numeric cell is read for: it decides the words of an error and which hint fits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    /// A numeric feature (text there may be a category: data.csv.categorical).
    Feature,
    /// A regression or multi-label target.
    Target,
    /// The sample-weight column.
    Weight,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Feature => "numeric feature",
            Role::Target => "target",
            Role::Weight => "weight",
        }
    }
}

/// A cell as a finite f32, or [`Error::Csv`] naming its file, line, column (by its role
/// and name) and value: a number beyond f32's range (±3.4e38, such as 1e39) is said to be
/// one; text gets the hint that fits its role — several cells run together (any role),
/// a category to list in data.csv.categorical (features only), class names for a
/// classification task (targets only).
fn number(t: &Table, r: usize, c: usize, role: Role) -> Result<f32> {
    let cell = &t.rows[r][c];
    let v = cell.parse::<f32>();
    if let Ok(v) = v
        && v.is_finite()
    {
        return Ok(v);
    }
    let wide = cell.parse::<f64>().ok().filter(|w| w.is_finite());
    let what = if wide.is_some() {
        "is not a finite number in f32 (beyond ±3.4e38)"
    } else {
        "is not a finite number"
    };
    let text = v.is_err() && wide.is_none();
    let hint = if !text {
        ""
    } else if cell.split_whitespace().count() > 1 || cell.contains([';', '\t', '|']) {
        " (several values in one cell: is data.csv.delimiter right?)"
    } else if !cell.chars().any(char::is_alphabetic) {
        ""
    } else {
        match role {
            Role::Feature => {
                " (text: list the column in data.csv.categorical to one-hot encode it)"
            }
            Role::Target => {
                " (text: class names are the targets of task = \"multiclass\" or \"binary\")"
            }
            Role::Weight => "",
        }
    };
    Err(t.cell_err(
        r,
        c,
        format!(
            "{} column {}: {} {what}{hint}",
            role.name(),
            shown(&t.columns[c]),
            shown(cell)
        ),
    ))
}

/// A sample-weight cell (data.csv.weight): a number that is 0 or within
/// [`crate::data::WEIGHT_RANGE`], or [`Error::Csv`] naming the file, line, the weight
/// column and the value.
fn weight(t: &Table, r: usize, c: usize) -> Result<f32> {
    let cell = &t.rows[r][c];
    if is_missing(cell) {
        return Err(t.cell_err(
            r,
            c,
            format!(
                "weight column {}: missing value {}; expected a weight on every row",
                shown(&t.columns[c]),
                shown(cell)
            ),
        ));
    }
    let v = number(t, r, c, Role::Weight)?;
    let (lo, hi) = crate::data::WEIGHT_RANGE;
    if v == 0.0 || (lo..=hi).contains(&v) {
        return Ok(v);
    }
    Err(t.cell_err(
        r,
        c,
        format!(
            "weight column {}: {} is not a sample weight; expected 0, or a finite weight in [1e-30, 1e30]",
            shown(&t.columns[c]),
            shown(cell)
        ),
    ))
}

/// A regression or multi-label target cell as a number (in [0, 1] for multi-label: 0 or 1,
/// or a soft target, as PyTorch's `BCEWithLogitsLoss` takes), or [`Error::Csv`] naming its
/// file, line, column and value.
fn target_number(task: Task, t: &Table, r: usize, c: usize) -> Result<f32> {
    let v = number(t, r, c, Role::Target)?;
    if task == Task::Multilabel && !(0.0..=1.0).contains(&v) {
        return Err(t.cell_err(
            r,
            c,
            format!(
                "target column {}: {} is not in [0, 1] (a multilabel target is a probability per column: 0 or 1, or a soft target such as 0.5)",
                shown(&t.columns[c]),
                shown(&t.rows[r][c])
            ),
        ));
    }
    Ok(v)
}

/// `items` quoted and comma-separated, the first 40 of them.
fn shown_list(items: &[String]) -> String {
    let mut list: Vec<String> = items.iter().take(40).map(|c| shown(c)).collect();
    if items.len() > 40 {
        list.push(format!("… ({} in all)", items.len()));
    }
    list.join(", ")
}

/// The error to report when encoding `rows` failed with `first`: that of the first failing
/// row in file order, so that the message does not depend on the order of `rows` (a
/// shuffled split); `f` encodes one row.
fn earliest(rows: &[usize], first: Error, mut f: impl FnMut(usize) -> Result<()>) -> Error {
    let mut sorted = rows.to_vec();
    sorted.sort_unstable();
    sorted.into_iter().find_map(|r| f(r).err()).unwrap_or(first)
}

/// What one fitted feature column gathers from the training rows.
enum Stat<'a> {
    Numeric { sum: f64, n: usize },
    Categorical(BTreeMap<&'a str, usize>),
}

impl Preprocessor {
    /// Fit on the rows `train` of `table` for `task`, as `spec` says. Only the `train`
    /// rows are read (cells of the other rows are checked when they are transformed), in
    /// file order whatever the order of `train`, each from left to right, and the first
    /// problem is reported. Errors ([`Error::Csv`] naming the file, and the line, column
    /// and value of a cell): unknown column names, a column listed twice in `target`,
    /// `features` or `categorical`, no feature column, a target also a feature, a missing
    /// target, a missing feature value with [`Missing::Error`], a non-numeric cell in a
    /// numeric column or a regression or multi-label target, a multi-label target outside
    /// [0, 1], a binary target with other than 2 classes or a class number written two
    /// ways ("1" and "1.0"), a multiclass target with fewer than 2, a multi-label task
    /// with one target column or a classification task with several. [`Error::Shape`]: a
    /// `train` index that is not a row of `table`, or a table that is not rectangular
    /// ([`Table::check_rows`]).
    pub fn fit(spec: &CsvSpec, table: &Table, task: Task, train: &[usize]) -> Result<Self> {
        table.check_rows(train)?;
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
            Task::Multilabel if n_t < 2 => {
                return Err(err(
                    "the multilabel task takes at least 2 target columns (use binary for one)"
                        .into(),
                ));
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
                .filter(|c| !spec.target.contains(c) && spec.weight.as_ref() != Some(c))
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
        // The cells used: (table column, Some(feature index) or None for a target), in the
        // file's column order.
        let mut used: Vec<(usize, Option<usize>)> = vec![];
        let mut stats = vec![];
        for (i, name) in fnames.iter().enumerate() {
            used.push((table.column(name, "feature")?, Some(i)));
            stats.push(if spec.categorical.contains(name) {
                Stat::Categorical(BTreeMap::new())
            } else {
                Stat::Numeric { sum: 0.0, n: 0 }
            });
        }
        used.extend(tcols.iter().map(|&c| (c, None)));
        used.sort_by_key(|&(c, _)| c);
        let mut order = train.to_vec();
        order.sort_unstable();
        for &r in &order {
            for &(c, feature) in &used {
                let v = table.rows[r][c].as_str();
                let Some(i) = feature else {
                    if is_missing(v) {
                        return Err(table.cell_err(
                            r,
                            c,
                            format!(
                                "target column {}: missing value {}",
                                shown(&table.columns[c]),
                                shown(v)
                            ),
                        ));
                    }
                    if matches!(task, Task::Regression | Task::Multilabel) {
                        target_number(task, table, r, c)?;
                    }
                    continue;
                };
                if is_missing(v) {
                    if spec.missing == Missing::Error {
                        return Err(table.cell_err(
                            r,
                            c,
                            format!(
                                "feature column {}: missing value {} (set missing = \"impute\" in [data.csv] to fill missing features with the training mean or most frequent value)",
                                shown(&table.columns[c]),
                                shown(v)
                            ),
                        ));
                    }
                    continue;
                }
                match &mut stats[i] {
                    Stat::Numeric { sum, n } => {
                        *sum += number(table, r, c, Role::Feature)? as f64;
                        *n += 1;
                    }
                    Stat::Categorical(counts) => *counts.entry(v).or_default() += 1,
                }
            }
        }
        let mut columns = Vec::with_capacity(fnames.len());
        for (name, stat) in fnames.iter().zip(stats) {
            columns.push(match stat {
                Stat::Numeric { sum, n } => Column::Numeric {
                    name: name.clone(),
                    impute: match spec.missing {
                        Missing::Impute if n == 0 => {
                            return Err(err(format!(
                                "numeric column {}: no value in the training rows to impute with",
                                shown(name)
                            )));
                        }
                        Missing::Impute => Some((sum / n as f64) as f32),
                        Missing::Error => None,
                    },
                },
                Stat::Categorical(counts) => {
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
                    Column::Categorical {
                        name: name.clone(),
                        vocabulary: counts.keys().map(|s| s.to_string()).collect(),
                        impute,
                    }
                }
            });
        }
        let class_names = match task {
            Task::Multiclass | Task::Binary => {
                let tc = tcols[0];
                let mut names: Vec<String> =
                    order.iter().map(|&r| table.rows[r][tc].clone()).collect();
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
                        "the {task} target {} has {} distinct value(s) in the training rows ({}), expected {want}",
                        shown(&spec.target[0]),
                        names.len(),
                        shown_list(&names)
                    )));
                }
                Some(names)
            }
            _ => None,
        };
        if let Some(w) = &spec.weight {
            table.column(w, "weight")?;
            if fnames.contains(w) || spec.target.contains(w) {
                return Err(err(format!(
                    "the weight column {} is also a feature or a target",
                    shown(w)
                )));
            }
        }
        Ok(Preprocessor {
            task,
            columns,
            targets: spec.target.clone(),
            class_names,
            missing: spec.missing,
            unseen: spec.unseen,
            weight: spec.weight.clone(),
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

    /// The table columns of the features, by name.
    fn feature_columns(&self, table: &Table) -> Result<Vec<usize>> {
        self.columns
            .iter()
            .map(|c| table.column(c.name(), "feature"))
            .collect()
    }

    /// The table columns of the targets, by name.
    fn target_columns(&self, table: &Table) -> Result<Vec<usize>> {
        self.targets
            .iter()
            .map(|n| table.column(n, "target"))
            .collect()
    }

    /// Row `r`'s encoded features (table columns `idx`) appended to `x`.
    fn encode_features(
        &self,
        table: &Table,
        r: usize,
        idx: &[usize],
        x: &mut Vec<f32>,
    ) -> Result<()> {
        for (col, &c) in self.columns.iter().zip(idx) {
            let cell = table.rows[r][c].as_str();
            let missing = is_missing(cell);
            let missing_err = || {
                table.cell_err(
                    r,
                    c,
                    format!(
                        "feature column {}: missing value {}",
                        shown(col.name()),
                        shown(cell)
                    ),
                )
            };
            match col {
                Column::Numeric { impute, .. } => {
                    if missing {
                        x.push(impute.ok_or_else(missing_err)?);
                    } else {
                        x.push(number(table, r, c, Role::Feature)?);
                    }
                }
                Column::Categorical {
                    name,
                    vocabulary,
                    impute,
                } => {
                    let v = if missing {
                        impute.as_deref().ok_or_else(missing_err)?
                    } else {
                        cell
                    };
                    let hot = vocabulary.iter().position(|w| w == v);
                    if hot.is_none() && self.unseen == Unseen::Error {
                        return Err(table.cell_err(
                            r,
                            c,
                            format!(
                                "categorical column {}: {} was not seen in the training rows (known: {}); set unseen = \"zeros\" in [data.csv] (and train again) to encode unseen categories as all zeros",
                                shown(name),
                                shown(v),
                                shown_list(vocabulary)
                            ),
                        ));
                    }
                    x.extend((0..vocabulary.len()).map(|j| if Some(j) == hot { 1.0 } else { 0.0 }));
                }
            }
        }
        Ok(())
    }

    /// Row `r`'s targets (table columns `idx`) appended to `y`.
    fn encode_targets(
        &self,
        table: &Table,
        r: usize,
        idx: &[usize],
        y: &mut Vec<f32>,
    ) -> Result<()> {
        for &c in idx {
            let cell = &table.rows[r][c];
            if is_missing(cell) {
                return Err(table.cell_err(
                    r,
                    c,
                    format!(
                        "target column {}: missing value {}",
                        shown(&table.columns[c]),
                        shown(cell)
                    ),
                ));
            }
            match &self.class_names {
                Some(names) => {
                    let k = names.iter().position(|n| n == cell).ok_or_else(|| {
                        table.cell_err(
                            r,
                            c,
                            format!(
                                "target column {}: class {} was not seen in the training rows (known: {})",
                                shown(&table.columns[c]),
                                shown(cell),
                                shown_list(names)
                            ),
                        )
                    })?;
                    y.push(k as f32);
                }
                None => y.push(target_number(self.task, table, r, c)?),
            }
        }
        Ok(())
    }

    /// The encoded features of rows `rows` of `table` (columns found by name), row-major
    /// `[rows, features()]`. The table needs only the feature columns (a prediction input
    /// may lack the targets). Errors ([`Error::Csv`] naming the file, line, column and
    /// value; the first in file order): a feature column not in the table, a missing
    /// value with [`Missing::Error`], a non-numeric cell, a category unseen in training
    /// with [`Unseen::Error`]; [`Error::Shape`] as [`Table::check_rows`];
    /// [`Error::TooLarge`] when the encoded features would exceed the host's memory or
    /// 2^32 − 1 values.
    pub fn transform_features(&self, table: &Table, rows: &[usize]) -> Result<Vec<f32>> {
        table.check_rows(rows)?;
        self.check_size(rows.len())?;
        let idx = self.feature_columns(table)?;
        let mut x = Vec::with_capacity(rows.len() * self.features());
        for &r in rows {
            if let Err(e) = self.encode_features(table, r, &idx, &mut x) {
                let mut scratch = vec![];
                return Err(earliest(rows, e, |r| {
                    scratch.clear();
                    self.encode_features(table, r, &idx, &mut scratch)
                }));
            }
        }
        Ok(x)
    }

    /// The targets of rows `rows`, `[rows, targets()]`: class indices for multiclass and
    /// binary (a class unseen in training is [`Error::Csv`]), numbers otherwise (in [0, 1]
    /// for multi-label). The table needs only the target columns. Errors as
    /// [`Preprocessor::transform_features`], about the target columns.
    pub fn transform_targets(&self, table: &Table, rows: &[usize]) -> Result<Vec<f32>> {
        table.check_rows(rows)?;
        let idx = self.target_columns(table)?;
        let mut y = Vec::with_capacity(rows.len() * idx.len());
        for &r in rows {
            if let Err(e) = self.encode_targets(table, r, &idx, &mut y) {
                let mut scratch = vec![];
                return Err(earliest(rows, e, |r| {
                    scratch.clear();
                    self.encode_targets(table, r, &idx, &mut scratch)
                }));
            }
        }
        Ok(y)
    }

    /// Rows `rows` of `table` as a [`Dataset`] of this task (features and targets as
    /// above, each row's features then its targets, the first error in file order), then
    /// checked by [`Dataset::for_task`] (whose errors name file lines as rows).
    pub fn dataset(&self, table: &Table, rows: &[usize]) -> Result<Dataset> {
        table.check_rows(rows)?;
        self.check_size(rows.len())?;
        let (fi, ti) = (self.feature_columns(table)?, self.target_columns(table)?);
        let mut x = Vec::with_capacity(rows.len() * self.features());
        let mut y = Vec::with_capacity(rows.len() * ti.len());
        let row = |r: usize, x: &mut Vec<f32>, y: &mut Vec<f32>| {
            self.encode_features(table, r, &fi, x)?;
            self.encode_targets(table, r, &ti, y)
        };
        for &r in rows {
            if let Err(e) = row(r, &mut x, &mut y) {
                let (mut sx, mut sy) = (vec![], vec![]);
                return Err(earliest(rows, e, |r| {
                    sx.clear();
                    sy.clear();
                    row(r, &mut sx, &mut sy)
                }));
            }
        }
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
        let origin = format!("{} (rows are file lines)", table.path.display());
        let ds = Dataset::for_task(self.task, x, y, self.features(), width)
            .map_err(|e| e.in_data(&origin, |r| lines.get(r).copied().unwrap_or(r)))?;
        match &self.weight {
            None => Ok(ds),
            Some(name) => {
                let c = table.column(name, "weight")?;
                // Each weight checked as a cell, named by its line and column; the first
                // bad one in file order.
                let w = match rows
                    .iter()
                    .map(|&r| weight(table, r, c))
                    .collect::<Result<Vec<f32>>>()
                {
                    Ok(w) => w,
                    Err(e) => return Err(earliest(rows, e, |r| weight(table, r, c).map(|_| ()))),
                };
                ds.with_weights(w)
                    .map_err(|e| e.in_data(&origin, |r| lines.get(r).copied().unwrap_or(r)))
            }
        }
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

    /// From [`Preprocessor::to_json`]'s JSON, checked to be what [`Preprocessor::fit`]
    /// makes; [`Error::Config`] on another shape or contents (a hand-edited or corrupt
    /// checkpoint).
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let bad = |msg: String| Error::Config {
            path: PathBuf::from("(stored preprocessing)"),
            msg,
        };
        let p: Preprocessor = serde_json::from_value(v.clone()).map_err(|e| bad(e.to_string()))?;
        p.check().map_err(bad)?;
        Ok(p)
    }

    /// What [`Preprocessor::fit`] guarantees: feature and target columns, non-empty
    /// vocabularies, finite imputed values (present with [`Missing::Impute`]), and class
    /// names as the task needs them.
    fn check(&self) -> std::result::Result<(), String> {
        if self.columns.is_empty() {
            return Err("no feature column".into());
        }
        for c in &self.columns {
            let (imputes, finite) = match c {
                Column::Numeric { impute, .. } => {
                    (impute.is_some(), impute.is_none_or(f32::is_finite))
                }
                Column::Categorical {
                    vocabulary, impute, ..
                } => {
                    if vocabulary.is_empty() {
                        return Err(format!(
                            "the categorical column {} has no values",
                            shown(c.name())
                        ));
                    }
                    (impute.is_some(), true)
                }
            };
            if !finite || (self.missing == Missing::Impute && !imputes) {
                return Err(format!(
                    "the column {} has no finite value to impute with",
                    shown(c.name())
                ));
            }
        }
        let (t, classes) = (self.targets.len(), self.class_names.as_ref().map(Vec::len));
        match (self.task, classes) {
            (Task::Multiclass, Some(n)) if n >= 2 && t == 1 => Ok(()),
            (Task::Binary, Some(2)) if t == 1 => Ok(()),
            (Task::Multilabel, None) if t >= 2 => Ok(()),
            (Task::Regression, None) if t >= 1 => Ok(()),
            (task, _) => Err(format!(
                "a {task} preprocessing with {t} target column(s) and {} class names",
                classes.map_or("no".into(), |n| n.to_string())
            )),
        }
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
