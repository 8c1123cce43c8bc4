//! Shared test helpers: a GPU that must exist in CI, one test per backend
//! ([`backend_test!`]), random data, the comparison, and gradient checks (whole graphs by
//! [`finite_difference_check`], one op by [`check_op`]).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

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
    gpu_with(GpuOptions::from_env().expect("SHADEPROP_MATMUL"))
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
                ..GpuOptions::default()
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
            ..GpuOptions::default()
        }));
    }
    v
}

/// The backend one variant of a [`backend_test!`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The CPU reference, `Cpu::new()`.
    CpuRef,
    /// The fast CPU backend, `Cpu::fast()`.
    CpuFast,
    /// The GPU, [`gpu`].
    Gpu,
}

impl Which {
    /// A fresh backend of this kind (a test that compares against a second session opens
    /// the same kind again). The GPU variant of a test runs only where [`gpu_available`].
    pub fn open(self) -> Box<dyn Backend> {
        match self {
            Which::CpuRef => Box::new(Cpu::new()),
            Which::CpuFast => Box::new(Cpu::fast()),
            Which::Gpu => Box::new(gpu().expect("the GPU variant runs only with an adapter")),
        }
    }
}

/// Whether the GPU variants of [`backend_test!`] run: [`gpu`] once per test binary, so with
/// SHADEPROP_REQUIRE_GPU=1 and no adapter every GPU variant fails (the panic is not
/// cached), and without it they are skipped, saying so on stderr.
pub fn gpu_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let ok = *AVAILABLE.get_or_init(|| gpu().is_some());
    if !ok {
        eprintln!("SKIPPED (no GPU adapter)");
    }
    ok
}

