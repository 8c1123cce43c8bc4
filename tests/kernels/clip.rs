//! Gradient preparation and clipping (shaders/clip.wgsl): penalties, value clipping and
//! unscaling, the global norm and its clip scale, per-tensor clipping, and the dynamic
//! loss scale.

use super::*;
use shadeprop::kernels::clip::{ClipFinalizeParams, ClipTensorParams, GradPrepParams};

#[test]
fn grad_prep_and_clip_finalize() {
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
            let p = GradPrepParams {
                n,
                parts: 1024,
                ..if clip {
                    GradPrepParams {
                        lo: -0.5,
                        hi: 0.25,
                        clip_value: true,
                        ..Default::default()
                    }
                } else {
                    Default::default()
                }
            };
            let gl = Globals {
                flags: if penalty { Globals::PENALTY } else { 0 }
                    | if mixed { Globals::MIXED } else { 0 },
                ..g0()
            };
            let g_in: Vec<f32> = g.iter().map(|v| if mixed { v * 4.0 } else { *v }).collect();
            parts = Case::new(Kernel::GradPrep, p)
                .ins([w.clone(), a.clone(), b.clone(), amp.clone()])
                .outs([g_in, zeros(2048)])
                .globals(gl)
                .tol(1e-5, 1e-5)
                .check(&mut gs);
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
            let p = ClipFinalizeParams {
                parts: 1024,
                max_norm,
                amp_offset: 8,
                update: true,
                beta1: 0.9,
                beta2: 0.999,
                ..Default::default()
            };
            Case::new(Kernel::ClipFinalize, p)
                .ins([parts[1].clone()])
                .outs([[zeros(8), amp.clone()].concat()])
                .tol(1e-6, 1e-5)
                .check(&mut gs);
        }
    }
}

#[test]
fn clip_tensor() {
    let mut gs = gpus();
    for (n, max_norm) in [(1usize, 0.1f32), (1000, 1.0), (70_001, 1e6)] {
        let g = rand_vec(43, n);
        let ss: f32 = g.iter().map(|v| v * v).sum();
        Case::new(Kernel::ClipTensor, ClipTensorParams { n, max_norm })
            .ins([vec![0.0, ss, 0.0, n as f32]])
            .outs([g])
            .tol(1e-7, 1e-6)
            .check(&mut gs);
    }
}

/// Dynamic loss scaling in ClipFinalize: a non-finite gradient sets the skip flag, halves
/// S (and doubles 1/S), resets the run of finite steps and counts the skip; finite steps
/// count up and double S at the growth interval. (The updates leaving everything as it
/// was on a skipped step: optim.rs.)
#[test]
fn loss_scale_update_and_skip_flag() {
    let mut gs = gpus();
    let p = ClipFinalizeParams {
        parts: 4,
        max_norm: 1.0,
        growth_interval: 3,
        growth: 2.0,
        inv_growth: 0.5,
        backoff: 0.5,
        inv_backoff: 2.0,
        amp_offset: 10,
        update: true,
        beta1: 0.9,
        beta2: 0.999,
    };
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
        // Every backend against the reference; the reference's result.
        let mut finalize = |q: ClipFinalizeParams| {
            Case::new(Kernel::ClipFinalize, q)
                .ins([parts.clone()])
                .outs(outs.clone())
                .globals(gl)
                .tol(1e-6, 1e-6)
                .check(&mut gs)
                .remove(0)
        };
        let got = finalize(p);
        assert_close("clipinfo", &got[..8], &info, 1e-6, 1e-6);
        assert_eq!(got[8..10], [9.0, 9.0], "words between are untouched");
        assert_eq!(got[10..], amp_after, "loss-scale state");
        // Outside training steps (no update) the clip info is the same but for the count
        // of skipped steps, the scale untouched.
        let got = finalize(ClipFinalizeParams { update: false, ..p });
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
}

/// The learning rate ClipFinalize writes (clip info [4]) under a linear warm-up, alone and
/// in front of the per-step cosine: g0's step 5 with 2 skipped steps gives t0 = 3 applied
/// updates. Expected rates by hand from PyTorch's LinearLR rule
/// `start + (1 − start)·min(t0, W)/W` times the schedule's rate.
#[test]
fn warmup_scales_the_scheduled_rate() {
    let mut gs = gpus();
    let p = ClipFinalizeParams {
        parts: 1,
        max_norm: 0.0,
        amp_offset: 8,
        update: false,
        beta1: 0.9,
        beta2: 0.999,
        ..Default::default()
    };
    let info0 = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0];
    let cos =
        |t: f64, n: f64| 0.01 + (0.1 - 0.01) * (1.0 + (std::f64::consts::PI * t / n).cos()) / 2.0;
    // (warmup_steps, start, sched_kind, sched_n, sched_x) → lr
    let cases: [(u32, f32, u32, u32, f32, f64); 5] = [
        (10, 0.1, 0, 0, 0.0, 0.1 * (0.1 + 0.9 * 3.0 / 10.0)),
        (4, 0.5, 0, 0, 0.0, 0.1 * (0.5 + 0.5 * 3.0 / 4.0)),
        // Past the warm-up: the full rate.
        (3, 0.25, 0, 0, 0.0, 0.1),
        (2, 0.25, 0, 0, 0.0, 0.1),
        // In front of the cosine (t_max 8, eta_min 0.01).
        (6, 0.2, 3, 8, 0.01, cos(3.0, 8.0) * (0.2 + 0.8 * 3.0 / 6.0)),
    ];
    for (w, start, kind, n, x, want) in cases {
        let gl = Globals {
            warmup_steps: w,
            warmup_start: start,
            sched_kind: kind,
            sched_n: n,
            sched_x: x,
            ..g0()
        };
        let got = Case::new(Kernel::ClipFinalize, p)
            .ins([vec![4.0, 0.0]])
            .outs([[&info0[..], &[1.0, 1.0, 0.0, 0.0]].concat()])
            .globals(gl)
            .tol(1e-6, 1e-6)
            .check(&mut gs)
            .remove(0);
        assert_close(
            &format!("lr with warm-up {w} from {start}, schedule {kind}"),
            &got[4..5],
            &[want as f32],
            1e-7,
            1e-6,
        );
    }
}
