//! Whole-graph tests: training steps GPU vs CPU, determinism, dropout and batch-norm
//! semantics, weight decay, finite-difference gradient checks, short last batches.

mod common;
use common::*;
use shadeprop::backend::cpu::Cpu;
use shadeprop::backend::{Act, Backend, Kernel};
use shadeprop::data::Dataset;
use shadeprop::graph::{Graph, GraphBuilder};
use shadeprop::nn::Sequential;
use shadeprop::nn::init::Init;
use shadeprop::optim::Sgd;
use shadeprop::plan::Mode;
use shadeprop::session::Session;
use shadeprop::train::{EpochConfig, train_epoch};

fn session(backend: Box<dyn Backend>, g: Graph, opt: Sgd, seed: u64, max_batch: usize) -> Session {
    Session::new(backend, g, opt, seed, max_batch).unwrap()
}

#[test]
fn w_mlp_three_steps_gpu_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let g = Sequential::w_mlp(0.5).build().unwrap();
    let mut cpu = session(Box::new(Cpu::new()), g.clone(), Sgd::w_mlp(), 42, 64);
    let mut gpu = session(Box::new(gpu), g, Sgd::w_mlp(), 42, 64);
    for step in 0..3 {
        let (x, y) = batch(100 + step, 64, 784, 10);
        cpu.train_batch(&x, &y).unwrap();
        gpu.train_batch(&x, &y).unwrap();
    }
    let (mc, mg) = (
        cpu.take_metrics(Mode::Train).unwrap(),
        gpu.take_metrics(Mode::Train).unwrap(),
    );
    assert!(
        (mc.loss - mg.loss).abs() < 1e-3 * mc.loss.abs().max(1.0),
        "loss {mc:?} vs {mg:?}"
    );
    assert!(
        (mc.grad_norm - mg.grad_norm).abs() < 1e-3 * mc.grad_norm,
        "norm {mc:?} vs {mg:?}"
    );
    for (what, c, gg) in [
        ("param", cpu.params().unwrap(), gpu.params().unwrap()),
        ("velocity", cpu.velocity().unwrap(), gpu.velocity().unwrap()),
        ("state", cpu.state().unwrap(), gpu.state().unwrap()),
    ] {
        for ((name, a), (_, b)) in c.iter().zip(&gg) {
            assert_close(&format!("{what} {name} after 3 steps"), b, a, 2e-5, 2e-3);
        }
    }
}

/// Three training steps of a layer-norm MLP on the GPU and the fast CPU backend against the
/// CPU reference: parameters and momentum agree.
#[test]
fn layer_norm_steps_match_on_every_backend() {
    let Some(gpu) = gpu() else { return };
    let g = Sequential::new(20)
        .linear(32)
        .layer_norm()
        .relu()
        .dropout(0.2)
        .linear(5)
        .build()
        .unwrap();
    let mut reference = session(Box::new(Cpu::new()), g.clone(), Sgd::w_mlp(), 7, 16);
    let mut others = [
        session(Box::new(gpu), g.clone(), Sgd::w_mlp(), 7, 16),
        session(Box::new(Cpu::fast()), g, Sgd::w_mlp(), 7, 16),
    ];
    for step in 0..3 {
        let (x, y) = batch(200 + step, 16, 20, 5);
        reference.train_batch(&x, &y).unwrap();
        for s in &mut others {
            s.train_batch(&x, &y).unwrap();
        }
    }
    let want = reference.params().unwrap();
    let vel = reference.velocity().unwrap();
    for s in &mut others {
        let what = s.backend().describe();
        for ((name, a), (_, b)) in want.iter().zip(&s.params().unwrap()) {
            assert_close(&format!("{what}: {name} after 3 steps"), b, a, 2e-5, 2e-3);
        }
        for ((name, a), (_, b)) in vel.iter().zip(&s.velocity().unwrap()) {
            assert_close(&format!("{what}: velocity {name}"), b, a, 2e-5, 2e-3);
        }
    }
    // The layer norm's weight and bias are not decayed (as batch norm's).
    let ps = reference.graph().params.clone();
    assert!(ps.iter().any(|p| p.name == "1.weight+bias" && !p.decay));
}

