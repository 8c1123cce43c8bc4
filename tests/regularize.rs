//! The regularization toolkit against its formulas, on the CPU reference and the GPU:
//! penalties (value and gradient), per-layer overrides, weight decay both ways, clipping by
//! value, schedules, dropout variants, DropConnect, Monte Carlo dropout, the symmetry
//! problem of constant initialization, and whole training steps GPU vs CPU.

mod common;
use common::*;
use shadeprop::backend::cpu::Cpu;
use shadeprop::graph::LinearOpts;
use shadeprop::nn::Sequential;
use shadeprop::nn::init::Init;
use shadeprop::optim::{Adam, Every, LrSchedule, Regularizer, Scale, Sgd, Warmup};
use shadeprop::plan::Mode;
use shadeprop::session::Session;

const W: [f32; 4] = [1.0, -2.0, 0.0, 3.0];

backend_test!(penalty_values_and_gradients_match_the_formulas, |backend| {
    // m = 4 (the session's batch). (regularizer, a, b, penalty) with penalty = Σ a/2·w² + b·|w|,
    // Σ w² = 14 and Σ |w| = 6 for W.
    let cases = [
        (Regularizer::l2(0.4), 0.1, 0.0, 0.7),  // (0.4 / 2·4)·14
        (Regularizer::l1(0.4), 0.0, 0.05, 0.3), // (0.4 / 2·4)·6
        (
            Regularizer::ElasticNet {
                lambda: 0.5,
                beta: 0.3,
            },
            0.35,
            0.15,
            3.35,
        ), // 0.5·(0.3·6 + 0.35·14)
        (
            Regularizer::L2 {
                lambda: 0.01,
                scale: Scale::Keras,
            },
            0.02,
            0.0,
            0.14,
        ), // 0.01·14
        (
            Regularizer::L1 {
                lambda: 0.01,
                scale: Scale::Keras,
            },
            0.0,
            0.01,
            0.06,
        ), // 0.01·6
    ];
    let g = Sequential::new(2).linear(2).build().unwrap();
    let (x, y) = batch(3, 4, 2, 2);
    let name = backend.describe();
    let mut s = Session::new(backend, g.clone(), Sgd::default(), 0, 4).unwrap();
    s.set_param("0.weight", &W).unwrap();
    let (m0, g0) = s.gradients(&x, &y).unwrap();
    assert_eq!(m0.penalty, 0.0);
    for (r, a, b, pen) in cases {
        s.set_regularizer(Some(r)).unwrap();
        let (m1, g1) = s.gradients(&x, &y).unwrap();
        assert!(
            (m1.penalty - pen).abs() < 1e-5,
            "{r:?} on {name}: penalty {} vs {pen}",
            m1.penalty
        );
        assert_eq!(m1.loss, m0.loss, "the data loss excludes the penalty");
        let sign = |w: f32| {
            if w > 0.0 {
                1.0
            } else if w < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        let want: Vec<f32> = W
            .iter()
            .zip(&g0[0].1)
            .map(|(&w, &g)| g + a * w + b * sign(w))
            .collect();
        assert_close(
            &format!("{r:?} weight gradient on {name}"),
            &g1[0].1,
            &want,
            1e-6,
            1e-5,
        );
        assert_eq!(g1[1].1, g0[1].1, "biases are not regularized by default");
    }
});

backend_test!(per_layer_regularizers_override_the_default, |w: Which| {
    let opts = LinearOpts {
        bias_regularizer: Some(Regularizer::L2 {
            lambda: 0.5,
            scale: Scale::Keras,
        }),
        kernel_regularizer: Some(Regularizer::L2 {
            lambda: 0.0,
            scale: Scale::Keras,
        }),
        ..LinearOpts::new(2)
    };
    let g = Sequential::new(2).linear_with(opts).build().unwrap();
    let plain = Sequential::new(2).linear(2).build().unwrap();
    let (x, y) = batch(4, 4, 2, 2);
    let mut s = Session::new(w.open(), g.clone(), Sgd::default(), 0, 4).unwrap();
    s.set_param("0.bias", &[1.0, -1.0]).unwrap();
    // The same model without regularizers, from the same seed, on the same backend.
    let mut p = Session::new(w.open(), plain.clone(), Sgd::default(), 0, 4).unwrap();
    p.set_param("0.bias", &[1.0, -1.0]).unwrap();
    let (_, g0) = p.gradients(&x, &y).unwrap();
    // The default would penalize the weight; the layer's own zero penalty wins.
    s.set_regularizer(Some(Regularizer::l2(10.0))).unwrap();
    let (m, g1) = s.gradients(&x, &y).unwrap();
    assert_close("weight gradient", &g1[0].1, &g0[0].1, 1e-6, 1e-6);
    // Keras L2 0.5 on the bias: gradient + 2·0.5·b, penalty 0.5·Σ b² = 1.
    assert_close(
        "bias gradient",
        &g1[1].1,
        &[g0[1].1[0] + 1.0, g0[1].1[1] - 1.0],
        1e-6,
        1e-6,
    );
    assert!((m.penalty - 1.0).abs() < 1e-6, "penalty {}", m.penalty);
});

#[test]
fn penalty_gradients_match_finite_differences() {
    let g = || {
        Sequential::new(6)
            .linear(8)
            .batch_norm()
            .tanh()
            .linear(4)
            .build()
            .unwrap()
    };
    finite_difference_check(Some(Regularizer::l2(0.5)), g(), 7, 11);
    finite_difference_check(
        Some(Regularizer::ElasticNet {
            lambda: 0.05,
            beta: 0.5,
        }),
        g(),
        7,
        12,
    );
    finite_difference_check(
        Some(Regularizer::L1 {
            lambda: 0.02,
            scale: Scale::Keras,
        }),
        g(),
        7,
        13,
    );
    // DropConnect and classic dropout, differentiated through their masks.
    let dc = Sequential::new(6)
        .linear_dropconnect(8, 0.3)
        .tanh()
        .dropout_classic(0.4)
        .linear(4);
    finite_difference_check(None, dc.build().unwrap(), 7, 14);
}

backend_test!(course_l2_step_is_the_seed_formula, |backend| {
    // x = 0 makes dJ/dW = 0: one plain-SGD step with the penalty (lambda / 2m)·‖W‖² must be
    // w := (1 − lr·lambda/m)·w.
    let (lr, lambda, m) = (0.1f32, 0.6f32, 2usize);
    let g = Sequential::new(4).linear(3).build().unwrap();
    let opt = Sgd {
        lr,
        ..Sgd::default()
    };
    let mut s = Session::new(backend, g.clone(), opt, 5, m).unwrap();
    s.set_regularizer(Some(Regularizer::l2(lambda))).unwrap();
    let w0 = s.params().unwrap()[0].1.clone();
    s.train_batch(&[0.0; 8], &[1.0, 2.0]).unwrap();
    let want: Vec<f32> = w0
        .iter()
        .map(|w| (1.0 - lr * lambda / m as f32) * w)
        .collect();
    assert_close(
        "w after one step",
        &s.params().unwrap()[0].1,
        &want,
        1e-7,
        1e-6,
    );
});

backend_test!(adam_with_l2_differs_from_adamw, |which: Which| {
    // x = 0: the data gradient of W is 0. Adam+L2 normalizes the decay gradient wd·w, so
    // its first step moves every weight by lr·sign(w); AdamW shrinks w by (1 − lr·wd).
    let (lr, wd) = (0.01f32, 0.1f32);
    let g = Sequential::new(4).linear(3).build().unwrap();
    for decoupled in [false, true] {
        let opt = Adam {
            lr,
            weight_decay: wd,
            decoupled,
            ..Adam::default()
        };
        let mut s = Session::new(which.open(), g.clone(), opt, 5, 2).unwrap();
        let w0 = s.params().unwrap()[0].1.clone();
        s.train_batch(&[0.0; 8], &[1.0, 2.0]).unwrap();
        let want: Vec<f32> = if decoupled {
            w0.iter().map(|w| (1.0 - lr * wd) * w).collect()
        } else {
            w0.iter().map(|w| w - lr * w.signum()).collect()
        };
        assert_close(
            &format!("Adam decoupled={decoupled}"),
            &s.params().unwrap()[0].1,
            &want,
            1e-6,
            1e-4,
        );
    }
});

/// 10 → 16 → ReLU → 3.
fn mlp() -> shadeprop::graph::Graph {
    Sequential::new(10)
        .linear(16)
        .relu()
        .linear(3)
        .build()
        .unwrap()
}

backend_test!(clipping_by_value_bounds_every_gradient, |backend| {
    let (x, y) = batch(8, 8, 10, 3);
    let opt = Sgd {
        clip_value: Some((-0.01, 0.02)),
        ..Sgd::default()
    };
    let mut s = Session::new(backend, mlp(), opt, 1, 8).unwrap();
    let (_, grads) = s.gradients(&x, &y).unwrap();
    let all: Vec<f32> = grads.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    assert!(all.iter().all(|&v| (-0.01..=0.02).contains(&v)));
    assert!(
        all.contains(&0.02) && all.contains(&-0.01),
        "the bounds are reached"
    );
});

#[test]
fn clip_value_bounds_in_the_wrong_order_are_refused() {
    let g = mlp();
    let bad = Sgd {
        clip_value: Some((0.1, -0.1)),
        ..Sgd::default()
    };
    let e = Session::new(Box::new(Cpu::new()), g, bad, 0, 4)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("clip_value.max = -0.1"), "{e}");
}

