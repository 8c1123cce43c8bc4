//! The CSV loader (`data::tabular`). Expected values come from outside the loader: the
//! files read here with a plain split, awk one-liners (in the comments) and values worked
//! out by hand; never from the loader's own output.
//!
//! - the real tables of scikit-learn and palmerpenguins (`bash scripts/fetch-data.sh
//!   --tabular`; the tests that need them fail, saying so, when they are missing);
//! - the preprocessing fitted on training rows only (one-hot layout, mean and most
//!   frequent imputation, class names), and its JSON round trip;
//! - every malformed input refused as a named error ([`Error::Csv`] with the file, line,
//!   column and value), the first in file order;
//! - 3000 seeded random mutations of a valid file, none of which may panic.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use shadeprop::Error;
use shadeprop::data::Task;
use shadeprop::data::tabular::{
    Appended, CsvSpec, Missing, Preprocessor, Table, Unseen, is_missing, parse_csv, read_csv,
    read_table,
};

// ---------------------------------------------------------------------------------------
// Helpers

/// A file under data/, which must be there.
fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel);
    assert!(
        p.is_file(),
        "{} missing: run `bash scripts/fetch-data.sh --tabular` first",
        p.display()
    );
    p
}

/// A file's lines split at `delim` (None: whitespace), gunzipped when it ends in .gz: the
/// test's own reading of a raw file, to compare the loader against.
fn raw_cells(path: &Path, delim: Option<char>) -> Vec<Vec<String>> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap();
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    };
    text.lines()
        .map(|l| match delim {
            Some(d) => l.split(d).map(String::from).collect(),
            None => l.split_whitespace().map(String::from).collect(),
        })
        .collect()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shadeprop-tabular-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A spec with a header, target "y" and categorical column "c".
fn spec_y() -> CsvSpec {
    CsvSpec {
        target: vec!["y".into()],
        categorical: vec!["c".into()],
        ..Default::default()
    }
}

/// `text` parsed as `spec_y()` says.
fn parse(text: &[u8]) -> shadeprop::Result<Table> {
    parse_csv(text, Path::new("t.csv"), &spec_y())
}

/// Fit `spec` on every row of `text` for `task`, then encode every row.
fn fit_all_with(
    spec: &CsvSpec,
    text: &[u8],
    task: Task,
) -> shadeprop::Result<shadeprop::data::Dataset> {
    let t = parse_csv(text, Path::new("t.csv"), spec)?;
    let rows: Vec<usize> = (0..t.len()).collect();
    Preprocessor::fit(spec, &t, task, &rows)?.dataset(&t, &rows)
}

fn fit_all(text: &[u8], task: Task) -> shadeprop::Result<shadeprop::data::Dataset> {
    fit_all_with(&spec_y(), text, task)
}

/// `e` is [`Error::Csv`] on `file` and `line`, whose message holds every needle.
#[track_caller]
fn csv_error_in(e: Error, file: &str, line: usize, needles: &[&str]) {
    let msg = e.to_string();
    match &e {
        Error::Csv { path, line: l, .. } => {
            assert_eq!(
                (path.file_name().and_then(|f| f.to_str()), *l),
                (Some(file), line),
                "expected a CSV error on {file} line {line}: {msg}"
            );
        }
        _ => panic!("expected Error::Csv on {file} line {line}, got {msg}"),
    }
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in: {msg}");
    }
}

/// `e` is [`Error::Csv`] on t.csv and `line`, whose message holds every needle.
#[track_caller]
fn csv_error(e: Error, line: usize, needles: &[&str]) {
    csv_error_in(e, "t.csv", line, needles)
}

/// `f` runs to completion within 20 s (a loop that never ends fails instead of hanging).
fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("did not finish within 20 s")
}

// ---------------------------------------------------------------------------------------
// Real tables

fn penguins_spec(missing: Missing) -> CsvSpec {
    CsvSpec {
        path: data("palmerpenguins/penguins.csv"),
        target: vec!["species".into()],
        categorical: vec!["island".into(), "sex".into()],
        missing,
        ..Default::default()
    }
}

#[test]
fn penguins_one_hot_layout_and_imputation_fitted_on_training_rows_only() {
    let spec = penguins_spec(Missing::Impute);
    let t = read_table(&spec).unwrap();
    // wc -l penguins.csv: 345 lines, a header and 344 rows.
    assert_eq!(t.len(), 344);
    // The training rows: the even ones (0-based), standing in for a split. The file
    // alternates the sexes, so the training rows' most frequent sex (female) is not the
    // whole file's (male):
    //   awk -F, 'NR>1 && (NR-2)%2==0 {print $7}' penguins.csv | sort | uniq -c
    //     -> 141 female, 25 male, 6 NA;  over all rows: 165 female, 168 male, 11 NA.
    let train: Vec<usize> = (0..t.len()).step_by(2).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &train).unwrap();
    assert_eq!(
        pre.class_names.as_deref().unwrap(),
        ["Adelie", "Chinstrap", "Gentoo"]
    );
    // Every column but the target, in file order; island and sex one-hot over their
    // sorted training values.
    assert_eq!(
        pre.feature_names(),
        [
            "island=Biscoe",
            "island=Dream",
            "island=Torgersen",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex=female",
            "sex=male",
            "year"
        ]
    );

    // The imputed values, computed here from the raw file (column 3 is bill_length_mm,
    // 6 body_mass_g, 7 sex) over the training rows only:
    //   awk -F, 'NR>1 && (NR-2)%2==0 && $3!="NA" {s+=$3; n++} END {print s/n, n}'
    //     -> 42.3872093023 over 172 values (43.9219298246 over all 342 rows);
    //   the same on $6 -> 3903.3430232558.
    let raw = raw_cells(&spec.path, Some(','));
    assert_eq!(raw[0][2], "bill_length_mm");
    let mean = |col: usize, rows: &[usize]| {
        let v: Vec<f64> = rows
            .iter()
            .map(|&r| raw[r + 1][col].as_str())
            .filter(|c| *c != "NA")
            .map(|c| c.parse::<f64>().unwrap())
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let all: Vec<usize> = (0..t.len()).collect();
    let (bill, mass) = (mean(2, &train), mean(5, &train));
    assert!((bill - 42.387_209_302_3).abs() < 1e-9, "{bill}");
    assert!((mass - 3_903.343_023_255_8).abs() < 1e-9, "{mass}");
    assert!((mean(2, &all) - bill).abs() > 1.0, "the split must matter");
    // Row 3 (line 5) is "Adelie,Torgersen,NA,NA,NA,NA,NA,2007": every measurement and the
    // sex imputed.
    assert_eq!(raw[4][2..7], ["NA", "NA", "NA", "NA", "NA"]);
    let ds = pre.dataset(&t, &[3]).unwrap();
    assert!(
        (ds.x[3] as f64 - bill).abs() < 1e-5,
        "{} vs {bill}",
        ds.x[3]
    );
    assert!(
        (ds.x[6] as f64 - mass).abs() < 1e-3,
        "{} vs {mass}",
        ds.x[6]
    );
    let count = |sex: &str| train.iter().filter(|&&r| raw[r + 1][6] == sex).count();
    assert_eq!((count("female"), count("male")), (141, 25));
    assert_eq!(&ds.x[7..9], &[1.0, 0.0], "sex imputed as female");
    assert_eq!(&ds.x[..3], &[0.0, 0.0, 1.0], "Torgersen");
    assert_eq!((ds.x[9], ds.y[0]), (2007.0, 0.0));

    // Row 0 (line 2): Adelie,Torgersen,39.1,18.7,181,3750,male,2007.
    let d0 = pre.dataset(&t, &[0]).unwrap();
    assert_eq!(
        d0.x,
        [0.0, 0.0, 1.0, 39.1, 18.7, 181.0, 3750.0, 0.0, 1.0, 2007.0]
    );
    assert_eq!(d0.y, [0.0]);
    // The whole table: 344 rows of 10 features, 3 classes; awk -F, 'NR>1{print $1}' |
    // sort | uniq -c: 152 Adelie, 68 Chinstrap, 124 Gentoo.
    let ds = pre.dataset(&t, &all).unwrap();
    assert_eq!((ds.len(), ds.features, ds.classes), (344, 10, 3));
    for (k, n) in [(0.0, 152), (1.0, 68), (2.0, 124)] {
        assert_eq!(ds.y.iter().filter(|&&y| y == k).count(), n);
    }
    // The island counts (awk $2: 168 Biscoe, 124 Dream, 52 Torgersen) in the one-hot
    // columns.
    for (j, n) in [(0, 168), (1, 124), (2, 52)] {
        let hot = (0..344).filter(|&r| ds.x[r * 10 + j] == 1.0).count();
        assert_eq!(hot, n, "island column {j}");
    }

    // JSON round trip: the same preprocessing, the same encoding.
    let back = Preprocessor::from_json(&pre.to_json()).unwrap();
    assert_eq!(back, pre);
    assert_eq!(back.dataset(&t, &all).unwrap(), ds);
    assert_eq!(
        back.transform_features(&t, &all).unwrap(),
        pre.transform_features(&t, &all).unwrap()
    );
}