#[test]
fn gpu_runs_are_bit_identical_and_seeds_differ() {
    let run = |seed: u64| -> Option<Vec<(String, Vec<f32>)>> {
        let g = Sequential::new(32)
            .linear(24)
            .batch_norm()
            .relu()
            .dropout(0.3)
            .linear(5)
            .build()
            .unwrap();
        let mut s = session(Box::new(gpu()?), g, Sgd::w_mlp(), seed, 16);
        for step in 0..20 {
            let (x, y) = batch(step, 16, 32, 5);
            s.train_batch(&x, &y).unwrap();
        }
        Some(s.params().unwrap())
    };
    let Some(a) = run(1) else { return };
    let b = run(1).unwrap();
    let c = run(2).unwrap();
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{n} differs between two runs with one seed"
        );
    }
    assert!(
        a.iter().zip(&c).any(|((_, x), (_, y))| x != y),
        "different seeds gave identical parameters"
    );
}

backend_test!(dropout_statistics_and_eval_identity, |b| {
    // Kept fraction ≈ 1 - p and kept values scaled by 1/(1-p), through the real kernel.
    use shadeprop::backend::check::run_kernel;
    use shadeprop::backend::{Globals, Kernel};
    use shadeprop::kernels::KernelParams;
    use shadeprop::kernels::dropout::DropoutParams;
    let n = 200_000;
    for prob in [0.1f32, 0.5, 0.8] {
        let p = DropoutParams {
            n,
            threshold: shadeprop::rng::dropout_threshold(prob),
            scale: 1.0 / (1.0 - prob),
            stream: 4242,
            group: 0,
            ..Default::default()
        };
        let g = Globals {
            seed_lo: 9,
            seed_hi: 0,
            step: 3,
            lr: 0.0,
            ..Default::default()
        };
        let y = run_kernel(
            b.as_mut(),
            Kernel::Dropout,
            p.to_words(),
            &[vec![1.0; n]],
            &[vec![0.0; n]],
            &g,
        )
        .unwrap()
        .remove(0);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f32 / n as f32;
        assert!(
            (kept - (1.0 - prob)).abs() < 0.005,
            "p={prob}: kept {kept} on {}",
            b.describe()
        );
        assert!(
            y.iter()
                .all(|&v| v == 0.0 || (v - 1.0 / (1.0 - prob)).abs() < 1e-6)
        );
    }
    // At inference dropout is the identity: logits = x·W + b exactly.
    let g = Sequential::new(6).dropout(0.5).linear(3).build().unwrap();
    let mut s = session(b, g, Sgd::w_mlp(), 5, 4);
    let (x, _) = batch(7, 4, 6, 3);
    let logits = s.predict(&x).unwrap();
    let ps = s.params().unwrap();
    let (w, bias) = (&ps[0].1, &ps[1].1);
    let mut want = vec![0f32; 12];
    for i in 0..4 {
        for j in 0..3 {
            want[i * 3 + j] = bias[j] + (0..6).map(|k| x[i * 6 + k] * w[k * 3 + j]).sum::<f32>();
        }
    }
    assert_close("eval logits with dropout", &logits, &want, 1e-5, 1e-5);
});

backend_test!(batchnorm_eval_uses_running_statistics, |b| {
    let g = Sequential::new(5).batch_norm().linear(3).build().unwrap();
    let mut s = session(b, g.clone(), Sgd::w_mlp(), 3, 8);
    for step in 0..4 {
        let (x, y) = batch(step, 8, 5, 3);
        let x: Vec<f32> = x.iter().map(|v| v * 2.0 + 0.7).collect();
        s.train_batch(&x, &y).unwrap();
    }
    let st = s.state().unwrap();
    let (rm, rv) = st[0].1.split_at(5);
    // After 4 updates with momentum 0.1 from (0, 1) the running mean is no longer 0.
    assert!(rm.iter().all(|&m| m.abs() > 0.05), "running mean {rm:?}");
    let ps = s.params().unwrap();
    let (gamma, beta) = ps[0].1.split_at(5);
    let (w, bias) = (&ps[1].1, &ps[2].1);
    let (x, _) = batch(99, 2, 5, 3);
    let logits = s.predict(&x).unwrap();
    let mut want = vec![0f32; 6];
    for i in 0..2 {
        let h: Vec<f32> = (0..5)
            .map(|c| gamma[c] * (x[i * 5 + c] - rm[c]) / (rv[c] + 1e-5).sqrt() + beta[c])
            .collect();
        for j in 0..3 {
            want[i * 3 + j] = bias[j] + (0..5).map(|c| h[c] * w[c * 3 + j]).sum::<f32>();
        }
    }
    assert_close("batch norm at inference", &logits, &want, 1e-5, 1e-4);
});

