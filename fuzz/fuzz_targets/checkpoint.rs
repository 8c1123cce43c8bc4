//! The checkpoint loader on arbitrary bytes, into a small model: a value or a named error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

use shadeprop::backend::cpu::Cpu;
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;

fuzz_target!(|data: &[u8]| {
    let g = Sequential::new(3).linear(4).batch_norm().relu().linear(2).build().unwrap();
    let mut s = Session::new(Box::new(Cpu::new()), g, Sgd::w_mlp(), 0, 2).unwrap();
    let _ = shadeprop::train::checkpoint::load_bytes(data, Path::new("fuzz.safetensors"), &mut s);
});
