//! Augmentation: every transform GPU vs CPU, hand-computed images, inactive at inference,
//! training steps with augmentation GPU vs CPU, and the preview grid.

mod common;
use common::*;
use shadeprop::backend::check::run_kernel;
use shadeprop::backend::cpu::Cpu;
use shadeprop::backend::gpu::Gpu;
use shadeprop::backend::{Globals, Kernel};
use shadeprop::kernels::KernelParams;
use shadeprop::kernels::augment::AugmentParams;
use shadeprop::nn::Sequential;
use shadeprop::nn::augment::{Augment, Fill, Interp, Transform};
use shadeprop::optim::Sgd;
use shadeprop::session::Session;
use shadeprop::train::plot::preview_png;

fn g(step: u32) -> Globals {
    Globals {
        seed_lo: 77,
        step,
        ..Globals::default()
    }
}

/// Training-time augmentation of `n` images `[c, h, w]` with the draws of stream 3000.
fn words(n: usize, c: usize, h: usize, w: usize) -> [u32; 16] {
    AugmentParams {
        batch: n,
        channels: c,
        height: h,
        width: w,
        stream: 3000,
        train: true,
    }
    .to_words()
}

/// Both kernels on the CPU reference, the fast CPU backend and every GPU, compared.
fn check(gs: &mut [Gpu], name: &str, a: &Augment, n: usize, chw: (usize, usize, usize), atol: f32) {
    let (c, h, w) = chw;
    let x: Vec<f32> = rand_vec(90, n * c * h * w)
        .iter()
        .map(|v| v * 0.5 + 0.5)
        .collect();
    let p = words(n, c, h, w);
    let spec = a.spec(h, w);
    let out = vec![vec![0.0; x.len()]];
    for kernel in [Kernel::AugmentGeom, Kernel::AugmentPhoto] {
        let want = run_kernel(
            &mut Cpu::new(),
            kernel,
            p,
            &[x.clone(), spec.to_vec()],
            &out,
            &g(4),
        )
        .unwrap();
        // The fast CPU backend computes the same arithmetic in parallel: the same bits.
        let fast = run_kernel(
            &mut Cpu::fast(),
            kernel,
            p,
            &[x.clone(), spec.to_vec()],
            &out,
            &g(4),
        )
        .unwrap();
        assert_close(
            &format!("{name} {kernel:?} fast CPU"),
            &fast[0],
            &want[0],
            0.0,
            0.0,
        );
        for gpu in gs.iter_mut() {
            let got = run_kernel(gpu, kernel, p, &[x.clone(), spec.to_vec()], &out, &g(4)).unwrap();
            assert_close(&format!("{name} {kernel:?}"), &got[0], &want[0], atol, 1e-4);
        }
    }
}

#[test]
fn every_transform_matches_its_cpu_twin() {
    let mut gs = gpus();
    let d = Augment::default;
    let cases: Vec<(&str, Augment)> = vec![
        (
            "hflip",
            Augment {
                hflip: 1.0,
                interp: Interp::Nearest,
                ..d()
            },
        ),
        (
            "vflip",
            Augment {
                vflip: 0.5,
                interp: Interp::Nearest,
                ..d()
            },
        ),
        ("translate", d().translate(0.2, 0.1)),
        ("rotation constant fill", d().rotate(30.0)),
        (
            "rotation nearest fill",
            Augment {
                fill: Fill::Nearest,
                ..d().rotate(30.0)
            },
        ),
        (
            "rotation reflect fill",
            Augment {
                fill: Fill::Reflect,
                ..d().rotate(30.0)
            },
        ),
        (
            "zoom per axis",
            Augment {
                zoom: (0.8, 1.25),
                zoom_per_axis: true,
                ..d()
            },
        ),
        (
            "shear",
            Augment {
                shear: (-15.0, 15.0),
                ..d()
            },
        ),
        (
            "brightness",
            Augment {
                brightness: (-0.2, 0.2),
                ..d()
            },
        ),
        (
            "contrast",
            Augment {
                contrast: (0.5, 1.5),
                ..d()
            },
        ),
        (
            "noise",
            Augment {
                noise_std: 0.1,
                ..d()
            },
        ),
        (
            "random crop",
            Augment {
                crop_padding: 3,
                interp: Interp::Nearest,
                ..d()
            },
        ),
        (
            "cutout",
            Augment {
                cutout_size: 8,
                cutout_p: 1.0,
                ..d()
            },
        ),
        ("standardize", d().standardize(0.13, 0.31)),
        (
            "everything",
            Augment {
                hflip: 0.5,
                zoom: (0.9, 1.1),
                shear: (-5.0, 5.0),
                brightness: (-0.1, 0.1),
                contrast: (0.8, 1.2),
                noise_std: 0.05,
                crop_padding: 2,
                cutout_size: 6,
                cutout_p: 0.5,
                fill: Fill::Reflect,
                ..Augment::w_cnn(0.13, 0.31)
            },
        ),
    ];
    for (name, a) in &cases {
        check(&mut gs, name, a, 6, (1, 28, 28), 1e-4);
        check(&mut gs, name, a, 3, (3, 9, 7), 1e-4);
    }
    // Images larger than llvmpipe's loop budget per invocation (65535 iterations, with 20
    // Threefry rounds per noisy pixel): the kernels split them over a workgroup.
    let big = Augment {
        noise_std: 0.1,
        brightness: (-0.1, 0.1),
        contrast: (0.8, 1.2),
        cutout_size: 9,
        cutout_p: 1.0,
        ..Augment::default().rotate(20.0)
    };
    check(
        &mut gs,
        "photometric and geometric on 3x100x100",
        &big,
        2,
        (3, 100, 100),
        1e-4,
    );
}

