#!/usr/bin/env bash
# W-TAB side by side: shadeprop's fast CPU backend (cargo bench --bench tab) and PyTorch CPU
# (benches/peer_torch_tab.py) on the same models, alternately, ROUNDS times, then the
# ratios of the medians. PyTorch comes from $TORCH_PYTHON (default: python3); when it does
# not import, the PyTorch half is skipped and the script says so.
#   bash scripts/bench-tab.sh [ROUNDS, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
py=${TORCH_PYTHON:-python3}
bash scripts/fetch-data.sh --tabular >/dev/null
cargo bench --no-run --bench tab >/dev/null 2>&1
bin=$(ls -t target/release/deps/tab-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
torch_ok=1
"$py" -c "import torch" 2>/dev/null || torch_ok=0
[ $torch_ok = 1 ] || echo "PyTorch does not import with $py: measuring shadeprop only (set TORCH_PYTHON)"
for r in $(seq 1 "$rounds"); do
  "$bin" --backends cpu --json "$tmp/shadeprop-$r.json" >/dev/null
  [ $torch_ok = 0 ] || "$py" benches/peer_torch_tab.py --threads "$(nproc)" --json "$tmp/torch-$r.json" >/dev/null
done
python3 - "$tmp" "$rounds" "$torch_ok" <<'PY'
import json, statistics, sys
tmp, rounds, torch_ok = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
def load(kind):
    out = {}
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{tmp}/{kind}-{r}.json")):
            out.setdefault(row["workload"], []).append(row)
    return out
s = load("shadeprop")
t = load("torch") if torch_ok else {}
print("| workload | shadeprop samples/s | µs/step | PyTorch samples/s | µs/step | ratio |")
print("|---|---|---|---|---|---|")
for w, rows in s.items():
    sr = statistics.median(r["samples_per_s"] for r in rows)
    su = statistics.median(r["us_per_step"] for r in rows)
    if w in t:
        tr = statistics.median(r["samples_per_s"] for r in t[w])
        tu = statistics.median(r["us_per_step"] for r in t[w])
        print(f"| {w} | {sr:,.0f} | {su:.1f} | {tr:,.0f} | {tu:.1f} | {sr / tr:.2f}x |")
    else:
        print(f"| {w} | {sr:,.0f} | {su:.1f} | - | - | - |")
print(f"\n{rows[0]['backend']}; {rounds} alternating rounds, medians")
PY
rm -rf "$tmp"
