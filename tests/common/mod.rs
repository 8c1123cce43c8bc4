//! Shared test helpers: a GPU that must exist in CI, random data, and the comparison.
#![allow(dead_code)]

use shadeprop::backend::gpu::{Gpu, GpuOptions};
use shadeprop::rng::Rng;

/// Open the GPU. With SHADEPROP_REQUIRE_GPU=1 (set by .ci/run) a missing adapter fails the
/// test; otherwise the test is reported as skipped on stderr and returns None.
pub fn gpu_with(opts: GpuOptions) -> Option<Gpu> {
    match Gpu::with_options(opts) {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var("SHADEPROP_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("SHADEPROP_REQUIRE_GPU=1 but no GPU: {e}");
            }
            eprintln!("SKIPPED (no GPU adapter): {e}");
            None
        }
    }
}

pub fn gpu() -> Option<Gpu> {
    gpu_with(GpuOptions::from_env())
}

/// Both matmul variants the adapter can run: subgroup (when available) and portable.
pub fn gpus() -> Vec<Gpu> {
    let mut v = vec![];
    if let Some(g) = gpu_with(GpuOptions { subgroups: true }) {
        let has_sg = g.report().subgroup_size.is_some();
        v.push(g);
        if has_sg {
            v.extend(gpu_with(GpuOptions { subgroups: false }));
        }
    }
    v
}

/// Uniform values in [-1, 1) from the shared generator.
pub fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let r = Rng::new(seed);
    (0..n)
        .map(|i| r.uniform(77, 0, i as u32) * 2.0 - 1.0)
        .collect()
}

pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    if let Err(msg) = shadeprop::backend::check::compare(what, got, want, atol, rtol) {
        panic!("{msg}");
    }
}