fn one(a: &Augment, x: &[f32], chw: (usize, usize, usize), step: u32) -> Vec<f32> {
    a.apply_cpu(x, 1, chw, 77, 3000, step).unwrap()
}

#[test]
fn hand_computed_images() {
    // A one-pixel image rotated 90°: the pixel right of centre goes to the top (counter-
    // clockwise on screen, as Keras and torchvision).
    let mut x = vec![0.0; 25];
    x[2 * 5 + 4] = 1.0;
    let rot = Augment {
        rotation: (90.0, 90.0),
        interp: Interp::Nearest,
        ..Augment::default()
    };
    let y = one(&rot, &x, (1, 5, 5), 0);
    let mut want = vec![0.0; 25];
    want[2] = 1.0;
    assert_eq!(y, want);
    // A step edge translated by one pixel to the right, constant fill 0 on the left.
    let x: Vec<f32> = (0..24)
        .map(|i| if i % 6 >= 3 { 1.0 } else { 0.0 })
        .collect();
    let shift = Augment {
        translate_x: (1.0 / 6.0, 1.0 / 6.0),
        interp: Interp::Nearest,
        ..Augment::default()
    };
    let y = one(&shift, &x, (1, 4, 6), 0);
    let want: Vec<f32> = (0..24)
        .map(|i| if i % 6 >= 4 { 1.0 } else { 0.0 })
        .collect();
    assert_eq!(y, want);
    // A flip twice is the identity; once, it mirrors.
    let x = rand_vec(5, 35);
    let flip = Augment {
        hflip: 1.0,
        interp: Interp::Nearest,
        ..Augment::default()
    };
    let once = one(&flip, &x, (1, 5, 7), 1);
    assert_eq!(once[0], x[6]);
    assert_eq!(one(&flip, &once, (1, 5, 7), 2), x);
    // Fixed brightness +0.1, clipped to [0, 1]; then standardization.
    let x = vec![0.0, 0.5, 0.95, 1.0];
    let b = Augment {
        brightness: (0.1, 0.1),
        ..Augment::default()
    }
    .standardize(0.5, 0.5);
    let y = one(&b, &x, (1, 2, 2), 0);
    assert_close("brightness", &y, &[-0.8, 0.2, 1.0, 1.0], 1e-6, 1e-6);
    // Reflect fill: shifting right by 2 mirrors the first columns in.
    let x: Vec<f32> = (0..5).map(|v| v as f32).collect();
    let r = Augment {
        translate_x: (0.4, 0.4),
        fill: Fill::Reflect,
        interp: Interp::Nearest,
        ..Augment::default()
    };
    assert_eq!(one(&r, &x, (1, 1, 5), 0), vec![2.0, 1.0, 0.0, 1.0, 2.0]);
    assert!(
        Augment {
            rotation: (5.0, -5.0),
            ..Augment::default()
        }
        .validate()
        .is_err()
    );
}

