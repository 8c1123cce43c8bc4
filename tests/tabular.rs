//! The CSV loader (`data::tabular`): the real tables of scikit-learn and palmerpenguins
//! (counts and values checked against the files with awk, commands in the comments), the
//! preprocessing fitted on training rows only, every malformed input refused with a named
//! error, and seeded random mutations of a valid file that must never panic.

use std::path::{Path, PathBuf};

use shadeprop::Error;
use shadeprop::data::Task;
use shadeprop::data::tabular::{
    CsvSpec, Missing, Preprocessor, Unseen, parse_csv, read_csv, read_table,
};

fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel);
    assert!(
        p.exists(),
        "{} missing: run scripts/fetch-data.sh --tabular",
        p.display()
    );
    p
}

fn penguins_spec(missing: Missing) -> CsvSpec {
    CsvSpec {
        path: data("palmerpenguins/penguins.csv"),
        target: vec!["species".into()],
        features: [
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex",
        ]
        .map(String::from)
        .to_vec(),
        categorical: vec!["island".into(), "sex".into()],
        missing,
        ..Default::default()
    }
}

#[test]
fn penguins_one_hot_and_imputation_are_fitted_on_training_rows_only() {
    let spec = penguins_spec(Missing::Impute);
    let t = read_table(&spec).unwrap();
    // wc -l penguins.csv: 345 lines, a header and 344 rows.
    assert_eq!(t.len(), 344);
    // Training rows: the even rows (a deterministic stand-in for a split).
    let train: Vec<usize> = (0..t.len()).step_by(2).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Multiclass, &train).unwrap();
    assert_eq!(
        pre.class_names.as_deref().unwrap(),
        ["Adelie", "Chinstrap", "Gentoo"]
    );
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
            "sex=male"
        ]
    );
    // The imputed bill length is the mean over the training rows that have one,
    // computed here from the raw cells.
    let c = t
        .columns
        .iter()
        .position(|c| c == "bill_length_mm")
        .unwrap();
    let vals: Vec<f64> = train
        .iter()
        .filter_map(|&r| t.rows[r][c].parse::<f64>().ok())
        .collect();
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    // Line 5 of the file (row 3, a training row) is NA in every measurement.
    let ds = pre.dataset(&t, &[3]).unwrap();
    assert!(
        (ds.x[3] as f64 - mean).abs() < 1e-4,
        "{} vs {mean}",
        ds.x[3]
    );
    // Its sex is NA too: imputed with the most frequent training value.
    let sc = t.columns.iter().position(|c| c == "sex").unwrap();
    let count = |v: &str| train.iter().filter(|&&r| t.rows[r][sc] == v).count();
    let want = if count("male") > count("female") {
        [0.0, 1.0]
    } else {
        [1.0, 0.0]
    };
    assert_eq!(&ds.x[7..9], &want);
    // Row 0 (line 2): Adelie, Torgersen, 39.1, 18.7, 181, 3750, male.
    let d0 = pre.dataset(&t, &[0]).unwrap();
    assert_eq!(d0.x, [0.0, 0.0, 1.0, 39.1, 18.7, 181.0, 3750.0, 0.0, 1.0]);
    assert_eq!(d0.y, [0.0]);
    // The whole table: 344 rows of 9 features.
    let all: Vec<usize> = (0..t.len()).collect();
    let ds = pre.dataset(&t, &all).unwrap();
    assert_eq!((ds.len(), ds.features, ds.classes), (344, 9, 3));
    // awk -F, 'NR>1{print $1}' | sort | uniq -c: 152 Adelie, 68 Chinstrap, 124 Gentoo.
    for (k, n) in [(0.0, 152), (1.0, 68), (2.0, 124)] {
        assert_eq!(ds.y.iter().filter(|&&y| y == k).count(), n);
    }
    // JSON round trip: the same encoding.
    let back = Preprocessor::from_json(&pre.to_json()).unwrap();
    assert_eq!(back, pre);
    assert_eq!(back.dataset(&t, &all).unwrap(), ds);
}

