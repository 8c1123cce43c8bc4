//! IDX parsing errors, splits, standardization.

use std::io::Write;
use std::path::Path;

use shadeprop::Error;
use shadeprop::data::idx::{parse_u8, read_u8};
use shadeprop::data::{Dataset, Standardizer, load_idx_pair};

fn header(ndim: u8, dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, ndim];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

fn idx_msg(bytes: &[u8]) -> String {
    match parse_u8(bytes, Path::new("t.idx")) {
        Err(e @ Error::Idx { .. }) => e.to_string(),
        other => panic!("expected an IDX error, got {other:?}"),
    }
}

#[test]
fn malformed_idx_files_get_named_errors() {
    assert!(idx_msg(&[]).contains("0 bytes, shorter than the 4-byte magic"));
    assert!(idx_msg(&[1, 0, 8, 1]).contains("magic starts 01 00, expected 00 00"));
    assert!(idx_msg(&[0, 0, 0x0d, 1, 0, 0, 0, 0]).contains("element type 0x0d"));
    assert!(idx_msg(&[0, 0, 8, 3, 0, 0]).contains("shorter than the 16-byte header"));
    let mut v = header(3, &[2, 2, 2]);
    v.extend_from_slice(&[0; 7]);
    assert!(idx_msg(&v).contains("dimensions [2, 2, 2] need 8 data bytes, file has 7"));
    let v = header(4, &[u32::MAX, u32::MAX, u32::MAX, u32::MAX]);
    assert!(idx_msg(&v).contains("overflow"));
    let mut ok = header(1, &[3]);
    ok.extend_from_slice(&[1, 2, 3]);
    assert_eq!(parse_u8(&ok, Path::new("x")).unwrap().data, vec![1, 2, 3]);
}

