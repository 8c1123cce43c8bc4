#!/usr/bin/env bash
# Train W-MLP on MNIST end to end: installs lavapipe if no GPU driver exists (and goes on
# on the CPU when it cannot), fetches and
# verifies the data if missing, then runs the example. Extra arguments go to the example,
# e.g. `bash scripts/mnist.sh --epochs 10` or `--backend cpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-driver.sh || echo "no Vulkan driver could be installed: the trainer runs on the fast CPU backend" >&2
bash scripts/fetch-data.sh
export NODEVICE_SELECT=1
exec cargo run --release --example mnist_mlp -- "$@"
