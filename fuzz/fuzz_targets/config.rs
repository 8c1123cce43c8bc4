//! The run-config and sweep-config parsers (TOML) on arbitrary text, and the sweep planner
//! on whatever parses: each must return a value or a named error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = shadeprop::app::RunConfig::from_toml(text, Path::new("fuzz.toml"));
    if let Ok(sw) = toml::from_str::<shadeprop::app::SweepConfig>(text) {
        // Keep the plan small: a grid of a few thousand trials is fine, more is just slow.
        let size: usize = sw
            .params
            .values()
            .map(|p| match p {
                shadeprop::app::ParamSpec::Values(v) => v.len().max(1),
                _ => 1,
            })
            .product();
        if size <= 4096 && sw.trials <= 4096 {
            let _ = shadeprop::app::plan(&sw);
        }
    }
});