/// One test per backend, so that a failure names its backend and `cargo test gpu` (or
/// `cpu_ref`, `cpu_fast`) selects one: `backend_test!(name, |b| { ... })` defines
/// `fn name(b: Box<dyn Backend>)` with the body and a module `name` of three `#[test]`
/// functions, `name::cpu_ref`, `name::cpu_fast` and `name::gpu`, each calling it with a
/// fresh backend of its kind (`Which::open`). With `|w: Which|` the body gets the kind
/// instead, to open as many backends of it as it needs. The GPU variant runs where
/// [`gpu_available`]. (Test paths, not `name_gpu` identifiers: macro_rules cannot join
/// identifiers, and the filter matches `name::gpu` the same way.) Attributes before the
/// name go on the function; a description is better a plain comment above the call, since
/// rustfmt leaves a macro call holding doc comments unformatted.
#[allow(unused_macros)]
macro_rules! backend_test {
    ($(#[$attr:meta])* $name:ident, |$(mut)? $b:ident: Which| $body:block) => {
        $(#[$attr])*
        fn $name($b: $crate::common::Which) $body
        $crate::common::backend_test!(@variants $name, |w| w);
    };
    ($(#[$attr:meta])* $name:ident, |$(mut)? $b:ident $(: Box<dyn Backend>)?| $body:block) => {
        $(#[$attr])*
        fn $name(
            #[allow(unused_mut)] mut $b: Box<dyn shadeprop::backend::Backend>,
        ) $body
        $crate::common::backend_test!(@variants $name, |w| w.open());
    };
    (@variants $name:ident, |$w:ident| $arg:expr) => {
        mod $name {
            use $crate::common::Which;

            #[test]
            fn cpu_ref() {
                let $w = Which::CpuRef;
                super::$name($arg)
            }

            #[test]
            fn cpu_fast() {
                let $w = Which::CpuFast;
                super::$name($arg)
            }

            #[test]
            fn gpu() {
                if $crate::common::gpu_available() {
                    let $w = Which::Gpu;
                    super::$name($arg)
                }
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backend_test;

/// A new empty directory under the system's temporary directory, its name unique in this
/// process (the backend variants of one test run in parallel).
pub fn scratch_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let k = N.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("shadeprop-{name}-{}-{k}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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

/// The CPU reference, the fast CPU backend and, when there is one (always in CI), the GPU:
/// for the tests that compare backends with each other (a test of each backend on its own
/// is a [`backend_test!`]).
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

/// An op's forward on a backend: the inputs → the output y.
pub type Forward<'a> = &'a dyn Fn(&mut dyn Backend, &[Vec<f32>]) -> Vec<f32>;

/// An op's backward on a backend: (the inputs, y, dy) → one gradient per differentiated
/// input.
pub type Backward<'a> = &'a dyn Fn(&mut dyn Backend, &[Vec<f32>], &[f32], &[f32]) -> Vec<Vec<f32>>;

/// One op under test, for [`check_op`]: its forward and backward on a backend, and the
/// forward's formula.
pub struct Op<'a> {
    pub name: &'a str,
    /// The forward on the backend: the inputs → the output y.
    pub forward: Forward<'a>,
    /// The backward on the backend: (the inputs, y, dy) → the gradient of `Σ dy·y` with
    /// respect to each input of `wrt`, in that order.
    pub backward: Backward<'a>,
    /// The forward in f64, from the inputs.
    pub formula: &'a dyn Fn(&[Vec<f64>]) -> Vec<f64>,
    /// The inputs the backward differentiates.
    pub wrt: &'a [usize],
    /// Values where the formula has a kink (ReLU: 0): coordinates within 2h of one are not
    /// differentiated.
    pub kinks: &'a [f64],
    /// (atol, rtol) of the forward against the formula.
    pub fwd_tol: (f32, f32),
    /// (atol, rtol) of the backward against the finite differences.
    pub bwd_tol: (f32, f32),
}

/// An op's forward against its formula and its backward against central differences of
/// the formula, in one call (as tinygrad's `helper_test_op` checks an op against PyTorch's
/// forward and autograd): `L = Σ dy·f(x)` differentiated in f64 with step h = 1e-4 at up
/// to 64 coordinates of each input in `op.wrt`, spread over the input.
pub fn check_op(b: &mut dyn Backend, op: &Op, ins: &[Vec<f32>], dy: &[f32]) {
    let what = format!("{} on {}", op.name, b.describe());
    let y = (op.forward)(b, ins);
    let x64: Vec<Vec<f64>> = ins
        .iter()
        .map(|v| v.iter().map(|&x| x as f64).collect())
        .collect();
    let want: Vec<f32> = (op.formula)(&x64).iter().map(|&v| v as f32).collect();
    let (atol, rtol) = op.fwd_tol;
    assert_close(&format!("{what}: forward"), &y, &want, atol, rtol);
    let grads = (op.backward)(b, ins, &y, dy);
    assert_eq!(grads.len(), op.wrt.len(), "{what}: one gradient per input");
    let loss = |x: &[Vec<f64>]| -> f64 {
        (op.formula)(x)
            .iter()
            .zip(dy)
            .map(|(v, &d)| v * d as f64)
            .sum()
    };
    let h = 1e-4;
    let r = Rng::new(17);
    for (k, (&i, grad)) in op.wrt.iter().zip(&grads).enumerate() {
        let n = x64[i].len();
        assert_eq!(grad.len(), n, "{what}: gradient {k} has the input's length");
        let coords: Vec<usize> = if n <= 64 {
            (0..n).collect()
        } else {
            (0..64u32)
                .map(|t| (t as usize * n) / 64 + r.below(k as u32, t, 0, (n / 64) as u32) as usize)
                .collect()
        };
        let (mut fd, mut an) = (vec![], vec![]);
        for j in coords {
            let v = x64[i][j];
            if op.kinks.iter().any(|&c| (v - c).abs() < 2.0 * h) {
                continue;
            }
            let mut xp = x64.clone();
            xp[i][j] = v + h;
            let lp = loss(&xp);
            xp[i][j] = v - h;
            let lm = loss(&xp);
            fd.push(((lp - lm) / (2.0 * h)) as f32);
            an.push(grad[j]);
        }
        assert!(!fd.is_empty(), "{what}: no coordinate of input {i} checked");
        let (atol, rtol) = op.bwd_tol;
        assert_close(
            &format!("{what}: gradient of input {i} vs finite differences"),
            &an,
            &fd,
            atol,
            rtol,
        );
    }
}
