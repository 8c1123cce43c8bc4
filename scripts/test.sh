#!/usr/bin/env bash
# Run the whole test suite with a GPU adapter required: installs lavapipe if no driver
# exists and fetches MNIST if missing. A missing adapter fails the GPU tests instead of
# skipping them (SHADEPROP_REQUIRE_GPU=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-driver.sh
bash scripts/fetch-data.sh --tabular
export SHADEPROP_REQUIRE_GPU=1 NODEVICE_SELECT=1
cargo run --release --quiet --example adapters
exec cargo test --release "$@"
