//! Write a valid checkpoint of the fuzz target's model, as a seed for
//! `cargo fuzz run checkpoint` (scripts/fuzz.sh).
//!
//!   cargo run --release --example checkpoint_seed -- fuzz/corpus/checkpoint/seed.safetensors

use shadeprop::backend::cpu::Cpu;
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;

#[path = "common/exit.rs"]
mod exit;

fn main() -> std::process::ExitCode {
    exit::report(run())
}

fn run() -> shadeprop::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "seed.safetensors".into());
    let g = Sequential::new(3)
        .linear(4)
        .batch_norm()
        .relu()
        .linear(2)
        .build()?;
    let mut s = Session::new(Box::new(Cpu::new()), g, Sgd::w_mlp(), 0, 2)?;
    shadeprop::train::checkpoint::save(out.as_ref(), &mut s, &Default::default(), &[])
}