// One rule for every clipping setting: finite. clip_norm = inf was refused while a
// clip_value of ±inf was taken (a bound that clips nothing); an infinite Adam eps too
// (every update 0). In the library and in a run config alike.
#[test]
fn infinite_clipping_bounds_and_eps_are_refused_like_clip_norm() {
    use shadeprop::optim::Adam;
    let inf = f32::INFINITY;
    let refused = |opt: shadeprop::optim::Optimizer, want: &str| {
        let e = Session::new(Box::new(Cpu::new()), mlp(), opt, 0, 4)
            .err()
            .unwrap_or_else(|| panic!("{want} accepted"))
            .to_string();
        assert!(e.contains(want) && e.contains("finite"), "{e}");
    };
    refused(
        Sgd {
            clip_norm: Some(inf),
            ..Sgd::default()
        }
        .into(),
        "clip_norm = inf",
    );
    for (bounds, want) in [
        ((-inf, inf), "clip_value.min = -inf"),
        ((-1.0, inf), "clip_value.max = inf"),
        ((f32::NAN, 1.0), "clip_value.min = NaN"),
    ] {
        refused(
            Sgd {
                clip_value: Some(bounds),
                ..Sgd::default()
            }
            .into(),
            want,
        );
        refused(
            Adam {
                clip_value: Some(bounds),
                ..Adam::default()
            }
            .into(),
            want,
        );
    }
    refused(
        Adam {
            eps: inf,
            ..Adam::default()
        }
        .into(),
        "eps = inf",
    );
    // Finite bounds are taken.
    Session::new(
        Box::new(Cpu::new()),
        mlp(),
        Sgd {
            clip_value: Some((-1e30, 1e30)),
            ..Sgd::default()
        },
        0,
        4,
    )
    .unwrap();
}