#[test]
fn penguins_missing_values_are_refused_by_default_naming_line_and_column() {
    let spec = penguins_spec(Missing::Error);
    let t = read_table(&spec).unwrap();
    let train: Vec<usize> = (0..t.len()).collect();
    let e = Preprocessor::fit(&spec, &t, Task::Multiclass, &train).unwrap_err();
    // Line 5 is the first with NA (awk 'NR>1 && $3=="NA"{print NR}': 5 and 273).
    let msg = e.to_string();
    assert!(matches!(e, Error::Csv { line: 5, .. }), "{msg}");
    assert!(
        msg.contains("island") || msg.contains("bill_length_mm"),
        "{msg}"
    );
    assert!(msg.contains("\"NA\"") && msg.contains("impute"), "{msg}");
}

#[test]
fn sklearn_tables_load_with_their_documented_shapes() {
    // breast_cancer.csv: a "569,30,malignant,benign" line, then 569 rows of 30 features
    // and the target (awk: 212 zeros, 357 ones; scikit-learn documents 212 malignant,
    // 357 benign).
    let spec = CsvSpec {
        path: data("sklearn/breast_cancer.csv"),
        header: false,
        skip_rows: 1,
        target: vec!["30".into()],
        ..Default::default()
    };
    let t = read_table(&spec).unwrap();
    let all: Vec<usize> = (0..t.len()).collect();
    let pre = Preprocessor::fit(&spec, &t, Task::Binary, &all).unwrap();
    let ds = pre.dataset(&t, &all).unwrap();
    assert_eq!((ds.len(), ds.features, ds.task), (569, 30, Task::Binary));
    assert_eq!(ds.y.iter().filter(|&&y| y == 0.0).count(), 212);
    assert_eq!(&ds.x[..4], &[17.99, 10.38, 122.8, 1001.0]);
    // wine_data.csv: 178 rows, 13 features, classes 59 / 71 / 48.
    let spec = CsvSpec {
        path: data("sklearn/wine_data.csv"),
        header: false,
        skip_rows: 1,
        target: vec!["13".into()],
        ..Default::default()
    };
    let t = read_table(&spec).unwrap();
    let all: Vec<usize> = (0..t.len()).collect();
    let ds = Preprocessor::fit(&spec, &t, Task::Multiclass, &all)
        .unwrap()
        .dataset(&t, &all)
        .unwrap();
    assert_eq!((ds.len(), ds.features, ds.classes), (178, 13, 3));
    let per: Vec<usize> = (0..3)
        .map(|k| ds.y.iter().filter(|&&y| y == k as f32).count())
        .collect();
    assert_eq!(per, [59, 71, 48]);
    // diabetes: whitespace-separated features, the target in a second file; 442 × 10,
    // first row "59 2 32.1 101.0 157 93.2 38.0 4.0 4.8598 87", first target 151.
    let spec = CsvSpec {
        path: data("sklearn/diabetes_data_raw.csv.gz"),
        target_file: Some(data("sklearn/diabetes_target.csv.gz")),
        delimiter: "whitespace".into(),
        header: false,
        target: vec!["target".into()],
        ..Default::default()
    };
    let t = read_table(&spec).unwrap();
    let all: Vec<usize> = (0..t.len()).collect();
    let ds = Preprocessor::fit(&spec, &t, Task::Regression, &all)
        .unwrap()
        .dataset(&t, &all)
        .unwrap();
    assert_eq!((ds.len(), ds.features), (442, 10));
    assert_eq!(&ds.x[..3], &[59.0, 2.0, 32.1]);
    assert_eq!(ds.y[0], 151.0);
}

/// Parse `text` as a CSV with a header, target "y".
fn parse(text: &[u8]) -> shadeprop::Result<shadeprop::data::tabular::Table> {
    parse_csv(text, Path::new("t.csv"), &spec_y())
}

fn spec_y() -> CsvSpec {
    CsvSpec {
        target: vec!["y".into()],
        categorical: vec!["c".into()],
        ..Default::default()
    }
}

/// `e` is a CSV error on `line` whose message holds every needle.
fn csv_error(e: Error, line: usize, needles: &[&str]) {
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Csv { line: l, .. } if l == line),
        "expected a CSV error on line {line}: {msg}"
    );
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in {msg}");
    }
}

fn fit_all(text: &[u8], task: Task) -> shadeprop::Result<shadeprop::data::Dataset> {
    let t = parse(text)?;
    let rows: Vec<usize> = (0..t.len()).collect();
    Preprocessor::fit(&spec_y(), &t, task, &rows)?.dataset(&t, &rows)
}