/// A small CNN behind an augmentation layer with every random stage, and a batch for it.
fn augmented() -> (Sequential, Vec<f32>, Vec<f32>) {
    let a = Augment {
        cutout_size: 3,
        cutout_p: 0.5,
        noise_std: 0.05,
        ..Augment::w_cnn(0.2, 0.4)
    };
    let m = Sequential::image(1, 10, 10)
        .augment(a)
        .conv2d(4, 3, 1, 0)
        .relu()
        .max_pool(2, 2)
        .flatten()
        .linear(3);
    let (x, y) = batch(12, 8, 100, 3);
    let x: Vec<f32> = x.iter().map(|v| v * 0.5 + 0.5).collect();
    (m, x, y)
}

backend_test!(augmentation_is_inactive_at_inference, |backend| {
    let (m, x, _) = augmented();
    let mut s = Session::new(backend, m.build().unwrap(), Sgd::w_mlp(), 5, 8).unwrap();
    // Inference: only the standardization, identical for two calls.
    let p1 = s.predict(&x).unwrap();
    let plain = Sequential::image(1, 10, 10)
        .conv2d(4, 3, 1, 0)
        .relu()
        .max_pool(2, 2)
        .flatten()
        .linear(3);
    let mut q = Session::new(
        Box::new(Cpu::new()),
        plain.build().unwrap(),
        Sgd::w_mlp(),
        5,
        8,
    )
    .unwrap();
    for (name, v) in s.params().unwrap() {
        q.set_param(&name.replace("1.", "0.").replace("5.", "4."), &v)
            .unwrap();
    }
    let xs: Vec<f32> = x.iter().map(|v| (v - 0.2) / 0.4).collect();
    assert_close(
        "inference = standardize + model",
        &p1,
        &q.predict(&xs).unwrap(),
        1e-5,
        1e-4,
    );
});

/// Two training steps with augmentation give the CPU reference's parameters on every
/// backend.
#[test]
fn augmented_training_is_the_same_on_every_backend() {
    let (m, x, y) = augmented();
    let mut runs = vec![];
    for backend in backends() {
        let what = backend.describe();
        let mut s = Session::new(backend, m.build().unwrap(), Sgd::w_mlp(), 5, 8).unwrap();
        for _ in 0..2 {
            s.train_batch(&x, &y).unwrap();
        }
        runs.push((what, s.params().unwrap()));
    }
    let (_, want) = &runs[0];
    for (what, got) in &runs[1..] {
        for ((n, a), (_, b)) in want.iter().zip(got) {
            assert_close(
                &format!("{n} after 2 augmented steps on {what}"),
                b,
                a,
                1e-4,
                1e-2,
            );
        }
    }
}

#[test]
fn preview_grid_is_a_png() {
    let x: Vec<f32> = rand_vec(3, 4 * 28 * 28)
        .iter()
        .map(|v| v * 0.5 + 0.5)
        .collect();
    let a = Augment::w_cnn(0.13, 0.31);
    let y = a.apply_cpu(&x, 4, (1, 28, 28), 1, 3000, 0).unwrap();
    let p = std::env::temp_dir().join(format!("shadeprop-preview-{}.png", std::process::id()));
    preview_png(&p, &x, &y, 4, (28, 28), 2, a.standardize).unwrap();
    assert_eq!(&std::fs::read(&p).unwrap()[..4], b"\x89PNG");
    std::fs::remove_file(p).unwrap();
}