#[test]
fn penguins_missing_values_are_refused_by_default_naming_the_first_in_the_training_rows() {
    let spec = penguins_spec(Missing::Error);
    let t = read_table(&spec).unwrap();
    // awk -F, 'NR>1 {for (i=1; i<=NF; i++) if ($i=="NA") print NR, i}': NA on line 5
    // (columns 3-7), lines 10-13 (sex, column 7), 49, ..., 273 (columns 3-7).
    // Every row: the first NA is line 5, bill_length_mm.
    let all: Vec<usize> = (0..t.len()).collect();
    csv_error_in(
        Preprocessor::fit(&spec, &t, Task::Multiclass, &all).unwrap_err(),
        "penguins.csv",
        5,
        &["\"bill_length_mm\"", "\"NA\"", "impute"],
    );
    // Without row 3 (line 5), given in reverse (a shuffled split): the first NA in file
    // order is the sex on line 10, not the bill length on line 273.
    let train: Vec<usize> = (0..t.len()).rev().filter(|&r| r != 3).collect();
    csv_error_in(
        Preprocessor::fit(&spec, &t, Task::Multiclass, &train).unwrap_err(),
        "penguins.csv",
        10,
        &["\"sex\"", "\"NA\"", "impute"],
    );
    // Rows 0-2 have no NA, but are all Adelie: one class, refused for multiclass.
    let e = Preprocessor::fit(&spec, &t, Task::Multiclass, &[0, 1, 2]).unwrap_err();
    csv_error_in(
        e,
        "penguins.csv",
        0,
        &["1 distinct value", "\"Adelie\"", "at least 2"],
    );
    // With row 275 too (sed -n 277p: "Gentoo,Biscoe,49.9,16.1,213,5400,male,2009") the fit
    // works, and row 3 (line 5) is refused when encoded.
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &[0, 1, 2, 275]).unwrap();
    csv_error_in(
        pre.dataset(&t, &[0, 3]).unwrap_err(),
        "penguins.csv",
        5,
        &["\"bill_length_mm\"", "\"NA\""],
    );
}

#[test]
fn breast_cancer_loads_as_scikit_learn_documents_it() {
    // breast_cancer.csv: a "569,30,malignant,benign" line, then 569 rows of 30 features and
    // the target. awk -F, 'NR>1{print $31}' | sort | uniq -c: 212 "0", 357 "1"
    // (scikit-learn documents 212 malignant, 357 benign).
    let spec = CsvSpec {
        path: data("sklearn/breast_cancer.csv"),
        header: false,
        skip_rows: 1,
        target: vec!["30".into()],
        ..Default::default()
    };
    let t = read_table(&spec).unwrap();
    assert_eq!((t.len(), t.columns.len()), (569, 31));
    assert_eq!(t.lines[0], 2);
    let all: Vec<usize> = (0..t.len()).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Binary, &all).unwrap();
    assert_eq!(pre.class_names.as_deref().unwrap(), ["0", "1"]);
    let ds = pre.dataset(&t, &all).unwrap();
    assert_eq!((ds.len(), ds.features, ds.task), (569, 30, Task::Binary));
    assert_eq!(ds.y.iter().filter(|&&y| y == 0.0).count(), 212);
    assert_eq!(ds.y.iter().filter(|&&y| y == 1.0).count(), 357);
    // The first row, from the raw file (sed -n 2p: 17.99,10.38,122.8,1001,...,0.1189,0).
    let raw = raw_cells(&spec.path, Some(','));
    assert_eq!(raw[1].len(), 31);
    let want: Vec<f32> = raw[1][..30].iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(ds.x[..30], want[..]);
    assert_eq!(&ds.x[..4], &[17.99, 10.38, 122.8, 1001.0]);
    assert_eq!((ds.x[29], ds.y[0]), (0.1189, 0.0));
}

#[test]
fn wine_loads_as_scikit_learn_documents_it() {
    // wine_data.csv: a "178,13,class_0,class_1,class_2" line, then 178 rows of 13 features
    // and the class; awk -F, 'NR>1{print $14}' | sort | uniq -c: 59, 71, 48 (as
    // scikit-learn documents).
    let spec = CsvSpec {
        path: data("sklearn/wine_data.csv"),
        header: false,
        skip_rows: 1,
        target: vec!["13".into()],
        ..Default::default()
    };
    let t = read_table(&spec).unwrap();
    let all: Vec<usize> = (0..t.len()).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &all).unwrap();
    assert_eq!(pre.class_names.as_deref().unwrap(), ["0", "1", "2"]);
    let ds = pre.dataset(&t, &all).unwrap();
    assert_eq!((ds.len(), ds.features, ds.classes), (178, 13, 3));
    let per: Vec<usize> = (0..3)
        .map(|k| ds.y.iter().filter(|&&y| y == k as f32).count())
        .collect();
    assert_eq!(per, [59, 71, 48]);
    // sed -n 2p: 14.23,1.71,2.43,15.6,127,2.8,3.06,0.28,2.29,5.64,1.04,3.92,1065,0
    assert_eq!(
        ds.x[..13],
        [
            14.23, 1.71, 2.43, 15.6, 127.0, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065.0
        ]
    );
}

#[test]
fn diabetes_loads_from_two_gzip_files() {
    // diabetes_data_raw.csv.gz: 442 lines of 10 whitespace-separated values (zcat | awk
    // '{print NF}' | sort | uniq -c: 442 10), first "59 2 32.1 101.0 157 93.2 38.0 4.0
    // 4.8598 87"; diabetes_target.csv.gz: 442 lines, first 1.51e+02, last 5.7e+01.
    let spec = CsvSpec {
        path: data("sklearn/diabetes_data_raw.csv.gz"),
        target_file: Some(data("sklearn/diabetes_target.csv.gz")),
        delimiter: "whitespace".into(),
        header: false,
        target: vec!["target".into()],
        ..Default::default()
    };
    let t = read_table(&spec).unwrap();
    assert_eq!(t.columns.last().unwrap(), "target");
    let all: Vec<usize> = (0..t.len()).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Regression, &all).unwrap();
    assert_eq!(pre.class_names, None);
    let ds = pre.dataset(&t, &all).unwrap();
    assert_eq!(
        (ds.len(), ds.features, ds.task),
        (442, 10, Task::Regression)
    );
    assert_eq!(
        ds.x[..10],
        [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
    );
    assert_eq!((ds.y[0], ds.y[441]), (151.0, 57.0));
    // Every value against the test's own reading of the two files.
    let (xr, yr) = (
        raw_cells(&spec.path, None),
        raw_cells(spec.target_file.as_ref().unwrap(), None),
    );
    assert_eq!((xr.len(), yr.len()), (442, 442));
    for (r, (xrow, yrow)) in xr.iter().zip(&yr).enumerate() {
        let want: Vec<f32> = xrow.iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(ds.x[r * 10..(r + 1) * 10], want[..], "row {r}");
        assert_eq!(ds.y[r], yrow[0].parse::<f32>().unwrap(), "row {r}");
    }
}

// ---------------------------------------------------------------------------------------
// Malformed input: named errors

#[test]
fn ragged_rows_name_their_file_line_even_after_blank_lines_and_with_any_line_ends() {
    csv_error(
        parse(b"a,c,y\n1,x,0\n2,x\n").unwrap_err(),
        3,
        &["2 cells", "expected 3", "header on line 1"],
    );
    // Blank lines are skipped but counted: the ragged row is on line 5 in each file.
    for text in [
        &b"a,c,y\n1,x,0\n\n\n2,x\n"[..],
        b"a,c,y\r\n1,x,0\r\n\r\n\r\n2,x\r\n",
        b"a,c,y\r1,x,0\r\r\r2,x\r",
        b"a,c,y\n1,x,0\n  \n\n2,x\n",
    ] {
        csv_error(parse(text).unwrap_err(), 5, &["2 cells", "expected 3"]);
    }
    // Blank lines before the first data row, and before the header.
    csv_error(parse(b"a,c,y\n\n\n1,x,0,9\n").unwrap_err(), 4, &["4 cells"]);
    csv_error(
        parse(b"\r\n\r\na,c,y\r\n1,x\r\n").unwrap_err(),
        4,
        &["2 cells", "header on line 3"],
    );
    // A quoted cell that spans lines: the next row's line is the file's.
    csv_error(
        parse(b"a,c,y\n1,\"x\n\ny\",0\n\n2,x\n").unwrap_err(),
        6,
        &["2 cells"],
    );
    // Without a header, the first row sets the width.
    let spec = CsvSpec {
        header: false,
        target: vec!["0".into()],
        ..Default::default()
    };
    csv_error(
        parse_csv(b"1,2\n3\n", Path::new("t.csv"), &spec).unwrap_err(),
        2,
        &["1 cells", "expected 2", "first row"],
    );
    // Whitespace-separated, with CRLF and lone CR line ends.
    let ws = CsvSpec {
        delimiter: "whitespace".into(),
        ..spec_y()
    };
    for text in [
        &b"a c y\n1 x 0\n\n2 x\n"[..],
        b"a c y\r\n1 x 0\r\n\r\n2 x\r\n",
        b"a c y\r1 x 0\r\r2 x\r",
    ] {
        csv_error(
            parse_csv(text, Path::new("t.csv"), &ws).unwrap_err(),
            4,
            &["2 cells", "expected 3"],
        );
    }
}

