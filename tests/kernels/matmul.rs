//! The matmul (shaders/matmul.wgsl, matmul_subgroup.wgsl, texture.wgsl): every transpose on
//! random and tiled shapes, operands from textures, split-K slices and their sum, deep
//! products. The f16-operand matmul is in half.rs.

use super::*;
use shadeprop::backend::gpu::GpuOptions;
use shadeprop::kernels::elementwise::SliceSumParams;
use shadeprop::rng::Rng;

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
    for (_, case) in matmul_cases(&shapes, false, |si| si as u64 * 3 + 1) {
        case.tol(1e-5, 1e-4).check(&mut gs);
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
        ..GpuOptions::default()
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
    let shapes = [
        (256, 256, 64),
        (260, 300, 96),
        (300, 256, 800),
        (9, 100, 48),
        (64, 256, 64),
    ];
    for half in [false, true] {
        for (prm, case) in matmul_cases(&shapes, half, |si| si as u64 + 500) {
            // Sums of k terms in another order: the absolute slack grows like sqrt(k).
            let atol = 2e-6 * (prm.k as f32).sqrt();
            case.clone().tol(atol, 1e-4).check(&mut gs);
            // The run just made holds textures exactly when the shape takes them: the
            // untransposed products with M, N >= 256 and K a multiple of 32.
            let expect = report.texture_operands && !prm.ta && !prm.tb && prm.m >= 256;
            let shape = (prm.m, prm.n, prm.k);
            assert_eq!(
                gs[0].texture_operands_for(case.kernel, &case.p),
                expect,
                "{:?} {shape:?}",
                case.kernel
            );
            assert_eq!(
                gs[0].texture_bytes() > 0,
                expect,
                "{:?} {shape:?}",
                case.kernel
            );
            textured += expect as usize;
        }
    }
    assert!(
        textured == 6 || !report.texture_operands,
        "{textured} products read operands from textures"
    );
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
        let plain = MatMulParams {
            m,
            n,
            k,
            ta,
            tb,
            bias: true,
            half,
            ..Default::default()
        };
        let sliced = MatMulParams {
            bias: false,
            split_k: ks,
            ..plain
        };
        let mut ins = [rand_vec(61, m * k), rand_vec(62, k * n), rand_vec(63, n)];
        if half {
            ins[0] = packed(&ins[0]);
            ins[1] = packed(&ins[1]);
        }
        let parts = Case::matmul(sliced)
            .ins(ins.clone())
            .outs([zeros(s * m * n)])
            .tol(1e-5, 1e-4)
            .check(&mut gs)
            .remove(0);
        let sum = SliceSumParams {
            n: m * n,
            cols: n,
            slices: s,
            bias: true,
        };
        let got = Case::new(sum.kernel(), sum)
            .ins([parts, ins[2].clone()])
            .outs([zeros(m * n)])
            .check(&mut gs)
            .remove(0);
        let want = Case::matmul(plain)
            .ins(ins)
            .outs([zeros(m * n)])
            .reference()
            .remove(0);
        assert_close("split-K sum vs plain matmul", &got, &want, 1e-5, 1e-4);
    }
}

/// A product with K = 70,000, past llvmpipe's 65,535 loop steps (the kernels unroll by
/// 16), both the transposed-A and the bias variant; also the fast CPU's split-K path (K
/// sliced across threads, the first slice over the bias rows).
#[test]
fn matmul_k_past_65535_steps_is_complete() {
    let mut gs = gpus();
    let (m, n, k) = (5usize, 6usize, 70_000usize);
    for (ta, bias) in [(true, false), (false, true)] {
        let prm = MatMulParams {
            m,
            n,
            k,
            ta,
            bias,
            ..Default::default()
        };
        Case::matmul(prm)
            .ins([rand_vec(36, k * m), rand_vec(37, k * n), rand_vec(38, n)])
            .outs([zeros(m * n)])
            .tol(1e-2, 1e-3)
            .check(&mut gs);
    }
}

