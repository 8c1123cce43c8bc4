//! Row-wise sequential MNIST (W-LSTM): each image is a sequence of 28 rows of 28 pixels,
//! read top to bottom by an LSTM of 128 units (or `--cell gru`) whose last hidden state
//! goes to a Linear 10; recurrent dropout 0.25 (Keras' `recurrent_dropout`, one mask per
//! sequence; `--dropout 0` turns it off), Adam lr 1e-3, global-norm clipping at 1.0,
//! early stopping on the validation loss. The trainer, its flags and its files are those of
//! `mnist_mlp`; `--help` lists them.
//!
//!   cargo run --release --example sequential_mnist -- --epochs 20

#[path = "common/mnist.rs"]
mod mnist;

use shadeprop::graph::{RnnCell, RnnOpts};
use shadeprop::nn::Sequential;

fn main() {
    mnist::main(
        "sequential_mnist",
        |m| {
            Ok(match m.cell.unwrap_or(RnnCell::Lstm) {
                RnnCell::Lstm => Sequential::w_lstm(m.dropout),
                cell => Sequential::sequence(28, 28)
                    .rnn(RnnOpts {
                        recurrent_dropout: m.dropout,
                        ..RnnOpts::new(cell, 128)
                    })
                    .last_step()
                    .linear(10),
            })
        },
        None,
        mnist::Defaults {
            optimizer: mnist::OptimizerArg::Adam,
            dropout: 0.25,
        },
    );
}
