//! Shared test helpers: a GPU that must exist in CI, random data, and the comparison.
#![allow(dead_code)]

use shadeprop::backend::Backend;
use shadeprop::backend::cpu::Cpu;
use shadeprop::backend::gpu::{Gpu, GpuOptions};
use shadeprop::graph::Graph;
use shadeprop::optim::{Regularizer, Sgd};
use shadeprop::rng::Rng;
use shadeprop::session::Session;

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

/// The adapter's default configuration and, where it has subgroups, the portable matmul.
pub fn gpus() -> Vec<Gpu> {
    let mut v = vec![];
    if let Some(g) = gpu_with(GpuOptions::default()) {
        let sg = g.report().subgroup_size.is_some();
        v.push(g);
        if sg {
            v.extend(gpu_with(GpuOptions {
                subgroups: false,
                textures: None,
            }));
        }
    }
    v
}

/// Every matmul variant the adapter can run: [`gpus`], plus the subgroup matmul reading its
/// operands from buffers where the default reads them from textures.
pub fn matmul_gpus() -> Vec<Gpu> {
    let mut v = gpus();
    if v.first().is_some_and(|g| g.report().texture_operands) {
        v.extend(gpu_with(GpuOptions {
            subgroups: true,
            textures: Some(false),
        }));
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

/// The CPU reference, the fast CPU backend and, when there is one (always in CI), the GPU.
pub fn backends() -> Vec<Box<dyn Backend>> {
    let mut v: Vec<Box<dyn Backend>> = vec![Box::new(Cpu::new()), Box::new(Cpu::fast())];
    v.extend(gpu().map(|g| Box::new(g) as Box<dyn Backend>));
    v
}

/// A random batch: inputs in [-1, 1), labels in 0..classes.
pub fn batch(seed: u64, b: usize, f: usize, classes: usize) -> (Vec<f32>, Vec<f32>) {
    let x = rand_vec(seed, b * f);
    let r = Rng::new(seed);
    let y = (0..b)
        .map(|i| r.below(3, 0, i as u32, classes as u32) as f32)
        .collect();
    (x, y)
}

/// Data loss plus penalty, from a gradient-only pass.
pub fn total(s: &mut Session, x: &[f32], y: &[f32]) -> f64 {
    let m = s.gradients(x, y).unwrap().0;
    m.loss as f64 + m.penalty as f64
}

/// Central differences of the mean loss plus penalty against the analytic gradients, on
/// the CPU. With a penalty, coordinates within 2h of the L1 kink at 0 are skipped.
pub fn finite_difference_check(reg: Option<Regularizer>, g: Graph, b: usize, seed: u64) {
    let f = g.in_features();
    let classes = g.shape(g.nodes[g.n_forward - 1].inputs[0]).cols;
    let mut s = Session::new(Box::new(Cpu::new()), g, Sgd::default(), seed, b).unwrap();
    s.set_regularizer(reg).unwrap();
    let (x, y) = batch(seed + 1, b, f, classes);
    let (_, grads) = s.gradients(&x, &y).unwrap();
    let params = s.params().unwrap();
    let h = 1e-2f32;
    for ((name, w), (_, gw)) in params.iter().zip(&grads) {
        let r = Rng::new(seed);
        for t in 0..4u32 {
            let i = r.below(55, t, 0, w.len() as u32) as usize;
            if reg.is_some() && w[i].abs() < 2.0 * h {
                continue;
            }
            let mut wp = w.clone();
            wp[i] = w[i] + h;
            s.set_param(name, &wp).unwrap();
            let lp = total(&mut s, &x, &y);
            wp[i] = w[i] - h;
            s.set_param(name, &wp).unwrap();
            let lm = total(&mut s, &x, &y);
            s.set_param(name, w).unwrap();
            let fd = ((lp - lm) / (2.0 * h as f64)) as f32;
            let an = gw[i];
            assert!(
                (fd - an).abs() <= 2e-3 + 3e-2 * an.abs(),
                "{name}[{i}]: finite difference {fd} vs analytic {an}"
            );
        }
    }
}
