//! GPU kernel vs CPU twin, forward and backward, on random shapes including odd sizes.
#![allow(clippy::too_many_arguments)]

mod common;
use common::*;
use shadeprop::backend::check::run_kernel;
use shadeprop::backend::cpu::{Cpu, matmul};
use shadeprop::backend::gpu::{Gpu, GpuOptions};
use shadeprop::backend::{Act, Backend, BufferSpec, Globals, Instr, Kernel, Program, Slice, fbits};
use shadeprop::rng::Rng;

fn both(
    gpus: &mut [Gpu],
    kernel: Kernel,
    p: [u32; 16],
    ins: &[Vec<f32>],
    outs: &[Vec<f32>],
    g: &Globals,
    atol: f32,
    rtol: f32,
) {
    let want = run_kernel(&mut Cpu::new(), kernel, p, ins, outs, g).unwrap();
    // The fast CPU backend against the reference, then every GPU.
    let fast = run_kernel(&mut Cpu::fast(), kernel, p, ins, outs, g).unwrap();
    for (i, (a, b)) in fast.iter().zip(&want).enumerate() {
        assert_close(
            &format!("{kernel:?} out{i} on the fast CPU backend"),
            a,
            b,
            atol,
            rtol,
        );
    }
    assert!(!gpus.is_empty() || std::env::var("SHADEPROP_REQUIRE_GPU").is_err());
    for gpu in gpus.iter_mut() {
        let got = run_kernel(gpu, kernel, p, ins, outs, g).unwrap();
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_close(
                &format!("{kernel:?} out{i} on {}", gpu.describe()),
                a,
                b,
                atol,
                rtol,
            );
        }
    }
}

fn g0() -> Globals {
    Globals {
        seed_lo: 1234,
        seed_hi: 0,
        step: 5,
        lr: 0.1,
        ..Default::default()
    }
}

#[test]
fn matmul_all_transposes_random_shapes() {
    let mut gs = matmul_gpus();
    let rng = Rng::new(99);
    let mut shapes = vec![
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 9),
        (128, 10, 512),
        // Exact tilings (the subgroup kernel's FULL variant, also with narrow tiles).
        (64, 256, 64),
        (96, 32, 16),
        (33, 300, 70),
        // Operands over several texture rows, the last one partial (GPU backend, texture
        // operands), rows and columns past the tiles.
        (260, 300, 96),
    ];
    for t in 0..6u32 {
        let d = |k: u32| 1 + rng.below(500, t, k, 90) as usize;
        shapes.push((d(0), d(1), d(2)));
    }
    for (si, &shape) in shapes.iter().enumerate() {
        for t in TRANSPOSES {
            let (kern, p, ins) = matmul_case(si as u64 * 3 + 1, shape, t, false);
            let out = vec![0.0; shape.0 * shape.1];
            both(&mut gs, kern, p, &ins, &[out], &g0(), 1e-5, 1e-4);
        }
    }
}

/// The subgroup matmul reading its operands from textures (shaders/texture.wgsl; the
/// default on llvmpipe). Forced on, it is taken where the shape allows (the textures exist
/// after the run) and gives the CPU twin's result, as do the shapes that keep operands in
/// buffers: f32 and packed f16, every transpose, operands over one exact texture row and
/// over several with a partial last one, rows and columns past the tiles.
#[test]
fn matmul_operands_from_textures() {
    let forced = GpuOptions {
        subgroups: true,
        textures: Some(true),
    };
    let Some(g) = gpu_with(forced) else {
        return;
    };
    let report = g.report().clone();
    assert_eq!(
        report.texture_operands,
        report.subgroup_size.is_some(),
        "{report}"
    );
    if report.name.contains("llvmpipe") {
        assert!(
            gpus()[0].report().texture_operands,
            "llvmpipe's default reads operands from textures"
        );
    }
    let mut gs = vec![g];
    let mut textured = 0;
    for half in [false, true] {
        for (si, shape) in [
            (256, 256, 64),
            (260, 300, 96),
            (300, 256, 800),
            (9, 100, 48),
            (64, 256, 64),
        ]
        .into_iter()
        .enumerate()
        {
            for t in TRANSPOSES {
                let (kern, p, ins) = matmul_case(si as u64 + 500, shape, t, half);
                let out = vec![0.0; shape.0 * shape.1];
                // Sums of k terms in another order: the absolute slack grows like sqrt(k).
                let atol = 2e-6 * (shape.2 as f32).sqrt();
                both(&mut gs, kern, p, &ins, &[out], &g0(), atol, 1e-4);
                // The run just made holds textures exactly when the shape takes them: the
                // untransposed products with M, N >= 256 and K a multiple of 32.
                let expect = report.texture_operands && !t.0 && !t.1 && shape.0 >= 256;
                assert_eq!(
                    gs[0].texture_operands_for(kern, &p),
                    expect,
                    "{kern:?} {shape:?}"
                );
                assert_eq!(gs[0].texture_bytes() > 0, expect, "{kern:?} {shape:?}");
                textured += expect as usize;
            }
        }
    }
    assert!(
        textured == 6 || !report.texture_operands,
        "{textured} products read operands from textures"
    );
}

/// (ta, tb, bias) of the matmul tests: every transpose, with and without the bias.
const TRANSPOSES: [(bool, bool, bool); 4] = [
    (false, false, true),
    (true, false, false),
    (false, true, false),
    (true, true, true),
];

/// A matmul of shape (m, n, k) with random operands from `seed` (the same values either
/// way; packed two per word for `half`): the kernel, its parameters, [A, B, bias].
fn matmul_case(
    seed: u64,
    (m, n, k): (usize, usize, usize),
    (ta, tb, bias): (bool, bool, bool),
    half: bool,
) -> (Kernel, [u32; 16], [Vec<f32>; 3]) {
    let kern = Kernel::MatMul { ta, tb, bias, half };
    let (a, b) = (rand_vec(seed, m * k), rand_vec(seed + 1, k * n));
    let (a, b) = if half {
        (packed(&a), packed(&b))
    } else {
        (a, b)
    };
    (
        kern,
        matmul::params(kern, m, n, k),
        [a, b, rand_vec(seed + 2, n)],
    )
}

