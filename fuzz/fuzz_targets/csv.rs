//! The CSV loader on arbitrary bytes: parsed as five specs (header or not, skipped lines,
//! categorical columns, imputation, several targets, whitespace-separated), then the
//! preprocessing fitted on every other row (given in reverse, as a shuffled split would
//! be) and applied to all, for every task. It must return a value or a named error, never
//! panic; and beyond that (each a crash when broken):
//! - every error is `Error::Csv` naming the file, on a line the input has;
//! - a fitted preprocessing survives its JSON round trip and encodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadeprop::Error;
use shadeprop::data::Task;
use shadeprop::data::tabular::{CsvSpec, Missing, Preprocessor, Unseen, parse_csv};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
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
            target: vec!["0".into()],
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
            target: vec!["y".into(), "z".into()],
            ..Default::default()
        },
    ];
    // Lines as the loader counts them: ends at \n, \r\n or a lone \r.
    let lines = 1
        + (0..data.len())
            .filter(|&i| data[i] == b'\n' || (data[i] == b'\r' && data.get(i + 1) != Some(&b'\n')))
            .count();
    let path = Path::new("fuzz.csv");
    let named = |e: Error| match e {
        Error::Csv { path: p, line, .. } if p == path && line <= lines => {}
        e => panic!("not a CSV error on one of the {lines} lines of fuzz.csv: {e}"),
    };
    for spec in &specs {
        let t = match parse_csv(data, path, spec) {
            Ok(t) => t,
            Err(e) => {
                named(e);
                continue;
            }
        };
        let rows: Vec<usize> = (0..t.len()).collect();
        let train: Vec<usize> = rows.iter().copied().rev().step_by(2).collect();
        for task in Task::ALL {
            let p = match Preprocessor::fit(spec, &t, task, &train) {
                Ok(p) => p,
                Err(e) => {
                    named(e);
                    continue;
                }
            };
            let ds = p.dataset(&t, &rows);
            let back = Preprocessor::from_json(&p.to_json()).expect("JSON round trip");
            assert_eq!(back, p);
            assert_eq!(format!("{ds:?}"), format!("{:?}", back.dataset(&t, &rows)));
            if let Err(e) = ds {
                named(e);
            }
        }
    }
});
