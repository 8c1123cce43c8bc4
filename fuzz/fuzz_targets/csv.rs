//! The CSV loader on arbitrary bytes: parsed with and without a header, then the
//! preprocessing fitted on half the rows and applied to all, for every task. It must
//! return a value or a named error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
            ..Default::default()
        },
        CsvSpec {
            delimiter: "whitespace".into(),
            target: vec!["y".into(), "z".into()],
            ..Default::default()
        },
    ];
    for spec in &specs {
        let Ok(t) = parse_csv(data, Path::new("fuzz.csv"), spec) else {
            continue;
        };
        let rows: Vec<usize> = (0..t.len()).collect();
        let train: Vec<usize> = rows.iter().copied().step_by(2).collect();
        for task in Task::ALL {
            if let Ok(p) = Preprocessor::fit(spec, &t, task, &train) {
                let _ = p.dataset(&t, &rows);
            }
        }
    }
});