#[test]
fn malformed_files_are_named_errors() {
    // Ragged row, with the header's cell count.
    csv_error(
        parse(b"a,c,y\n1,x,0\n2,x\n").unwrap_err(),
        3,
        &["2 cells", "expected 3"],
    );
    // Empty file, header only.
    csv_error(parse(b"").unwrap_err(), 0, &["empty"]);
    csv_error(parse(b"a,c,y\n").unwrap_err(), 0, &["no data rows"]);
    // Duplicate column names.
    csv_error(
        parse(b"a,a,y\n1,2,0\n").unwrap_err(),
        1,
        &["\"a\"", "twice"],
    );
    // Not UTF-8.
    csv_error(parse(b"a,c,y\n1,\xff\xfe,0\n").unwrap_err(), 2, &["UTF-8"]);
    // A non-numeric cell in a numeric column, and values that are not finite in f32.
    for bad in ["abc", "inf", "1e99", "-NaN1"] {
        let text = format!("a,c,y\n1,x,0\n{bad},x,1\n");
        csv_error(
            fit_all(text.as_bytes(), Task::Binary).unwrap_err(),
            3,
            &["\"a\"", bad],
        );
    }
    // Unknown columns: target, feature, categorical.
    let t = parse(b"a,c,y\n1,x,0\n2,z,1\n").unwrap();
    let rows = [0, 1];
    for spec in [
        CsvSpec {
            target: vec!["label".into()],
            ..spec_y()
        },
        CsvSpec {
            features: vec!["a".into(), "b".into(), "c".into()],
            ..spec_y()
        },
        CsvSpec {
            categorical: vec!["colour".into()],
            ..spec_y()
        },
    ] {
        let e = Preprocessor::fit(&spec, &t, Task::Binary, &rows)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not in the file") && e.contains("\"a\", \"c\", \"y\""),
            "{e}"
        );
    }
    // A missing target, in training rows and at transform.
    csv_error(
        fit_all(b"a,c,y\n1,x,0\n2,x,NA\n", Task::Binary).unwrap_err(),
        3,
        &["target", "missing"],
    );
    // A binary target with 3 classes; a multilabel task with one target column.
    let e = fit_all(b"a,c,y\n1,x,0\n2,x,1\n3,x,2\n", Task::Binary)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 distinct") && e.contains("exactly 2"), "{e}");
    let e = fit_all(b"a,c,y\n1,x,0\n2,x,1\n", Task::Multilabel)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 2 target columns"), "{e}");
    // A missing file, a directory, a corrupt gzip stream, an unknown delimiter.
    let dir = std::env::temp_dir().join(format!("shadeprop-tabular-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = spec_y();
    assert!(matches!(
        read_csv(&dir.join("nope.csv"), &spec).unwrap_err(),
        Error::Io { .. }
    ));
    csv_error(read_csv(&dir, &spec).unwrap_err(), 0, &["directory"]);
    let gz = dir.join("bad.csv.gz");
    std::fs::write(&gz, b"\x1f\x8b\x08\x00garbage").unwrap();
    csv_error(read_csv(&gz, &spec).unwrap_err(), 0, &["gzip"]);
    let e = parse_csv(
        b"a\n1\n",
        Path::new("t.csv"),
        &CsvSpec {
            delimiter: "::".into(),
            ..spec_y()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("delimiter") && e.contains("whitespace"), "{e}");
    // A target file of another length.
    let (xs, ys) = (dir.join("x.csv"), dir.join("y.csv"));
    std::fs::write(&xs, "1\n2\n3\n").unwrap();
    std::fs::write(&ys, "0\n1\n").unwrap();
    let spec = CsvSpec {
        path: xs,
        target_file: Some(ys),
        header: false,
        target: vec!["target".into()],
        ..Default::default()
    };
    csv_error(read_table(&spec).unwrap_err(), 0, &["2 rows", "3"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn categories_unseen_in_training_are_refused_or_zeros_by_option() {
    let t = parse(b"a,c,y\n1,red,0\n2,blue,1\n3,green,1\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Binary, &[0, 1]).unwrap();
    csv_error(
        pre.dataset(&t, &[2]).unwrap_err(),
        4,
        &["\"c\"", "\"green\"", "not seen"],
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
    // Vocabulary [blue, red]: green encodes as [0, 0].
    assert_eq!(zeros.dataset(&t, &[2]).unwrap().x, [3.0, 0.0, 0.0]);
    // A class never seen in training, in the target: always an error.
    let t = parse(b"a,c,y\n1,red,cat\n2,red,dog\n3,red,bird\n").unwrap();
    let pre = Preprocessor::fit(&spec_y(), &t, Task::Multiclass, &[0, 1]).unwrap();
    csv_error(
        pre.dataset(&t, &[2]).unwrap_err(),
        4,
        &["class", "\"bird\""],
    );
}

#[test]
fn bom_crlf_and_quoted_delimiters_are_read() {
    let t = parse(b"\xEF\xBB\xBFa,c,y\r\n\"1\",\"x, y\",0\r\n2,z,1\r\n").unwrap();
    assert_eq!(t.columns, ["a", "c", "y"]);
    assert_eq!(t.rows[0], ["1", "x, y", "0"]);
    assert_eq!(t.lines, [2, 3]);
    // Classes that are numbers sort as numbers: 2 < 10.
    let ds = fit_all(b"a,c,y\n1,x,10\n2,x,2\n", Task::Multiclass).unwrap();
    assert_eq!(ds.y, [1.0, 0.0]);
}

/// Seeded mutations of a valid file (byte flips, insertions of delimiters, quotes,
/// newlines, NUL and invalid UTF-8, truncations): every one gives Ok or an error, never
/// a panic.
#[test]
fn random_mutations_never_panic() {
    let base = b"a,b,c,y\n1.5,red,2,0\n-3,blue,NA,1\n4e2,red,5,0\n\"7\",\"gr,een\",8,1\n";
    let rng = shadeprop::rng::Rng::new(99);
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
            ..Default::default()
        },
        CsvSpec {
            delimiter: "whitespace".into(),
            target: vec!["y".into()],
            ..Default::default()
        },
    ];
    let inserts: [&[u8]; 7] = [b",", b"\"", b"\n", b"\r", b"\0", b"\xff", b"NA"];
    let mut ok = 0;
    for i in 0..3000u32 {
        let mut v = base.to_vec();
        for j in 0..1 + rng.below(1, i, 0, 4) {
            let pos = rng.below(2, i, j, v.len() as u32 + 1) as usize;
            match rng.below(3, i, j, 4) {
                0 if pos < v.len() => v[pos] ^= 1 << rng.below(4, i, j, 8),
                1 => {
                    let ins = inserts[rng.below(5, i, j, inserts.len() as u32) as usize];
                    v.splice(pos..pos, ins.iter().copied());
                }
                2 => v.truncate(pos),
                _ => {
                    if pos < v.len() {
                        v.remove(pos);
                    }
                }
            }
        }
        let spec = &specs[(i % specs.len() as u32) as usize];
        for task in [Task::Binary, Task::Multiclass, Task::Regression] {
            let r = parse_csv(&v, Path::new("m.csv"), spec).and_then(|t| {
                let rows: Vec<usize> = (0..t.len()).collect();
                let train: Vec<usize> = rows.iter().copied().step_by(2).collect();
                Preprocessor::fit(spec, &t, task, &train)?.dataset(&t, &rows)
            });
            ok += r.is_ok() as usize;
        }
    }
    // The mutations leave some files valid: the check is not vacuous.
    assert!(ok > 50, "{ok} valid mutations");
}

/// A FIFO, a device and an oversized file are refused before reading (a FIFO without a
/// writer used to block the reader forever).
#[test]
fn only_regular_files_are_read() {
    let dir = std::env::temp_dir().join(format!("shadeprop-tabular-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("f.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for p in [fifo.as_path(), Path::new("/dev/zero")] {
        let e = read_csv(p, &spec_y()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
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
    csv_error(
        pre.dataset(&t, &[0]).unwrap_err(),
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
    csv_error(e, 0, &["feature column \"a\" is not in the file", "\"c\""]);
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
    csv_error(t, 4, &["2 cells", "expected 3", "first row"]);
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
/// file line (it was its index in a shuffled split).
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
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            Error::Target {
                row: 4,
                column: 1,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("ml.csv"), "{msg}");
}
