//! The matmul autotuner (src/backend/gpu/tune.rs): a shape class is timed on first use,
//! the fastest candidate remembered in a file beside the pipeline cache and reused by the
//! next process, reported, and overridden by a pin; an unreadable file is ignored; and
//! the choice never changes a bit, down to a whole training run. Its own test binary,
//! since it points the pipeline cache at a folder of its own for the process.

mod common;
use common::*;
use shadeprop::backend::Globals;
use shadeprop::backend::check::run_kernel;
use shadeprop::backend::gpu::{Gpu, GpuOptions, MatmulSelect, MatmulVariant, shape_class};
use shadeprop::kernels::KernelParams;
use shadeprop::kernels::matmul::MatMulParams;
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;

fn open(select: MatmulSelect) -> Option<Gpu> {
    gpu_with(GpuOptions::with_matmul(select))
}

/// The bits of `prm`'s product on `g` (random operands, fixed seeds), or the error.
fn try_product(g: &mut Gpu, prm: MatMulParams) -> shadeprop::Result<Vec<u32>> {
    let ins = [
        rand_vec(1, prm.m * prm.k),
        rand_vec(2, prm.k * prm.n),
        rand_vec(3, prm.n),
    ];
    let outs = [vec![0.0; prm.m * prm.n]];
    let got = run_kernel(
        g,
        prm.kernel(),
        prm.to_words(),
        &ins,
        &outs,
        &Globals::default(),
    )?;
    Ok(got[0].iter().map(|x| x.to_bits()).collect())
}

fn product(g: &mut Gpu, prm: MatMulParams) -> Vec<u32> {
    try_product(g, prm).expect("matmul runs")
}

