//! Sizes that cannot be allocated or represented are refused with a named error before
//! anything is allocated: layer widths, parameter counts that would wrap around usize, the
//! session's maximum batch, convolution geometry and image-folder resizes.

use shadeprop::backend::cpu::Cpu;
use shadeprop::data::folder::{FolderOptions, load_image_folder};
use shadeprop::nn::Sequential;
use shadeprop::optim::Sgd;
use shadeprop::session::Session;

/// The error's message, which must name `needles`.
fn names<T>(r: shadeprop::Result<T>, needles: &[&str]) {
    let Err(e) = r else {
        panic!("expected a named error containing {needles:?}")
    };
    let e = e.to_string();
    for n in needles {
        assert!(e.contains(n), "{n:?} not in: {e}");
    }
}

#[test]
fn huge_layer_widths_are_refused_when_the_graph_is_built() {
    // 784·10^12 parameters (3.136e15 bytes as f32); with batch norm the running statistics
    // alone would need 8e12 bytes.
    names(
        Sequential::new(784)
            .linear(1_000_000_000_000)
            .relu()
            .linear(10)
            .build(),
        &["1000000000000", "bytes"],
    );
    names(
        Sequential::new(784)
            .linear(1_000_000_000_000)
            .batch_norm()
            .relu()
            .linear(10)
            .build(),
        &["1000000000000", "bytes"],
    );
    // 784·2^62 = 49·2^66 wraps to 0 in 64-bit arithmetic, slipping under the parameter
    // limit unless the product is checked.
    names(
        Sequential::new(784).linear(1 << 62).linear(10).build(),
        &["4611686018427387904"],
    );
    names(
        Sequential::new(784).linear(1 << 60).linear(10).build(),
        &["1152921504606846976"],
    );
    // Convolution geometry whose sizes overflow.
    names(
        Sequential::image(1, usize::MAX / 2, 4)
            .conv2d(2, 3, 1, usize::MAX / 2)
            .flatten()
            .linear(10)
            .build(),
        &["overflow"],
    );
}

#[test]
fn a_huge_max_batch_is_refused_before_allocating() {
    let g = || {
        Sequential::new(784)
            .linear(16)
            .relu()
            .linear(10)
            .build()
            .unwrap()
    };
    // 10^12 samples of 784 features: 3.136e15 bytes for the input buffer alone.
    names(
        Session::new(
            Box::new(Cpu::new()),
            g(),
            Sgd::w_mlp(),
            0,
            1_000_000_000_000,
        ),
        &["max_batch", "1000000000000", "bytes"],
    );
    names(
        Session::new(
            Box::new(Cpu::fast()),
            g(),
            Sgd::w_mlp(),
            0,
            1_000_000_000_000,
        ),
        &["max_batch", "1000000000000", "bytes"],
    );
    // A batch whose element count overflows usize: still named with the bytes it needs.
    names(
        Session::new(Box::new(Cpu::new()), g(), Sgd::w_mlp(), 0, usize::MAX / 8),
        &["max_batch", "2305843009213693951", "bytes"],
    );
}

#[test]
fn a_huge_image_folder_resize_is_refused_before_decoding() {
    let root = std::env::temp_dir().join(format!("shadeprop-huge-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for class in ["a", "b"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        image::GrayImage::from_pixel(4, 4, image::Luma([7u8]))
            .save(root.join(class).join("0.png"))
            .unwrap();
    }
    for rgb in [false, true] {
        names(
            load_image_folder(
                &root,
                FolderOptions {
                    width: 100_000,
                    height: 100_000,
                    rgb,
                },
            ),
            &["100000", "bytes"],
        );
    }
    std::fs::remove_dir_all(root).unwrap();
}