/// Pearson's chi-square statistic of `counts` against equal expected counts.
fn chi_square(counts: &[usize]) -> f64 {
    let n: usize = counts.iter().sum();
    let e = n as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

/// Run one augmentation kernel on the backend `w`; the output must be the CPU
/// reference's, bit for bit (integer draws, nearest sampling).
fn on_backend(
    w: Which,
    kernel: Kernel,
    a: &Augment,
    x: &[f32],
    n: usize,
    hw: (usize, usize),
) -> Vec<f32> {
    let (h, wd) = hw;
    let p = words(n, 1, h, wd);
    let spec = a.spec(h, wd);
    let out = vec![vec![0.0; x.len()]];
    let run = |w: Which| {
        let mut b = w.open();
        let got = run_kernel(
            b.as_mut(),
            kernel,
            p,
            &[x.to_vec(), spec.to_vec()],
            &out,
            &g(5),
        )
        .unwrap()
        .remove(0);
        (got, b.describe())
    };
    let (got, what) = run(w);
    if w != Which::CpuRef {
        let (want, _) = run(Which::CpuRef);
        assert_close(&format!("{kernel:?} {what}"), &got, &want, 0.0, 0.0);
    }
    got
}

backend_test!(crop_offsets_are_uniform_on_every_backend, |which: Which| {
    // One lit pixel in the middle of 9x9; with padding 2 it moves by (dx, dy), each of
    // −2..=2 with probability 1/5 (torchvision's RandomCrop(padding=2)).
    let (n, h, w) = (2000, 9, 9);
    let mut x = vec![0.0; n * h * w];
    for k in 0..n {
        x[k * h * w + 4 * w + 4] = 1.0;
    }
    let a = Augment {
        crop_padding: 2,
        interp: Interp::Nearest,
        ..Augment::default()
    };
    let out = on_backend(which, Kernel::AugmentGeom, &a, &x, n, (h, w));
    let (mut cx, mut cy) = (vec![0; 5], vec![0; 5]);
    for k in 0..n {
        let j = out[k * h * w..(k + 1) * h * w]
            .iter()
            .position(|&v| v == 1.0)
            .expect("the lit pixel stays inside");
        cx[j % w + 2 - 4] += 1;
        cy[j / w + 2 - 4] += 1;
    }
    eprintln!("crop offsets −2..=2 of {n}: x {cx:?}, y {cy:?}");
    // Chi-square with 4 degrees of freedom: P(> 18.47) = 0.001 for uniform offsets.
    for (axis, c) in [("x", &cx), ("y", &cy)] {
        let chi = chi_square(c);
        assert!(
            chi < 18.47,
            "offsets along {axis}: counts {c:?}, chi-square {chi:.1}"
        );
    }
});

backend_test!(
    cutout_positions_and_flips_are_uniform_on_every_backend,
    |which: Which| {
        // A 7x5 image of ones; a 1x1 cutout with p = 1 zeroes exactly the drawn centre, which
        // must be uniform over the 35 pixels.
        let (n, h, w) = (3500, 7, 5);
        let x = vec![1.0; n * h * w];
        let a = Augment {
            cutout_size: 1,
            cutout_p: 1.0,
            ..Augment::default()
        };
        let out = on_backend(which, Kernel::AugmentPhoto, &a, &x, n, (h, w));
        let mut c = vec![0; h * w];
        for k in 0..n {
            let img = &out[k * h * w..(k + 1) * h * w];
            assert_eq!(img.iter().filter(|&&v| v == 0.0).count(), 1);
            c[img.iter().position(|&v| v == 0.0).unwrap()] += 1;
        }
        // 34 degrees of freedom: P(> 65.25) = 0.001.
        let chi = chi_square(&c);
        assert!(chi < 65.25, "cutout centres: {c:?}, chi-square {chi:.1}");
        // Horizontal flips with p = 0.3 on a 1x2 image (1, 0): a flip gives (0, 1).
        let n = 4000;
        let x: Vec<f32> = (0..n).flat_map(|_| [1.0, 0.0]).collect();
        let a = Augment {
            hflip: 0.3,
            interp: Interp::Nearest,
            ..Augment::default()
        };
        let out = on_backend(which, Kernel::AugmentGeom, &a, &x, n, (1, 2));
        let flips = out.chunks(2).filter(|p| p[0] == 0.0).count();
        // Binomial(4000, 0.3): sd 29; 4 sd.
        assert!(
            (flips as f64 - 1200.0).abs() < 116.0,
            "{flips} flips of 4000"
        );
    }
);

#[test]
fn shear_y_zoom_per_axis_and_fixed_transforms_match_their_cpu_twin() {
    let mut gs = gpus();
    let d = Augment::default;
    let cases: Vec<(&str, Augment)> = vec![
        (
            "shear y",
            Augment {
                shear_y: (-20.0, 20.0),
                ..d()
            },
        ),
        (
            "shear x and y with rotation",
            Augment {
                shear: (-10.0, 15.0),
                shear_y: (-15.0, 10.0),
                fill: Fill::Reflect,
                ..d().rotate(20.0)
            },
        ),
        (
            "zoom x and y ranges",
            Augment {
                zoom: (0.8, 1.2),
                zoom_y: Some((1.1, 1.4)),
                ..d()
            },
        ),
        (
            "zoom x and y fixed",
            Augment {
                zoom: (0.7, 0.7),
                zoom_y: Some((1.3, 1.3)),
                fill: Fill::Nearest,
                ..d()
            },
        ),
    ];
    for (name, a) in &cases {
        check(&mut gs, name, a, 6, (1, 28, 28), 1e-4);
        check(&mut gs, name, a, 3, (3, 9, 7), 1e-4);
    }
    // A fixed transform with everything on, on every backend against the CPU reference.
    let t = Transform {
        hflip: true,
        translate: (1.5, -2.0),
        rotation: 12.0,
        zoom: (1.1, 0.9),
        shear: (8.0, -6.0),
        brightness: 0.05,
        contrast: 1.3,
        cutout: Some((3, 4, 3)),
        standardize: Some((0.1, 0.3)),
        ..Transform::default()
    };
    let x: Vec<f32> = rand_vec(91, 2 * 3 * 9 * 7)
        .iter()
        .map(|v| v * 0.5 + 0.5)
        .collect();
    let want = t.apply(&mut Cpu::new(), &x, 2, (3, 9, 7)).unwrap();
    let fast = t.apply(&mut Cpu::fast(), &x, 2, (3, 9, 7)).unwrap();
    assert_close("fixed transform fast CPU", &fast, &want, 0.0, 0.0);
    for gpu in gs.iter_mut() {
        let got = t.apply(gpu, &x, 2, (3, 9, 7)).unwrap();
        assert_close("fixed transform GPU", &got, &want, 1e-4, 1e-4);
    }
}

backend_test!(
    fixed_transforms_give_hand_computed_images_on_every_backend,
    |b| {
        let nearest = Transform {
            interp: Interp::Nearest,
            ..Transform::default()
        };
        // Shear y of 45° (tan = 1) on 5x5, x' = x, y' = y + (x − 2) about the centre (2, 2):
        // the column right of the centre moves down by one, the last by two. Source 1..25.
        let src: Vec<f32> = (1..=25).map(|v| v as f32).collect();
        #[rustfmt::skip]
    let sheared = [
        11.0, 7.0, 3.0, 0.0, 0.0,
        16.0, 12.0, 8.0, 4.0, 0.0,
        21.0, 17.0, 13.0, 9.0, 5.0,
        0.0, 22.0, 18.0, 14.0, 10.0,
        0.0, 0.0, 23.0, 19.0, 15.0,
    ];
        // Zoom x 2, y 1, bilinear, on rows 0 1 2 3 4: sampled at x = 2 + (x' − 2)/2.
        let ramp: Vec<f32> = (0..15).map(|i| (i % 5) as f32).collect();
        let zoomed: Vec<f32> = (0..15).map(|i| [1.0, 1.5, 2.0, 2.5, 3.0][i % 5]).collect();
        // Zoom y 0.5 (x 1) on rows of 1, 2, 3, 4, 5: sampled at y = 2 + 2(y' − 2).
        let rows: Vec<f32> = (0..25).map(|i| (i / 5 + 1) as f32).collect();
        let squeezed: Vec<f32> = (0..25).map(|i| [0.0, 1.0, 3.0, 5.0, 0.0][i / 5]).collect();
        // A 2x2 cutout centred on (1, 3) of a 4-row, 5-column image of ones: columns 0-1,
        // rows 2-3.
        let ones = vec![1.0; 20];
        let cut: Vec<f32> = (0..20)
            .map(|i| if i % 5 < 2 && i / 5 >= 2 { 0.0 } else { 1.0 })
            .collect();
        // Brightness 0.1 and contrast 2 around the mean 0.4: (x + 0.1 − 0.4)·2 + 0.4.
        let photo_in = vec![0.2, 0.4, 0.6];
        /// (name, transform, input, (c, h, w), expected output)
        type Case<'a> = (
            &'a str,
            Transform,
            &'a [f32],
            (usize, usize, usize),
            Vec<f32>,
        );
        let cases: Vec<Case> = vec![
            (
                "shear y 45°",
                Transform {
                    shear: (0.0, 45.0),
                    ..nearest
                },
                &src,
                (1, 5, 5),
                sheared.to_vec(),
            ),
            (
                "zoom x 2",
                Transform {
                    zoom: (2.0, 1.0),
                    ..Transform::default()
                },
                &ramp,
                (1, 3, 5),
                zoomed,
            ),
            (
                "zoom y 0.5",
                Transform {
                    zoom: (1.0, 0.5),
                    ..Transform::default()
                },
                &rows,
                (1, 5, 5),
                squeezed,
            ),
            (
                "cutout",
                Transform {
                    cutout: Some((1, 3, 2)),
                    ..nearest
                },
                &ones,
                (1, 4, 5),
                cut,
            ),
            (
                "hflip",
                Transform {
                    hflip: true,
                    ..nearest
                },
                &[1.0, 2.0, 3.0],
                (1, 1, 3),
                vec![3.0, 2.0, 1.0],
            ),
            (
                "translate 1 px",
                Transform {
                    translate: (1.0, 0.0),
                    ..nearest
                },
                &[1.0, 2.0, 3.0],
                (1, 1, 3),
                vec![0.0, 1.0, 2.0],
            ),
            (
                "brightness and contrast",
                Transform {
                    brightness: 0.1,
                    contrast: 2.0,
                    ..nearest
                },
                &photo_in,
                (1, 1, 3),
                vec![0.2, 0.6, 1.0],
            ),
        ];
        for (name, t, x, chw, want) in &cases {
            let got = t.apply(b.as_mut(), x, 1, *chw).unwrap();
            assert_close(
                &format!("{name} on {}", b.describe()),
                &got,
                want,
                1e-5,
                1e-5,
            );
        }
    }
);

