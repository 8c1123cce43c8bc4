#!/usr/bin/env bash
# shadeprop's fast CPU backend against PyTorch CPU on the training workloads of
# docs/benchmarks.md — W-MLP, W-CNN (with its augmentation), W-LSTM and W-TAB — run
# alternately (shadeprop, then PyTorch, ROUNDS times) in this one script on this machine,
# at the same thread count (all cores), then the medians, their ratios against the targets,
# and each side's peak host memory.
#
#   bash scripts/bench-vs-torch.sh [ROUNDS, default 3] [STEPS per epoch, default 150]
#
# PyTorch: $TORCH_PYTHON when set; otherwise a virtual environment in target/torch-venv
# that sees the system's packages, with torch installed into it if none imports there
# (Debian's python3-torch through apt-get when run as root, else PyPI's torch — a large
# download, about 5 GB with its CUDA wheels). When neither works the PyTorch half is skipped
# with the reason, and only shadeprop's figures are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-150}
threads=$(nproc)

torch_python() {
  if [ -n "${TORCH_PYTHON:-}" ]; then
    echo "$TORCH_PYTHON"
    return
  fi
  local venv=target/torch-venv
  local base=python3
  # Debian's torch lives in the system Python, not in a pyenv or other one first on PATH.
  [ -x /usr/bin/python3 ] && base=/usr/bin/python3
  if [ ! -x "$venv/bin/python" ]; then
    "$base" -m venv --system-site-packages "$venv" >&2 || return 1
  fi
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "$base" = /usr/bin/python3 ]; then
      echo "installing Debian's python3-torch (apt-get)..." >&2
      (apt-get install -y python3-torch libopenblas0-pthread >&2 ||
        (apt-get update >&2 && apt-get install -y python3-torch libopenblas0-pthread >&2)) || true
    fi
    if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
      echo "installing torch from PyPI into $venv (large download)..." >&2
      "$venv/bin/pip" install --quiet torch >&2 || return 1
    fi
  fi
  "$venv/bin/python" -m pip install --quiet numpy >&2 2>/dev/null || true
  echo "$venv/bin/python"
}

bash scripts/fetch-data.sh --tabular >/dev/null
py=""
if py=$(torch_python) && "$py" -c "import torch, numpy" 2>/dev/null; then
  echo "PyTorch $("$py" -c 'import torch; print(torch.__version__)') from $py, $threads threads"
else
  echo "PyTorch could not be imported or installed (set TORCH_PYTHON to a Python with torch" \
    "and numpy): measuring shadeprop only"
  py=""
fi

cargo bench --no-run --bench train --bench tab >/dev/null 2>&1
train_bin=$(ls -t target/release/deps/train-* | grep -v '\.d$' | head -1)
tab_bin=$(ls -t target/release/deps/tab-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds..." >&2
  "$train_bin" --backends cpu --workloads w-mlp,w-cnn,w-lstm --runs 1 --steps "$steps" \
    --out "$tmp/shadeprop-$r" >/dev/null
  "$tab_bin" --backends cpu --runs 1 --json "$tmp/shadeprop-tab-$r.json" >/dev/null
  if [ -n "$py" ]; then
    "$py" benches/peer_torch.py --device cpu --threads "$threads" --runs 1 --steps "$steps" \
      --workloads w-mlp,w-cnn,w-lstm --out "$tmp/torch-$r" >/dev/null 2>&1
    "$py" benches/peer_torch_tab.py --threads "$threads" --runs 1 \
      --json "$tmp/torch-tab-$r.json" >/dev/null
  fi
done

python3 - "$tmp" "$rounds" "$([ -n "$py" ] && echo 1 || echo 0)" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$threads" <<'PY'
import glob, json, statistics, sys
tmp, rounds, torch_ok, cpu, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
TARGET = {"w-mlp": 1.5, "w-cnn": 1.3, "w-lstm": 1.0, "w-tab-logreg": 1.0, "w-tab-mlp": 1.0}

def rows(kind):
    out = {}
    for r in range(1, rounds + 1):
        if kind == "shadeprop":
            for f in glob.glob(f"{tmp}/shadeprop-{r}/*.json"):
                for row in json.load(open(f))["rows"]:
                    out.setdefault(row["workload"], []).append(row)
            tab = f"{tmp}/shadeprop-tab-{r}.json"
        else:
            for row in json.load(open(f"{tmp}/torch-{r}/peer_torch.json"))["train"]:
                out.setdefault(row["workload"], []).append(row)
            tab = f"{tmp}/torch-tab-{r}.json"
        for row in json.load(open(tab)):
            out.setdefault(row["workload"], []).append(row)
    return out

def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(v) if v else None

s = rows("shadeprop")
t = rows("torch") if torch_ok else {}
print(f"\nMedians of {rounds} alternating rounds on {cpu} ({threads} threads each side).\n")
print("| workload | shadeprop samples/s | PyTorch samples/s | ratio | target | shadeprop peak MiB | PyTorch peak MiB |")
print("|---|---|---|---|---|---|---|")
fmt = lambda v, f="{:.0f}": "-" if v is None else f.format(v)
for w in TARGET:
    if w not in s:
        continue
    sr, sm = med(s[w], "samples_per_s"), med(s[w], "peak_host_mib")
    tr, tm = (med(t[w], "samples_per_s"), med(t[w], "peak_host_mib")) if w in t else (None, None)
    ratio = sr / tr if tr else None
    mark = "" if ratio is None else (" (met)" if ratio >= TARGET[w] else " (not met)")
    print(f"| {w} | {fmt(sr)} | {fmt(tr)} | {fmt(ratio, '{:.2f}')}× | ≥ {TARGET[w]}×{mark} | {fmt(sm)} | {fmt(tm)} |")
PY