#[test]
fn crlf_bom_and_quoted_delimiters_are_read() {
    let t = parse(b"\xEF\xBB\xBFa,c,y\r\n\"1\",\"x, y\",0\r\n\r\n2,\"z\"\"q\",1\r\n").unwrap();
    assert_eq!(t.columns, ["a", "c", "y"], "the BOM is not part of \"a\"");
    assert_eq!(t.rows, [["1", "x, y", "0"], ["2", "z\"q", "1"]]);
    assert_eq!(t.lines, [2, 4]);
    // The BOM before skipped lines; ';', tab and '|' delimiters.
    for (d, text) in [
        (",", &b"\xEF\xBB\xBFjunk\na,c,y\n1,x,0\n"[..]),
        (";", b"junk\na;c;y\n1;x;0\n"),
        ("\t", b"junk\na\tc\ty\n1\tx\t0\n"),
        ("|", b"junk\na|c|y\n1|x|0\n"),
    ] {
        let spec = CsvSpec {
            delimiter: d.into(),
            skip_rows: 1,
            ..spec_y()
        };
        let t = parse_csv(text, Path::new("t.csv"), &spec).unwrap();
        assert_eq!(
            (t.columns.clone(), t.lines.clone()),
            (vec!["a".to_string(), "c".into(), "y".into()], vec![3])
        );
        assert_eq!(t.rows[0], ["1", "x", "0"]);
    }
    // Cells are trimmed; classes that are numbers sort as numbers (2 < 10).
    let ds = fit_all(b"a , c , y\n 1 , x , 10 \n2,x,2\n", Task::Multiclass).unwrap();
    assert_eq!(
        (ds.x.clone(), ds.y.clone()),
        (vec![1.0, 1.0, 2.0, 1.0], vec![1.0, 0.0])
    );
}

#[test]
fn empty_and_header_only_files_are_refused() {
    csv_error(parse(b"").unwrap_err(), 0, &["empty"]);
    csv_error(parse(b"\n\n\r\n").unwrap_err(), 0, &["empty"]);
    csv_error(parse(b"\xEF\xBB\xBF").unwrap_err(), 0, &["empty"]);
    csv_error(parse(b"a,c,y\n").unwrap_err(), 0, &["no data rows"]);
    csv_error(parse(b"a,c,y\n\n\n").unwrap_err(), 0, &["no data rows"]);
    let no_header = CsvSpec {
        header: false,
        ..spec_y()
    };
    csv_error(
        parse_csv(b"", Path::new("t.csv"), &no_header).unwrap_err(),
        0,
        &["no data rows"],
    );
}

#[test]
fn skip_rows_past_the_end_is_an_error_at_once() {
    let spec = CsvSpec {
        skip_rows: 3,
        ..spec_y()
    };
    csv_error(
        parse_csv(b"x\ny\n", Path::new("t.csv"), &spec).unwrap_err(),
        0,
        &["2 line(s)", "fewer than the 3 to skip"],
    );
    // The loop that skipped lines ran skip_rows times: with usize::MAX it never ended.
    let e = within_20s(|| {
        let spec = CsvSpec {
            skip_rows: usize::MAX,
            ..spec_y()
        };
        parse_csv(b"a,c,y\n1,x,0\n", Path::new("t.csv"), &spec).unwrap_err()
    });
    csv_error(e, 0, &["2 line(s)", "fewer than"]);
}

#[test]
fn duplicate_header_names_are_refused() {
    csv_error(
        parse(b"a,a,y\n1,2,0\n").unwrap_err(),
        1,
        &["\"a\"", "twice"],
    );
    // After trimming, and on the header's own line (after a skipped line and a blank one).
    let spec = CsvSpec {
        skip_rows: 1,
        ..spec_y()
    };
    csv_error(
        parse_csv(b"skip\n\ny , a,y\n1,2,0\n", Path::new("t.csv"), &spec).unwrap_err(),
        3,
        &["\"y\"", "twice"],
    );
}

#[test]
fn text_that_is_not_utf8_names_line_column_and_bytes() {
    // In a data cell: line 3, column "c", the bytes.
    csv_error(
        parse(b"a,c,y\n1,x,0\n1,\xff\xfe,0\n").unwrap_err(),
        3,
        &["\"c\"", "\\xff\\xfe", "not UTF-8"],
    );
    // After blank CRLF lines: line 5.
    csv_error(
        parse(b"a,c,y\r\n1,x,0\r\n\r\n\r\n2,ok,\xe9\r\n").unwrap_err(),
        5,
        &["\"y\"", "\\xe9", "not UTF-8"],
    );
    // In the header (Latin-1 "é").
    csv_error(
        parse(b"a,caf\xe9,y\n1,x,0\n").unwrap_err(),
        1,
        &["header's cell 2", "caf\\xe9"],
    );
    // Without a header: the column's index; whitespace-separated too.
    let spec = CsvSpec {
        header: false,
        target: vec!["0".into()],
        ..Default::default()
    };
    csv_error(
        parse_csv(b"1,2\n3,\x80\n", Path::new("t.csv"), &spec).unwrap_err(),
        2,
        &["column \"1\"", "\\x80"],
    );
    let ws = CsvSpec {
        delimiter: "whitespace".into(),
        ..spec_y()
    };
    csv_error(
        parse_csv(b"a c y\n1 x 0\n\n2 \xc3( 0\n", Path::new("t.csv"), &ws).unwrap_err(),
        4,
        &["\"c\"", "\\xc3("],
    );
    // A truncated multi-byte character at the end of the file.
    csv_error(
        parse(b"a,c,y\n1,x,\xe2\x82").unwrap_err(),
        2,
        &["\"y\"", "\\xe2\\x82"],
    );
}

#[test]
fn cells_that_are_not_finite_numbers_are_refused_naming_line_column_and_value() {
    // Non-numeric, infinite, beyond f32, and NaN spellings that pandas does not read as
    // missing.
    for bad in [
        "abc", "inf", "-inf", "infinity", "1e99", "-3.5e39", "-NaN1", "1,5", "0x10",
    ] {
        let text = format!("a,c,y\n1,x,0\n\"{bad}\",x,1\n");
        csv_error(
            fit_all(text.as_bytes(), Task::Binary).unwrap_err(),
            3,
            &[
                "numeric feature column \"a\"",
                &format!("{bad:?}"),
                "not a finite number",
            ],
        );
    }
    // The largest f32 and the smallest subnormal are fine.
    let ds = fit_all(b"a,c,y\n3.4028235e38,x,0\n1e-45,x,1\n", Task::Binary).unwrap();
    assert_eq!(ds.x, [f32::MAX, 1.0, 1e-45, 1.0]);
    // A regression target: the same rule.
    csv_error(
        fit_all(b"a,c,y\n1,x,0\n2,x,1e99\n", Task::Regression).unwrap_err(),
        3,
        &["target column \"y\"", "\"1e99\""],
    );
}

#[test]
fn pandas_missing_spellings_are_missing() {
    // pandas' STR_NA_VALUES (pandas/_libs/parsers.pyx): 19 spellings, "" included.
    for m in [
        "", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None", "<NA>",
        "#N/A", "#NA", "#N/A N/A", "-1.#IND", "1.#IND", "-1.#QNAN", "1.#QNAN",
    ] {
        assert!(is_missing(m), "{m:?}");
        // Imputed with the mean of 1 and 3 (rows 0 and 2).
        let text = format!("a,c,y\n1,x,0\n\"{m}\",x,1\n3,x,1\n");
        let spec = CsvSpec {
            missing: Missing::Impute,
            ..spec_y()
        };
        let ds = fit_all_with(&spec, text.as_bytes(), Task::Binary).unwrap();
        assert_eq!(ds.x[2], 2.0, "{m:?}");
    }
    for not in ["na", "NULL ", "0", "-", "?"] {
        assert!(!is_missing(not), "{not:?}");
    }
}

#[test]
fn unknown_column_names_are_named_with_the_columns_that_exist() {
    let t = parse(b"a,c,y\n1,x,0\n2,z,1\n").unwrap();
    for (spec, role, name) in [
        (
            CsvSpec {
                target: vec!["label".into()],
                ..spec_y()
            },
            "target",
            "label",
        ),
        (
            CsvSpec {
                features: vec!["a".into(), "b".into(), "c".into()],
                ..spec_y()
            },
            "feature",
            "b",
        ),
        (
            CsvSpec {
                categorical: vec!["colour".into()],
                ..spec_y()
            },
            "categorical",
            "colour",
        ),
    ] {
        csv_error(
            Preprocessor::fit(&spec, &t, Task::Binary, &[0, 1]).unwrap_err(),
            0,
            &[
                &format!("the {role} column \"{name}\" is not in the file"),
                "\"a\", \"c\", \"y\"",
            ],
        );
    }
    // A preprocessing applied to a file without one of its columns.
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    let other = parse_csv(b"a,y\n1,0\n", Path::new("t.csv"), &CsvSpec::default()).unwrap();
    csv_error(
        pre.transform_features(&other, &[0]).unwrap_err(),
        0,
        &["feature column \"c\" is not in the file"],
    );
}

