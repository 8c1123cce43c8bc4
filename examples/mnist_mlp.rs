//! Train W-MLP on MNIST (or `--dataset fashion-mnist`): 784 → 512 → BN → ReLU → Dropout →
//! 512 → BN → ReLU → Dropout → 10, SGD with momentum, coupled weight decay on weights,
//! global-norm clipping, early stopping. `--backend auto` (the default) runs on a hardware
//! GPU when there is one and on the fast CPU backend otherwise; `gpu` forces wgpu (lavapipe
//! included), `cpu` the fast CPU kernels, `cpu-ref` the reference ones; `--help` lists the
//! flags.
//!
//!   cargo run --release --example mnist_mlp

#[path = "common/mnist.rs"]
mod mnist;

fn main() {
    mnist::main(
        "mnist_mlp",
        |m| match m.cell {
            Some(_) => Err("--cell: this example has no recurrent layer".into()),
            None => Ok(shadeprop::nn::Sequential::w_mlp(m.dropout)),
        },
        None,
        mnist::SGD,
    );
}
