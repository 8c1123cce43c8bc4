//! f16 storage (shaders/half.wgsl) and the matmul on packed f16 operands: the cast gives
//! the CPU twin's bits, the half matmul the CPU twin's products.

use super::*;
use shadeprop::kernels::elementwise::Len;
use shadeprop::rng::Rng;

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
    let case = Case::new(Kernel::CastHalf, Len { n })
        .ins([x.clone()])
        .outs([zeros(n.div_ceil(2))]);
    let bits = |v: &[f32]| v.iter().map(|w| w.to_bits()).collect::<Vec<u32>>();
    let cast = |b: &mut dyn Backend| case.run(b).remove(0);
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
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 9),
        (128, 10, 512),
        (64, 256, 64),
        (33, 300, 71),
        (96, 32, 48),
        (64, 64, 1024),
        (260, 300, 96),
    ];
    let seed = |si: usize| si as u64 * 3 + 101;
    let halves = matmul_cases(&shapes, true, seed);
    let fulls = matmul_cases(&shapes, false, seed);
    for ((prm, case), (_, full)) in halves.into_iter().zip(fulls) {
        let MatMulParams { m, n, k, .. } = prm;
        // Sums of k terms in another order: the absolute slack grows like sqrt(k).
        let atol = 1e-5 * (k as f32 / 256.0).sqrt().max(1.0);
        let got = case.clone().tol(atol, 1e-4).check(&mut gs).remove(0);
        if k >= 1024 {
            // Split-K slices of 256 (the GPU backend's form for deep products).
            let sliced = MatMulParams {
                split_k: 256,
                bias: false,
                ..prm
            };
            Case::matmul(sliced)
                .ins(case.ins.clone())
                .outs([zeros(k / 256 * m * n)])
                .tol(atol, 1e-4)
                .check(&mut gs);
        }
        // Against the f32 product of the unrounded operands: f16 rounding (relative
        // 2^-11 per operand) summed over k terms of size ≤ 1.
        let full = full.reference().remove(0);
        assert_close(
            "half vs f32 matmul",
            &got,
            &full,
            2e-3 * (k as f32).sqrt(),
            2e-3,
        );
    }
}