backend_test!(
    per_tensor_norm_clipping_scales_each_gradient_by_its_own_norm,
    |w: Which| {
        let g = Sequential::new(10)
            .linear(16)
            .relu()
            .linear(3)
            .build()
            .unwrap();
        let (x, y) = batch(8, 8, 10, 3);
        let c = 0.05f32;
        let opt = Sgd {
            clip_norm: Some(c),
            clip_per_tensor: true,
            ..Sgd::default()
        };
        let mut s = Session::new(w.open(), g.clone(), opt, 1, 8).unwrap();
        let (m, clipped) = s.gradients(&x, &y).unwrap();
        let mut plain = Session::new(w.open(), g.clone(), Sgd::default(), 1, 8).unwrap();
        let (m0, raw) = plain.gradients(&x, &y).unwrap();
        assert!(
            (m.grad_norm - m0.grad_norm).abs() < 1e-6,
            "the reported norm is the pre-clip global norm"
        );
        for ((name, gc), (_, gr)) in clipped.iter().zip(&raw) {
            let norm = gr.iter().map(|v| v * v).sum::<f32>().sqrt();
            let k = (c / (norm + 1e-6)).min(1.0);
            let want: Vec<f32> = gr.iter().map(|v| v * k).collect();
            assert_close(
                &format!("{name} clipped to its own norm"),
                gc,
                &want,
                1e-7,
                1e-4,
            );
        }
    }
);