backend_test!(weight_decay_is_the_seed_formula_and_spares_biases, |b| {
    // x = 0 makes dJ/dW = xᵀ·dy = 0, so one plain-SGD step must give exactly
    // w := (1 - lr·wd)·w - lr·0, with wd = lambda/m, while the bias moves by its gradient only.
    let (lr, wd) = (0.1f32, 0.3f32);
    let opt = Sgd {
        lr,
        momentum: 0.0,
        nesterov: false,
        weight_decay: wd,
        clip_norm: None,
        clip_value: None,
        clip_per_tensor: false,
    };
    let g = Sequential::new(4).linear(3).build().unwrap();
    let mut s = session(b, g.clone(), opt.clone(), 11, 2);
    let before = s.params().unwrap();
    let y = vec![0.0, 2.0];
    s.train_batch(&[0.0; 8], &y).unwrap();
    let after = s.params().unwrap();
    let w_want: Vec<f32> = before[0]
        .1
        .iter()
        .map(|w| (1.0 - lr * wd) * w - lr * 0.0)
        .collect();
    assert_close("decayed weights", &after[0].1, &w_want, 1e-7, 1e-6);
    // Bias starts at 0, so logits are 0, softmax uniform: db_j = mean over rows of (1/3 - [y=j]).
    let db: Vec<f32> = (0..3)
        .map(|j| {
            (0..2)
                .map(|r| 1.0 / 3.0 - if y[r] as usize == j { 1.0 } else { 0.0 })
                .sum::<f32>()
                / 2.0
        })
        .collect();
    let b_want: Vec<f32> = before[1]
        .1
        .iter()
        .zip(&db)
        .map(|(b, d)| b - lr * d)
        .collect();
    assert_close("bias without decay", &after[1].1, &b_want, 1e-7, 1e-5);
});

#[test]
fn gradients_match_finite_differences() {
    // Linear, tanh, sigmoid.
    finite_difference_check(
        None,
        Sequential::new(7)
            .linear_init(6, Init::XAVIER_UNIFORM)
            .tanh()
            .linear(5)
            .sigmoid()
            .linear(3)
            .build()
            .unwrap(),
        5,
        1,
    );
    // Batch norm, ReLU, dropout (same mask in every evaluation: the step does not advance).
    finite_difference_check(
        None,
        Sequential::new(6)
            .linear(8)
            .batch_norm()
            .relu()
            .dropout(0.3)
            .linear(4)
            .build()
            .unwrap(),
        9,
        2,
    );
    // Layer norm between linear layers.
    finite_difference_check(
        None,
        Sequential::new(6)
            .linear(8)
            .layer_norm()
            .tanh()
            .linear(4)
            .build()
            .unwrap(),
        5,
        4,
    );
    // Functional graph: transposed matmuls and a residual add.
    let mut gb = GraphBuilder::new(5);
    let x = gb.input();
    let h = gb.linear(x, 5, Init::XAVIER_UNIFORM, true, "a").unwrap();
    let h = gb.act(h, shadeprop::backend::Act::Tanh);
    let r = gb.add(h, x).unwrap();
    let w = gb
        .param(shadeprop::graph::ParamInfo {
            name: "w".into(),
            shape: shadeprop::graph::Shape::fixed(4, 5),
            decay: true,
            regularizer: None,
            segments: vec![shadeprop::graph::Segment {
                name: "w".into(),
                len: 20,
                init: Init::XAVIER_UNIFORM,
                torch_shape: None,
            }],
        })
        .unwrap();
    let logits = gb.matmul(r, w, false, true).unwrap(); // r · wᵀ
    let mut graph = gb.softmax_cross_entropy(logits).unwrap();
    shadeprop::graph::autodiff::differentiate(&mut graph).unwrap();
    finite_difference_check(None, graph, 6, 3);
}