#[test]
fn spec_mistakes_are_named() {
    let t = parse(b"a,c,y,z\n1,x,0,1\n2,z,1,0\n").unwrap();
    let fit = |spec: CsvSpec, task| Preprocessor::fit(&spec, &t, task, &[0, 1]).unwrap_err();
    csv_error(
        fit(
            CsvSpec {
                target: vec![],
                ..spec_y()
            },
            Task::Binary,
        ),
        0,
        &["no target column"],
    );
    csv_error(
        fit(
            CsvSpec {
                target: vec!["y".into(), "z".into()],
                ..spec_y()
            },
            Task::Binary,
        ),
        0,
        &["binary task takes one target column, 2"],
    );
    csv_error(
        fit(
            CsvSpec {
                features: vec!["a".into(), "y".into()],
                ..spec_y()
            },
            Task::Binary,
        ),
        0,
        &["\"y\" is both a target and a feature"],
    );
    csv_error(
        fit(
            CsvSpec {
                categorical: vec!["c".into()],
                features: vec!["a".into()],
                ..spec_y()
            },
            Task::Binary,
        ),
        0,
        &["categorical column \"c\" is not one of the features"],
    );
    // A multilabel task with 1 target column, or with one column named twice.
    for target in [vec!["y".to_string()], vec!["y".into(), "y".into()]] {
        let e = fit(CsvSpec { target, ..spec_y() }, Task::Multilabel);
        let msg = e.to_string();
        assert!(
            msg.contains("at least 2 target columns")
                || msg.contains("data.csv.target lists the column \"y\" twice"),
            "{msg}"
        );
        assert!(matches!(e, Error::Csv { line: 0, .. }), "{msg}");
    }
    csv_error(
        fit(
            CsvSpec {
                features: vec!["a".into(), "a".into()],
                categorical: vec![],
                ..spec_y()
            },
            Task::Binary,
        ),
        0,
        &["data.csv.features lists the column \"a\" twice"],
    );
    // No training rows; a row index past the end (it used to panic): Error::Shape naming
    // the index and the table.
    csv_error(
        Preprocessor::fit(&spec_y(), &t, Task::Binary, &[]).unwrap_err(),
        0,
        &["no training rows"],
    );
    let shape = |e: Error, i: usize| {
        let msg = e.to_string();
        assert!(
            matches!(&e, Error::Shape { got, .. } if got == &[i])
                && msg.contains("t.csv")
                && msg.contains("< 2"),
            "{msg}"
        );
    };
    shape(
        Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 2]).unwrap_err(),
        2,
    );
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    shape(pre.dataset(&t, &[1, 7]).unwrap_err(), 7);
    shape(
        pre.transform_features(&t, &[usize::MAX]).unwrap_err(),
        usize::MAX,
    );
    shape(pre.transform_targets(&t, &[9]).unwrap_err(), 9);
}