#[test]
fn learning_rate_schedules() {
    let step = LrSchedule::Step {
        step_size: 2,
        gamma: 0.5,
        every: Every::Epoch,
    };
    let lrs: Vec<f32> = (0..5).map(|e| step.lr(1.0, e, 0)).collect();
    assert_eq!(lrs, [1.0, 1.0, 0.5, 0.5, 0.25]);
    let exp = LrSchedule::Exponential {
        gamma: 0.9,
        every: Every::Step,
    };
    assert!((exp.lr(2.0, 0, 3) - 2.0 * 0.729).abs() < 1e-6);
    let cos = LrSchedule::Cosine {
        t_max: 10,
        eta_min: 0.1,
        every: Every::Epoch,
    };
    assert!((cos.lr(1.0, 0, 0) - 1.0).abs() < 1e-6);
    assert!((cos.lr(1.0, 5, 0) - 0.55).abs() < 1e-6);
    assert!((cos.lr(1.0, 10, 0) - 0.1).abs() < 1e-6);
    assert!((cos.lr(1.0, 30, 0) - 0.1).abs() < 1e-6);
    // A session applies its schedule per step.
    let g = Sequential::new(3).linear(2).build().unwrap();
    let mut s = Session::new(
        Box::new(Cpu::new()),
        g,
        Sgd {
            lr: 0.8,
            ..Sgd::default()
        },
        0,
        2,
    )
    .unwrap();
    s.set_schedule(LrSchedule::Step {
        step_size: 1,
        gamma: 0.5,
        every: Every::Step,
    })
    .unwrap();
    let mut seen = vec![];
    for _ in 0..3 {
        seen.push(s.current_lr());
        s.train_batch(&[0.0; 6], &[0.0, 1.0]).unwrap();
    }
    assert_eq!(seen, [0.8, 0.4, 0.2]);
    assert!(
        s.set_schedule(LrSchedule::Step {
            step_size: 0,
            gamma: 0.5,
            every: Every::Step
        })
        .is_err()
    );
}

backend_test!(
    classic_dropout_scales_by_keep_probability_at_inference,
    |backend| {
        let p = 0.25f32;
        let g = Sequential::new(6)
            .dropout_classic(p)
            .linear(3)
            .build()
            .unwrap();
        let mut s = Session::new(backend, g.clone(), Sgd::default(), 5, 4).unwrap();
        let (x, _) = batch(7, 4, 6, 3);
        let logits = s.predict(&x).unwrap();
        let ps = s.params().unwrap();
        let (w, b) = (&ps[0].1, &ps[1].1);
        let want: Vec<f32> = (0..12)
            .map(|o| {
                let (i, j) = (o / 3, o % 3);
                b[j] + (0..6)
                    .map(|k| (1.0 - p) * x[i * 6 + k] * w[k * 3 + j])
                    .sum::<f32>()
            })
            .collect();
        assert_close("classic dropout at inference", &logits, &want, 1e-5, 1e-5);
    }
);

