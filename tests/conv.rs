//! Convolutional layers end to end: semantics on hand-computed images, finite differences
//! through conv / pooling / BatchNorm2d / Dropout2d, whole steps GPU vs CPU, W-CNN shape.

mod common;
use common::*;
use shadeprop::backend::cpu::Cpu;
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::plan::Mode;
use shadeprop::session::Session;

backend_test!(conv_and_pool_compute_what_pytorch_computes, |w: Which| {
    // One 3×4 image, a 2×2 kernel [[1, 2], [3, 4]] and bias 0.5, stride 1, no padding:
    // cross-correlation (the kernel is not flipped), then 1×3 → max-pool can't; use avg
    // pooling over 2×2 with stride 1 on the 2×3 output → 1×2, then a linear identity.
    let m = Sequential::image(1, 3, 4)
        .conv2d(1, 2, 1, 0)
        .avg_pool(2, 1)
        .flatten()
        .linear(2);
    let x: Vec<f32> = (1..=12).map(|v| v as f32).collect(); // rows [1 2 3 4], [5 6 7 8], [9 10 11 12]
    {
        let backend = w.open();
        let mut s = Session::new(backend, m.build().unwrap(), Sgd::default(), 0, 1).unwrap();
        s.set_param("0.weight", &[1.0, 2.0, 3.0, 4.0]).unwrap(); // [C·KH·KW = 4, out = 1]
        s.set_param("0.bias", &[0.5]).unwrap();
        s.set_param("3.weight", &[1.0, 0.0, 0.0, 1.0]).unwrap();
        s.set_param("3.bias", &[0.0, 0.0]).unwrap();
        // conv: y[i][j] = x[i][j] + 2x[i][j+1] + 3x[i+1][j] + 4x[i+1][j+1] + 0.5
        let conv = |i: usize, j: usize| {
            x[i * 4 + j]
                + 2.0 * x[i * 4 + j + 1]
                + 3.0 * x[(i + 1) * 4 + j]
                + 4.0 * x[(i + 1) * 4 + j + 1]
                + 0.5
        };
        let y: Vec<Vec<f32>> = (0..2)
            .map(|i| (0..3).map(|j| conv(i, j)).collect())
            .collect();
        let want: Vec<f32> = (0..2)
            .map(|j| (y[0][j] + y[0][j + 1] + y[1][j] + y[1][j + 1]) / 4.0)
            .collect();
        assert_close(
            "conv → avg pool",
            &s.predict(&x).unwrap(),
            &want,
            1e-5,
            1e-6,
        );
    }
    // The same with a ReLU after the convolution (fused into its epilogue) and a bias that
    // makes the first column negative: y = max(conv − 54, 0).
    let m = Sequential::image(1, 3, 4)
        .conv2d(1, 2, 1, 0)
        .relu()
        .avg_pool(2, 1)
        .flatten()
        .linear(2);
    {
        let backend = w.open();
        let mut s = Session::new(backend, m.build().unwrap(), Sgd::default(), 0, 1).unwrap();
        s.set_param("0.weight", &[1.0, 2.0, 3.0, 4.0]).unwrap();
        s.set_param("0.bias", &[-54.0]).unwrap();
        s.set_param("4.weight", &[1.0, 0.0, 0.0, 1.0]).unwrap();
        s.set_param("4.bias", &[0.0, 0.0]).unwrap();
        let conv = |i: usize, j: usize| {
            (x[i * 4 + j]
                + 2.0 * x[i * 4 + j + 1]
                + 3.0 * x[(i + 1) * 4 + j]
                + 4.0 * x[(i + 1) * 4 + j + 1]
                - 54.0)
                .max(0.0)
        };
        assert!(conv(0, 0) == 0.0 && conv(1, 0) > 0.0);
        let want: Vec<f32> = (0..2)
            .map(|j| (conv(0, j) + conv(0, j + 1) + conv(1, j) + conv(1, j + 1)) / 4.0)
            .collect();
        assert_close(
            "conv → ReLU → avg pool",
            &s.predict(&x).unwrap(),
            &want,
            1e-5,
            1e-6,
        );
    }
    // Max pooling with stride 2, padding in the convolution.
    let m = Sequential::image(1, 4, 4)
        .max_pool(2, 2)
        .flatten()
        .linear(4);
    let x = vec![
        1.0, 9.0, 2.0, 0.0, 3.0, 4.0, 8.0, 7.0, -1.0, -2.0, 5.0, 6.0, -3.0, -4.0, 6.5, 0.0,
    ];
    let backend = w.open();
    let mut s = Session::new(backend, m.build().unwrap(), Sgd::default(), 0, 1).unwrap();
    let eye: Vec<f32> = (0..16)
        .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
        .collect();
    s.set_param("2.weight", &eye).unwrap();
    assert_close(
        "max pool 2×2/2",
        &s.predict(&x).unwrap(),
        &[9.0, 8.0, -1.0, 6.5],
        0.0,
        0.0,
    );
});