backend_test!(short_last_batch_is_trained_not_dropped, |b| {
    let g = Sequential::new(10)
        .linear(8)
        .batch_norm()
        .relu()
        .linear(3)
        .build()
        .unwrap();
    let (x, y) = batch(1, 300, 10, 3);
    let ds = Dataset {
        x,
        y,
        features: 10,
        classes: 3,
        ..Default::default()
    };
    let mut s = session(b, g.clone(), Sgd::w_mlp(), 1, 128);
    let cfg = EpochConfig {
        batch_size: 128,
        ..Default::default()
    };
    let st = train_epoch(&mut s, &ds, &cfg, 1, 0).unwrap();
    assert_eq!((st.metrics.samples, st.metrics.steps), (300, 3));
    let cfg = EpochConfig {
        batch_size: 128,
        drop_last: true,
        ..Default::default()
    };
    let st = train_epoch(&mut s, &ds, &cfg, 1, 1).unwrap();
    assert_eq!((st.metrics.samples, st.metrics.steps), (256, 2));
});

#[test]
fn invalid_hyperparameters_are_named_errors() {
    let e = Sequential::new(4)
        .dropout(1.0)
        .linear(2)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("dropout.p = 1"), "{e}");
    let g = Sequential::new(4).linear(2).build().unwrap();
    let bad = Sgd {
        lr: -0.1,
        ..Sgd::default()
    };
    let e = Session::new(Box::new(Cpu::new()), g.clone(), bad, 0, 4)
        .err()
        .unwrap();
    assert!(e.to_string().contains("lr = -0.1"), "{e}");
    let mut s = session(Box::new(Cpu::new()), g, Sgd::default(), 0, 4);
    let e = s.train_batch(&[0.0; 12], &[0.0, 1.0]).unwrap_err();
    assert!(
        e.to_string().contains("shape mismatch in training batch"),
        "{e}"
    );
}

#[test]
fn w_cnn_step_fuses_the_conv_epilogue_with_the_relu() {
    use shadeprop::plan::{Layout, compile};
    let g = Sequential::w_cnn(0.5).build().unwrap();
    let mut layout = Layout::new(&g, 64, 128).unwrap();
    let train = compile(&g, &mut layout, Mode::Train, 128, &Sgd::w_mlp().into()).unwrap();
    let count = |k: Kernel| train.instrs.iter().filter(|i| i.kernel == k).count();
    // Both convolutions end in ToNchw{bias, relu}; no separate forward ReLU is left but
    // the one inside the fused ReLU + dropout of the hidden linear layer.
    let conv_relu = Kernel::ToNchw {
        bias: true,
        relu: true,
    };
    assert_eq!(count(conv_relu), 2);
    assert_eq!(count(Kernel::ActFwd(Act::Relu)), 0);
    assert_eq!(count(Kernel::ReluDropout), 1);
    // 37 kernels with the two ReLUs separate (augmentation runs before, in its own pass).
    assert_eq!(train.instrs.len(), 35);
}

#[test]
fn w_mlp_step_is_24_dispatches_and_shares_buffers() {
    use shadeprop::plan::{Layout, compile};
    let g = Sequential::w_mlp(0.5).build().unwrap();
    let mut layout = Layout::new(&g, 64, 128).unwrap();
    let train = compile(&g, &mut layout, Mode::Train, 128, &Sgd::w_mlp().into()).unwrap();
    // forward 9 (3 linear, 2 BN, 2 fused ReLU + dropout, softmax-xent, metrics),
    // backward 12 (2 fused dropout + ReLU backward), clipping 2, optimizer 1: 28 kernels
    // before fusion.
    assert_eq!(train.instrs.len(), 24);
    let fused = |k: Kernel| train.instrs.iter().filter(|i| i.kernel == k).count();
    assert_eq!(fused(Kernel::ReluDropout), 2);
    assert_eq!(fused(Kernel::DropoutReluBwd), 2);
    assert_eq!(fused(Kernel::Dropout), 0);
    // Intermediates share buffers: fewer pool buffers than intermediate tensors.
    let temps = g.tensors.len() - g.params.len() - 2;
    assert!(
        layout.pool.len() < temps / 2,
        "{} pool buffers for {temps} tensors",
        layout.pool.len()
    );
}