/// Every matmul variant forced on, whatever the adapter would pick: the portable and
/// subgroup kernels and the workgroup-memory tiled kernel in each tile shape. Each gives
/// the CPU twin's result on every transpose, with and without the bias, for f32 and packed
/// f16 operands, on shapes that no tile divides (and on exact tilings), and every variant
/// gives the same bits as the adapter's default kernel: they sum each element's products in
/// the same order with the same fma (also the slices of a split-K product, whose split does
/// not depend on the variant). The portable kernel is compared on the shapes it runs in one
/// slice: pinning it opens the adapter without subgroups, which also turns split-K off.
#[test]
fn every_variant_forced_matches_the_cpu_twin_and_the_default_bit_for_bit() {
    use shadeprop::backend::gpu::{MatmulSelect, MatmulVariant};
    let Some(default) = gpu_with(GpuOptions::with_matmul(MatmulSelect::Default)) else {
        return;
    };
    let sg = default.report().subgroup_size.is_some();
    let mut gs = vec![default];
    let mut names = vec!["default".to_string()];
    for v in MatmulVariant::all() {
        if v == MatmulVariant::Subgroup && !sg {
            // Not a quiet skip: the default kernel above is then the portable one, and this
            // adapter has no subgroups to run the other.
            continue;
        }
        let g = gpu_with(GpuOptions::with_matmul(MatmulSelect::Pin(v)))
            .unwrap_or_else(|| panic!("{v} refused"));
        assert!(
            g.report().to_string().contains(&format!("pinned {v}")),
            "{}",
            g.report()
        );
        gs.push(g);
        names.push(v.to_string());
    }
    assert!(names.len() >= 5, "{names:?}");
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (37, 45, 29),
        (70, 20, 37),
        (64, 64, 32),
        (129, 257, 17),
        (130, 67, 300),
        // Deep with few output tiles: split into K slices on adapters with subgroups.
        (7, 12, 4500),
    ];
    let mut compared = 0;
    for half in [false, true] {
        for (prm, case) in matmul_cases(&shapes, half, |si| si as u64 * 7 + 3) {
            let atol = 2e-6 * (prm.k as f32).sqrt();
            case.clone().tol(atol, 1e-4).check(&mut gs);
            let want = case.run(&mut gs[0]);
            for (g, name) in gs.iter_mut().zip(&names).skip(1) {
                if name == "portable" && sg && prm.k >= 4096 {
                    continue;
                }
                let got = case.run(g);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                if let Some(i) = (0..want[0].len()).find(|&i| bits(&got[0])[i] != bits(&want[0])[i])
                {
                    panic!(
                        "{:?} {:?}: {name} differs from the default kernel at element {i}: {} vs {}",
                        case.kernel,
                        (prm.m, prm.n, prm.k),
                        got[0][i],
                        want[0][i]
                    );
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "{compared}");
}

/// The names in error messages are those the variants parse from, and each round-trips.
#[test]
fn every_variant_name_round_trips_and_is_listed_in_errors() {
    use shadeprop::backend::gpu::{MatmulSelect, MatmulVariant, VARIANT_NAMES};
    let select = "bogus".parse::<MatmulSelect>().unwrap_err().to_string();
    let backend = shadeprop::backend::check_name("gpu:bogus")
        .unwrap_err()
        .to_string();
    for v in MatmulVariant::all() {
        let name = v.to_string();
        assert_eq!(name.parse::<MatmulVariant>().unwrap(), v);
        assert_eq!(name.parse::<MatmulSelect>().unwrap(), MatmulSelect::Pin(v));
        for (what, list) in [
            ("VARIANT_NAMES", VARIANT_NAMES),
            ("SHADEPROP_MATMUL error", select.as_str()),
            ("backend error", backend.as_str()),
        ] {
            assert!(list.contains(&name), "{what} lacks {name}: {list}");
        }
    }
    assert_eq!(
        MatmulVariant::all().len(),
        2 + shadeprop::backend::gpu::TILES.len()
    );
}