backend_test!(
    dropconnect_is_plain_linear_at_inference_and_masks_weights_in_training,
    |backend| {
        let g = Sequential::new(5)
            .linear_dropconnect(4, 0.5)
            .build()
            .unwrap();
        let (x, y) = batch(9, 3, 5, 4);
        let mut s = Session::new(backend, g.clone(), Sgd::default(), 2, 3).unwrap();
        let ps = s.params().unwrap();
        let (w, b) = (&ps[0].1, &ps[1].1);
        let plain: Vec<f32> = (0..12)
            .map(|o| {
                b[o % 4]
                    + (0..5)
                        .map(|k| x[(o / 4) * 5 + k] * w[k * 4 + o % 4])
                        .sum::<f32>()
            })
            .collect();
        assert_close(
            "DropConnect at inference",
            &s.predict(&x).unwrap(),
            &plain,
            1e-5,
            1e-5,
        );
        // In training the weight gradient is masked: about half its entries are exactly 0
        // (the same entries for every row of the batch), the survivors scaled by 2.
        let (_, grads) = s.gradients(&x, &y).unwrap();
        let zeros = grads[0].1.iter().filter(|&&v| v == 0.0).count();
        assert!(
            (4..=16).contains(&zeros),
            "{zeros} of 20 weight gradients are zero"
        );
    }
);

/// 8 → 32 → ReLU (→ dropout 0.5) → 3.
fn mc_model(dropout: bool) -> shadeprop::graph::Graph {
    let m = Sequential::new(8).linear(32).relu();
    let m = if dropout { m.dropout(0.5) } else { m };
    m.linear(3).build().unwrap()
}

backend_test!(
    monte_carlo_dropout_gives_a_predictive_mean_and_variance,
    |backend| {
        let (x, _) = batch(2, 5, 8, 3);
        let mut s = Session::new(backend, mc_model(true), Sgd::default(), 4, 8).unwrap();
        let mc = s.predict_mc(&x, 30).unwrap();
        assert_eq!((mc.mean.len(), mc.classes), (15, 3));
        for r in 0..5 {
            let sum: f32 = mc.mean[r * 3..r * 3 + 3].iter().sum();
            assert!((sum - 1.0).abs() < 1e-5);
        }
        assert!(
            mc.var.iter().all(|&v| v >= 0.0) && mc.var.iter().any(|&v| v > 1e-4),
            "{:?}",
            mc.var
        );
        // Deterministic given the seed, and different from a single deterministic pass.
        assert_eq!(mc, s.predict_mc(&x, 30).unwrap());
        let mut d =
            Session::new(Box::new(Cpu::new()), mc_model(false), Sgd::default(), 4, 8).unwrap();
        let mc = d.predict_mc(&x, 5).unwrap();
        assert!(mc.var.iter().all(|&v| v < 1e-10), "no dropout, no variance");
    }
);

/// The Monte Carlo dropout mean of every backend is the CPU reference's, and 0 samples are
/// refused.
#[test]
fn monte_carlo_dropout_means_match_across_backends() {
    let (x, _) = batch(2, 5, 8, 3);
    let mut means = vec![];
    for backend in backends() {
        let what = backend.describe();
        let mut s = Session::new(backend, mc_model(true), Sgd::default(), 4, 8).unwrap();
        means.push((what, s.predict_mc(&x, 30).unwrap().mean));
    }
    for (what, mean) in &means[1..] {
        assert_close(
            &format!("MC dropout mean, {what} vs the CPU reference"),
            mean,
            &means[0].1,
            1e-5,
            1e-4,
        );
    }
    assert!(
        Session::new(Box::new(Cpu::new()), mc_model(true), Sgd::default(), 4, 8)
            .unwrap()
            .predict_mc(&x, 0)
            .is_err()
    );
}

/// 6 → 5 → sigmoid → 3, both layers initialized by `init`.
fn sym_model(init: Init) -> shadeprop::graph::Graph {
    Sequential::new(6)
        .linear_init(5, init)
        .sigmoid()
        .linear_init(3, init)
        .build()
        .unwrap()
}