#[test]
fn activations_forward_and_backward() {
    let mut gs = gpus();
    for act in [Act::Relu, Act::Tanh, Act::Sigmoid] {
        for n in [1usize, 255, 1000, 70_001] {
            let mut p = [0u32; 16];
            p[0] = n as u32;
            let x: Vec<f32> = rand_vec(n as u64, n).iter().map(|v| v * 4.0).collect();
            both(
                &mut gs,
                Kernel::ActFwd(act),
                p,
                std::slice::from_ref(&x),
                &[vec![0.0; n]],
                &g0(),
                1e-6,
                1e-5,
            );
            let y = run_kernel(
                &mut Cpu::new(),
                Kernel::ActFwd(act),
                p,
                &[x],
                &[vec![0.0; n]],
                &g0(),
            )
            .unwrap();
            let dy = rand_vec(n as u64 + 9, n);
            both(
                &mut gs,
                Kernel::ActBwd(act),
                p,
                &[y[0].clone(), dy],
                &[vec![0.0; n]],
                &g0(),
                1e-6,
                1e-5,
            );
        }
    }
}

#[test]
fn add_and_bias_grad() {
    let mut gs = gpus();
    for (m, n) in [(1usize, 1usize), (7, 13), (128, 512), (300, 3)] {
        let mut p = [0u32; 16];
        p[0] = (m * n) as u32;
        both(
            &mut gs,
            Kernel::Add,
            p,
            &[rand_vec(1, m * n), rand_vec(2, m * n)],
            &[vec![0.0; m * n]],
            &g0(),
            0.0,
            1e-6,
        );
        let mut p = [0u32; 16];
        p[0] = m as u32;
        p[1] = n as u32;
        both(
            &mut gs,
            Kernel::BiasGrad,
            p,
            &[rand_vec(3, m * n)],
            &[vec![0.0; n]],
            &g0(),
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn dropout_masks_identical_on_cpu_and_gpu() {
    let mut gs = gpus();
    for (n, prob) in [(1usize, 0.5f32), (1000, 0.1), (4097, 0.5), (100_000, 0.9)] {
        let mut p = [0u32; 16];
        p[0] = n as u32;
        p[1] = shadeprop::rng::dropout_threshold(prob);
        p[2] = fbits(1.0 / (1.0 - prob));
        p[3] = 2048;
        // Bit-exact: the mask is integer arithmetic and the scale one multiply.
        both(
            &mut gs,
            Kernel::Dropout,
            p,
            &[rand_vec(5, n)],
            &[vec![0.0; n]],
            &g0(),
            0.0,
            0.0,
        );
    }
}

/// The fused ReLU + dropout kernels: bit-identical on every backend, and equal to the
/// unfused pair (ActFwd(ReLU) then Dropout; Dropout then ActBwd(ReLU), the fused backward
/// reading the forward output instead of the ReLU output) on the reference.
#[test]
fn fused_relu_dropout_equals_the_unfused_pair() {
    let mut gs = gpus();
    let g = g0();
    for (n, prob, group) in [
        (1usize, 0.5f32, 0u32),
        (1000, 0.1, 0),
        (4099, 0.5, 7),
        (70_001, 0.3, 0),
    ] {
        let mut p = [0u32; 16];
        p[0] = n as u32;
        p[1] = shadeprop::rng::dropout_threshold(prob);
        p[2] = fbits(1.0 / (1.0 - prob));
        p[3] = 2050;
        p[4] = group;
        let x = rand_vec(8, n);
        let dy = rand_vec(9, n);
        both(
            &mut gs,
            Kernel::ReluDropout,
            p,
            std::slice::from_ref(&x),
            &[vec![0.0; n]],
            &g,
            0.0,
            0.0,
        );
        let mut act = [0u32; 16];
        act[0] = n as u32;
        let cpu = |k: Kernel, q: [u32; 16], ins: &[Vec<f32>], outs: &[Vec<f32>]| {
            run_kernel(&mut Cpu::new(), k, q, ins, outs, &g).unwrap()
        };
        let fused = cpu(
            Kernel::ReluDropout,
            p,
            std::slice::from_ref(&x),
            &[vec![0.0; n]],
        );
        let r = cpu(
            Kernel::ActFwd(Act::Relu),
            act,
            std::slice::from_ref(&x),
            &[vec![0.0; n]],
        )
        .remove(0);
        let y = cpu(
            Kernel::Dropout,
            p,
            std::slice::from_ref(&r),
            &[vec![0.0; n]],
        )
        .remove(0);
        assert_close("fused dropout output", &fused[0], &y, 0.0, 0.0);
        // The fused backward reads the forward output y (not r, not the mask).
        both(
            &mut gs,
            Kernel::DropoutReluBwd,
            p,
            &[y.clone(), dy.clone()],
            &[vec![0.0; n]],
            &g,
            0.0,
            0.0,
        );
        let fused_b = cpu(
            Kernel::DropoutReluBwd,
            p,
            &[y.clone(), dy.clone()],
            &[vec![0.0; n]],
        );
        let dr = cpu(
            Kernel::Dropout,
            p,
            std::slice::from_ref(&dy),
            &[vec![0.0; n]],
        )
        .remove(0);
        let dx = cpu(
            Kernel::ActBwd(Act::Relu),
            act,
            &[r.clone(), dr],
            &[vec![0.0; n]],
        )
        .remove(0);
        assert_close("fused backward", &fused_b[0], &dx, 0.0, 0.0);
    }
}

/// Reductions longer than 65535 steps: llvmpipe (lavapipe) silently stops an invocation's
/// loops after 65535 iterations in all, so the kernels unroll their data-dependent loops by
/// 16. Bias gradient over 70,000 rows (conv1 of W-CNN has 73,728), batch norm over
/// 70,000 positions per channel, matmul with K = 70,000 (both variants).
#[test]
fn reductions_past_65535_steps_are_complete() {
    let mut gs = gpus();
    let g = g0();
    let (m, n) = (70_000usize, 3usize);
    let mut p = [0u32; 16];
    p[0] = m as u32;
    p[1] = n as u32;
    both(
        &mut gs,
        Kernel::BiasGrad,
        p,
        &[rand_vec(31, m * n)],
        &[vec![0.0; n]],
        &g,
        1e-3,
        1e-4,
    );
    let (mb, c, sp) = (70usize, 2usize, 1000usize);
    let x = rand_vec(32, mb * c * sp);
    let gb = [rand_vec(33, c), rand_vec(34, c)].concat();
    let mut p = [0u32; 16];
    p[0] = mb as u32;
    p[1] = c as u32;
    p[2] = fbits(1e-5);
    p[3] = fbits(0.1);
    p[4] = sp as u32;
    let running = [vec![0.0; c], vec![1.0; c]].concat();
    let fwd_outs = [vec![0.0; mb * c * sp], vec![0.0; 2 * c], running];
    both(
        &mut gs,
        Kernel::BnFwdTrain,
        p,
        &[x.clone(), gb.clone()],
        &fwd_outs,
        &g,
        1e-4,
        1e-3,
    );
    let saved = run_kernel(
        &mut Cpu::new(),
        Kernel::BnFwdTrain,
        p,
        &[x.clone(), gb.clone()],
        &fwd_outs,
        &g,
    )
    .unwrap()
    .remove(1);
    let dy = rand_vec(35, mb * c * sp);
    both(
        &mut gs,
        Kernel::BnBwd,
        p,
        &[x, dy, gb, saved],
        &[vec![0.0; mb * c * sp], vec![0.0; 2 * c]],
        &g,
        1e-3,
        1e-3,
    );
    // Also the fast CPU's split-K path (K sliced across threads, the first slice over the
    // bias rows).
    let (mm, nn, kk) = (5usize, 6usize, 70_000usize);
    for (ta, bias) in [(true, false), (false, true)] {
        let kern = Kernel::MatMul {
            ta,
            tb: false,
            bias,
            half: false,
        };
        both(
            &mut gs,
            kern,
            matmul::params(kern, mm, nn, kk),
            &[
                rand_vec(36, kk * mm),
                rand_vec(37, kk * nn),
                rand_vec(38, nn),
            ],
            &[vec![0.0; mm * nn]],
            &g,
            1e-2,
            1e-3,
        );
    }
}

/// What the unrolling cannot cover is refused on llvmpipe, with the limit named, instead of
/// returning a truncated sum.
#[test]
fn loops_past_the_llvmpipe_limit_are_refused_there() {
    let mut gs = gpus();
    assert!(!gs.is_empty() || std::env::var("SHADEPROP_REQUIRE_GPU").is_err());
    for gpu in gs.iter_mut() {
        if !gpu.report().name.contains("llvmpipe") {
            continue;
        }
        let (m, n) = (16 * 65_536 + 16, 1usize);
        let mut p = [0u32; 16];
        p[0] = m as u32;
        p[1] = n as u32;
        let e = run_kernel(
            gpu,
            Kernel::BiasGrad,
            p,
            &[vec![0.0; m * n]],
            &[vec![0.0; n]],
            &g0(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("llvmpipe") && e.contains("65535") && e.contains("BiasGrad"),
            "{e}"
        );
    }
}

#[test]
fn batchnorm_train_eval_backward() {
    let mut gs = gpus();
    for (m, c) in [(2usize, 3usize), (128, 512), (37, 65), (1, 4)] {
        let x: Vec<f32> = rand_vec(11, m * c).iter().map(|v| v * 3.0 + 1.0).collect();
        let gb = [rand_vec(12, c), rand_vec(13, c)].concat();
        let running = [vec![0.0; c], vec![1.0; c]].concat();
        let mut p = [0u32; 16];
        p[0] = m as u32;
        p[1] = c as u32;
        p[2] = fbits(1e-5);
        p[3] = fbits(0.1);
        both(
            &mut gs,
            Kernel::BnFwdTrain,
            p,
            &[x.clone(), gb.clone()],
            &[vec![0.0; m * c], vec![0.0; 2 * c], running.clone()],
            &g0(),
            1e-4,
            1e-4,
        );
        let run2 = [
            rand_vec(14, c),
            rand_vec(15, c).iter().map(|v| v.abs() + 0.5).collect(),
        ]
        .concat();
        both(
            &mut gs,
            Kernel::BnFwdEval,
            p,
            &[x.clone(), gb.clone(), run2],
            &[vec![0.0; m * c]],
            &g0(),
            1e-5,
            1e-5,
        );
        let outs = run_kernel(
            &mut Cpu::new(),
            Kernel::BnFwdTrain,
            p,
            &[x.clone(), gb.clone()],
            &[vec![0.0; m * c], vec![0.0; 2 * c], running],
            &g0(),
        )
        .unwrap();
        let dy = rand_vec(16, m * c);
        both(
            &mut gs,
            Kernel::BnBwd,
            p,
            &[x, dy, gb, outs[1].clone()],
            &[vec![0.0; m * c], vec![0.0; 2 * c]],
            &g0(),
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn softmax_xent_and_metrics() {
    let mut gs = gpus();
    for (m, c) in [(1usize, 2usize), (128, 10), (33, 17)] {
        let z: Vec<f32> = rand_vec(21, m * c).iter().map(|v| v * 5.0).collect();
        let y: Vec<f32> = (0..m)
            .map(|i| (Rng::new(3).below(9, 0, i as u32, c as u32)) as f32)
            .collect();
        let mut p = [0u32; 16];
        p[0] = m as u32;
        p[1] = c as u32;
        p[2] = fbits(1.0 / m as f32);
        // f32, then mixed precision (the gradient times the loss scale amp[0]).
        let amp = vec![1024.0, 1.0 / 1024.0, 0.0, 0.0];
        for flags in [0, Globals::MIXED] {
            let gl = Globals { flags, ..g0() };
            let ins = [z.clone(), y.clone(), amp.clone()];
            let outs = [vec![0.0; m * c], vec![0.0; 2 * m]];
            both(
                &mut gs,
                Kernel::SoftmaxXent,
                p,
                &ins,
                &outs,
                &gl,
                1e-6,
                1e-5,
            );
            if flags != 0 {
                let plain = run_kernel(&mut Cpu::new(), Kernel::SoftmaxXent, p, &ins, &outs, &g0());
                let scaled = run_kernel(&mut Cpu::new(), Kernel::SoftmaxXent, p, &ins, &outs, &gl);
                let (plain, scaled) = (plain.unwrap(), scaled.unwrap());
                let times: Vec<f32> = plain[0].iter().map(|v| v * 1024.0).collect();
                assert_close("scaled loss gradient", &scaled[0], &times, 1e-6, 1e-6);
                assert_eq!(plain[1], scaled[1], "the loss itself is not scaled");
            }
        }
        let mut p = [0u32; 16];
        p[0] = m as u32;
        both(
            &mut gs,
            Kernel::MetricsAccum,
            p,
            &[rand_vec(22, 2 * m)],
            &[vec![1.0, 2.0, 3.0, 4.0]],
            &g0(),
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn grad_prep_clip_and_optimizer_updates() {
    let mut gs = gpus();
    for n in [1usize, 1000, 669_706] {
        let g = rand_vec(31, n);
        let w = rand_vec(34, n);
        // L2 coefficients on two thirds of the elements, L1 on every other one.
        let a: Vec<f32> = (0..n)
            .map(|i| if i % 3 == 0 { 0.0 } else { 0.01 })
            .collect();
        let b: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { 0.002 } else { 0.0 })
            .collect();
        let mut parts = vec![];
        // Mixed precision: g arrives times S = 4 and is unscaled by 1/S = amp[1] first.
        let amp = vec![4.0, 0.25, 0.0, 0.0];
        for (penalty, clip, mixed) in [
            (false, false, true),
            (true, true, true),
            (false, true, true),
            (false, false, false),
            (false, true, false),
            (true, false, false),
            (true, true, false),
        ] {
            let mut p = [0u32; 16];
            p[0] = n as u32;
            p[1] = 1024;
            if clip {
                p[2] = fbits(-0.5);
                p[3] = fbits(0.25);
                p[4] = 1;
            }
            let gl = Globals {
                flags: if penalty { Globals::PENALTY } else { 0 }
                    | if mixed { Globals::MIXED } else { 0 },
                ..g0()
            };
            let ins = [w.clone(), a.clone(), b.clone(), amp.clone()];
            let g_in: Vec<f32> = g.iter().map(|v| if mixed { v * 4.0 } else { *v }).collect();
            let outs = [g_in, vec![0.0; 2048]];
            both(&mut gs, Kernel::GradPrep, p, &ins, &outs, &gl, 1e-5, 1e-5);
            parts = run_kernel(&mut Cpu::new(), Kernel::GradPrep, p, &ins, &outs, &gl).unwrap();
            // Without the flag the coefficients are ignored: g only clipped, no penalty.
            // Mixed: exactly the f32 result, S being a power of two.
            let want: Vec<f32> = g
                .iter()
                .map(|&x| if clip { x.clamp(-0.5, 0.25) } else { x })
                .collect();
            let pen: f32 = parts[1][1024..].iter().sum();
            if penalty {
                assert!(
                    parts[0] != want && pen > 0.0,
                    "penalty flag set but not applied"
                );
            } else {
                assert_eq!(parts[0], want, "no penalty: g must only be clipped");
                assert_eq!(pen, 0.0);
            }
        }
        for max_norm in [0.0f32, 1.0, 1e9] {
            let mut p = [0u32; 16];
            p[0] = 1024;
            p[1] = fbits(max_norm);
            p[7] = 8;
            p[8] = 1;
            p[9] = fbits(0.9);
            p[10] = fbits(0.999);
            let out: Vec<f32> = [vec![0.0; 8], amp.clone()].concat();
            both(
                &mut gs,
                Kernel::ClipFinalize,
                p,
                &[parts[1].clone()],
                &[out],
                &g0(),
                1e-6,
                1e-5,
            );
        }
        let wd: Vec<f32> = (0..n)
            .map(|i| if i % 3 == 0 { 0.0 } else { 5e-4 })
            .collect();
        for nesterov in [0u32, 1] {
            let mut p = [0u32; 16];
            p[0] = n as u32;
            p[1] = fbits(0.9);
            p[2] = nesterov;
            let ins = [
                g.clone(),
                wd.clone(),
                vec![2.5, 0.4, 0.0, 0.0, 0.1, 1.0, 1.0, 0.0],
            ];
            both(
                &mut gs,
                Kernel::SgdUpdate,
                p,
                &ins,
                &[rand_vec(32, n), rand_vec(33, n)],
                &g0(),
                1e-6,
                1e-5,
            );
        }
        for decoupled in [0u32, 1] {
            let mut p = [0u32; 16];
            p[0] = n as u32;
            p[1] = fbits(0.9);
            p[2] = fbits(0.999);
            p[3] = fbits(1e-8);
            p[4] = decoupled;
            let glob = g0();
            let (bc1, bc2) = (1.0 - 0.9f32.powi(3), 1.0 - 0.999f32.powi(3));
            let m2: Vec<f32> = rand_vec(36, n).iter().map(|v| v * v).collect();
            let ins = [
                g.clone(),
                wd.clone(),
                vec![2.5, 0.4, 0.0, 0.0, 0.1, bc1, bc2, 0.0],
            ];
            both(
                &mut gs,
                Kernel::AdamUpdate,
                p,
                &ins,
                &[rand_vec(32, n), rand_vec(35, n), m2],
                &glob,
                1e-5,
                1e-4,
            );
        }
    }
}

#[test]
fn buffers_over_the_adapters_limits_are_named_errors() {
    use shadeprop::backend::{BufferSpec, Instr, Program, Slice};
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
        let mut p = [0u32; 16];
        p[0] = n as u32;
        let prog = Program {
            instrs: vec![Instr {
                kernel: Kernel::Add,
                p,
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

#[test]
fn tensor_stats() {
    let mut gs = gpus();
    for n in [1usize, 255, 1000, 100_001] {
        let x: Vec<f32> = rand_vec(41, n)
            .iter()
            .map(|&v| if v < -0.5 { 0.0 } else { v * 3.0 })
            .collect();
        let mut p = [0u32; 16];
        p[0] = n as u32;
        both(
            &mut gs,
            Kernel::TensorStats,
            p,
            &[x],
            &[vec![0.0; 4]],
            &g0(),
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn clip_tensor() {
    let mut gs = gpus();
    for (n, max_norm) in [(1usize, 0.1f32), (1000, 1.0), (70_001, 1e6)] {
        let g = rand_vec(43, n);
        let ss: f32 = g.iter().map(|v| v * v).sum();
        let mut p = [0u32; 16];
        p[0] = n as u32;
        p[1] = fbits(max_norm);
        both(
            &mut gs,
            Kernel::ClipTensor,
            p,
            &[vec![0.0, ss, 0.0, n as f32]],
            std::slice::from_ref(&g),
            &g0(),
            1e-7,
            1e-6,
        );
    }
}

fn geom(
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    pad: usize,
) -> ([u32; 16], usize, usize) {
    let oh = (h + 2 * pad - k) / s + 1;
    let ow = (w + 2 * pad - k) / s + 1;
    let mut p = [0u32; 16];
    for (i, v) in [b, c, h, w, k, k, s, pad, oh, ow].into_iter().enumerate() {
        p[i] = v as u32;
    }
    (p, oh, ow)
}

#[test]
fn conv_building_blocks_forward_and_backward() {
    let mut gs = gpus();
    // Odd sizes, stride and padding.
    for &(b, c, h, w, k, s, pad) in &[
        (2, 1, 28, 28, 5, 1, 0),
        (3, 5, 7, 9, 3, 2, 1),
        (1, 32, 12, 12, 5, 1, 0),
        (2, 3, 5, 5, 5, 1, 2),
    ] {
        let (p, oh, ow) = geom(b, c, h, w, k, s, pad);
        let kk = c * k * k;
        let x = rand_vec(51, b * c * h * w);
        both(
            &mut gs,
            Kernel::Im2Col,
            p,
            &[x],
            &[vec![0.0; b * oh * ow * kk]],
            &g0(),
            0.0,
            0.0,
        );
        let dcols = rand_vec(52, b * oh * ow * kk);
        both(
            &mut gs,
            Kernel::Col2Im,
            p,
            &[dcols],
            &[vec![0.0; b * c * h * w]],
            &g0(),
            1e-6,
            1e-5,
        );
        // Layout permutes, with and without bias.
        let (sp, ch) = (oh * ow, 7);
        let mut q = [0u32; 16];
        q[0] = b as u32;
        q[1] = sp as u32;
        q[2] = ch as u32;
        for (bias, relu) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut q = q;
            q[15] = bias as u32;
            q[14] = relu as u32;
            both(
                &mut gs,
                Kernel::ToNchw { bias, relu },
                q,
                &[rand_vec(53, b * sp * ch), rand_vec(54, ch)],
                &[vec![0.0; b * sp * ch]],
                &g0(),
                0.0,
                0.0,
            );
        }
        // The fused epilogue is the ReLU of the plain permute.
        let ins = [rand_vec(53, b * sp * ch), rand_vec(54, ch)];
        let out = [vec![0.0; b * sp * ch]];
        let permute = |relu: bool| {
            let mut qb = q;
            qb[15] = 1;
            qb[14] = relu as u32;
            let k = Kernel::ToNchw { bias: true, relu };
            run_kernel(&mut Cpu::new(), k, qb, &ins, &out, &g0()).unwrap()
        };
        let (plain, fused) = (permute(false), permute(true));
        let want: Vec<f32> = plain[0].iter().map(|v| v.max(0.0)).collect();
        assert_close("ToNchw with the ReLU", &fused[0], &want, 0.0, 0.0);
        both(
            &mut gs,
            Kernel::ToNhwc,
            q,
            &[rand_vec(55, b * sp * ch)],
            &[vec![0.0; b * sp * ch]],
            &g0(),
            0.0,
            0.0,
        );
    }
}

#[test]
fn pooling_forward_and_backward() {
    let mut gs = gpus();
    for &(b, c, h, w, k, s) in &[
        (2, 3, 24, 24, 2, 2),
        (1, 2, 7, 9, 3, 2),
        (3, 4, 8, 8, 3, 1),
        (2, 1, 5, 5, 2, 2),
    ] {
        let (p, oh, ow) = geom(b, c, h, w, k, s, 0);
        let x = rand_vec(61, b * c * h * w);
        let n_out = b * c * oh * ow;
        both(
            &mut gs,
            Kernel::MaxPoolFwd,
            p,
            std::slice::from_ref(&x),
            &[vec![0.0; n_out], vec![0.0; n_out]],
            &g0(),
            0.0,
            0.0,
        );
        both(
            &mut gs,
            Kernel::AvgPoolFwd,
            p,
            std::slice::from_ref(&x),
            &[vec![0.0; n_out]],
            &g0(),
            1e-6,
            1e-5,
        );
        let fwd = run_kernel(
            &mut Cpu::new(),
            Kernel::MaxPoolFwd,
            p,
            &[x],
            &[vec![0.0; n_out], vec![0.0; n_out]],
            &g0(),
        )
        .unwrap();
        let dy = rand_vec(62, n_out);
        both(
            &mut gs,
            Kernel::MaxPoolBwd,
            p,
            &[dy.clone(), fwd[1].clone()],
            &[vec![0.0; b * c * h * w]],
            &g0(),
            1e-6,
            1e-5,
        );
        both(
            &mut gs,
            Kernel::AvgPoolBwd,
            p,
            &[dy],
            &[vec![0.0; b * c * h * w]],
            &g0(),
            1e-6,
            1e-5,
        );
    }
}

#[test]
fn batchnorm2d_and_spatial_dropout() {
    let mut gs = gpus();
    for (m, c, sp) in [(2usize, 3usize, 6usize), (4, 32, 64), (1, 5, 9)] {
        let n = m * c * sp;
        let x: Vec<f32> = rand_vec(71, n).iter().map(|v| v * 2.0 - 0.3).collect();
        let gb = [rand_vec(72, c), rand_vec(73, c)].concat();
        let running = [vec![0.0; c], vec![1.0; c]].concat();
        let mut p = [0u32; 16];
        p[0] = m as u32;
        p[1] = c as u32;
        p[2] = fbits(1e-5);
        p[3] = fbits(0.1);
        p[4] = sp as u32;
        let outs = [vec![0.0; n], vec![0.0; 2 * c], running.clone()];
        both(
            &mut gs,
            Kernel::BnFwdTrain,
            p,
            &[x.clone(), gb.clone()],
            &outs,
            &g0(),
            1e-4,
            1e-4,
        );
        let fwd = run_kernel(
            &mut Cpu::new(),
            Kernel::BnFwdTrain,
            p,
            &[x.clone(), gb.clone()],
            &outs,
            &g0(),
        )
        .unwrap();
        // Each channel of the output has mean beta and std |gamma| over its M·S values.
        for j in 0..c {
            let vals: Vec<f32> = (0..m)
                .flat_map(|b| (0..sp).map(move |s| (b * c + j) * sp + s))
                .map(|i| fwd[0][i])
                .collect();
            let mean = vals.iter().sum::<f32>() / vals.len() as f32;
            assert!(
                (mean - gb[c + j]).abs() < 1e-4,
                "channel {j}: mean {mean} vs beta {}",
                gb[c + j]
            );
        }
        both(
            &mut gs,
            Kernel::BnFwdEval,
            p,
            &[x.clone(), gb.clone(), fwd[2].clone()],
            &[vec![0.0; n]],
            &g0(),
            1e-5,
            1e-5,
        );
        both(
            &mut gs,
            Kernel::BnBwd,
            p,
            &[x, rand_vec(74, n), gb, fwd[1].clone()],
            &[vec![0.0; n], vec![0.0; 2 * c]],
            &g0(),
            1e-4,
            1e-3,
        );
        // Spatial dropout: whole channels (groups of S) kept or dropped together.
        let mut q = [0u32; 16];
        q[0] = n as u32;
        q[1] = shadeprop::rng::dropout_threshold(0.5);
        q[2] = fbits(2.0);
        q[3] = 4000;
        q[4] = sp as u32;
        let ones = vec![1.0; n];
        both(
            &mut gs,
            Kernel::Dropout,
            q,
            std::slice::from_ref(&ones),
            &[vec![0.0; n]],
            &g0(),
            0.0,
            0.0,
        );
        let y = run_kernel(
            &mut Cpu::new(),
            Kernel::Dropout,
            q,
            &[ones],
            &[vec![0.0; n]],
            &g0(),
        )
        .unwrap()
        .remove(0);
        for ch in y.chunks(sp) {
            assert!(
                ch.iter().all(|&v| v == ch[0]),
                "a channel is dropped as a whole"
            );
        }
    }
}

/// The two halves of the GPU backend's split-K matmul as kernels of their own (the
/// backend issues them for deep products with few workgroups): slices of the product over
/// K ranges, then their sum in order plus the bias; together equal to the plain matmul.
#[test]
fn split_k_slices_and_their_sum() {
    let mut gs = matmul_gpus();
    let (m, n, k, ks) = (7usize, 12usize, 1000usize, 208usize);
    let s = k.div_ceil(ks);
    for (ta, tb, half) in [
        (false, false, false),
        (true, false, false),
        (false, true, false),
        (true, false, true),
    ] {
        let plain = Kernel::MatMul {
            ta,
            tb,
            bias: true,
            half,
        };
        let sliced = Kernel::MatMul {
            ta,
            tb,
            bias: false,
            half,
        };
        let mut ins = [rand_vec(61, m * k), rand_vec(62, k * n), rand_vec(63, n)];
        if half {
            ins[0] = packed(&ins[0]);
            ins[1] = packed(&ins[1]);
        }
        let mut p = matmul::params(sliced, m, n, k);
        p[3] = ks as u32;
        both(
            &mut gs,
            sliced,
            p,
            &ins,
            &[vec![0.0; s * m * n]],
            &g0(),
            1e-5,
            1e-4,
        );
        let parts = run_kernel(
            &mut Cpu::new(),
            sliced,
            p,
            &ins,
            &[vec![0.0; s * m * n]],
            &g0(),
        )
        .unwrap()
        .remove(0);
        let mut q = [0u32; 16];
        q[0] = (m * n) as u32;
        q[1] = n as u32;
        q[2] = s as u32;
        q[15] = 1;
        let sum_ins = [parts, ins[2].clone()];
        let sum = Kernel::SliceSum { bias: true };
        both(
            &mut gs,
            sum,
            q,
            &sum_ins,
            &[vec![0.0; m * n]],
            &g0(),
            0.0,
            0.0,
        );
        let got = run_kernel(
            &mut Cpu::new(),
            sum,
            q,
            &sum_ins,
            &[vec![0.0; m * n]],
            &g0(),
        )
        .unwrap()
        .remove(0);
        let pp = matmul::params(plain, m, n, k);
        let want = run_kernel(&mut Cpu::new(), plain, pp, &ins, &[vec![0.0; m * n]], &g0())
            .unwrap()
            .remove(0);
        assert_close("split-K sum vs plain matmul", &got, &want, 1e-5, 1e-4);
    }
}

/// Operands packed two f16 values per word, as the plan's CastHalf stores them.
fn packed(x: &[f32]) -> Vec<f32> {
    let mut w = vec![0.0; x.len().div_ceil(2)];
    shadeprop::backend::cpu::half::pack_into(x, &mut w);
    w
}

/// f32 → packed f16: the GPU writes the same bits as the CPU twin, for values in every
/// range (normal, subnormal, rounding to zero, ties, overflow to inf, inf, NaN) and an odd
/// count (the last word's high half is 0).
#[test]
fn cast_half_same_bits_as_the_cpu_twin() {
    let mut gs = gpus();
    let mut x: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        65504.0,
        65519.0,
        65520.0,
        -1e6,
        6.1035156e-5,
        6.0e-5,
        3.0e-8,
        2.9802322e-8,
        1.0e-9,
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    let rng = Rng::new(5);
    for i in 0..70_001u32 {
        let e = rng.uniform(1, 0, i) * 50.0 - 30.0;
        x.push((rng.uniform(0, 0, i) - 0.5) * 2f32.powf(e));
    }
    let n = x.len();
    assert!(n % 2 == 1);
    let mut p = [0u32; 16];
    p[0] = n as u32;
    let outs = [vec![0.0; n.div_ceil(2)]];
    let bits = |v: &[f32]| v.iter().map(|w| w.to_bits()).collect::<Vec<u32>>();
    let cast = |b: &mut dyn Backend| {
        run_kernel(
            b,
            Kernel::CastHalf,
            p,
            std::slice::from_ref(&x),
            &outs,
            &g0(),
        )
        .unwrap()
        .remove(0)
    };
    let want = cast(&mut Cpu::new());
    assert_eq!(bits(&want), bits(&packed(&x)));
    // The fast CPU backend (F16C through the `half` crate): the same bits but NaN payloads.
    let fast = cast(&mut Cpu::fast());
    for (i, (f, w)) in bits(&fast).iter().zip(bits(&want)).enumerate() {
        for (h, v) in [
            (0, x[2 * i]),
            (16, x.get(2 * i + 1).copied().unwrap_or(0.0)),
        ] {
            let (fh, wh) = ((f >> h) & 0xFFFF, (w >> h) & 0xFFFF);
            let nan = |b: u32| b & 0x7C00 == 0x7C00 && b & 0x3FF != 0;
            assert!(
                fh == wh || (nan(fh) && nan(wh)),
                "fast cast of {v:e}: {fh:#06x} vs {wh:#06x}"
            );
        }
    }
    assert!(!gs.is_empty() || std::env::var("SHADEPROP_REQUIRE_GPU").is_err());
    for gpu in gs.iter_mut() {
        let got = cast(gpu);
        let bad: Vec<String> = bits(&got)
            .iter()
            .zip(bits(&want))
            .enumerate()
            .filter(|(_, (g, w))| *g != w)
            .take(8)
            .map(|(i, (g, w))| {
                format!(
                    "word {i} ({:e}, {:e}): got {g:#010x} want {w:#010x}",
                    x[2 * i],
                    x.get(2 * i + 1).copied().unwrap_or(0.0)
                )
            })
            .collect();
        assert!(
            bad.is_empty(),
            "cast_half on {}:\n{}",
            gpu.describe(),
            bad.join("\n")
        );
    }
}

/// The half matmul (packed f16 operands, f32 products and sums), every transpose, odd
/// element counts (a half-used last word), exact tilings and split-K slices, against the
/// CPU twin that unpacks first; the f16 operands make it differ from the f32 matmul by f16
/// rounding only.
#[test]
fn half_matmul_all_transposes() {
    let mut gs = matmul_gpus();
    for (si, &(m, n, k)) in [
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 9),
        (128, 10, 512),
        (64, 256, 64),
        (33, 300, 71),
        (96, 32, 48),
        (64, 64, 1024),
        (260, 300, 96),
    ]
    .iter()
    .enumerate()
    {
        for t in TRANSPOSES {
            let seed = si as u64 * 3 + 101;
            let (kern, p, ins) = matmul_case(seed, (m, n, k), t, true);
            // Sums of k terms in another order: the absolute slack grows like sqrt(k).
            let atol = 1e-5 * (k as f32 / 256.0).sqrt().max(1.0);
            let out = vec![0.0; m * n];
            both(
                &mut gs,
                kern,
                p,
                &ins,
                std::slice::from_ref(&out),
                &g0(),
                atol,
                1e-4,
            );
            if k >= 1024 {
                // Split-K slices of 256 (the GPU backend's form for deep products).
                let mut q = p;
                q[3] = 256;
                q[15] = 0;
                let outs = [vec![0.0; k / 256 * m * n]];
                let (ta, tb, _) = t;
                let sliced = Kernel::MatMul {
                    ta,
                    tb,
                    bias: false,
                    half: true,
                };
                both(&mut gs, sliced, q, &ins, &outs, &g0(), atol, 1e-4);
            }
            // Against the f32 product of the unrounded operands: f16 rounding (relative
            // 2^-11 per operand) summed over k terms of size ≤ 1.
            let (f, fp, f_ins) = matmul_case(seed, (m, n, k), t, false);
            let full = run_kernel(
                &mut Cpu::new(),
                f,
                fp,
                &f_ins,
                std::slice::from_ref(&out),
                &g0(),
            )
            .unwrap()
            .remove(0);
            let got = run_kernel(&mut Cpu::new(), kern, p, &ins, &[out], &g0())
                .unwrap()
                .remove(0);
            assert_close(
                "half vs f32 matmul",
                &got,
                &full,
                2e-3 * (k as f32).sqrt(),
                2e-3,
            );
        }
    }
}

/// Dynamic loss scaling in ClipFinalize: a non-finite gradient sets the skip flag, halves
/// S (and doubles 1/S), resets the run of finite steps and counts the skip; finite steps
/// count up and double S at the growth interval. The updates then leave everything as it
/// was on a skipped step.
#[test]
fn loss_scale_update_and_skipped_steps() {
    let mut gs = gpus();
    let mut p = [0u32; 16];
    p[0] = 4;
    p[1] = fbits(1.0);
    p[2] = 3; // growth interval
    p[3] = fbits(2.0);
    p[4] = fbits(0.5);
    p[5] = fbits(0.5);
    p[6] = fbits(2.0);
    p[7] = 10;
    p[8] = 1;
    p[9] = fbits(0.9);
    p[10] = fbits(0.999);
    let gl = Globals {
        flags: Globals::MIXED,
        ..g0()
    };
    let finite = vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0];
    let mut bad = finite.clone();
    bad[2] = f32::INFINITY;
    // Clip info before: (norm, scale, penalty, skip, lr, bc1, bc2, skipped steps = 2).
    let info0 = [7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 2.0];
    // Σ partials = 10: the norm and clip scale (max_norm 1) of a finite step; g0's step 5
    // with 2 skipped before gives t0 = 3 applied updates: lr = G.lr (no schedule) and
    // Adam's bias corrections 1 − β^(t0+1) = 1 − β⁴ (by hand, not by the kernel's powi).
    let ok_info = [
        10f32.sqrt(),
        (1.0 / (10f32.sqrt() + 1e-6)).min(1.0),
        0.0,
        0.0,
        0.1,
        (1.0 - 0.9f64.powi(4)) as f32,
        (1.0 - 0.999f64.powi(4)) as f32,
        2.0,
    ];
    // (partials, amp before) → (clipinfo, amp after)
    let cases = [
        (
            &finite,
            [1024.0, 1.0 / 1024.0, 0.0, 5.0],
            ok_info,
            [1024.0, 1.0 / 1024.0, 1.0, 5.0],
        ),
        (
            &finite,
            [1024.0, 1.0 / 1024.0, 2.0, 5.0],
            ok_info,
            [2048.0, 1.0 / 2048.0, 0.0, 5.0],
        ),
        (
            &bad,
            [1024.0, 1.0 / 1024.0, 2.0, 5.0],
            [7.0, 0.0, 7.0, 1.0, 7.0, 7.0, 7.0, 3.0],
            [512.0, 1.0 / 512.0, 0.0, 6.0],
        ),
    ];
    for (parts, amp, info, amp_after) in cases {
        // Two unused words between the clip info and the loss-scale state.
        let outs = [[&info0[..], &[9.0, 9.0], &amp[..]].concat()];
        let ins = std::slice::from_ref(parts);
        // Every backend against the reference; the reference's result.
        let mut finalize = |q: [u32; 16]| {
            both(
                &mut gs,
                Kernel::ClipFinalize,
                q,
                ins,
                &outs,
                &gl,
                1e-6,
                1e-6,
            );
            let cpu = run_kernel(&mut Cpu::new(), Kernel::ClipFinalize, q, ins, &outs, &gl);
            cpu.unwrap().remove(0)
        };
        let got = finalize(p);
        assert_close("clipinfo", &got[..8], &info, 1e-6, 1e-6);
        assert_eq!(got[8..10], [9.0, 9.0], "words between are untouched");
        assert_eq!(got[10..], amp_after, "loss-scale state");
        // Outside training steps (p8 = 0) the clip info is the same but for the count of
        // skipped steps, the scale untouched.
        let mut q = p;
        q[8] = 0;
        let got = finalize(q);
        let mut info_no_update = info;
        info_no_update[7] = 2.0;
        assert_close(
            "clipinfo (no update)",
            &got[..8],
            &info_no_update,
            1e-6,
            1e-6,
        );
        assert_eq!(got[10..], amp, "loss-scale state without update");
    }
    // A skipped step changes neither the weights nor the optimizer's moments.
    let n = 1000;
    let grad: Vec<f32> = (0..n)
        .map(|i| if i == 7 { f32::NAN } else { 0.1 })
        .collect();
    let skip = vec![f32::NAN, 0.0, 0.0, 1.0, 0.1, 0.1, 0.001, 1.0];
    let mut p = [0u32; 16];
    p[0] = n as u32;
    p[1] = fbits(0.9);
    let init = [
        rand_vec(40, n),
        rand_vec(41, n),
        rand_vec(42, n).iter().map(|v| v * v).collect(),
    ];
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(Cpu::new()), Box::new(Cpu::fast())];
    for g in gs.drain(..) {
        backends.push(Box::new(g));
    }
    for b in backends.iter_mut() {
        let ins = [grad.clone(), vec![5e-4; n], skip.clone()];
        let got = run_kernel(b.as_mut(), Kernel::SgdUpdate, p, &ins, &init[..2], &g0()).unwrap();
        assert_eq!(
            got,
            init[..2].to_vec(),
            "SGD on a skipped step ({})",
            b.describe()
        );
        let mut q = p;
        q[2] = fbits(0.999);
        q[3] = fbits(1e-8);
        let got = run_kernel(b.as_mut(), Kernel::AdamUpdate, q, &ins, &init, &g0()).unwrap();
        assert_eq!(
            got,
            init.to_vec(),
            "Adam on a skipped step ({})",
            b.describe()
        );
    }
}

/// Double-buffered inputs (`Backend::double_buffer`, what the session does for each
/// batch): every run reads what was written since the previous one, a buffer not written
/// keeps its contents, reads see the latest copy, the matmul's texture operands are copied
/// from the copy the run reads, and asking after a program is loaded is an error.
#[test]
fn double_buffered_inputs() {
    let (m, n, k) = (256usize, 256usize, 64usize);
    let mm = Kernel::MatMul {
        ta: false,
        tb: false,
        bias: false,
        half: false,
    };
    for mut b in backends() {
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
        let mut p = [0u32; 16];
        p[0] = (m * k) as u32;
        let add = Instr {
            kernel: Kernel::Add,
            p,
            ins: vec![sl(0, m * k), sl(1, m * k)],
            outs: vec![sl(2, m * k)],
        };
        let prod = Instr {
            kernel: mm,
            p: matmul::params(mm, m, n, k),
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
        let sum =
            |x: &[f32], y: &[f32]| -> Vec<f32> { x.iter().zip(y).map(|(u, v)| u + v).collect() };
        let product = |x: &[f32]| {
            run_kernel(
                &mut Cpu::new(),
                mm,
                matmul::params(mm, m, n, k),
                &[x.to_vec(), w.clone(), vec![0.0; n]],
                &[vec![0.0; m * n]],
                &g0(),
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
        b.write(0, 0, &a1).unwrap();
        b.write(1, 0, &b1).unwrap();
        b.run(add, &g0()).unwrap();
        assert_close(
            &format!("a1 + b1 on {what}"),
            &b.read(2, 0, m * k).unwrap(),
            &sum(&a1, &b1),
            0.0,
            0.0,
        );
        b.write(0, 0, &a2).unwrap();
        b.write(1, 0, &b2).unwrap();
        b.run(add, &g0()).unwrap();
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
        b.run(add, &g0()).unwrap();
        assert_close(
            &format!("a3 + b2 on {what}"),
            &b.read(2, 0, m * k).unwrap(),
            &sum(&a3, &b2),
            0.0,
            0.0,
        );
        // No write: the same inputs again.
        b.run(add, &g0()).unwrap();
        assert_close(
            &format!("a3 + b2 again on {what}"),
            &b.read(2, 0, m * k).unwrap(),
            &sum(&a3, &b2),
            0.0,
            0.0,
        );
        for a in [&a1, &a2] {
            b.write(0, 0, a).unwrap();
            b.run(prod, &g0()).unwrap();
            assert_close(
                &format!("A·W on {what}"),
                &b.read(5, 0, m * n).unwrap(),
                &product(a),
                1e-4,
                1e-4,
            );
        }
    }
}