/// A shear of nearly 90° (tan → ∞) is refused.
#[test]
fn a_shear_near_90_degrees_is_refused() {
    assert!(
        Transform {
            shear: (0.0, 89.5),
            ..Transform::default()
        }
        .apply(&mut Cpu::new(), &[0.0], 1, (1, 1, 1))
        .is_err()
    );
}

#[test]
fn config_keys_reach_the_new_spec_fields() {
    use shadeprop::app::RunConfig;
    let text = "[model]\npreset = \"w-cnn\"\n[augment]\npreset = \"none\"\nzoom = 0.1\nzoom_y = 0.2\nshear = 5.0\nshear_y = 7.0\n";
    let c = RunConfig::from_toml(text, std::path::Path::new("t.toml")).unwrap();
    let a = c.augment(0.0, 1.0).unwrap();
    assert_eq!(a.zoom, (0.9, 1.1));
    assert_eq!(a.zoom_y, Some((0.8, 1.2)));
    assert_eq!((a.shear, a.shear_y), ((-5.0, 5.0), (-7.0, 7.0)));
    let bad = text.replace("shear_y = 7.0", "shear_y = 95.0");
    let e = RunConfig::from_toml(&bad, std::path::Path::new("t.toml")).unwrap_err();
    assert!(e.to_string().contains("augment.shear_y"), "{e}");
}

