#!/usr/bin/env bash
# Fuzz the IDX parser, the CSV loader, the checkpoint loader and the config parsers with cargo-fuzz (libFuzzer). cargo-fuzz
# needs nightly flags; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
#   bash scripts/fuzz.sh [seconds per target, default 600]
# Crashing inputs land in fuzz/artifacts/<target>/; add each as a regression test in
# tests/fuzz_regressions.rs with its fix.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
mkdir -p fuzz/corpus/idx fuzz/corpus/csv fuzz/corpus/checkpoint fuzz/corpus/config
cp configs/*.toml fuzz/corpus/config/
printf 'a,b,c,y,z\n1.5,red,2,0,1\n-3,blue,NA,1,0\n"7","gr,een",8,1,1\n' > fuzz/corpus/csv/small
printf '\xef\xbb\xbfskip\r\na,b,c,y,z\r\n\r\n1,"x\r\ny",2,0,1\r\n3,,#N/A,1,0\r2,x,4,1,1\r\n' > fuzz/corpus/csv/bom-crlf
printf 'a b c y z\n1 red 2 0 1\n\n-3 blue NA 1 0\r4 red 5e3 0 0\n' > fuzz/corpus/csv/whitespace
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03' > fuzz/corpus/idx/labels
printf '\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x02\x00\xff\x10\x20' > fuzz/corpus/idx/images
cargo run --release --quiet --example checkpoint_seed -- fuzz/corpus/checkpoint/seed.safetensors
targets=${FUZZ_TARGETS:-idx csv checkpoint config}
for t in $targets; do
  RUSTC_BOOTSTRAP=1 cargo fuzz run --release "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 | tail -n 25
done