/// Mixed precision adds one f16 cast of all parameters and one per distinct f32 operand
/// of a matmul (W-MLP: the input and the two hidden activations forward, the three
/// gradients arriving at the linear layers backward): 24 + 7 dispatches. Every matmul reads
/// packed f16 operands, and each cast's output is half the size of its input.
#[test]
fn w_mlp_mixed_precision_plan() {
    use shadeprop::kernels::KernelParams;
    use shadeprop::kernels::matmul::MatMulParams;
    use shadeprop::optim::Precision;
    use shadeprop::plan::{Layout, buf, compile};
    let g = Sequential::w_mlp(0.5).build().unwrap();
    let mut layout = Layout::with_precision(&g, 64, 128, Precision::mixed()).unwrap();
    let train = compile(&g, &mut layout, Mode::Train, 128, &Sgd::w_mlp().into()).unwrap();
    assert_eq!(train.instrs.len(), 31);
    let casts: Vec<_> = train
        .instrs
        .iter()
        .filter(|i| i.kernel == Kernel::CastHalf)
        .collect();
    assert_eq!(casts.len(), 7);
    assert_eq!(
        casts[0].ins[0].buf,
        buf::PARAMS,
        "the parameters are cast first"
    );
    assert_eq!(casts[0].outs[0].buf, buf::PARAMS_F16);
    assert_eq!(casts[0].outs[0].len, layout.params_len / 2);
    for c in &casts {
        assert_eq!(c.outs[0].len, c.ins[0].len.div_ceil(2));
    }
    let matmuls: Vec<_> = train
        .instrs
        .iter()
        .filter(|i| matches!(i.kernel, Kernel::MatMul { .. }))
        .collect();
    assert_eq!(matmuls.len(), 8);
    for m in &matmuls {
        assert!(
            matches!(m.kernel, Kernel::MatMul { half: true, .. })
                && MatMulParams::from_words(&m.p).half,
            "{:?}",
            m.kernel
        );
        // Weights are read from the packed parameter copy at half their f32 offset.
        for op in &m.ins[..2] {
            assert_ne!(op.buf, buf::PARAMS, "{:?} reads f32 parameters", m.kernel);
            if op.buf == buf::PARAMS_F16 {
                assert_eq!(op.off % (layout.align / 2), 0, "bindable offset");
            }
        }
    }
    let eval = compile(&g, &mut layout, Mode::Eval, 128, &Sgd::w_mlp().into()).unwrap();
    assert!(
        eval.instrs
            .iter()
            .all(|i| !matches!(i.kernel, Kernel::MatMul { half: false, .. }))
    );
}

/// The model summary: each layer's module, output shape and parameters, counted by hand
/// for a small CNN, and totals equal to the built graph's for W-MLP and W-CNN.
#[test]
fn the_model_summary_counts_what_the_graph_holds() {
    let small = Sequential::image(1, 8, 8)
        .conv2d(4, 3, 1, 0)
        .batch_norm2d()
        .relu()
        .max_pool(2, 2)
        .flatten()
        .linear(3);
    let text = small.summary();
    // conv 1·3·3·4 + 4 = 40; batch norm 2·4 = 8; linear 4·3·3·3 + 3 = 111; total 159.
    for line in [
        "Conv2d(1, 4, kernel_size=3, stride=1, padding=0)",
        "[4, 6, 6]",
        "[4, 3, 3]",
        "[36]",
        "trainable parameters: 159",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    for m in [small, Sequential::w_mlp(0.5), Sequential::w_cnn(0.5)] {
        // Fits an 80-column terminal.
        let widest = m.summary().lines().map(|l| l.chars().count()).max();
        assert!(widest <= Some(80), "{widest:?}\n{}", m.summary());
        let total: usize = m.build().unwrap().param_count();
        let grouped = {
            let s = total.to_string();
            let mut out = String::new();
            for (i, ch) in s.chars().enumerate() {
                if i > 0 && (s.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(ch);
            }
            out
        };
        assert!(
            m.summary()
                .contains(&format!("trainable parameters: {grouped},")),
            "{total}\n{}",
            m.summary()
        );
    }
}