backend_test!(constant_initialization_never_breaks_symmetry, |backend| {
    let mut s = Session::new(
        backend,
        sym_model(Init::Constant(0.1)),
        Sgd {
            lr: 0.5,
            ..Sgd::default()
        },
        3,
        16,
    )
    .unwrap();
    for step in 0..30 {
        let (x, y) = batch(100 + step, 16, 6, 3);
        s.train_batch(&x, &y).unwrap();
    }
    let ps = s.params().unwrap();
    let w1 = &ps[0].1; // [6, 5]: every hidden unit (column) is the same
    let w2 = &ps[2].1; // [5, 3]: every hidden unit (row) is the same
    for k in 0..6 {
        assert!(
            (1..5).all(|j| (w1[k * 5 + j] - w1[k * 5]).abs() < 1e-6),
            "W1 row {k}: {:?}",
            &w1[k * 5..k * 5 + 5]
        );
    }
    for j in 1..5 {
        assert!((0..3).all(|c| (w2[j * 3 + c] - w2[c]).abs() < 1e-6));
    }
    assert!(
        w1.iter().any(|&v| (v - 0.1).abs() > 1e-3),
        "the weights did train"
    );
});

#[test]
fn he_initialization_breaks_the_symmetry_from_the_start() {
    let mut s = Session::new(
        Box::new(Cpu::new()),
        sym_model(Init::HE_NORMAL),
        Sgd::default(),
        3,
        16,
    )
    .unwrap();
    let w1 = s.params().unwrap()[0].1.clone();
    assert!((1..5).any(|j| w1[j] != w1[0]));
}

#[test]
fn l1_makes_more_weights_near_zero_than_l2() {
    // 20 inputs, of which only the first two carry the label; a linear softmax classifier.
    let n = 256;
    let r = shadeprop::rng::Rng::new(1);
    let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let x: Vec<f32> = (0..n * 20)
        .map(|i| {
            let (row, f) = (i / 20, i % 20);
            r.normal(5, 0, i as u32) * 0.5 + if f < 2 { 2.0 * y[row] - 1.0 } else { 0.0 }
        })
        .collect();
    let g = Sequential::new(20).linear(2).build().unwrap();
    let mut fractions = vec![];
    for reg in [
        Regularizer::L1 {
            lambda: 0.05,
            scale: Scale::Keras,
        },
        Regularizer::L2 {
            lambda: 0.05,
            scale: Scale::Keras,
        },
    ] {
        let mut s = Session::new(
            Box::new(Cpu::new()),
            g.clone(),
            Sgd {
                lr: 0.1,
                ..Sgd::default()
            },
            3,
            32,
        )
        .unwrap();
        s.set_regularizer(Some(reg)).unwrap();
        for step in 0..200 {
            let b = step % 8;
            s.train_batch(&x[b * 32 * 20..(b + 1) * 32 * 20], &y[b * 32..(b + 1) * 32])
                .unwrap();
        }
        let w = &s.params().unwrap()[0].1;
        let near = w.iter().filter(|v| v.abs() < 1e-2).count() as f32 / w.len() as f32;
        eprintln!(
            "{reg:?}: {:.0}% of weights within 0.01 of zero",
            100.0 * near
        );
        fractions.push(near);
    }
    assert!(
        fractions[0] > fractions[1] + 0.3,
        "L1 {} vs L2 {}",
        fractions[0],
        fractions[1]
    );
}