#[test]
fn tuning_is_timed_remembered_reported_pinned_and_bit_neutral() {
    let dir = scratch_dir("tuning-cache");
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: set before any thread of this binary reads the environment (one test).
    unsafe { std::env::set_var("SHADEPROP_PIPELINE_CACHE", &dir) };
    // Every candidate is timed whatever the machine's speed (a driver that compiles at the
    // first dispatch, as lavapipe with a cold shader cache, could spend the 1 s default on
    // compiling, and a class not timed in full is not remembered).
    // SAFETY: as above.
    unsafe { std::env::set_var("SHADEPROP_TUNE_BUDGET_S", "600") };
    let prm = MatMulParams {
        m: 100,
        n: 72,
        k: 300,
        ta: true,
        bias: true,
        ..Default::default()
    };
    let class = shape_class(&prm);
    assert_eq!(class, "f32 TN m128 n128 k512");
    let Some(mut plain) = open(MatmulSelect::Default) else {
        return;
    };
    let want = product(&mut plain, prm);
    let choice = &plain.matmul_choices()[0];
    assert_eq!(
        (choice.class.as_str(), choice.how.as_str()),
        (class.as_str(), "default")
    );

    // On llvmpipe `auto` keeps the default kernel, untimed; on hardware it times.
    let mut auto = open(MatmulSelect::Auto).unwrap();
    assert_eq!(product(&mut auto, prm), want);
    let how = auto.matmul_choices()[0].how.clone();
    if auto.report().name.contains("llvmpipe") {
        assert_eq!(how, "default", "{}", auto.report());
    }

    // Timed: every candidate is timed, none excluded for different bits.
    let mut tuned = open(MatmulSelect::Tune).unwrap();
    assert!(tuned.report().to_string().contains("timed per shape class"));
    assert_eq!(product(&mut tuned, prm), want);
    let c = tuned.matmul_choices();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].how.starts_with("timed: "), "{}", c[0]);
    for v in MatmulVariant::all() {
        let expected = v != MatmulVariant::Portable || tuned.report().subgroup_size.is_none();
        if v != MatmulVariant::Subgroup || tuned.report().subgroup_size.is_some() {
            assert_eq!(c[0].how.contains(&format!("{v} ")), expected, "{}", c[0]);
        }
    }
    assert!(!c[0].how.contains("excluded"), "{}", c[0]);
    let chosen = c[0].variant;
    let (file, remembered) = tuned.remembered_matmul_choices();
    let file = file.expect("a tuning file");
    assert!(file.starts_with(&dir), "{}", file.display());
    assert_eq!(
        remembered,
        vec![(class.clone(), chosen.to_string())],
        "{}",
        c[0]
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&class) && text.contains(&chosen.to_string()),
        "{text}"
    );

    // The next process reuses it without timing.
    let mut again = open(MatmulSelect::Tune).unwrap();
    assert_eq!(product(&mut again, prm), want);
    let c = again.matmul_choices();
    assert_eq!((c[0].variant, c[0].how.as_str()), (chosen, "remembered"));

    // A pin wins over what is remembered.
    let pin = MatmulVariant::Tiled(shadeprop::backend::gpu::TILES[0]);
    let mut pinned = open(MatmulSelect::Pin(pin)).unwrap();
    assert_eq!(product(&mut pinned, prm), want);
    let c = pinned.matmul_choices();
    assert_eq!((c[0].variant, c[0].how.as_str()), (pin, "pinned"));

    // A damaged file is ignored (timed again, rewritten), never an error.
    std::fs::write(&file, b"{ not json").unwrap();
    let mut fresh = open(MatmulSelect::Tune).unwrap();
    assert_eq!(product(&mut fresh, prm), want);
    assert!(fresh.matmul_choices()[0].how.starts_with("timed: "));
    let why = fresh
        .remembered_file_ignored()
        .expect("a note on the damaged file");
    assert!(why.contains("ignored"), "{why}");
    assert!(std::fs::read_to_string(&file).unwrap().contains(&class));

    // An unknown variant name is a named error.
    let e = "tiled-7x7-1x1"
        .parse::<MatmulSelect>()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tiled-7x7-1x1") && e.contains("tiled-64x64-4x4"),
        "{e}"
    );

    // A whole training run (convolutions, whose im2col products include deep split-K
    // ones, and linear layers) is bit-identical under every pinned tile shape and the
    // default kernel.
    let run = |g: Gpu| {
        let m = Sequential::image(1, 12, 12)
            .conv2d(6, 3, 1, 1)
            .relu()
            .max_pool(2, 2)
            .flatten()
            .linear(40)
            .batch_norm()
            .relu()
            .dropout(0.3)
            .linear(4);
        let mut s = Session::new(Box::new(g), m.build().unwrap(), Sgd::w_mlp(), 11, 32).unwrap();
        for step in 0..4 {
            let (x, y) = batch(100 + step, 32, 144, 4);
            s.train_batch(&x, &y).unwrap();
        }
        let mut bits = vec![];
        for (_, v) in s.params().unwrap() {
            bits.extend(v.iter().map(|x| x.to_bits()));
        }
        bits
    };
    let reference = run(open(MatmulSelect::Default).unwrap());
    for t in shadeprop::backend::gpu::TILES {
        let v = MatmulVariant::Tiled(t);
        assert!(
            run(open(MatmulSelect::Pin(v)).unwrap()) == reference,
            "{v}: parameters differ"
        );
    }

    // The same choice by backend name (the CLI's `--backend`, a config's `backend`).
    let (b, why) = shadeprop::backend::open("gpu:tiled-64x64-4x4").unwrap();
    assert!(
        b.describe().contains("pinned tiled-64x64-4x4"),
        "{}",
        b.describe()
    );
    assert!(why.contains("tiled-64x64-4x4"), "{why}");
    for bad in ["gpu:fast", "gpu:", "GPU"] {
        let e = shadeprop::backend::open(bad).err().expect(bad).to_string();
        assert!(e.contains(bad) && e.contains("tiled-128x128-8x8"), "{e}");
        assert!(shadeprop::backend::check_name(bad).is_err());
    }
    shadeprop::backend::check_name("gpu:tune").unwrap();

    // The environment: empty is unset; a bad value does not override a backend name.
    // SAFETY: this binary's one test, on one thread.
    unsafe { std::env::set_var("SHADEPROP_MATMUL", "") };
    assert_eq!(GpuOptions::from_env().unwrap().matmul, MatmulSelect::Auto);
    unsafe { std::env::set_var("SHADEPROP_MATMUL", "garbage") };
    let e = GpuOptions::from_env().unwrap_err().to_string();
    assert!(
        e.contains("\"garbage\"") && e.contains("tiled-64x64-4x4"),
        "{e}"
    );
    let (b, _) =
        shadeprop::backend::open("gpu:default").expect("the name wins over the environment");
    assert!(b.describe().contains("default kernel"), "{}", b.describe());
    drop(b);
    unsafe { std::env::remove_var("SHADEPROP_MATMUL") };
    let long = format!("gpu:{}", "x".repeat(5000));
    let e = shadeprop::backend::open(&long).err().unwrap().to_string();
    assert!(e.len() < 600 && e.contains("5004 characters"), "{e}");

    llvmpipe_loop_limit_with_a_remembered_or_pinned_tile(&file);
    cache_files_that_are_not_regular_files(&dir, &file);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A shape class spans depths up to twice its smallest, so a tile remembered (or timed) for