#[test]
fn conv_gradients_match_finite_differences() {
    let m = Sequential::image(2, 7, 7)
        .conv2d(3, 3, 1, 1)
        .batch_norm2d()
        .tanh()
        .max_pool(2, 2)
        .dropout2d(0.3)
        .conv2d(4, 2, 1, 0)
        .sigmoid()
        .avg_pool(2, 1)
        .flatten()
        .linear(3);
    finite_difference_check(None, m.build().unwrap(), 4, 21);
    // Strided convolution with padding.
    let m = Sequential::image(1, 8, 6)
        .conv2d(2, 3, 2, 1)
        .tanh()
        .flatten()
        .linear(3);
    finite_difference_check(None, m.build().unwrap(), 3, 22);
}

#[test]
fn cnn_steps_match_gpu_vs_cpu() {
    let Some(_) = gpu() else { return };
    let m = Sequential::image(1, 12, 12)
        .conv2d(8, 3, 1, 1)
        .batch_norm2d()
        .relu()
        .max_pool(2, 2)
        .dropout2d(0.2)
        .conv2d(16, 3, 1, 0)
        .relu()
        .avg_pool(2, 2)
        .flatten()
        .linear(32)
        .relu()
        .dropout(0.5)
        .linear(10);
    let g = m.build().unwrap();
    let mut runs = vec![];
    for backend in backends() {
        let what = backend.describe();
        let mut s = Session::new(backend, g.clone(), Sgd::w_mlp(), 3, 16).unwrap();
        for step in 0..3 {
            let (x, y) = batch(80 + step, 16, 144, 10);
            s.train_batch(&x, &y).unwrap();
        }
        let m = s.take_metrics(Mode::Train).unwrap();
        runs.push((m, s.params().unwrap(), s.state().unwrap(), what));
    }
    // Every backend against the CPU reference.
    for run in &runs[1..] {
        let what = &run.3;
        assert!(
            (runs[0].0.loss - run.0.loss).abs() < 1e-4,
            "{what}: {:?} vs {:?}",
            runs[0].0,
            run.0
        );
        for ((n, a), (_, b)) in runs[0]
            .1
            .iter()
            .zip(&run.1)
            .chain(runs[0].2.iter().zip(&run.2))
        {
            assert_close(&format!("{n} after 3 steps on {what}"), b, a, 2e-5, 2e-3);
        }
    }
}

#[test]
fn w_cnn_has_the_pytorch_parameter_count_and_checkpoint_shapes() {
    let g = Sequential::w_cnn(0.5).build().unwrap();
    // 32·25 + 32 + 64·800 + 64 + 1024·512 + 512 + 512·10 + 10, as torch counts it.
    assert_eq!(g.param_count(), 582_026);
    let dir = std::env::temp_dir().join(format!("shadeprop-wcnn-{}", std::process::id()));
    let mut s = Session::new(Box::new(Cpu::new()), g, Sgd::w_mlp(), 0, 2).unwrap();
    let p = dir.join("c.safetensors");
    shadeprop::train::checkpoint::save(&p, &mut s, &Default::default(), &[]).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("0.weight").unwrap().shape(), &[32, 1, 5, 5]);
    assert_eq!(st.tensor("3.weight").unwrap().shape(), &[64, 32, 5, 5]);
    assert_eq!(st.tensor("7.weight").unwrap().shape(), &[512, 1024]);
    shadeprop::train::checkpoint::load(&p, &mut s).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    // A linear layer straight after a convolution is refused with a hint.
    let e = Sequential::image(1, 8, 8)
        .conv2d(2, 3, 1, 0)
        .linear(3)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("add flatten() first"), "{e}");
    let e = Sequential::image(1, 4, 4)
        .conv2d(2, 5, 1, 0)
        .flatten()
        .linear(3)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("5x5 window"), "{e}");
}

/// W-CNN with batches of 8 makes conv1's weight gradient deep enough (K = 8 · 576) for the
/// GPU backend's split-K; a later program for another batch size adds pool buffers after
/// that backend's scratch buffer, and the two must not be confused. GPU equals CPU.
#[test]
fn split_k_survives_programs_added_later() {
    let Some(_) = gpu() else { return };
    let g = Sequential::w_cnn(0.5).build().unwrap();
    let mut runs = vec![];
    for backend in backends() {
        let mut s = Session::new(backend, g.clone(), Sgd::w_mlp(), 4, 8).unwrap();
        for (step, b) in [8usize, 7, 8].into_iter().enumerate() {
            let (x, y) = batch(90 + step as u64, b, 784, 10);
            s.train_batch(&x, &y).unwrap();
        }
        let (x, _) = batch(99, 5, 784, 10);
        let logits = s.predict(&x).unwrap();
        runs.push((s.params().unwrap(), logits));
    }
    for (p, l) in &runs[1..] {
        assert_close("logits after the steps", l, &runs[0].1, 1e-3, 1e-2);
        for ((n, a), (_, b)) in runs[0].0.iter().zip(p) {
            assert_close(&format!("{n} after 3 steps"), b, a, 2e-5, 2e-3);
        }
    }
}
