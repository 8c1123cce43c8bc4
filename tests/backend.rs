//! The backends as machines rather than kernels: double-buffered inputs, buffers and
//! bindings over the adapter's limits, and loops past llvmpipe's limit refused by name.

mod common;
use common::*;
use shadeprop::backend::check::run_kernel;
use shadeprop::backend::cpu::Cpu;
use shadeprop::backend::{Backend, BufferSpec, Globals, Instr, Kernel, Program, Slice};
use shadeprop::kernels::KernelParams;
use shadeprop::kernels::elementwise::{BiasGradParams, Len};
use shadeprop::kernels::matmul::MatMulParams;

// Double-buffered inputs (`Backend::double_buffer`, what the session does for each
// batch): every run reads what was written since the previous one, a buffer not
// written keeps its contents, reads see the latest copy, the matmul's texture operands
// are copied from the copy the run reads, and asking after a program is loaded is an
// error.
backend_test!(double_buffered_inputs, |b| {
    let (m, n, k) = (256usize, 256usize, 64usize);
    let mm = MatMulParams {
        m,
        n,
        k,
        ..Default::default()
    };
    let specs: Vec<BufferSpec> = [("a", m * k), ("b", m * k), ("sum", m * k)]
        .into_iter()
        .chain([("w", k * n), ("bias", n), ("c", m * n)])
        .map(|(name, len)| BufferSpec {
            name: name.into(),
            len,
        })
        .collect();
    b.create_buffers(&specs).unwrap();
    let before = b.allocated_bytes();
    b.double_buffer(&[0, 1]).unwrap();
    if b.is_gpu() {
        assert_eq!(b.allocated_bytes(), before + 2 * (m * k * 4) as u64);
    }
    let sl = |buf: usize, len: usize| Slice { buf, off: 0, len };
    let add = Instr {
        kernel: Kernel::Add,
        p: Len { n: m * k }.to_words(),
        ins: vec![sl(0, m * k), sl(1, m * k)],
        outs: vec![sl(2, m * k)],
    };
    let prod = Instr {
        kernel: mm.kernel(),
        p: mm.to_words(),
        ins: vec![sl(0, m * k), sl(3, k * n), sl(4, n)],
        outs: vec![sl(5, m * n)],
    };
    let add = b
        .load(&Program {
            instrs: vec![add],
            logits: None,
        })
        .unwrap();
    let prod = b
        .load(&Program {
            instrs: vec![prod],
            logits: None,
        })
        .unwrap();
    assert!(b.double_buffer(&[3]).is_err() || !b.is_gpu());
    let w = rand_vec(900, k * n);
    b.write(3, 0, &w).unwrap();
    let sum = |x: &[f32], y: &[f32]| -> Vec<f32> { x.iter().zip(y).map(|(u, v)| u + v).collect() };
    let product = |x: &[f32]| {
        run_kernel(
            &mut Cpu::new(),
            mm.kernel(),
            mm.to_words(),
            &[x.to_vec(), w.clone(), vec![0.0; n]],
            &[vec![0.0; m * n]],
            &Globals::default(),
        )
        .unwrap()
        .remove(0)
    };
    let what = b.describe();
    let (a1, b1, a2, b2, a3) = (
        rand_vec(901, m * k),
        rand_vec(902, m * k),
        rand_vec(903, m * k),
        rand_vec(904, m * k),
        rand_vec(905, m * k),
    );
    let g = Globals::default();
    b.write(0, 0, &a1).unwrap();
    b.write(1, 0, &b1).unwrap();
    b.run(add, &g).unwrap();
    assert_close(
        &format!("a1 + b1 on {what}"),
        &b.read(2, 0, m * k).unwrap(),
        &sum(&a1, &b1),
        0.0,
        0.0,
    );
    b.write(0, 0, &a2).unwrap();
    b.write(1, 0, &b2).unwrap();
    b.run(add, &g).unwrap();
    assert_close(
        &format!("a2 + b2 on {what}"),
        &b.read(2, 0, m * k).unwrap(),
        &sum(&a2, &b2),
        0.0,
        0.0,
    );
    assert_close(
        &format!("a2 read back on {what}"),
        &b.read(0, 0, m * k).unwrap(),
        &a2,
        0.0,
        0.0,
    );
    // Only a written: b keeps b2.
    b.write(0, 0, &a3).unwrap();
    b.run(add, &g).unwrap();
    assert_close(
        &format!("a3 + b2 on {what}"),
        &b.read(2, 0, m * k).unwrap(),
        &sum(&a3, &b2),
        0.0,
        0.0,
    );
    // No write: the same inputs again.
    b.run(add, &g).unwrap();
    assert_close(
        &format!("a3 + b2 again on {what}"),
        &b.read(2, 0, m * k).unwrap(),
        &sum(&a3, &b2),
        0.0,
        0.0,
    );
    for a in [&a1, &a2] {
        b.write(0, 0, a).unwrap();
        b.run(prod, &g).unwrap();
        assert_close(
            &format!("A·W on {what}"),
            &b.read(5, 0, m * n).unwrap(),
            &product(a),
            1e-4,
            1e-4,
        );
    }
});

#[test]
fn buffers_over_the_adapters_limits_are_named_errors() {
    let mut gs = gpus();
    for gpu in gs.iter_mut() {
        // Larger than max_buffer_size: refused before allocating.
        let huge = BufferSpec {
            name: "huge".into(),
            len: 1 << 40,
        };
        let e = gpu.create_buffers(&[huge]).unwrap_err().to_string();
        assert!(e.contains("huge") && e.contains("max_buffer_size"), "{e}");
        // A binding larger than max_storage_buffer_binding_size (128 MiB on lavapipe).
        let n = (160usize << 20) / 4; // 160 MiB of f32
        let specs: Vec<BufferSpec> = (0..3)
            .map(|i| BufferSpec {
                name: format!("big{i}"),
                len: n,
            })
            .collect();
        gpu.create_buffers(&specs).unwrap();
        let s = |buf| Slice {
            buf,
            off: 0,
            len: n,
        };
        let prog = Program {
            instrs: vec![Instr {
                kernel: Kernel::Add,
                p: Len { n }.to_words(),
                ins: vec![s(0), s(1)],
                outs: vec![s(2)],
            }],
            logits: None,
        };
        let over = (n * 4) as u64 > gpu.limits().max_storage_buffer_binding_size;
        match gpu.load(&prog) {
            Err(e) => {
                let e = e.to_string();
                assert!(
                    over && e.contains("big0") && e.contains("max_storage_buffer_binding_size"),
                    "{e}"
                );
            }
            Ok(_) => assert!(!over, "a binding over the limit was accepted"),
        }
    }
}

/// What the unrolling of the kernels' loops (by 16) cannot cover is refused on llvmpipe,
/// with the limit named, instead of returning a truncated sum.
#[test]
fn loops_past_the_llvmpipe_limit_are_refused_there() {
    let mut gs = gpus();
    assert!(!gs.is_empty() || std::env::var("SHADEPROP_REQUIRE_GPU").is_err());
    for gpu in gs.iter_mut() {
        if !gpu.report().name.contains("llvmpipe") {
            continue;
        }
        let (m, n) = (16 * 65_536 + 16, 1usize);
        let e = run_kernel(
            gpu,
            Kernel::BiasGrad,
            BiasGradParams { rows: m, cols: n }.to_words(),
            &[vec![0.0; m * n]],
            &[vec![0.0; n]],
            &Globals::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("llvmpipe") && e.contains("65535") && e.contains("BiasGrad"),
            "{e}"
        );
    }
}
