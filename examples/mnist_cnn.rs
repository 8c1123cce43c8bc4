//! Train W-CNN on MNIST (or `--dataset fashion-mnist`): Conv 5×5 1→32, ReLU, MaxPool 2 →
//! Conv 5×5 32→64, ReLU, MaxPool 2 → Flatten → Linear 512, ReLU, Dropout → Linear 10, with
//! per-sample GPU augmentation (rotation ±10°, translation ±2 px, bilinear, then
//! standardization), the W-MLP optimizer, clipping and early stopping; writes
//! augment_preview.png. `--help` lists the flags.
//!
//!   cargo run --release --example mnist_cnn -- --epochs 15

#[path = "common/mnist.rs"]
mod mnist;

fn main() {
    mnist::main(
        "mnist_cnn",
        |m| match m.cell {
            Some(_) => Err("--cell: this example has no recurrent layer".into()),
            None => Ok(shadeprop::nn::Sequential::w_cnn(m.dropout)),
        },
        Some(shadeprop::nn::augment::Augment::w_cnn),
        mnist::SGD,
    );
}