#[test]
fn gzip_and_directory_and_label_checks() {
    let dir = std::env::temp_dir().join(format!("shadeprop-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Gzip round trip.
    let mut body = header(3, &[2, 2, 2]);
    body.extend_from_slice(&[0, 255, 0, 255, 255, 0, 255, 0]);
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    gz.write_all(&body).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
    // Labels: 2 labels, one out of range.
    let mut lab = header(1, &[2]);
    lab.extend_from_slice(&[3, 12]);
    std::fs::write(dir.join("train-labels-idx1-ubyte"), &lab).unwrap();
    let e = load_idx_pair(&dir, "train").unwrap_err().to_string();
    assert!(
        e.contains("label 12 at row 1") && e.contains("[0, 10)"),
        "{e}"
    );
    // Count mismatch.
    let mut lab = header(1, &[3]);
    lab.extend_from_slice(&[3, 1, 2]);
    std::fs::write(dir.join("train-labels-idx1-ubyte"), &lab).unwrap();
    let e = load_idx_pair(&dir, "train").unwrap_err().to_string();
    assert!(e.contains("3 labels for 2 images"), "{e}");
    // Valid.
    let mut lab = header(1, &[2]);
    lab.extend_from_slice(&[3, 1]);
    std::fs::write(dir.join("train-labels-idx1-ubyte"), &lab).unwrap();
    let ds = load_idx_pair(&dir, "train").unwrap();
    assert_eq!((ds.len(), ds.features), (2, 4));
    assert_eq!(ds.x[1], 1.0);
    // Corrupt gzip.
    std::fs::write(dir.join("bad.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    assert!(
        read_u8(&dir.join("bad.gz"))
            .unwrap_err()
            .to_string()
            .contains("corrupt gzip stream")
    );
    // A directory.
    assert!(
        read_u8(&dir)
            .unwrap_err()
            .to_string()
            .contains("is a directory")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn split_is_seeded_and_standardizer_fits_train_only() {
    let ds = Dataset {
        x: (0..1000).map(|i| i as f32).collect(),
        y: (0..1000).map(|i| (i % 10) as f32).collect(),
        features: 1,
        classes: 10,
        ..Default::default()
    };
    let (a, b) = ds.split(0.2, 7).unwrap();
    let (a2, _) = ds.split(0.2, 7).unwrap();
    let (a3, _) = ds.split(0.2, 8).unwrap();
    assert_eq!((a.len(), b.len()), (800, 200));
    assert_eq!(a, a2);
    assert_ne!(a, a3);
    let mut all: Vec<f32> = a.x.iter().chain(&b.x).copied().collect();
    all.sort_by(|p, q| p.partial_cmp(q).unwrap());
    assert_eq!(all, ds.x, "a split is a partition");
    let st = Standardizer::fit(&a).unwrap();
    let mut a_std = a.clone();
    st.apply(&mut a_std).unwrap();
    let mean: f32 = a_std.x.iter().sum::<f32>() / a_std.len() as f32;
    let var: f32 = a_std.x.iter().map(|v| v * v).sum::<f32>() / a_std.len() as f32;
    assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3);
    // The validation split is transformed with the training statistics, not its own.
    let mut b_std = b.clone();
    st.apply(&mut b_std).unwrap();
    // Computed in f64 and rounded once to f32.
    let want = ((b.x[0] as f64 - st.mean as f64) / st.std as f64) as f32;
    assert_eq!(b_std.x[0], want);
    assert!(ds.split(1.0, 0).is_err());
}

#[test]
fn three_way_stratified_and_kfold_splits() {
    use shadeprop::data::{DEFAULT_SPLIT, Scaler};
    let ds = Dataset {
        x: (0..1000).map(|i| i as f32).collect(),
        y: (0..1000).map(|i| if i < 900 { 0.0 } else { 1.0 }).collect(),
        features: 1,
        classes: 2,
        ..Default::default()
    };
    let (tr, va, te) = ds.split3(DEFAULT_SPLIT, 3).unwrap();
    assert_eq!((tr.len(), va.len(), te.len()), (700, 200, 100));
    let mut all: Vec<f32> = tr.x.iter().chain(&va.x).copied().collect();
    assert_eq!(all.len() + te.len(), 1000);
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all.dedup();
    assert_eq!(all.len(), 900, "train and validation are disjoint");
    assert!(ds.split3((0.5, 0.5, 0.5), 0).is_err());
    // Stratified: 10% of each class in validation (90 of class 0, 10 of class 1).
    let (tr, va) = ds.stratified_split(0.1, 4).unwrap();
    let ones = |d: &Dataset| d.y.iter().filter(|&&y| y == 1.0).count();
    assert_eq!((va.len(), ones(&va), ones(&tr)), (100, 10, 90));
    // k-fold: disjoint validation folds covering everything.
    let folds = ds.kfold(5, 9).unwrap();
    let mut seen = vec![0; 1000];
    for (t, v) in &folds {
        assert_eq!(t.len() + v.len(), 1000);
        v.iter().for_each(|&i| seen[i] += 1);
    }
    assert!(seen.iter().all(|&c| c == 1));
    assert!(ds.kfold(1, 0).is_err());
    // Scalers fitted on one split, applied to another.
    let pf = Scaler::fit_per_feature(&tr).unwrap();
    let mm = Scaler::fit_min_max(&tr).unwrap();
    let mut v2 = va.clone();
    mm.apply(&mut v2).unwrap();
    assert!(v2.x.iter().all(|&x| (-0.01..=1.01).contains(&x)));
    let mut t2 = tr.clone();
    pf.apply(&mut t2).unwrap();
    let mean: f32 = t2.x.iter().sum::<f32>() / t2.len() as f32;
    assert!(mean.abs() < 1e-3);
    for s in [pf, mm, Scaler::Global(Standardizer::fit(&tr).unwrap())] {
        assert_eq!(Scaler::from_json(&s.to_json()), Some(s));
    }
    let wrong = Dataset {
        x: vec![0.0; 4],
        y: vec![0.0; 2],
        features: 2,
        classes: 2,
        ..Default::default()
    };
    assert!(
        Scaler::fit_per_feature(&tr)
            .unwrap()
            .apply(&mut wrong.clone())
            .unwrap_err()
            .to_string()
            .contains("1 features, as fitted")
    );
}

#[cfg(feature = "image-folders")]
#[test]
fn image_folder_dataset() {
    use shadeprop::data::folder::{FolderOptions, load_image_folder};
    let root = std::env::temp_dir().join(format!("shadeprop-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (class, shade) in [("cats", 40u8), ("dogs", 200u8)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for k in 0..3u8 {
            let img = image::RgbImage::from_pixel(10, 6, image::Rgb([shade, shade + k, 0]));
            let ext = if k == 2 { "jpg" } else { "png" };
            img.save(root.join(class).join(format!("{k}.{ext}")))
                .unwrap();
        }
    }
    std::fs::write(root.join("cats").join("notes.txt"), "ignored").unwrap();
    let (ds, classes) = load_image_folder(
        &root,
        FolderOptions {
            width: 4,
            height: 3,
            rgb: true,
        },
    )
    .unwrap();
    assert_eq!(classes, ["cats", "dogs"]);
    assert_eq!((ds.len(), ds.features, ds.classes), (6, 3 * 3 * 4, 2));
    assert_eq!(ds.y, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    // Red channel first (NCHW), resized but uniform: 40/255 for the first cat.
    assert!((ds.x[0] - 40.0 / 255.0).abs() < 1e-6);
    assert!(
        ds.x[24..36].iter().all(|&v| v.abs() < 0.02),
        "the blue plane is ~0"
    );
    let (gray, _) = load_image_folder(
        &root,
        FolderOptions {
            width: 2,
            height: 2,
            rgb: false,
        },
    )
    .unwrap();
    assert_eq!(gray.features, 4);
    // Errors name the file or folder.
    std::fs::write(root.join("dogs").join("broken.png"), b"not a png").unwrap();
    let e = load_image_folder(
        &root,
        FolderOptions {
            width: 4,
            height: 3,
            rgb: true,
        },
    )
    .unwrap_err()
    .to_string();
    // Named as an image, not as an IDX file.
    assert!(
        e.starts_with("image ") && e.contains("broken.png") && e.contains("cannot decode"),
        "{e}"
    );
    let e = load_image_folder(
        &root.join("cats"),
        FolderOptions {
            width: 4,
            height: 3,
            rgb: true,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("image ") && e.contains("no class sub-folders"),
        "{e}"
    );
    std::fs::remove_dir_all(root).unwrap();
}

// A folder of one class folder would train a classifier on a phantom second class, and an
// empty class folder would be a class no sample teaches: both are refused, naming the
// folder, as a CSV target with one distinct value is.
#[cfg(feature = "image-folders")]
#[test]
fn an_image_folder_needs_two_classes_each_with_an_image() {
    use shadeprop::data::folder::{FolderOptions, load_image_folder};
    let root = std::env::temp_dir().join(format!("shadeprop-classes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let image = |class: &str| {
        std::fs::create_dir_all(root.join(class)).unwrap();
        image::GrayImage::from_pixel(2, 2, image::Luma([7]))
            .save(root.join(class).join("a.png"))
            .unwrap();
    };
    let opts = FolderOptions {
        width: 2,
        height: 2,
        rgb: false,
    };
    let refused = |want: &[&str]| {
        let e = load_image_folder(&root, opts).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, shadeprop::Error::Image { .. }) && want.iter().all(|w| msg.contains(w)),
            "{msg} lacks {want:?}"
        );
    };
    image("cats");
    refused(&["1 class folder (\"cats\")", "at least 2"]);
    std::fs::create_dir_all(root.join("dogs")).unwrap();
    std::fs::write(root.join("dogs").join("notes.txt"), "not an image").unwrap();
    refused(&["dogs", "holds no .png/.jpg image", "one image per class"]);
    image("dogs");
    let (ds, classes) = load_image_folder(&root, opts).unwrap();
    assert_eq!((classes.len(), ds.classes, ds.len()), (2, 2, 2));
    std::fs::remove_dir_all(root).unwrap();
}

/// A dataset with one feature per row and the given labels.
fn labelled(y: &[f32], classes: usize) -> Dataset {
    Dataset {
        x: (0..y.len()).map(|i| i as f32).collect(),
        y: y.to_vec(),
        features: 1,
        classes,
        ..Default::default()
    }
}

#[test]
fn constant_features_are_scaled_by_one_as_in_scikit_learn() {
    use shadeprop::data::Scaler;
    // Column 0 is constant (0.1, not exact in binary), column 1 is 1, 2, 3, 4.
    let train = Dataset {
        x: vec![0.1, 1.0, 0.1, 2.0, 0.1, 3.0, 0.1, 4.0],
        y: vec![0.0; 4],
        features: 2,
        classes: 1,
        ..Default::default()
    };
    let new = |a: f32, b: f32| Dataset {
        x: vec![a, b],
        y: vec![0.0],
        features: 2,
        classes: 1,
        ..Default::default()
    };
    // StandardScaler: mean (0.1, 2.5), scale (1 for the constant column, sqrt(1.25)).
    let mut d = new(0.6, 2.5 + 1.25f32.sqrt());
    Scaler::fit_per_feature(&train)
        .unwrap()
        .apply(&mut d)
        .unwrap();
    assert!((d.x[0] - 0.5).abs() < 1e-6, "constant column: {}", d.x[0]);
    assert!((d.x[1] - 1.0).abs() < 1e-6, "{}", d.x[1]);
    // MinMaxScaler: min (0.1, 1), range (1 for the constant column, 3).
    let mut d = new(0.6, 2.5);
    Scaler::fit_min_max(&train).unwrap().apply(&mut d).unwrap();
    assert!((d.x[0] - 0.5).abs() < 1e-6, "constant column: {}", d.x[0]);
    assert!((d.x[1] - 0.5).abs() < 1e-6, "{}", d.x[1]);
    // One global mean and std over a constant training set: scale 1.
    let flat = Dataset {
        x: vec![2.0; 6],
        y: vec![0.0; 3],
        features: 2,
        classes: 1,
        ..Default::default()
    };
    let st = Standardizer::fit(&flat).unwrap();
    let mut d = new(2.5, 1.5);
    st.apply(&mut d).unwrap();
    assert_eq!(d.x, [0.5, -0.5]);
    let mut d = new(2.5, 1.5);
    Scaler::Global(st).apply(&mut d).unwrap();
    assert_eq!(d.x, [0.5, -0.5]);
}

#[test]
fn mnist_pixels_never_inked_in_training_are_scaled_by_one() {
    use shadeprop::data::{Scaler, load_mnist};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let (train, test) = match load_mnist(&dir) {
        Ok(d) => d,
        Err(e) => {
            assert!(
                std::env::var("SHADEPROP_REQUIRE_GPU").is_err(),
                "MNIST missing in CI: {e}"
            );
            eprintln!("SKIPPED (no MNIST; run scripts/fetch-data.sh): {e}");
            return;
        }
    };
    // Pixels 141 and 645 are 0 in all 60,000 training images; test image 7024 has ink
    // (byte 24) on both. NumPy in float64 with scikit-learn's rule (scale 1 where the
    // variance is 0): (24/255 − 0) / 1 = 0.0941176488995552.
    let want = 0.094_117_65_f32;
    for (name, scaler) in [
        ("per feature", Scaler::fit_per_feature(&train).unwrap()),
        ("min-max", Scaler::fit_min_max(&train).unwrap()),
    ] {
        let mut t = test.take(7025).unwrap();
        scaler.apply(&mut t).unwrap();
        for pixel in [141, 645] {
            let got = t.x[7024 * 784 + pixel];
            assert!(
                (got - want).abs() < 1e-6,
                "{name}: pixel {pixel} of test image 7024 scaled to {got}, expected {want}"
            );
        }
    }
}

#[test]
fn bad_labels_in_idx_files_name_the_row_and_value() {
    let dir = std::env::temp_dir().join(format!("shadeprop-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut img = header(3, &[3, 1, 1]);
    img.extend_from_slice(&[0, 1, 2]);
    std::fs::write(dir.join("bad-images-idx3-ubyte"), &img).unwrap();
    for bad in [10u8, 255] {
        let mut lab = header(1, &[3]);
        lab.extend_from_slice(&[0, 9, bad]);
        std::fs::write(dir.join("bad-labels-idx1-ubyte"), &lab).unwrap();
        let e = load_idx_pair(&dir, "bad").unwrap_err().to_string();
        for part in [
            format!("label {bad}"),
            "row 2".into(),
            "bad-labels-idx1-ubyte".into(),
            "[0, 10)".into(),
        ] {
            assert!(e.contains(&part), "{e:?} lacks {part:?}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_labels_in_memory_are_refused_by_every_split() {
    for bad in [10.0, 255.0, -1.0, 2.5, f32::NAN] {
        let mut y: Vec<f32> = (0..20).map(|i| (i % 10) as f32).collect();
        y[13] = bad;
        let ds = labelled(&y, 10);
        let results = [
            ("split", ds.split(0.5, 0).map(|_| ())),
            ("split3", ds.split3((0.5, 0.25, 0.25), 0).map(|_| ())),
            ("stratified_split", ds.stratified_split(0.5, 0).map(|_| ())),
            ("kfold", ds.kfold(2, 0).map(|_| ())),
        ];
        for (what, r) in results {
            let e = match r {
                Err(e) => e.to_string(),
                Ok(()) => panic!("{what} accepted label {bad}"),
            };
            assert!(
                e.contains(&format!("label {bad}"))
                    && e.contains("row 13")
                    && e.contains("[0, 10)"),
                "{what}: {e}"
            );
        }
    }
}

#[cfg(feature = "image-folders")]
#[test]
fn image_folder_labels_are_class_indices_whatever_the_folder_names() {
    use shadeprop::data::folder::{FolderOptions, load_image_folder};
    let root = std::env::temp_dir().join(format!("shadeprop-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for class in ["10", "-1", "2.5", "NaN", "255"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        image::GrayImage::from_pixel(2, 2, image::Luma([7]))
            .save(root.join(class).join("a.png"))
            .unwrap();
    }
    let opts = FolderOptions {
        width: 2,
        height: 2,
        rgb: false,
    };
    let (ds, classes) = load_image_folder(&root, opts).unwrap();
    // Sorted names, by byte: "-1" < "10" < "2.5" < "255" < "NaN".
    assert_eq!(classes, ["-1", "10", "2.5", "255", "NaN"]);
    assert_eq!(ds.y, [0.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(ds.classes, 5);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn stratified_split_refuses_a_class_too_small_for_both_sides() {
    // Classes of sizes 5, 4, 1 (scikit-learn: "The least populated class in y has only 1
    // member, which is too few").
    let y: Vec<f32> = [0.0; 5]
        .iter()
        .chain(&[1.0; 4])
        .chain(&[2.0])
        .copied()
        .collect();
    let ds = labelled(&y, 3);
    let e = ds.stratified_split(0.5, 0).unwrap_err().to_string();
    assert!(e.contains("class 2") && e.contains("1 sample"), "{e}");
    // Two members put one on each side.
    let mut y2 = y.clone();
    y2.push(2.0);
    let (tr, va) = labelled(&y2, 3).stratified_split(0.5, 0).unwrap();
    for c in 0..3 {
        let count = |d: &Dataset| d.y.iter().filter(|&&v| v == c as f32).count();
        assert!(count(&tr) >= 1 && count(&va) >= 1, "class {c}");
    }
    // Classes of 30 and 3 at 0.1: round(0.3) = 0 would leave class 1 out of validation;
    // it gets 1 (and class 0 its 3).
    let y: Vec<f32> = (0..33).map(|i| if i < 30 { 0.0 } else { 1.0 }).collect();
    let (tr, va) = labelled(&y, 2).stratified_split(0.1, 1).unwrap();
    let ones = |d: &Dataset| d.y.iter().filter(|&&v| v == 1.0).count();
    assert_eq!((va.len(), ones(&va), tr.len(), ones(&tr)), (4, 1, 29, 2));
}

#[test]
fn a_validation_split_that_rounds_to_no_samples_is_refused() {
    let ds = labelled(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0], 2);
    // 10 · 0.04 = 0.4 rounds to 0.
    for (what, r) in [
        ("split", ds.split(0.04, 0).map(|_| ())),
        ("split3", ds.split3((0.92, 0.04, 0.04), 0).map(|_| ())),
    ] {
        let e = r.expect_err(what).to_string();
        assert!(e.contains("0 samples") && e.contains("10"), "{what}: {e}");
    }
    // A fraction of exactly 0 still means no validation split.
    assert_eq!(ds.split(0.0, 0).unwrap().1.len(), 0);
}

#[test]
fn dataset_new_checks_every_label_and_the_shape() {
    for bad in [10.0, 255.0, -1.0, 2.5, f32::NAN] {
        let mut y: Vec<f32> = (0..6).map(|i| i as f32).collect();
        y[4] = bad;
        match Dataset::new(vec![0.0; 12], y, 2, 10) {
            Err(Error::Label {
                value,
                row,
                classes,
                ..
            }) => {
                assert_eq!((row, classes), (4, 10));
                assert!(value.to_bits() == bad.to_bits(), "{value} vs {bad}");
            }
            other => panic!("label {bad}: {other:?}"),
        }
    }
    assert!(matches!(
        Dataset::new(vec![0.0; 5], vec![0.0, 1.0], 2, 2),
        Err(Error::Shape { .. })
    ));
    let ok = Dataset::new(vec![0.0; 4], vec![0.0, 1.0], 2, 2).unwrap();
    assert_eq!(ok.len(), 2);
}

#[test]
fn stratified_kfold_spreads_each_class_evenly_and_refuses_small_classes() {
    // Classes of 7, 5 and 3 samples over 3 folds: a class of count m puts ⌊m/3⌋ or
    // ⌈m/3⌉ in every fold (scikit-learn's StratifiedKFold), the folds hold 5 each.
    let y: Vec<f32> = [0.0; 7]
        .iter()
        .chain(&[1.0; 5])
        .chain(&[2.0; 3])
        .copied()
        .collect();
    let ds = labelled(&y, 3);
    let folds = ds.stratified_kfold(3, 8).unwrap();
    assert_eq!(folds.len(), 3);
    let mut seen = vec![0; y.len()];
    for (train, val) in &folds {
        assert_eq!(train.len() + val.len(), y.len());
        assert_eq!(val.len(), 5);
        assert!(train.iter().all(|i| !val.contains(i)));
        val.iter().for_each(|&i| seen[i] += 1);
        for (c, m) in [(0.0, 7), (1.0, 5), (2.0, 3)] {
            let k = val.iter().filter(|&&i| y[i] == c).count();
            assert!(
                k == m / 3 || k == m.div_ceil(3),
                "class {c}: {k} of {m} in a fold"
            );
        }
    }
    assert!(seen.iter().all(|&s| s == 1), "each sample validated once");
    assert_eq!(ds.stratified_kfold(3, 8).unwrap(), folds, "seeded");
    // Fewer members than folds: refused, naming the class and its count.
    let e = ds.stratified_kfold(4, 0).unwrap_err().to_string();
    assert!(
        e.contains("class 2 has 3 samples") && e.contains("4 folds"),
        "{e}"
    );
    assert!(ds.stratified_kfold(1, 0).is_err());
    let mut bad = ds.clone();
    bad.y[3] = 7.0;
    assert!(matches!(
        bad.stratified_kfold(2, 0),
        Err(Error::Label { row: 3, .. })
    ));
}

/// Runs `f`, turning a panic into a failure that names `what`.
fn no_panic<T>(what: &str, f: impl FnOnce() -> shadeprop::Result<T>) -> shadeprop::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| panic!("{what} panicked instead of returning an error"))
}

#[test]
fn dataset_new_refuses_no_features_no_classes_and_non_finite_values() {
    let e = Dataset::new(vec![], vec![0.0, 1.0], 0, 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("feature"), "{e}");
    let e = Dataset::new(vec![], vec![], 3, 0).unwrap_err().to_string();
    assert!(e.contains("class"), "{e}");
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        // Row 1, feature 2 of 3.
        let mut x = vec![0.5f32; 9];
        x[5] = bad;
        let e = Dataset::new(x, vec![0.0, 1.0, 0.0], 3, 2).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NonFiniteInput {
                    row: 1,
                    feature: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&bad.to_string()), "{e}");
    }
}

/// A dataset built field by field whose x is one value short of 2 rows · 2 features, one
/// with no features and one with no classes: every data function refuses them.
#[test]
fn malformed_datasets_are_errors_in_every_data_function_never_panics() {
    use shadeprop::data::Scaler;
    let malformed = [
        Dataset {
            x: vec![0.0; 3],
            y: vec![0.0, 1.0],
            features: 2,
            classes: 2,
            ..Default::default()
        },
        Dataset {
            x: vec![],
            y: vec![0.0, 1.0, 0.0, 1.0],
            features: 0,
            classes: 2,
            ..Default::default()
        },
        Dataset {
            x: vec![0.0; 4],
            y: vec![],
            features: 2,
            classes: 0,
            ..Default::default()
        },
    ];
    let fitted = Scaler::PerFeature {
        mean: vec![0.0, 0.0],
        std: vec![1.0, 1.0],
    };
    let minmax = Scaler::MinMax {
        min: vec![0.0, 0.0],
        max: vec![1.0, 1.0],
    };
    let global = Scaler::Global(Standardizer {
        mean: 0.0,
        std: 1.0,
    });
    for ds in malformed {
        let tag = format!(
            "{} values, {} rows, {} features, {} classes",
            ds.x.len(),
            ds.len(),
            ds.features,
            ds.classes
        );
        let r: Vec<(&str, shadeprop::Result<()>)> = vec![
            ("validate", ds.validate()),
            (
                "fit_per_feature",
                no_panic("fit_per_feature", || {
                    Scaler::fit_per_feature(&ds).map(|_| ())
                }),
            ),
            (
                "fit_min_max",
                no_panic("fit_min_max", || Scaler::fit_min_max(&ds).map(|_| ())),
            ),
            (
                "Standardizer::fit",
                no_panic("Standardizer::fit", || Standardizer::fit(&ds).map(|_| ())),
            ),
            (
                "apply per feature",
                no_panic("apply", || fitted.apply(&mut ds.clone())),
            ),
            (
                "apply min max",
                no_panic("apply", || minmax.apply(&mut ds.clone())),
            ),
            (
                "apply global",
                no_panic("apply", || global.apply(&mut ds.clone())),
            ),
            ("split", no_panic("split", || ds.split(0.5, 0).map(|_| ()))),
            (
                "split3",
                no_panic("split3", || ds.split3((0.5, 0.25, 0.25), 0).map(|_| ())),
            ),
            (
                "stratified_split",
                no_panic("stratified_split", || {
                    ds.stratified_split(0.5, 0).map(|_| ())
                }),
            ),
            ("kfold", no_panic("kfold", || ds.kfold(2, 0).map(|_| ()))),
            (
                "stratified_kfold",
                no_panic("stratified_kfold", || ds.stratified_kfold(2, 0).map(|_| ())),
            ),
        ];
        for (what, r) in r {
            let e = match r {
                Err(e) => e.to_string(),
                Ok(()) => panic!("{what} accepted a malformed dataset ({tag})"),
            };
            assert!(e.contains("dataset"), "{what} ({tag}): {e}");
        }
    }
}

#[test]
fn every_scaler_fit_refuses_non_finite_values_naming_row_and_column() {
    use shadeprop::data::Scaler;
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        // Built field by field (Dataset::new refuses it): row 1, feature 1.
        let ds = Dataset {
            x: vec![1.0, 2.0, 3.0, bad, 5.0, 6.0],
            y: vec![0.0, 1.0, 0.0],
            features: 2,
            classes: 2,
            ..Default::default()
        };
        for (what, r) in [
            ("fit_per_feature", Scaler::fit_per_feature(&ds).map(|_| ())),
            ("fit_min_max", Scaler::fit_min_max(&ds).map(|_| ())),
            ("Standardizer::fit", Standardizer::fit(&ds).map(|_| ())),
        ] {
            let e = r.expect_err(what);
            assert!(
                matches!(
                    e,
                    Error::NonFiniteInput {
                        row: 1,
                        feature: 1,
                        ..
                    }
                ),
                "{what}: {e}"
            );
        }
    }
}

/// Columns of ±3e38 (finite f32): max − min and x − mean overflow f32 but not f64.
/// Expected values from NumPy in float64: the column [3e38, −3e38, 3e38, 3e38] (as f32)
/// has mean 1.5000000027488779e38, population std 2.598076216114512e38 and standardizes
/// to [0.57735027, −1.73205081, 0.57735027, 0.57735027]; min-max gives [1, 0, 1, 1].
#[test]
fn extreme_finite_values_are_scaled_as_in_f64() {
    use shadeprop::data::Scaler;
    let col = vec![3e38f32, -3e38, 3e38, 3e38];
    let ds = Dataset::new(col.clone(), vec![0.0; 4], 1, 1).unwrap();
    let z = [0.57735027f32, -1.7320508, 0.57735027, 0.57735027];
    for (what, sc, want) in [
        (
            "min max",
            Scaler::fit_min_max(&ds).unwrap(),
            vec![1.0f32, 0.0, 1.0, 1.0],
        ),
        (
            "per feature",
            Scaler::fit_per_feature(&ds).unwrap(),
            z.to_vec(),
        ),
        (
            "global",
            Scaler::Global(Standardizer::fit(&ds).unwrap()),
            z.to_vec(),
        ),
    ] {
        let mut d = ds.clone();
        sc.apply(&mut d).unwrap();
        for (g, w) in d.x.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-6,
                "{what}: got {:?}, expected {want:?}",
                d.x
            );
        }
    }
    // Two columns of opposite sign, as the adversarial probe: [1, 0, 0, 1].
    let ds = Dataset::new(vec![3e38, -3e38, -3e38, 3e38], vec![0.0, 1.0], 2, 2).unwrap();
    let mut d = ds.clone();
    Scaler::fit_min_max(&ds).unwrap().apply(&mut d).unwrap();
    assert_eq!(d.x, [1.0, 0.0, 0.0, 1.0]);
}

#[test]
fn stored_scalers_with_invalid_scales_or_ranges_are_refused() {
    use serde_json::json;
    use shadeprop::data::Scaler;
    for v in [
        json!({"kind": "per_feature", "mean": [0.0], "std": [-0.0]}),
        json!({"kind": "per_feature", "mean": [0.0], "std": [0.0]}),
        json!({"kind": "per_feature", "mean": [0.0], "std": [-2.0]}),
        json!({"kind": "per_feature", "mean": [0.0], "std": [1e39]}),
        json!({"kind": "per_feature", "mean": [1e39], "std": [1.0]}),
        json!({"kind": "per_feature", "mean": [0.0, 0.0], "std": [1.0]}),
        json!({"kind": "global", "mean": 0.0, "std": -0.0}),
        json!({"kind": "global", "mean": 0.0, "std": -1.0}),
        json!({"kind": "min_max", "min": [2.0], "max": [1.0]}),
        json!({"kind": "min_max", "min": [-1e39], "max": [1.0]}),
    ] {
        assert_eq!(Scaler::from_json(&v), None, "accepted {v}");
    }
    // Built by hand: apply refuses it rather than dividing by it.
    let mut ds = Dataset::new(vec![1.0, 2.0], vec![0.0, 1.0], 1, 2).unwrap();
    for sc in [
        Scaler::PerFeature {
            mean: vec![0.0],
            std: vec![f32::NAN],
        },
        Scaler::PerFeature {
            mean: vec![f32::INFINITY],
            std: vec![1.0],
        },
        Scaler::MinMax {
            min: vec![0.0],
            max: vec![f32::NAN],
        },
        Scaler::Global(Standardizer {
            mean: 0.0,
            std: -0.0,
        }),
    ] {
        assert!(sc.apply(&mut ds).is_err(), "{sc:?} applied");
    }
    assert_eq!(ds.x, [1.0, 2.0], "untouched");
}

#[test]
fn empty_datasets_and_k_beyond_the_samples_are_refused_by_every_split() {
    let empty = Dataset {
        x: vec![],
        y: vec![],
        features: 2,
        classes: 2,
        ..Default::default()
    };
    let r = [
        (
            "split",
            no_panic("split", || empty.split(0.5, 0).map(|_| ())),
        ),
        (
            "split3",
            no_panic("split3", || empty.split3((0.7, 0.2, 0.1), 0).map(|_| ())),
        ),
        (
            "stratified_split",
            no_panic("stratified_split", || {
                empty.stratified_split(0.5, 0).map(|_| ())
            }),
        ),
        ("kfold", no_panic("kfold", || empty.kfold(2, 0).map(|_| ()))),
        (
            "stratified_kfold",
            no_panic("stratified_kfold", || {
                empty.stratified_kfold(5, 0).map(|_| ())
            }),
        ),
        (
            "stratified_kfold k = MAX",
            no_panic("stratified_kfold", || {
                empty.stratified_kfold(usize::MAX, 0).map(|_| ())
            }),
        ),
    ];
    for (what, r) in r {
        let e = r.expect_err(what);
        assert!(matches!(e, Error::Empty { .. }), "{what}: {e}");
    }
    let ten = labelled(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0], 2);
    for k in [11, usize::MAX] {
        for (what, r) in [
            ("kfold", no_panic("kfold", || ten.kfold(k, 0).map(|_| ()))),
            (
                "stratified_kfold",
                no_panic("stratified_kfold", || {
                    ten.stratified_kfold(k, 0).map(|_| ())
                }),
            ),
        ] {
            let e = r.expect_err(what).to_string();
            assert!(
                e.contains(&k.to_string()) && e.contains("10 samples"),
                "{what}: {e}"
            );
        }
    }
}

#[test]
fn gather_take_check_shape_and_stored_scaler_errors_name_what_is_wrong() {
    use shadeprop::data::Scaler;
    let short = Dataset {
        x: vec![0.0; 3],
        y: vec![0.0, 1.0],
        features: 2,
        classes: 2,
        ..Default::default()
    };
    let e = short.check_shape().unwrap_err().to_string();
    assert!(
        e.contains("2 rows · 2 features = 4 values") && e.contains("[3]"),
        "{e}"
    );
    assert!(no_panic("gather", || short.gather(&[1])).is_err());
    assert!(no_panic("take", || short.take(2)).is_err());
    let ds = labelled(&[0.0, 1.0, 0.0], 2);
    ds.check_shape().unwrap();
    let e = ds.gather(&[0, 3]).unwrap_err().to_string();
    assert!(e.contains("[3]") && e.contains("< 3"), "{e}");
    assert_eq!(ds.gather(&[2, 0]).unwrap().x, [2.0, 0.0]);
    assert_eq!(ds.take(10).unwrap(), ds);
    let v = serde_json::json!({"kind": "per_feature", "mean": [0.0, 1.0], "std": [1.0, -0.0]});
    let e = Scaler::try_from_json(&v).unwrap_err().to_string();
    assert!(
        e.contains("scaler.std") && e.contains("-0 (feature 1)"),
        "{e}"
    );
}

/// scikit-learn refuses a stratified split whose validation (or training) side cannot hold
/// one sample of every class (`test_size` below the number of classes); taking one per
/// class anyway would silently exceed the fraction asked for (10 classes × 3 samples at
/// 0.1 would give 10 validation samples, a third of the data).
#[test]
fn stratified_split_refuses_sides_smaller_than_the_number_of_classes() {
    for (per_class, frac, ok) in [
        (3usize, 0.1f32, false),
        (5, 0.1, false),
        (5, 0.2, true),
        (10, 0.95, false),
    ] {
        let n = 10 * per_class;
        let y: Vec<f32> = (0..n).map(|i| (i % 10) as f32).collect();
        let ds = Dataset::new(vec![0.5; n], y, 1, 10).unwrap();
        let r = ds.stratified_split(frac, 0);
        match (ok, r) {
            (true, Ok((tr, va))) => {
                // ⌈0.2·50⌉ = 10 validation samples, one per class.
                assert_eq!((tr.len(), va.len()), (40, 10));
            }
            (false, Err(e)) => {
                let m = e.to_string();
                assert!(m.contains("10 classes"), "{m}");
            }
            (ok, r) => panic!(
                "{per_class} per class at {frac}: expected ok={ok}, got {:?}",
                r.map(|(a, b)| (a.len(), b.len()))
            ),
        }
    }
}

/// Arrays a user already holds become a dataset of any task through `Dataset::for_task`,
/// checked: shapes, targets in range for the task (row and column named), finite features,
/// and per-sample weights that are finite and >= 0; splits keep the rows' targets and
/// weights together.
#[test]
fn datasets_of_every_task_from_slices_are_validated() {
    use shadeprop::data::Task;
    let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
    // Multilabel: 4 rows of 3 features and 2 targets.
    let y = vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
    let ds = Dataset::for_task(Task::Multilabel, x.clone(), y.clone(), 3, 2).unwrap();
    assert_eq!((ds.len(), ds.width(), ds.classes), (4, 2, 2));
    assert_eq!(ds.target_row(2), &[0.0, 0.0]);
    // A 0/1 target of 2 is refused with its row and column.
    let mut bad = y.clone();
    bad[5] = 2.0;
    let e = Dataset::for_task(Task::Multilabel, x.clone(), bad, 3, 2).unwrap_err();
    assert!(
        matches!(
            e,
            shadeprop::Error::Target {
                row: 2,
                column: 1,
                ..
            }
        ),
        "{e}"
    );
    // Regression: any finite value; NaN refused.
    let r =
        Dataset::for_task(Task::Regression, x.clone(), vec![1e6, -3.5, 0.0, 7.0], 3, 1).unwrap();
    assert_eq!(r.task, Task::Regression);
    let e = Dataset::for_task(
        Task::Regression,
        x.clone(),
        vec![1.0, f32::NAN, 0.0, 7.0],
        3,
        1,
    )
    .unwrap_err();
    assert!(matches!(e, shadeprop::Error::Target { row: 1, .. }), "{e}");
    // Binary takes one target per row; 4 rows need 4 targets.
    assert!(Dataset::for_task(Task::Binary, x.clone(), vec![0.0; 8], 3, 2).is_err());
    let e = Dataset::for_task(Task::Binary, x.clone(), vec![0.0; 3], 3, 1).unwrap_err();
    assert!(matches!(e, shadeprop::Error::Shape { .. }), "{e}");
    // A non-finite feature names its row and feature.
    let mut xn = x.clone();
    xn[7] = f32::INFINITY;
    let e = Dataset::for_task(Task::Binary, xn, vec![0.0, 1.0, 0.0, 1.0], 3, 1).unwrap_err();
    assert!(
        matches!(
            e,
            shadeprop::Error::NonFiniteInput {
                row: 2,
                feature: 1,
                ..
            }
        ),
        "{e}"
    );
    // Weights: length and values checked; a split keeps each row's weight.
    let b = Dataset::for_task(Task::Binary, x, vec![0.0, 1.0, 0.0, 1.0], 3, 1).unwrap();
    assert!(b.clone().with_weights(vec![1.0; 3]).is_err());
    assert!(b.clone().with_weights(vec![1.0, -1.0, 1.0, 1.0]).is_err());
    // Out of range (the weighted sums would leave f32), or all zero (nothing trains).
    assert!(b.clone().with_weights(vec![1e38, 1.0, 1.0, 1.0]).is_err());
    let all_zero = Dataset {
        weights: Some(vec![0.0; 4]),
        ..b.clone()
    };
    assert!(
        all_zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("all 4 zero")
    );
    let w = b.with_weights(vec![10.0, 20.0, 30.0, 40.0]).unwrap();
    let (tr, va) = w.split(0.5, 3).unwrap();
    for d in [tr, va] {
        for i in 0..d.len() {
            // Row i's first feature is 3·k for original row k, whose weight is 10·(k+1).
            let k = (d.x[i * 3] / 3.0) as usize;
            assert_eq!(d.weights.as_ref().unwrap()[i], 10.0 * (k + 1) as f32);
            assert_eq!(d.y[i], [0.0, 1.0, 0.0, 1.0][k]);
        }
    }
}
