//! The IDX parser on arbitrary bytes (plain, and through the gzip path): it must return a
//! value or a named error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = shadeprop::data::idx::parse_u8(data, Path::new("fuzz.idx"));
});