backend_test!(
    integer_draws_above_16_bits_match_between_cpu_and_gpu,
    |which: Which| {
        // A 1x70001 image: the cutout's column is drawn in [0, 70001), a bound above 16 bits,
        // so the WGSL 32x32 → 64-bit product uses all four 16-bit partial products. Every
        // backend must pick the same columns (on_backend compares bit for bit).
        let (n, w) = (64, 70_001);
        let a = Augment {
            cutout_size: 1,
            cutout_p: 1.0,
            ..Augment::default()
        };
        let out = on_backend(
            which,
            Kernel::AugmentPhoto,
            &a,
            &vec![1.0; n * w],
            n,
            (1, w),
        );
        let cols: Vec<usize> = out
            .chunks(w)
            .map(|img| img.iter().position(|&v| v == 0.0).expect("one zero"))
            .collect();
        // 64 draws in [0, 70001): P(none at or above 65,536) = (65536/70001)^64 < 0.02.
        assert!(cols.iter().any(|&c| c >= 65_536), "{cols:?}");
    }
);

/// Each of these passed validation and turned every pixel of every image into NaN, ±inf
/// or 0; each is now an error naming its field.
#[test]
fn parameters_that_would_corrupt_every_image_are_refused() {
    let d = Augment::default;
    let cases = [
        ("augment.standardize.mean", d().standardize(f32::NAN, 1.0)),
        (
            "augment.standardize.mean",
            d().standardize(f32::INFINITY, 1.0),
        ),
        (
            "augment.standardize.std",
            d().standardize(0.0, f32::INFINITY),
        ),
        ("augment.standardize.std", d().standardize(0.0, 1e-30)),
        (
            "augment.fill",
            Augment {
                fill: Fill::Constant(f32::NAN),
                ..d()
            },
        ),
        (
            "augment.fill",
            Augment {
                fill: Fill::Constant(f32::INFINITY),
                ..d()
            },
        ),
        (
            "augment.noise_std",
            Augment {
                noise_std: f32::INFINITY,
                ..d()
            },
        ),
        (
            "augment.noise_std",
            Augment {
                noise_std: 1e38,
                ..d()
            },
        ),
        (
            "augment.zoom",
            Augment {
                zoom: (1e-25, 1e-25),
                zoom_per_axis: true,
                ..d()
            },
        ),
        (
            "augment.zoom",
            Augment {
                zoom: (1.0, 1e30),
                ..d()
            },
        ),
        (
            "augment.zoom_y",
            Augment {
                zoom_y: Some((1e-25, 1.0)),
                ..d()
            },
        ),
        ("augment.translate_x", d().translate(3e38, 0.0)),
        (
            "augment.rotation",
            Augment {
                rotation: (-1e30, 1e30),
                ..d()
            },
        ),
        (
            "augment.brightness",
            Augment {
                brightness: (-3e38, 3e38),
                ..d()
            },
        ),
    ];
    let x = vec![0.5f32; 2 * 8 * 8];
    for (field, a) in cases {
        let e = a.validate().expect_err(field).to_string();
        assert!(e.contains(field), "{field}: {e}");
        assert!(
            a.apply_cpu(&x, 2, (1, 8, 8), 0, 0, 0).is_err(),
            "{field} applied"
        );
    }
    let t = Transform::default;
    for (field, tr) in [
        (
            "augment.standardize.mean",
            Transform {
                standardize: Some((f32::NAN, 1.0)),
                ..t()
            },
        ),
        (
            "augment.fill",
            Transform {
                fill: Fill::Constant(f32::NAN),
                ..t()
            },
        ),
        (
            "augment.zoom",
            Transform {
                zoom: (1e-25, 1e-25),
                ..t()
            },
        ),
        (
            "transform.translate.x",
            Transform {
                translate: (3e38, 0.0),
                ..t()
            },
        ),
        (
            "transform.rotation",
            Transform {
                rotation: f32::NAN,
                ..t()
            },
        ),
    ] {
        let e = tr.spec(8, 8).expect_err(field).to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    // The documented bounds themselves are accepted.
    Augment {
        zoom: (0.001, 1000.0),
        ..d()
    }
    .validate()
    .unwrap();
}

/// sin and cos of 1e30 rad·π/180 differ between the CPU and the GPU; the host reduces the
/// angle modulo 360° in f64 first. f32(1e30) = 1000000015047466219876688855040, which is
/// 120 modulo 360 (NumPy: np.fmod(float(np.float32(1e30)), 360.0) = 120.0).
#[test]
fn huge_rotation_angles_are_reduced_on_the_host_so_backends_agree() {
    let x: Vec<f32> = rand_vec(5, 2 * 7 * 9)
        .iter()
        .map(|v| v * 0.5 + 0.5)
        .collect();
    let huge = Transform {
        rotation: 1e30,
        ..Transform::default()
    };
    let r120 = Transform {
        rotation: 120.0,
        ..Transform::default()
    };
    assert_eq!(huge.spec(7, 9).unwrap(), r120.spec(7, 9).unwrap());
    let want = r120.apply(&mut Cpu::new(), &x, 2, (1, 7, 9)).unwrap();
    assert_eq!(huge.apply(&mut Cpu::new(), &x, 2, (1, 7, 9)).unwrap(), want);
    for mut g in gpus() {
        let got = huge.apply(&mut g, &x, 2, (1, 7, 9)).unwrap();
        assert_close("rotation 1e30 on the GPU", &got, &want, 1e-4, 1e-4);
    }
    // −190° is 170° counter-clockwise.
    let m190 = Transform {
        rotation: -190.0,
        ..Transform::default()
    };
    assert_eq!(m190.spec(7, 9).unwrap()[6], 170.0);
}

/// The augmentation as people read it: only the transforms that are on, no Rust syntax.
#[test]
fn augmentation_prints_the_transforms_that_are_on() {
    use shadeprop::nn::augment::Augment;
    assert_eq!(Augment::default().to_string(), "none");
    let s = Augment::w_cnn(0.5, 0.25).to_string();
    assert_eq!(
        s,
        "rotation [-10, 10]°, translate x [-0.071428575, 0.071428575] y [-0.071428575, 0.071428575] (fractions of the size), standardize mean 0.5 std 0.25"
    );
}