#[test]
fn whole_steps_with_every_regularizer_match_gpu_vs_cpu() {
    let Some(_) = gpu() else { return };
    let model = Sequential::new(30)
        .dropout(0.2)
        // No bias before batch norm: its true gradient is 0, and Adam would turn the
        // rounding noise of that 0 into full-size steps that differ between backends.
        .linear_with(LinearOpts {
            dropconnect: 0.3,
            bias: false,
            ..LinearOpts::new(20)
        })
        .batch_norm()
        .tanh()
        .dropout_classic(0.3)
        .linear_reg(
            10,
            Regularizer::L1 {
                lambda: 0.01,
                scale: Scale::Keras,
            },
        )
        .sigmoid()
        .linear(4);
    let g = model.build().unwrap();
    let opts: Vec<shadeprop::optim::Optimizer> = vec![
        Adam {
            lr: 0.01,
            weight_decay: 0.05,
            decoupled: true,
            clip_norm: Some(0.5),
            clip_value: Some((-0.05, 0.05)),
            ..Adam::default()
        }
        .into(),
        Adam {
            lr: 0.01,
            weight_decay: 0.05,
            clip_norm: Some(0.5),
            ..Adam::default()
        }
        .into(),
        Sgd {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-3,
            clip_norm: Some(1.0),
            clip_value: None,
            clip_per_tensor: false,
        }
        .into(),
    ];
    for opt in opts {
        let mut runs = vec![];
        for backend in backends() {
            let what = backend.describe();
            let mut s = Session::new(backend, g.clone(), opt.clone(), 9, 16).unwrap();
            s.set_regularizer(Some(Regularizer::ElasticNet {
                lambda: 1e-3,
                beta: 0.5,
            }))
            .unwrap();
            s.set_schedule(LrSchedule::Exponential {
                gamma: 0.9,
                every: Every::Step,
            })
            .unwrap();
            for step in 0..3 {
                let (x, y) = batch(50 + step, 16, 30, 4);
                s.train_batch(&x, &y).unwrap();
            }
            let m = s.take_metrics(Mode::Train).unwrap();
            runs.push((m, s.params().unwrap(), s.velocity().unwrap(), what));
        }
        // Every backend against the CPU reference.
        let c = &runs[0];
        for gp in &runs[1..] {
            let what = &gp.3;
            assert!(
                (c.0.penalty - gp.0.penalty).abs() <= 1e-5 + 1e-3 * c.0.penalty,
                "{what}: {:?} vs {:?}",
                c.0,
                gp.0
            );
            for ((n, a), (_, b)) in c.1.iter().zip(&gp.1).chain(c.2.iter().zip(&gp.2)) {
                assert_close(&format!("{opt:?}: {n} on {what}"), b, a, 2e-5, 2e-3);
            }
        }
    }
}

backend_test!(
    linear_warmup_scales_each_update_and_chains_with_the_schedule,
    |backend| {
        // SGD without momentum: the update of step t is exactly −lr_t·g, so each step's
        // rate is read back from the parameters. Warm-up over 4 updates from 0.25 in front
        // of a per-step exponential schedule (gamma 0.5): by hand,
        // lr_t = 0.8·0.5ᵗ·(0.25 + 0.75·min(t, 4)/4).
        let g = Sequential::new(3).linear(2).build().unwrap();
        let mut s = Session::builder(g)
            .backend(backend)
            .optimizer(Sgd {
                lr: 0.8,
                ..Sgd::default()
            })
            .seed(4)
            .max_batch(2)
            .schedule(LrSchedule::Exponential {
                gamma: 0.5,
                every: Every::Step,
            })
            .warmup(Warmup::new(4, 0.25))
            .build()
            .unwrap();
        let (x, y) = batch(3, 2, 3, 2);
        for t in 0..6u32 {
            let want = 0.8 * 0.5f64.powi(t as i32) * (0.25 + 0.75 * t.min(4) as f64 / 4.0);
            assert!(
                (s.current_lr() as f64 - want).abs() <= 1e-6 * want,
                "step {t}: current_lr {} against {want}",
                s.current_lr()
            );
            let before = s.params().unwrap();
            let (_, grads) = s.gradients(&x, &y).unwrap();
            s.train_batch(&x, &y).unwrap();
            let after = s.params().unwrap();
            let (w0, w1, gw) = (&before[0].1, &after[0].1, &grads[0].1);
            let got: Vec<f32> = (0..w0.len()).map(|i| w0[i] - w1[i]).collect();
            let expect: Vec<f32> = gw.iter().map(|g| (want as f32) * g).collect();
            assert_close(&format!("update of step {t}"), &got, &expect, 1e-6, 1e-4);
        }
        // Out-of-range warm-ups are refused by name.
        for (w, name) in [
            (Warmup::new(0, 0.5), "warmup.steps"),
            (Warmup::new(3, 0.0), "warmup.start_factor"),
            (Warmup::new(3, 1.5), "warmup.start_factor"),
            (Warmup::new(3, f32::NAN), "warmup.start_factor"),
        ] {
            let e = s.set_warmup(Some(w)).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
);