#[test]
fn a_table_built_by_hand_that_does_not_hold_together_is_an_error_not_a_panic() {
    let good = parse(b"a,c,y\n1,x,0\n2,z,1\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &good, Task::Binary, &[0, 1]).unwrap();
    let short_row = Table {
        rows: vec![vec!["1".into(), "x".into(), "0".into()], vec!["2".into()]],
        ..good.clone()
    };
    let no_lines = Table {
        lines: vec![],
        ..good.clone()
    };
    let bad_appended = Table {
        appended: Some(Appended {
            first_column: 2,
            path: "y.csv".into(),
            lines: vec![1],
        }),
        ..good.clone()
    };
    // Error::Shape naming what does not agree (cells of row 1, the line numbers, those of
    // the appended file).
    for (t, what) in [
        (&short_row, "cells of row 1"),
        (&no_lines, "line numbers"),
        (&bad_appended, "line numbers of y.csv"),
    ] {
        for e in [
            Preprocessor::fit(&spec_y(), t, Task::Binary, &[0, 1]).unwrap_err(),
            pre.dataset(t, &[0, 1]).unwrap_err(),
            pre.transform_features(t, &[0]).unwrap_err(),
        ] {
            let msg = e.to_string();
            assert!(
                matches!(e, Error::Shape { .. }) && msg.contains(what),
                "{msg}"
            );
        }
    }
}

#[test]
fn missing_targets_are_refused_in_training_rows_and_when_encoded() {
    csv_error(
        fit_all(b"a,c,y\n1,x,0\n2,x,NA\n", Task::Binary).unwrap_err(),
        3,
        &["target column \"y\"", "missing value \"NA\""],
    );
    let t = parse(b"a,c,y\n1,x,0\n2,x,1\n3,x,\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    csv_error(
        pre.dataset(&t, &[0, 1, 2]).unwrap_err(),
        4,
        &["target column \"y\"", "missing value \"\""],
    );
}

#[test]
fn categories_unseen_in_training_are_refused_or_zeros_by_option() {
    let t = parse(b"a,c,y\n1,red,0\n2,blue,1\n3,green,1\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    csv_error(
        pre.dataset(&t, &[2]).unwrap_err(),
        4,
        &[
            "\"c\"",
            "\"green\"",
            "not seen",
            "\"blue\", \"red\"",
            "zeros",
        ],
    );
    let zeros = Preprocessor::fit(
        &CsvSpec {
            unseen: Unseen::Zeros,
            ..spec_y()
        },
        &t,
        Task::Binary,
        &[0, 1],
    )
    .unwrap();
    // Vocabulary [blue, red]: red is [0, 1], green all zeros.
    assert_eq!(zeros.feature_names(), ["a", "c=blue", "c=red"]);
    assert_eq!(
        zeros.dataset(&t, &[0, 2]).unwrap().x,
        [1.0, 0.0, 1.0, 3.0, 0.0, 0.0]
    );
    // A missing category is not "unseen": with Missing::Error it is refused even then.
    let t2 = parse(b"a,c,y\n1,red,0\n2,blue,1\n3,NA,1\n").unwrap();
    csv_error(
        zeros.dataset(&t2, &[2]).unwrap_err(),
        4,
        &["\"c\"", "missing value \"NA\""],
    );
}

#[test]
fn a_class_unseen_in_training_is_refused_when_encoded() {
    let t = parse(b"a,c,y\n1,red,cat\n2,red,dog\n3,red,bird\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Multiclass, &[0, 1]).unwrap();
    assert_eq!(pre.class_names.as_deref().unwrap(), ["cat", "dog"]);
    csv_error(
        pre.dataset(&t, &[0, 2]).unwrap_err(),
        4,
        &["target column \"y\"", "class \"bird\"", "\"cat\", \"dog\""],
    );
}

#[test]
fn binary_and_multilabel_targets_are_checked() {
    // A binary target with 3 classes, or 1.
    let e = fit_all(b"a,c,y\n1,x,0\n2,x,1\n3,x,2\n", Task::Binary).unwrap_err();
    csv_error(e, 0, &["3 distinct", "\"0\", \"1\", \"2\"", "exactly 2"]);
    let e = fit_all(b"a,c,y\n1,x,1\n2,x,1\n", Task::Binary).unwrap_err();
    csv_error(e, 0, &["1 distinct", "exactly 2"]);
    // A binary target of words: classes sorted as text.
    let ds = fit_all(b"a,c,y\n1,x,yes\n2,x,no\n", Task::Binary).unwrap();
    assert_eq!(ds.y, [1.0, 0.0]);
    // Multilabel: two 0/1 columns; a value outside [0, 1] names its line, column and
    // value (it was a "row 1 of the dataset" error).
    let spec = CsvSpec {
        target: vec!["y".into(), "z".into()],
        categorical: vec![],
        ..Default::default()
    };
    let ds = fit_all_with(&spec, b"a,y,z\n1,0,1\n2,1,1\n", Task::Multilabel).unwrap();
    assert_eq!(
        (ds.y, ds.classes, ds.targets),
        (vec![0.0, 1.0, 1.0, 1.0], 2, 2)
    );
    csv_error(
        fit_all_with(&spec, b"a,y,z\n1,0,1\n2,1,2\n", Task::Multilabel).unwrap_err(),
        3,
        &["target column \"z\"", "\"2\"", "[0, 1]"],
    );
    let t = parse_csv(b"a,y,z\n1,0,1\n2,1,0\n3,-1,0\n", Path::new("t.csv"), &spec).unwrap();
    let pre = Preprocessor::fit(&spec, &t, Task::Multilabel, &[0, 1]).unwrap();
    csv_error(
        pre.dataset(&t, &[0, 1, 2]).unwrap_err(),
        4,
        &["target column \"y\"", "\"-1\""],
    );
}

#[test]
fn encoding_reports_the_first_bad_row_in_file_order() {
    // Row 1 (line 3): a missing target; rows 3 and 5 (lines 5 and 7): bad numbers.
    let t = parse(b"a,c,y\n1,x,0\n2,x,NA\n3,x,1\nbad,x,0\n5,x,1\nworse,x,1\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 2]).unwrap();
    // Rows in shuffled order: line 5 is reported, not line 7 (given first).
    csv_error(
        pre.dataset(&t, &[5, 3, 0]).unwrap_err(),
        5,
        &["\"a\"", "\"bad\""],
    );
    csv_error(
        pre.transform_features(&t, &[5, 3]).unwrap_err(),
        5,
        &["\"a\"", "\"bad\""],
    );
    // A target on line 3 comes before a feature on line 5 (features were all encoded
    // before any target was looked at).
    csv_error(
        pre.dataset(&t, &[3, 1]).unwrap_err(),
        3,
        &["\"y\"", "missing value \"NA\""],
    );
    csv_error(
        pre.transform_targets(&t, &[4, 1]).unwrap_err(),
        3,
        &["\"y\"", "missing"],
    );
}

#[test]
fn files_that_cannot_be_read_are_named() {
    let dir = temp_dir("files");
    let spec = spec_y();
    // A missing file: the I/O error names the path.
    let nope = dir.join("nope.csv");
    let e = read_csv(&nope, &spec).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if path == &nope), "{e}");
    // A directory.
    csv_error_in(
        read_csv(&dir, &spec).unwrap_err(),
        dir.file_name().unwrap().to_str().unwrap(),
        0,
        &["directory"],
    );
    // A corrupt gzip stream, and a truncated one.
    let gz = dir.join("bad.csv.gz");
    std::fs::write(&gz, b"\x1f\x8b\x08\x00garbage").unwrap();
    csv_error_in(
        read_csv(&gz, &spec).unwrap_err(),
        "bad.csv.gz",
        0,
        &["corrupt gzip"],
    );
    let good = gzip(b"a,c,y\n1,x,0\n2,z,1\n");
    std::fs::write(&gz, &good[..good.len() - 12]).unwrap();
    csv_error_in(
        read_csv(&gz, &spec).unwrap_err(),
        "bad.csv.gz",
        0,
        &["corrupt gzip"],
    );
    // Gzip members concatenated (`cat a.gz b.gz`, as gzip -d reads them): every row is
    // read, not only the first member's.
    let mut two = gzip(b"a,c,y\n1,x,0\n");
    two.extend(gzip(b"2,z,1\n3,x,1\n"));
    std::fs::write(&gz, &two).unwrap();
    let t = read_csv(&gz, &spec).unwrap();
    assert_eq!((t.len(), t.lines.clone()), (3, vec![2, 3, 4]));
    // An unknown delimiter, refused before the file is read (it does not exist).
    for d in ["::", "", " ", "tab", "\n"] {
        let bad = CsvSpec {
            delimiter: d.into(),
            ..spec_y()
        };
        for e in [
            read_csv(&nope, &bad).unwrap_err(),
            parse_csv(b"a\n1\n", Path::new("t.csv"), &bad).unwrap_err(),
        ] {
            let msg = e.to_string();
            assert!(
                matches!(
                    e,
                    Error::Hyperparameter {
                        name: "data.delimiter",
                        ..
                    }
                ) && msg.contains(&format!("{d:?}"))
                    && msg.contains("whitespace"),
                "{msg}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_target_file_is_checked_and_its_errors_name_it() {
    let dir = temp_dir("target-file");
    let (xs, ys) = (dir.join("x.csv"), dir.join("y.csv"));
    let spec = CsvSpec {
        path: xs.clone(),
        target_file: Some(ys.clone()),
        header: false,
        target: vec!["target".into()],
        ..Default::default()
    };
    // Another row count.
    std::fs::write(&xs, "1\n2\n3\n").unwrap();
    std::fs::write(&ys, "0\n1\n").unwrap();
    csv_error_in(
        read_table(&spec).unwrap_err(),
        "y.csv",
        0,
        &["2 rows", "x.csv has 3"],
    );
    // A missing or bad target is on the target file's line (it was named as x.csv's line).
    std::fs::write(&ys, "# y\n0.5\n\nNA\n2\n").unwrap();
    let spec = CsvSpec {
        skip_rows: 1,
        ..spec
    };
    std::fs::write(&xs, "# x\n1\n2\n3\n").unwrap();
    let t = read_table(&spec).unwrap();
    assert_eq!(t.columns, ["0", "target"]);
    csv_error_in(
        Preprocessor::fit(&spec, &t, Task::Regression, &[0, 1, 2]).unwrap_err(),
        "y.csv",
        4,
        &["target column \"target\"", "missing value \"NA\""],
    );
    let pre = Preprocessor::fit(&spec, &t, Task::Regression, &[0, 2]).unwrap();
    assert_eq!(pre.dataset(&t, &[0, 2]).unwrap().y, [0.5, 2.0]);
    csv_error_in(
        pre.dataset(&t, &[1]).unwrap_err(),
        "y.csv",
        4,
        &["missing value \"NA\""],
    );
    // Feature errors still name the feature file: "x" on line 3 of x.csv.
    std::fs::write(&xs, "# x\n1\nx\n3\n").unwrap();
    let t = read_table(&spec).unwrap();
    csv_error_in(
        pre.dataset(&t, &[0, 1]).unwrap_err(),
        "x.csv",
        3,
        &["\"0\"", "\"x\""],
    );
    // With headers, a column name in both files is refused (the target would have been
    // read from the feature file's column of that name).
    std::fs::write(&xs, "a,y\n1,5\n2,6\n").unwrap();
    std::fs::write(&ys, "y\n0\n1\n").unwrap();
    let spec = CsvSpec {
        path: xs,
        target_file: Some(ys),
        target: vec!["y".into()],
        ..Default::default()
    };
    csv_error_in(
        read_table(&spec).unwrap_err(),
        "y.csv",
        0,
        &["\"y\" is in both", "x.csv"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A FIFO, a device and an oversized file are refused before reading (a FIFO without a
/// writer used to block the reader forever).
#[test]
fn only_regular_files_are_read() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("f.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for p in [fifo.as_path(), Path::new("/dev/zero")] {
        let e = within_20s({
            let p = p.to_path_buf();
            move || read_csv(&p, &spec_y()).unwrap_err().to_string()
        });
        assert!(e.contains("not a regular file"), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_categorical_identifier_column_is_refused_before_its_one_hot_fills_memory() {
    // 300,000 distinct values one-hot encode to 300,000 × 150,000 floats (180 GB): refused
    // with the column named, rather than allocated until the process is killed.
    let mut text = String::from("id,y\n");
    for i in 0..300_000 {
        text.push_str(&format!("u{i},{}\n", i % 2));
    }
    let spec = CsvSpec {
        target: vec!["y".into()],
        categorical: vec!["id".into()],
        unseen: Unseen::Zeros,
        ..Default::default()
    };
    let t = parse_csv(text.as_bytes(), Path::new("t.csv"), &spec).unwrap();
    let train: Vec<usize> = (0..t.len() / 2).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Binary, &train).unwrap();
    assert_eq!(pre.features(), 150_000);
    let all: Vec<usize> = (0..t.len()).collect();
    let e = pre.dataset(&t, &all).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::TooLarge { .. }) && msg.contains("\"id\"") && msg.contains("150000"),
        "{msg}"
    );
    // A few rows encode.
    assert_eq!(pre.transform_features(&t, &[0, 2]).unwrap().len(), 300_000);
}

// ---------------------------------------------------------------------------------------
// The stored preprocessing

#[test]
fn preprocessing_json_round_trips_and_corrupt_json_is_refused() {
    let text = b"a,c,y\n1,red,cat\nNA,blue,dog\n3,NA,cat\n4,green,bird\n";
    let spec = CsvSpec {
        missing: Missing::Impute,
        unseen: Unseen::Zeros,
        ..spec_y()
    };
    let t = parse_csv(text, Path::new("t.csv"), &spec).unwrap();
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &[0, 1, 2]).unwrap();
    let json = pre.to_json();
    let back = Preprocessor::from_json(&json).unwrap();
    assert_eq!(back, pre);
    // Imputed mean (1 + 3) / 2 = 2, most frequent colour: blue and red once each, the
    // smaller wins; green unseen: zeros.
    let x = back.transform_features(&t, &[1, 2, 3]).unwrap();
    assert_eq!(x, [2.0, 1.0, 0.0, 3.0, 1.0, 0.0, 4.0, 0.0, 0.0]);
    assert_eq!(x, pre.transform_features(&t, &[1, 2, 3]).unwrap());
    assert_eq!(
        back.transform_targets(&t, &[0, 1, 2]).unwrap(),
        pre.transform_targets(&t, &[0, 1, 2]).unwrap()
    );
    // Through a string, as a checkpoint stores it.
    let s = serde_json::to_string(&json).unwrap();
    let again = Preprocessor::from_json(&serde_json::from_str(&s).unwrap()).unwrap();
    assert_eq!(again, pre);

    // Corrupt or edited: each refused as a config error, not a panic or a shape error.
    let edits: [(&str, serde_json::Value); 7] = [
        ("/class_names", serde_json::json!(null)),
        ("/class_names", serde_json::json!(["only"])),
        ("/task", serde_json::json!("regression")),
        ("/targets", serde_json::json!([])),
        ("/columns", serde_json::json!([])),
        ("/columns/1/vocabulary", serde_json::json!([])),
        ("/columns/0/impute", serde_json::json!(1e39)),
    ];
    for (at, v) in edits {
        let mut j = json.clone();
        *j.pointer_mut(at).unwrap() = v.clone();
        match Preprocessor::from_json(&j) {
            Err(Error::Config { msg, .. }) => assert!(!msg.is_empty()),
            other => panic!("{at} = {v}: {other:?}"),
        }
    }
    let mut j = json.clone();
    *j.pointer_mut("/columns/0/impute").unwrap() = serde_json::json!(null);
    assert!(matches!(
        Preprocessor::from_json(&j),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        Preprocessor::from_json(&serde_json::json!({"task": "multiclass"})),
        Err(Error::Config { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Seeded random mutations

/// A tiny deterministic generator (SplitMix64), so the mutations do not depend on the
/// crate's own RNG.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Line ends in `bytes` as the loader counts them (`\n`, `\r\n`, a lone `\r`).
fn count_lines(bytes: &[u8]) -> usize {
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'\n' || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
        + 1
}

/// 3000 seeded mutations of a valid file (byte flips, insertions of delimiters, quotes,
/// newlines, carriage returns, NUL and bytes that are not UTF-8, deletions, truncations),
/// parsed, fitted on half the rows and encoded, for several specs and every task. None may
/// panic; every error is a CSV error (naming the file) on a line that exists; and a fit
/// that succeeds round-trips through JSON to the same encoding.
#[test]
fn random_mutations_never_panic() {
    let base: &[u8] = b"a,b,c,y,z\n1.5,red,2,0,1\n-3,blue,NA,1,0\n4e2,red,5,0,0\n\"7\",\"gr,een\",8,1,1\n0,blue,,1,0\n";
    let specs = [
        CsvSpec {
            target: vec!["y".into()],
            categorical: vec!["b".into()],
            ..Default::default()
        },
        CsvSpec {
            target: vec!["y".into()],
            categorical: vec!["b".into()],
            missing: Missing::Impute,
            unseen: Unseen::Zeros,
            ..Default::default()
        },
        CsvSpec {
            header: false,
            skip_rows: 1,
            target: vec!["3".into()],
            categorical: vec!["1".into()],
            missing: Missing::Impute,
            ..Default::default()
        },
        CsvSpec {
            target: vec!["y".into(), "z".into()],
            features: vec!["a".into(), "c".into()],
            missing: Missing::Impute,
            ..Default::default()
        },
        CsvSpec {
            delimiter: "whitespace".into(),
            target: vec!["y".into()],
            ..Default::default()
        },
    ];
    let inserts: [&[u8]; 10] = [
        b",", b"\"", b"\n", b"\r", b"\r\n", b"\0", b"\xff", b"\xc3", b"NA", b" ",
    ];
    // SHADEPROP_CSV_MUTATIONS=300000 for a longer run (and SHADEPROP_CSV_SEED for others).
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("SHADEPROP_CSV_MUTATIONS", 3000) as usize;
    let mut rng = SplitMix(env("SHADEPROP_CSV_SEED", 0x5eed));
    let (mut ok, mut errors) = (0usize, 0usize);
    for i in 0..n {
        let mut v = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let pos = rng.below(v.len() + 1);
            match rng.below(5) {
                0 if pos < v.len() => v[pos] ^= 1 << rng.below(8),
                1 | 2 => {
                    let ins = inserts[rng.below(inserts.len())];
                    v.splice(pos..pos, ins.iter().copied());
                }
                3 => v.truncate(pos),
                _ => {
                    if pos < v.len() {
                        v.remove(pos);
                    }
                }
            }
        }
        let lines = count_lines(&v);
        let spec = &specs[i % specs.len()];
        for task in Task::ALL {
            let r = parse_csv(&v, Path::new("m.csv"), spec).and_then(|t| {
                let rows: Vec<usize> = (0..t.len()).collect();
                let train: Vec<usize> = rows.iter().copied().rev().step_by(2).collect();
                let pre = Preprocessor::fit(spec, &t, task, &train)?;
                let ds = pre.dataset(&t, &rows);
                let back = Preprocessor::from_json(&pre.to_json()).expect("round trip");
                assert_eq!(back, pre);
                let again = back.dataset(&t, &rows);
                assert_eq!(
                    format!("{ds:?}"),
                    format!("{again:?}"),
                    "mutation {i}: {:?}",
                    String::from_utf8_lossy(&v)
                );
                let ds = ds?;
                assert_eq!((ds.len(), ds.features), (t.len(), pre.features()));
                Ok(ds)
            });
            match r {
                Ok(_) => ok += 1,
                Err(Error::Csv { path, line, .. }) => {
                    assert_eq!(path, Path::new("m.csv"));
                    assert!(
                        line <= lines,
                        "mutation {i}: line {line} of {lines}: {:?}",
                        String::from_utf8_lossy(&v)
                    );
                    errors += 1;
                }
                Err(e) => panic!(
                    "mutation {i}, {task}: not a CSV error: {e}\n{:?}",
                    String::from_utf8_lossy(&v)
                ),
            }
        }
    }
    // Both outcomes occur: the check is not vacuous.
    assert!(ok > 200 && errors > 200, "{ok} valid, {errors} refused");
}

/// The missing cells of penguins.csv, per column, and the rows that a preprocessor with
/// `missing = "error"` refuses, against counts taken from the file by hand:
///   awk -F, 'NR>1{for(i=1;i<=NF;i++) if($i=="NA") n[i]++} END{for(i in n) print i, n[i]}'
/// gives columns 3..6 (bill length, bill depth, flipper length, body mass) 2 each and
/// column 7 (sex) 11; `awk -F, 'NR>1 && $7=="NA"{print NR}'` gives the lines below (the
/// two lines with NA measurements, 5 and 273, are among them).
#[test]
fn penguins_missing_cells_match_the_files_na_counts() {
    let spec = penguins_spec(Missing::Error);
    let t = read_table(&spec).unwrap();
    let na = |name: &str| {
        let c = t.columns.iter().position(|c| c == name).unwrap();
        t.rows
            .iter()
            .filter(|r| shadeprop::data::tabular::is_missing(&r[c]))
            .count()
    };
    for (name, n) in [
        ("species", 0),
        ("island", 0),
        ("bill_length_mm", 2),
        ("bill_depth_mm", 2),
        ("flipper_length_mm", 2),
        ("body_mass_g", 2),
        ("sex", 11),
        ("year", 0),
    ] {
        assert_eq!(na(name), n, "{name}");
    }
    let na_lines = [5, 10, 11, 12, 13, 49, 180, 220, 258, 270, 273];
    // Fitted on the complete rows; every other row is refused alone, naming its line.
    let complete: Vec<usize> = (0..t.len())
        .filter(|&r| !na_lines.contains(&t.lines[r]))
        .collect();
    assert_eq!(complete.len(), 344 - 11);
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &complete).unwrap();
    let mut refused = vec![];
    for r in 0..t.len() {
        if let Err(e) = pre.dataset(&t, &[r]) {
            let msg = e.to_string();
            assert!(msg.contains("missing value \"NA\""), "{msg}");
            match e {
                Error::Csv { line, .. } => refused.push(line),
                other => panic!("{other}"),
            }
        }
    }
    assert_eq!(refused, na_lines);
    // Line 5's first missing feature (in the spec's order: island, bill_length_mm, ...)
    // is bill_length_mm.
    let r5 = t.lines.iter().position(|&l| l == 5).unwrap();
    let msg = pre.dataset(&t, &[r5]).unwrap_err().to_string();
    assert!(msg.contains("\"bill_length_mm\""), "{msg}");
}

/// Every column but the target is a feature by default (penguins: 7, year included),
/// and the one-hot vocabulary comes from the training rows only: without the Torgersen
/// rows in training (52 rows, `awk -F, '$2=="Torgersen"' | wc -l`, lines 2-21, 70-85,
/// 118-133), island encodes as Biscoe/Dream and a Torgersen row is refused, or all zeros
/// with `unseen = "zeros"`.
#[test]
fn penguins_default_features_and_a_training_only_vocabulary() {
    let spec = CsvSpec {
        features: vec![],
        ..penguins_spec(Missing::Impute)
    };
    let t = read_table(&spec).unwrap();
    let island = t.columns.iter().position(|c| c == "island").unwrap();
    let train: Vec<usize> = (0..t.len())
        .filter(|&r| t.rows[r][island] != "Torgersen")
        .collect();
    assert_eq!(train.len(), 344 - 52);
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &train).unwrap();
    assert_eq!(
        pre.feature_names(),
        [
            "island=Biscoe",
            "island=Dream",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex=female",
            "sex=male",
            "year"
        ]
    );
    assert_eq!(pre.features(), 9);
    assert_eq!(pre.targets(), 1);
    // Line 2 (row 0) is Torgersen.
    csv_error_in(
        pre.dataset(&t, &[0]).unwrap_err(),
        "penguins.csv",
        2,
        &["\"island\"", "\"Torgersen\"", "not seen"],
    );
    let zeros = Preprocessor::fit(
        &CsvSpec {
            unseen: Unseen::Zeros,
            ..spec.clone()
        },
        &t,
        Task::Multiclass,
        &train,
    )
    .unwrap();
    // Line 2: Adelie,Torgersen,39.1,18.7,181,3750,male,2007.
    assert_eq!(
        zeros.dataset(&t, &[0]).unwrap().x,
        [0.0, 0.0, 39.1, 18.7, 181.0, 3750.0, 0.0, 1.0, 2007.0]
    );
    // `awk -F, 'NR==22 || NR==134'`: Adelie,Biscoe,37.8,18.3,174,3400,female,2007 and
    // Adelie,Dream,36.8,18.5,193,3500,female,2009 (rows 20 and 132).
    assert_eq!((t.lines[20], t.lines[132]), (22, 134));
    assert_eq!(
        zeros.dataset(&t, &[20, 132]).unwrap().x,
        [
            1.0, 0.0, 37.8, 18.3, 174.0, 3400.0, 1.0, 0.0, 2007.0, //
            0.0, 1.0, 36.8, 18.5, 193.0, 3500.0, 1.0, 0.0, 2009.0
        ]
    );
}

#[test]
fn column_roles_that_contradict_are_named_errors() {
    let t = parse(b"a,c,y\n1,x,0\n2,z,1\n").unwrap();
    let rows = [0, 1];
    // A target also listed as a feature.
    let e = Preprocessor::fit(
        &CsvSpec {
            features: vec!["a".into(), "y".into()],
            categorical: vec![],
            ..spec_y()
        },
        &t,
        Task::Binary,
        &rows,
    )
    .unwrap_err();
    csv_error(e, 0, &["\"y\"", "both a target and a feature"]);
    // Every column a target: no feature left.
    let e = Preprocessor::fit(
        &CsvSpec {
            target: vec!["a".into(), "c".into(), "y".into()],
            categorical: vec![],
            ..spec_y()
        },
        &t,
        Task::Regression,
        &rows,
    )
    .unwrap_err();
    csv_error(e, 0, &["no feature column"]);
    // A categorical column that is a column but not a feature.
    let e = Preprocessor::fit(
        &CsvSpec {
            features: vec!["a".into()],
            ..spec_y()
        },
        &t,
        Task::Binary,
        &rows,
    )
    .unwrap_err();
    csv_error(e, 0, &["\"c\"", "not one of the features"]);
    // No target named at all.
    let e = Preprocessor::fit(
        &CsvSpec {
            target: vec![],
            ..spec_y()
        },
        &t,
        Task::Binary,
        &rows,
    )
    .unwrap_err();
    csv_error(e, 0, &["no target column"]);
}

/// Rows outside the training split are checked when transformed: a missing feature, a
/// missing target, a non-numeric cell, each named by its line.
#[test]
fn rows_outside_training_are_checked_at_transform() {
    let text = b"a,c,y\n1,x,0\n2,z,1\nNA,x,0\n3,NA,1\n4,x,\n5,x,1\nfive,x,0\n";
    let t = parse(text).unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    csv_error(
        pre.dataset(&t, &[2]).unwrap_err(),
        4,
        &["\"a\"", "missing value \"NA\""],
    );
    csv_error(
        pre.dataset(&t, &[3]).unwrap_err(),
        5,
        &["\"c\"", "missing value \"NA\""],
    );
    csv_error(
        pre.dataset(&t, &[4]).unwrap_err(),
        6,
        &["target", "\"y\"", "missing"],
    );
    csv_error(
        pre.dataset(&t, &[6]).unwrap_err(),
        8,
        &["\"a\"", "\"five\"", "not a finite number"],
    );
    assert_eq!(pre.dataset(&t, &[5]).unwrap().x, [5.0, 1.0, 0.0]);
    // With missing = impute: the training mean of a (1 and 2: 1.5) and the most frequent
    // training category of c (x and z once each: the smaller, x).
    let imp = CsvSpec {
        missing: Missing::Impute,
        ..spec_y()
    };
    let pre = Preprocessor::fit(&imp, &t, Task::Binary, &[0, 1]).unwrap();
    assert_eq!(
        pre.dataset(&t, &[2, 3]).unwrap().x,
        [1.5, 1.0, 0.0, 3.0, 1.0, 0.0]
    );
    // A missing target is refused even so.
    csv_error(
        pre.dataset(&t, &[4]).unwrap_err(),
        6,
        &["target", "missing"],
    );
}

/// Numeric targets (regression, several columns): each must be a finite number.
#[test]
fn numeric_targets_must_be_finite_numbers() {
    let spec = CsvSpec {
        target: vec!["y".into(), "z".into()],
        ..Default::default()
    };
    let t = parse_csv(
        b"a,y,z\n1,0.5,2\n2,1.5,-1\n3,abc,0\n4,1,inf\n",
        Path::new("t.csv"),
        &spec,
    )
    .unwrap();
    let pre = Preprocessor::fit(&spec, &t, Task::Regression, &[0, 1]).unwrap();
    assert_eq!(pre.targets(), 2);
    assert_eq!(pre.class_names, None);
    let ds = pre.dataset(&t, &[0, 1]).unwrap();
    assert_eq!(ds.y, [0.5, 2.0, 1.5, -1.0]);
    csv_error(
        pre.dataset(&t, &[2]).unwrap_err(),
        4,
        &["target", "\"y\"", "\"abc\""],
    );
    csv_error(
        pre.dataset(&t, &[3]).unwrap_err(),
        5,
        &["target", "\"z\"", "\"inf\""],
    );
}

/// A prediction input needs only the feature columns, found by name in any order.
#[test]
fn prediction_input_without_the_target_column() {
    let t = parse(b"a,c,y\n1,x,0\n2,z,1\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    let input = parse_csv(
        b"c,extra,a\nz,9,7\nx,9,8\n",
        Path::new("in.csv"),
        &CsvSpec::default(),
    )
    .unwrap();
    // Features a, c=x, c=z.
    assert_eq!(
        pre.transform_features(&input, &[0, 1]).unwrap(),
        [7.0, 0.0, 1.0, 8.0, 1.0, 0.0]
    );
    assert!(pre.transform_targets(&input, &[0]).is_err());
    let no_a = parse_csv(b"c\nx\n", Path::new("in.csv"), &CsvSpec::default()).unwrap();
    let e = pre.transform_features(&no_a, &[0]).unwrap_err();
    csv_error_in(
        e,
        "in.csv",
        0,
        &["feature column \"a\" is not in the file", "\"c\""],
    );
}

/// A cell of 2 million characters: read whole, and named in an error by its first 80
/// characters and its length, not copied into the message.
#[test]
fn a_huge_cell_is_read_and_shown_truncated() {
    let huge = "9".repeat(2_000_000);
    let text = format!("a,c,y\n1,x,0\n2,x,1\n{huge}x,x,0\n3,{huge},1\n");
    let t = parse(text.as_bytes()).unwrap();
    assert_eq!(t.rows[2][0].len(), 2_000_001);
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    for (row, line) in [(2, 4), (3, 5)] {
        let e = pre.dataset(&t, &[row]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.len() < 2_000, "{} bytes", msg.len());
        let n = if row == 2 { "2000001" } else { "2000000" };
        csv_error(e, line, &[&"9".repeat(80), &format!("({n} characters)")]);
    }
    // A huge column name that is asked for and absent is truncated too.
    let e = Preprocessor::fit(
        &CsvSpec {
            target: vec![huge.clone()],
            ..spec_y()
        },
        &t,
        Task::Binary,
        &[0],
    )
    .unwrap_err();
    assert!(e.to_string().len() < 2_000);
}

/// Line numbers stay the file's: after CRLF line ends, a quoted cell holding a newline,
/// skipped lines and blank lines.
#[test]
fn errors_name_the_files_line_after_crlf_quoted_newlines_and_skips() {
    csv_error(
        parse(b"a,c,y\r\n1,x,0\r\n2,x,1\r\n3,x\r\n").unwrap_err(),
        4,
        &["2 cells", "expected 3"],
    );
    let t = parse(b"a,c,y\n1,\"two\nlines\",0\n\n2,x,1\n").unwrap();
    assert_eq!(t.rows[0][1], "two\nlines");
    assert_eq!(t.lines, [2, 5]);
    let spec = CsvSpec {
        skip_rows: 2,
        ..spec_y()
    };
    let t = parse_csv(
        b"# comment\n# more\na,c,y\n1,x,0\n2,x\n",
        Path::new("t.csv"),
        &spec,
    )
    .unwrap_err();
    csv_error(t, 5, &["2 cells", "header on line 3"]);
}

/// `delimiter = "whitespace"`: runs of spaces and tabs, blank lines skipped, lines
/// named as in the file.
#[test]
fn whitespace_delimited_files() {
    let spec = CsvSpec {
        delimiter: "whitespace".into(),
        header: false,
        target: vec!["2".into()],
        ..Default::default()
    };
    let t = parse_csv(
        b"  1\t 2.5   0\n\n3 4 1\r\n5   6\n",
        Path::new("w.txt"),
        &spec,
    )
    .unwrap_err();
    csv_error_in(t, "w.txt", 4, &["2 cells", "expected 3", "first row"]);
    let t = parse_csv(b"  1\t 2.5   0\n\n3 4 1\r\n", Path::new("w.txt"), &spec).unwrap();
    assert_eq!(t.columns, ["0", "1", "2"]);
    assert_eq!(t.rows, [["1", "2.5", "0"], ["3", "4", "1"]]);
    assert_eq!(t.lines, [1, 3]);
}

/// Found by breaking the loader: a gzip file of several members (`cat a.gz b.gz`) was read
/// to its first member only; a target file's column named like a feature silently
/// replaced the target; a column listed twice was encoded twice; "1" and "1.0" became two
/// classes. Each is now read whole or refused by name.
#[test]
fn concatenated_gzip_name_collisions_and_twice_written_classes() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("shadeprop-tabular-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let path = dir.join("m.csv.gz");
    let mut bytes = gz("a,y\n1,0\n2,1\n");
    bytes.extend(gz("3,0\n4,1\n"));
    std::fs::write(&path, bytes).unwrap();
    let t = read_csv(&path, &spec_y()).unwrap();
    assert_eq!(t.len(), 4, "both gzip members");

    let (xs, ys) = (dir.join("x.csv"), dir.join("y.csv"));
    std::fs::write(&xs, "a,b\n1,2\n3,4\n").unwrap();
    std::fs::write(&ys, "a\n10\n20\n").unwrap();
    let spec = CsvSpec {
        path: xs,
        target_file: Some(ys),
        target: vec!["a".into()],
        ..Default::default()
    };
    let e = read_table(&spec).unwrap_err().to_string();
    assert!(e.contains("\"a\" is in both"), "{e}");

    let t = parse(b"a,b,y\n1,2,0\n3,4,1\n").unwrap();
    let twice = CsvSpec {
        features: vec!["a".into(), "a".into(), "b".into()],
        ..spec_y()
    };
    let e = Preprocessor::fit(&twice, &t, Task::Binary, &[0, 1])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data.csv.features lists the column \"a\" twice"),
        "{e}"
    );

    let t = parse(b"a,c,y\n1,x,1\n2,x,1.0\n3,x,2\n").unwrap();
    let e = Preprocessor::fit(&spec_y(), &t, Task::Multiclass, &[0, 1, 2])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"1\" and \"1.0\"") || e.contains("\"1.0\" and \"1\""),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Found by breaking the loader: a categorical column of 70,000 distinct values one-hot
/// encodes to 70,000 × 70,000 values — the process aborted allocating them; now a named
/// TooLarge before any allocation. A multi-label target outside [0, 1] is named by its
/// file line (it was its index in a shuffled split), column and value.
#[test]
fn huge_encodings_are_refused_and_targets_are_named_by_file_line() {
    let mut text = String::from("id,v,y\n");
    for i in 0..70_000 {
        text.push_str(&format!("id{i},{},{}\n", i % 7, i % 2));
    }
    let spec = CsvSpec {
        target: vec!["y".into()],
        categorical: vec!["id".into()],
        ..Default::default()
    };
    let t = parse_csv(text.as_bytes(), Path::new("ids.csv"), &spec).unwrap();
    let rows: Vec<usize> = (0..t.len()).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Binary, &rows).unwrap();
    let e = pre.dataset(&t, &rows).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::TooLarge { .. }), "{msg}");
    assert!(
        msg.contains("\"id\"") && msg.contains("70000 distinct"),
        "{msg}"
    );

    let spec = CsvSpec {
        target: vec!["p".into(), "q".into()],
        ..Default::default()
    };
    let t = parse_csv(b"a,p,q\n1,0,1\n2,1,0\n3,0,2\n", Path::new("ml.csv"), &spec).unwrap();
    let pre = Preprocessor::fit(&spec, &t, Task::Multilabel, &[0, 1]).unwrap();
    let e = pre.dataset(&t, &[2, 0]).unwrap_err();
    csv_error_in(e, "ml.csv", 4, &["target column \"q\"", "\"2\"", "[0, 1]"]);
}

/// `data.csv.weight`: a column of per-sample weights, neither a feature nor a target,
/// carried into the dataset (and through its splits); a bad weight is named by its line.
#[test]
fn a_weight_column_becomes_the_sample_weights() {
    let spec = CsvSpec {
        target: vec!["y".into()],
        weight: Some("w".into()),
        ..Default::default()
    };
    let t = parse_csv(b"a,w,y\n1,0.5,0\n2,2,1\n3,1,1\n", Path::new("w.csv"), &spec).unwrap();
    let pre = Preprocessor::fit(&spec, &t, Task::Binary, &[0, 1, 2]).unwrap();
    assert_eq!(pre.feature_names(), ["a"]);
    let ds = pre.dataset(&t, &[0, 1, 2]).unwrap();
    assert_eq!(ds.weights.as_deref(), Some(&[0.5, 2.0, 1.0][..]));
    assert_eq!(
        ds.gather(&[1]).unwrap().weights.as_deref(),
        Some(&[2.0][..])
    );
    let t = parse_csv(b"a,w,y\n1,0.5,0\n2,-2,1\n", Path::new("w.csv"), &spec).unwrap();
    let pre = Preprocessor::fit(&spec, &t, Task::Binary, &[0, 1]).unwrap();
    let e = pre.dataset(&t, &[0, 1]).unwrap_err();
    csv_error_in(e, "w.csv", 3, &["weight column \"w\"", "\"-2\""]);
    let both = CsvSpec {
        features: vec!["a".into(), "w".into()],
        ..spec
    };
    let e = Preprocessor::fit(&both, &t, Task::Binary, &[0, 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("weight column \"w\" is also a feature"), "{e}");
}

/// Multi-label targets are probabilities, as PyTorch's `BCEWithLogitsLoss` takes them: 0 or
/// 1, or soft targets such as 0.5, kept as they are; a value outside [0, 1] is refused and
/// the message says what a target may be (not "0 or 1", which 0.5 is not either).
#[test]
fn multilabel_targets_may_be_soft_within_0_and_1() {
    let spec = CsvSpec {
        target: vec!["p".into(), "q".into()],
        ..Default::default()
    };
    let t = parse_csv(
        b"a,p,q\n1,0,1\n2,1,0.5\n3,0.25,1\n4,0,1.5\n",
        Path::new("soft.csv"),
        &spec,
    )
    .unwrap();
    let pre = Preprocessor::fit(&spec, &t, Task::Multilabel, &[0, 1, 2]).unwrap();
    let ds = pre.dataset(&t, &[0, 1, 2]).unwrap();
    assert_eq!(ds.y, [0.0, 1.0, 1.0, 0.5, 0.25, 1.0]);
    let e = pre.dataset(&t, &[3]).unwrap_err();
    csv_error_in(
        e,
        "soft.csv",
        5,
        &[
            "target column \"q\"",
            "\"1.5\" is not in [0, 1]",
            "0 or 1, or a soft target",
        ],
    );
}

/// A number error names the column by its role and name, with the hint that fits it: a
/// number beyond f32 (1e39) is said to be one in any column, the categorical hint is for
/// feature columns only (not targets, not weights), and a bad weight is named in its own
/// column ("w", the 5th), on its file line, not "column 0".
#[test]
fn number_errors_name_the_right_column_with_the_hint_that_fits() {
    let spec = CsvSpec {
        target: vec!["y".into()],
        weight: Some("w".into()),
        ..Default::default()
    };
    // Columns: a, b, c, y (target), w (weight): w is column 4.
    let good = "1,2,3,0.5,1";
    let fit_and_read = |bad_row: &str| {
        let text = format!("a,b,c,y,w\n{good}\n{good}\n{bad_row}\n");
        let t = parse_csv(text.as_bytes(), Path::new("n.csv"), &spec).unwrap();
        let pre = Preprocessor::fit(&spec, &t, Task::Regression, &[0, 1]).unwrap();
        pre.dataset(&t, &[0, 1, 2]).unwrap_err()
    };
    let categorical = "data.csv.categorical";
    for (row, want, not) in [
        (
            "1,2,3,1e39,1",
            &[
                "target column \"y\"",
                "\"1e39\"",
                "not a finite number in f32 (beyond ±3.4e38)",
            ][..],
            &[categorical][..],
        ),
        (
            "1,2,3,0.5,1e39",
            &[
                "weight column \"w\"",
                "\"1e39\"",
                "not a finite number in f32 (beyond ±3.4e38)",
            ][..],
            &[categorical][..],
        ),
        (
            "1,1e39,3,0.5,1",
            &[
                "numeric feature column \"b\"",
                "not a finite number in f32 (beyond ±3.4e38)",
            ][..],
            &[categorical][..],
        ),
        (
            "1,red,3,0.5,1",
            &["numeric feature column \"b\"", "\"red\"", categorical][..],
            &[][..],
        ),
        (
            "1,2,3,high,1",
            &["target column \"y\"", "\"high\"", "task = \"multiclass\""][..],
            &[categorical][..],
        ),
        (
            "1,2,3,0.5,heavy",
            &["weight column \"w\"", "\"heavy\" is not a finite number"][..],
            &[categorical][..],
        ),
        (
            "1,2,3,0.5,-2",
            &[
                "weight column \"w\"",
                "\"-2\" is not a sample weight",
                "[1e-30, 1e30]",
            ][..],
            &["column 0"][..],
        ),
        (
            "1,2,3,0.5,NA",
            &["weight column \"w\"", "missing value \"NA\""][..],
            &[categorical][..],
        ),
    ] {
        let e = fit_and_read(row);
        let msg = e.to_string();
        for n in not {
            assert!(!msg.contains(n), "{row}: {msg} holds {n:?}");
        }
        csv_error_in(e, "n.csv", 4, want);
    }
    // Weights given as an array: one per row, so no column is named.
    let ds =
        shadeprop::data::Dataset::for_task(Task::Regression, vec![1.0, 2.0], vec![0.0, 1.0], 1, 1)
            .unwrap();
    let e = ds.with_weights(vec![1.0, -2.0]).unwrap_err().to_string();
    assert!(
        e.contains("sample weight -2 at row 1 of") && !e.contains("column"),
        "{e}"
    );
}