/// a shallower product may pass llvmpipe's loop limit on a deeper one of the class
/// (tiled-128x128-8x8 fits K <= 3640 there): such a product runs the default kernel, and
/// the report says so. Pinned, the same tile is an error naming the pin, not the batch.
fn llvmpipe_loop_limit_with_a_remembered_or_pinned_tile(file: &std::path::Path) {
    let prm = MatMulParams {
        m: 1024,
        n: 256,
        k: 4000,
        ..Default::default()
    };
    let class = shape_class(&prm);
    assert_eq!(class, "f32 NN m1024 n256 k4096");
    let mut plain = open(MatmulSelect::Default).unwrap();
    let want = product(&mut plain, prm);
    let llvmpipe = plain.report().name.contains("llvmpipe");
    let text = serde_json::json!({
        "adapter": plain.report().name,
        "driver": plain.report().driver,
        "choices": { class.clone(): "tiled-128x128-8x8" },
    });
    drop(plain);
    std::fs::write(file, serde_json::to_vec_pretty(&text).unwrap()).unwrap();
    let mut tuned = open(MatmulSelect::Tune).unwrap();
    assert_eq!(product(&mut tuned, prm), want);
    let c = &tuned.matmul_choices()[0];
    assert!(c.how.starts_with("remembered"), "{c}");
    assert_eq!(c.how.contains("loop limit"), llvmpipe, "{c}");

    let pin = MatmulVariant::Tiled(shadeprop::backend::gpu::TILES[3]);
    let mut pinned = open(MatmulSelect::Pin(pin)).unwrap();
    let r = try_product(&mut pinned, prm);
    match (llvmpipe, r) {
        (true, Err(e)) => {
            let e = e.to_string();
            assert!(
                e.contains("pinned matmul variant tiled-128x128-8x8")
                    && e.contains("1024x256x4000"),
                "{e}"
            );
        }
        (true, Ok(_)) => panic!("llvmpipe ran a product past its loop limit"),
        (false, r) => assert_eq!(r.unwrap(), want),
    }
}

/// Cache files are read only when they are regular files of a sane size: a FIFO in the
/// remembered file's place (which would block a plain read forever) or a link to
/// /dev/zero (which would fill memory) is ignored, and a directory in its place, which
/// cannot be replaced, costs timing again but leaves no temporary file behind.
fn cache_files_that_are_not_regular_files(dir: &std::path::Path, file: &std::path::Path) {
    let prm = MatMulParams {
        m: 20,
        n: 24,
        k: 30,
        ..Default::default()
    };
    let _ = std::fs::remove_file(file);
    let fifo = std::process::Command::new("mkfifo").arg(file).status();
    assert!(fifo.is_ok_and(|s| s.success()), "mkfifo");
    let mut g = open(MatmulSelect::Tune).unwrap();
    assert!(g.remembered_matmul_choices().1.is_empty());
    product(&mut g, prm);
    drop(g);
    let _ = std::fs::remove_file(file);
    std::os::unix::fs::symlink("/dev/zero", file).unwrap();
    let g = open(MatmulSelect::Tune).unwrap();
    assert!(g.remembered_matmul_choices().1.is_empty());
    drop(g);
    let _ = std::fs::remove_file(file);
    std::fs::create_dir_all(file).unwrap();
    let mut g = open(MatmulSelect::Tune).unwrap();
    product(&mut g, prm);
    assert!(g.matmul_choices()[0].how.starts_with("timed: "));
    drop(g);
    let litter: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
    std::fs::remove_dir_all(file).unwrap();
}
