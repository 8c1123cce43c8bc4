#!/usr/bin/env bash
# One-command check of shadeprop on a GPU machine that has no Rust toolchain and no network.
#
#   bash scripts/device-check.sh pack   # here (needs cargo): build, strip and pack into .device/
#   bash scripts/device-check.sh run    # there, with .device/ carried beside the tracked files
#
# pack: release binaries (shadeprop, the examples, the gemm and train benches and every test
#   executable), stripped, in one tar compressed by xz with a 256 MiB window (the binaries
#   share most of their code); MNIST gzipped; the Vulkan loader's .deb (and, for a driver
#   that needs them, the few libraries an NVIDIA ICD links); a manifest. Prints the bytes that
#   will travel and fails above DEVICE_CHECK_MAX_BYTES (60 MiB).
# run: installs the Vulkan loader from the .debs if none is installed, points the loader at
#   the NVIDIA ICD if it finds no other, then runs each stage under a time budget (a failing
#   stage is recorded and the run goes on): the adapter (shadeprop info), every test
#   executable with SHADEPROP_REQUIRE_GPU=1, W-GEMM, W-MLP/W-CNN/W-STEP on the GPU, the
#   PyTorch peer (benches/peer_torch.py) when torch imports, and a summary: device-check.md,
#   device-check.json and device-check-logs.tar.gz in $OUT (default .device/out).
#   On a software adapter (llvmpipe) the budgets and sizes shrink so that a dry run ends soon.
#
# Environment: OUT (results folder), PYTHON (default python3), CARGO_LOCK (pack: a file to
# flock around each cargo call), DEVICE_CHECK_SECONDS (run: the whole run's budget; 420 on a
# hardware adapter, 2400 on a software one), DEVICE_CHECK_MODE (full or small: override the
# adapter-based choice), DEVICE_CHECK_MAX_BYTES. docs/device-check.md describes the stages.
set -Eeuo pipefail
trap 'echo "device-check: error: unexpected failure at line $LINENO" >&2' ERR

root=$(cd "$(dirname "$0")/.." && pwd)
dev="$root/.device"
PY=${PYTHON:-python3}
# Libraries an NVIDIA Vulkan ICD (libGLX_nvidia.so.0) may link that a bare image lacks:
# a .deb of these is unpacked only when ldd finds a library it ships missing.
EXTRA_DEBS="libglvnd0 libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0"

die() { echo "device-check: error: $*" >&2; exit 1; }
note() { echo "device-check: $*" >&2; }

cargo_run() {
  if [ -n "${CARGO_LOCK:-}" ]; then flock "$CARGO_LOCK" cargo "$@"; else cargo "$@"; fi
}

# cargo's --message-format=json on stdin -> "kind<TAB>name<TAB>test<TAB>executable" per
# executable (test: whether it is a test harness build).
artifacts() {
  "$PY" -c '
import json, sys
for line in sys.stdin:
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get("reason") != "compiler-artifact" or not j.get("executable"):
        continue
    t = j["target"]
    test = "true" if j["profile"]["test"] else "false"
    print("%s\t%s\t%s\t%s" % (t["kind"][0], t["name"], test, j["executable"]))
'
}

pack() {
  for tool in cargo xz strip tar gzip apt-get git "$PY"; do
    command -v "$tool" >/dev/null || die "pack needs $tool"
  done
  local max=${DEVICE_CHECK_MAX_BYTES:-62914560}
  rm -rf "$dev"
  mkdir -p "$dev/stage/bin" "$dev/stage/example" "$dev/stage/bench" "$dev/stage/test" \
    "$dev/data" "$dev/debs"
  cd "$root"

  # MNIST, gzipped (the loader reads .gz directly).
  local f
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
    t10k-labels-idx1-ubyte; do
    [ -f "data/mnist/$f" ] || { bash scripts/fetch-data.sh; break; }
  done
  for f in data/mnist/*-ubyte; do
    gzip -9 -n -c "$f" > "$dev/data/$(basename "$f").gz"
  done
  # The tables of the tabular tests and examples (about 150 KB).
  bash scripts/fetch-data.sh --tabular > /dev/null
  mkdir -p "$dev/data/tabular"
  cp -r data/sklearn data/palmerpenguins "$dev/data/tabular/"

  # Builds; every executable listed from cargo's JSON messages.
  local list="$dev/artifacts.tsv"
  note "building release binaries and examples"
  cargo_run build --release --bins --examples --message-format=json | artifacts > "$list"
  note "building the gemm and train benches"
  cargo_run bench --no-run --bench gemm --bench train --message-format=json | artifacts >> "$list"
  note "building the test executables"
  cargo_run test --release --no-run --message-format=json | artifacts >> "$list"

  local manifest="$dev/manifest.tsv" kind name test exe dest shadeprop_exe=""
  : > "$manifest.body"
  while IFS=$'\t' read -r kind name test exe; do
    case "$kind:$test" in
      bin:false) dest="bin/$name"; shadeprop_exe=$exe ;;
      example:false) dest="example/$name" ;;
      bench:*) dest="bench/$name" ;;
      lib:true) dest="test/lib-$name" ;;
      bin:true) dest="test/bin-$name" ;;
      test:true) dest="test/$name" ;;
      *) continue ;;
    esac
    [ -e "$dev/stage/$dest" ] && continue
    cp "$exe" "$dev/stage/$dest"
    strip "$dev/stage/$dest"
    printf '%s\t%s\t%s\n' "${dest%%/*}" "${dest#*/}" "$dest" >> "$manifest.body"
  done < "$list"
  [ -n "$shadeprop_exe" ] || die "cargo listed no shadeprop binary"
  grep -q '^test	' "$manifest.body" || die "cargo listed no test executable"
  {
    # The test executables read files through paths fixed when they were compiled.
    printf 'build_root\t%s\n' "$root"
    printf 'shadeprop_exe\t%s\n' "$shadeprop_exe"
    printf 'commit\t%s\n' "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +dirty)"
    printf 'packed\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cat "$manifest.body"
  } > "$manifest"
  rm -f "$manifest.body" "$list"

  # One tar, one xz stream with a window larger than all of it: the binaries share wgpu,
  # the standard library and the crate, so each one after the first costs little.
  note "compressing $(du -sh "$dev/stage" | cut -f1) of binaries (xz, 256 MiB window, 1-3 min)"
  tar -C "$dev/stage" -cf - . | xz -T1 --lzma2=preset=6,dict=256MiB -c > "$dev/bins.tar.xz"
  rm -rf "$dev/stage"

  # The Vulkan loader (and the libraries an NVIDIA ICD may need) as amd64 .debs.
  local lists=${DEVICE_CHECK_APT_LISTS:-/tmp/device-check-apt}
  mkdir -p "$lists/partial"
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists"
    -oAPT::Sandbox::User=root)
  note "downloading libvulkan1 and $EXTRA_DEBS"
  apt-get "${o[@]}" update -qq >/dev/null || die "apt-get update failed"
  # shellcheck disable=SC2086
  (cd "$dev/debs" && apt-get "${o[@]}" download -qq libvulkan1 $EXTRA_DEBS >/dev/null) \
    || die "apt-get download failed"

  # What travels: the tracked and untracked-not-ignored files, and .device.
  local tree device total
  tree=$(git ls-files -z --cached --others --exclude-standard \
    | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  device=$(du -sb "$dev" | cut -f1)
  total=$((tree + device))
  printf '%-34s %12s\n' "binaries (.device/bins.tar.xz)" "$(stat -c %s "$dev/bins.tar.xz")" \
    "MNIST (gzip) and tables (.device/data)" "$(du -cb "$dev"/data/* | tail -1 | cut -f1)" \
    ".debs (.device/debs)" "$(du -cb "$dev"/debs/* | tail -1 | cut -f1)" \
    ".device in all" "$device" "the repository's files" "$tree" "total that travels" "$total"
  if [ "$total" -gt "$max" ]; then
    die "$total bytes would travel, above the $max allowed"
  fi
  note "packed into .device/; on the GPU machine: bash scripts/device-check.sh run (carry .device)"
}

# ---------------------------------------------------------------- run

left() { echo $((deadline - $(date +%s))); }
# budget WANT RESERVE: WANT seconds, or less so that RESERVE seconds stay for what follows.
budget() {
  local b=$(($(left) - $2))
  [ "$b" -lt "$1" ] && echo "$b" || echo "$1"
}
record() { # stage status seconds note
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >> "$logs/stages.tsv"
  note "stage $1: $2 (${3} s)${4:+ - $4}"
}
status_of() { # exit code -> word
  case $1 in
    0) echo ok ;;
    124 | 137) echo timeout ;;
    *) echo "failed (exit $1)" ;;
  esac
}
# stage NAME WANT RESERVE CMD...: CMD under a time budget, its output in NAME.log.
stage() {
  local name=$1 want=$2 reserve=$3 b rc=0 t0
  shift 3
  b=$(budget "$want" "$reserve")
  if [ "$b" -lt 5 ]; then
    record "$name" skipped 0 "no time left"
    return 0
  fi
  t0=$(date +%s)
  timeout -k 5 "$b" "$@" > "$logs/$name.log" 2>&1 || rc=$?
  record "$name" "$(status_of $rc)" $(($(date +%s) - t0)) "budget ${b} s"
}

ldcache() { ldconfig -p 2>/dev/null || true; }

unxz() { # file: decompress to stdout (xz, or Python's lzma where xz is missing)
  if command -v xz >/dev/null; then
    xz -dc "$1"
  else
    "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

setup_vulkan() {
  local f d icds=() lib path missing
  if ! ldcache | grep 'libvulkan\.so\.1' > /dev/null; then
    f=""
    for d in "$dev"/debs/libvulkan1_*.deb; do [ -e "$d" ] && f=$d; done
    [ -n "$f" ] || die "no Vulkan loader installed and no libvulkan1 .deb in .device/debs"
    note "installing the Vulkan loader from $(basename "$f")"
    dpkg -x "$f" /
    ldconfig
  fi
  for d in /etc/xdg/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d \
    /usr/share/vulkan/icd.d; do
    for f in "$d"/*.json; do [ -e "$f" ] && icds+=("$f"); done
  done
  local nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ ${#icds[@]} -eq 0 ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -e "$nv" ]; then
    note "no ICD in the loader's folders: using $nv"
    export VK_DRIVER_FILES=$nv VK_ICD_FILENAMES=$nv
    icds=("$nv")
  elif [ -e "$nv" ] && ! printf '%s\n' "${icds[@]}" | grep -i nvidia > /dev/null; then
    note "the loader's folders hold other ICDs but not $nv: adding it"
    export VK_ADD_DRIVER_FILES=$nv
    icds+=("$nv")
  fi
  echo "ICDs: ${icds[*]:-none} ${VK_DRIVER_FILES:+(VK_DRIVER_FILES=$VK_DRIVER_FILES)}"
  # Each ICD's library must load: found by the dynamic linker, with its own libraries.
  for f in "${icds[@]}"; do
    lib=$(sed -n 's/.*"library_path"[^"]*"\([^"]*\)".*/\1/p' "$f")
    lib=${lib%%$'\n'*}
    [ -n "$lib" ] || continue
    path=$lib
    if [ "${lib#/}" = "$lib" ]; then
      path=$(ldcache | awk -v l="$lib" '$1 == l && p == "" { p = $NF } END { print p }')
      if [ -z "$path" ]; then
        for d in "$(dirname "$f")" /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
          if [ -e "$d/$lib" ]; then
            path=$d/$lib
            note "$lib found in $d only: adding it to LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            break
          fi
        done
      fi
    fi
    [ -n "$path" ] && [ -e "$path" ] || { echo "ICD $f: $lib not found"; continue; }
    # Unpack only the .debs that ship a missing library (newer ones installed stay),
    # again for what those need in turn.
    local round so deb
    for round in 1 2 3 4; do
      missing=$(ldd "$path" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u | tr '\n' ' ')
      [ -n "$missing" ] || break
      local unpacked=0
      for so in $missing; do
        for deb in "$dev"/debs/*.deb; do
          if dpkg -c "$deb" | awk -v s="/$so" '{ p = $6; if (substr(p, length(p) - length(s) + 1) == s) f = 1 }
              END { exit !f }'; then
            note "$path needs $so: unpacking $(basename "$deb")"
            dpkg -x "$deb" /
            unpacked=1
          fi
        done
      done
      ldconfig
      [ "$unpacked" = 1 ] || break
    done
    echo "ICD library $path: ${missing:+still missing $missing}${missing:-all its libraries found}"
  done
}

# The test executables read data/mnist, data/sklearn and data/palmerpenguins and run
# target/release/shadeprop under the folder
# they were built in; where that folder is not this one, a folder of links stands in for it.
setup_build_root() {
  build_root=$(awk -F'\t' '$1 == "build_root" { print $2 }' "$dev/manifest.tsv")
  local exe e
  exe=$(awk -F'\t' '$1 == "shadeprop_exe" { print $2 }' "$dev/manifest.tsv")
  if [ "$build_root" = "$root" ] || [ -z "$build_root" ]; then
    build_root=$root
    return 0
  fi
  if [ -e "$build_root" ] && [ ! -L "$build_root" ]; then
    note "$build_root exists and is not this tree: tests that read files there may fail"
    return 0
  fi
  local mirror="$tmp/root"
  mkdir -p "$mirror/data" "$(dirname "$mirror${exe#"$build_root"}")"
  for e in "$root"/* "$root"/.[!.]*; do
    case $(basename "$e") in data | target | .device | .git) continue ;; esac
    [ -e "$e" ] && ln -s "$e" "$mirror/$(basename "$e")"
  done
  ln -s "$data" "$mirror/data/mnist"
  ln -s "$dev/data/tabular/sklearn" "$mirror/data/sklearn"
  ln -s "$dev/data/tabular/palmerpenguins" "$mirror/data/palmerpenguins"
  ln -s "$bins/bin/shadeprop" "$mirror${exe#"$build_root"}"
  mkdir -p "$(dirname "$build_root")"
  ln -sfn "$mirror" "$build_root"
  made_link=$build_root
  note "the tests' build folder $build_root links to a stand-in for this tree"
}

cleanup() {
  [ -n "${made_link:-}" ] && [ -L "$made_link" ] && rm -f "$made_link"
  [ -n "${tmp:-}" ] && rm -rf "$tmp"
}

run_tests() { # WANT RESERVE PER_BINARY
  local want=$1 reserve=$2 per=$3 b t_end t0 rc kind name file log p f i st
  b=$(budget "$want" "$reserve")
  t_end=$(($(date +%s) + b))
  local t_stage=$(date +%s)
  printf 'binary\tstatus\tpassed\tfailed\tignored\tseconds\n' > "$logs/tests.tsv"
  # The GPU-equivalence suites first, in this order, then the rest in the manifest's.
  local first="kernels backend device conv augment mixed train mnist" order="" all
  all=$(awk -F'\t' '$1 == "test" { print $2 }' "$dev/manifest.tsv")
  for name in $first; do
    if printf '%s\n' "$all" | grep -x "$name" > /dev/null; then order+="$name "; fi
  done
  for name in $all; do
    case " $first " in *" $name "*) ;; *) order+="$name " ;; esac
  done
  for name in $order; do
    b=$((t_end - $(date +%s)))
    [ "$b" -gt "$per" ] && b=$per
    log="$logs/test-$name.log"
    if [ "$b" -lt 5 ]; then
      printf '%s\tnot run (no time left)\t0\t0\t0\t0\n' "$name" >> "$logs/tests.tsv"
      continue
    fi
    t0=$(date +%s)
    rc=0
    (cd "$build_root" && SHADEPROP_REQUIRE_GPU=1 timeout -k 5 "$b" "$bins/test/$name") \
      > "$log" 2>&1 || rc=$?
    # Summed over libtest's "test result:" lines (none when the binary died or timed out).
    p=$(awk '/^test result:/ { for (k = 2; k < NF; k++) if ($(k + 1) ~ /^passed/) s += $k }
      END { print s + 0 }' "$log")
    f=$(awk '/^test result:/ { for (k = 2; k < NF; k++) if ($(k + 1) ~ /^failed/) s += $k }
      END { print s + 0 }' "$log")
    i=$(awk '/^test result:/ { for (k = 2; k < NF; k++) if ($(k + 1) ~ /^ignored/) s += $k }
      END { print s + 0 }' "$log")
    st=$(status_of $rc)
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] \
      && ! grep -q '^test result:' "$log"; then
      st="crashed (exit $rc)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$st" "$p" "$f" "$i" $(($(date +%s) - t0)) \
      >> "$logs/tests.tsv"
    note "  test $name: $st, $p passed, $f failed, $i ignored"
  done
  local bad
  bad=$(awk -F'\t' 'NR > 1 && $2 != "ok"' "$logs/tests.tsv" | wc -l)
  record tests "$([ "$bad" -eq 0 ] && echo ok || echo "$bad binaries not ok")" \
    $(($(date +%s) - t_stage)) "budget $((t_end - t_stage)) s"
}

run() {
  local t_start
  t_start=$(date +%s)
  [ -f "$dev/bins.tar.xz" ] && [ -f "$dev/manifest.tsv" ] \
    || die "no .device/bins.tar.xz: run 'bash scripts/device-check.sh pack' where cargo is"
  out=${OUT:-$dev/out}
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/device-check.XXXXXX")
  trap cleanup EXIT
  logs="$tmp/logs"
  bins="$tmp/bin"
  data="$tmp/data/mnist"
  mkdir -p "$logs" "$bins" "$data"
  printf 'stage\tstatus\tseconds\tnote\n' > "$logs/stages.tsv"
  # Mesa's device-select layer is not wanted (as in scripts/test.sh).
  export NODEVICE_SELECT=1
  # A fresh pipeline cache and autotuner memory: every stage starts from the same state
  # whatever an earlier run left in ~/.cache, and the choices made end up in the logs.
  export SHADEPROP_PIPELINE_CACHE="$tmp/cache"
  deadline=$((t_start + ${DEVICE_CHECK_SECONDS:-420}))

  local t0=$t_start
  setup_vulkan > "$logs/setup.log" 2>&1 || die "Vulkan set-up failed: $(tail -3 "$logs/setup.log")"
  unxz "$dev/bins.tar.xz" | tar -C "$bins" -xf - || die "cannot unpack .device/bins.tar.xz"
  ln -s "$dev"/data/*.gz "$data/"
  setup_build_root >> "$logs/setup.log" 2>&1
  cp "$dev/manifest.tsv" "$logs/"
  ls -l "$data" >> "$logs/setup.log"
  record setup ok $(($(date +%s) - t0)) "Vulkan loader, binaries, data"

  # a. The adapter; it decides the budgets.
  stage info 60 0 "$bins/bin/shadeprop" info
  local mode=${DEVICE_CHECK_MODE:-}
  if [ -z "$mode" ]; then
    if grep -qE '^adapter [0-9]+: .*\([A-Za-z0-9]+, (DiscreteGpu|IntegratedGpu|VirtualGpu)\)' \
      "$logs/info.log"; then
      mode=full
    else
      mode=small
      # The budgets of a software adapter, unless the caller set one.
      [ -n "${DEVICE_CHECK_SECONDS:-}" ] || deadline=$((t_start + 2400))
    fi
  fi
  if ! grep -qE '^adapter [0-9]+:' "$logs/info.log"; then
    VK_LOADER_DEBUG=error,warn,driver timeout 60 "$bins/bin/shadeprop" info \
      > "$logs/info-loader-debug.log" 2>&1 || true
  fi
  note "mode $mode: $(left) s left"
  local sizes runs mlp_steps cnn_steps step_steps per_test tests_want torch_threads
  if [ "$mode" = full ]; then
    sizes=512,1024,2048,4096 runs=3 mlp_steps=0 cnn_steps=200 step_steps=2000
    per_test=120 tests_want=150 torch_threads=0
  else
    sizes=512,1024 runs=2 mlp_steps=20 cnn_steps=4 step_steps=100
    per_test=900 tests_want=1500 torch_threads=1
  fi
  {
    printf 'mode\t%s\nsizes\t%s\nruns\t%s\nmlp_steps\t%s\ncnn_steps\t%s\nstep_steps\t%s\n' \
      "$mode" "$sizes" "$runs" "$mlp_steps" "$cnn_steps" "$step_steps"
    printf 'deadline_s\t%s\n' $((deadline - t_start))
  } > "$logs/params.tsv"

  # b. Every test executable on this adapter.
  run_tests "$tests_want" 200 "$per_test"

  # c. W-GEMM: every shape and precision on a GPU; on a software adapter only the square and
  # W-MLP products in f32 (its portable kernel runs at about 1 GFLOP/s).
  local gemm_want=90 gemm_small=()
  [ "$mode" = full ] || gemm_want=400 gemm_small=(--quick --no-half --only square,W-MLP)
  stage gemm "$gemm_want" 130 "$bins/bench/gemm" "${gemm_small[@]}" --sizes "$sizes" \
    --no-reference-above 1024 --json "$logs/gemm.json"

  # d. W-MLP, W-CNN, W-STEP on the GPU, one process each (a timeout loses only its own).
  (cd "$build_root" && stage train-w-mlp 45 100 "$bins/bench/train" --backends gpu \
    --workloads w-mlp --data "$data" --out "$logs/train-w-mlp" --runs "$runs" \
    --steps "$mlp_steps")
  (cd "$build_root" && stage train-w-cnn 60 80 "$bins/bench/train" --backends gpu \
    --workloads w-cnn --data "$data" --out "$logs/train-w-cnn" --runs "$runs" \
    --cnn-steps "$cnn_steps")
  (cd "$build_root" && stage train-w-step 30 70 "$bins/bench/train" --backends gpu \
    --workloads w-step --data "$data" --out "$logs/train-w-step" --runs "$runs" \
    --steps "$step_steps")

  # e. The PyTorch peer, with what is left but the summary's share.
  if "$PY" -c 'import torch' > "$logs/torch-import.log" 2>&1; then
    local tb
    tb=$(budget 600 20)
    local ct=$(((tb - 60) / 2))
    [ "$ct" -lt 15 ] && ct=15
    stage torch "$tb" 0 "$PY" "$root/benches/peer_torch.py" --data "$data" \
      --out "$logs/torch" --sizes "$sizes" --runs "$runs" --steps "$mlp_steps" \
      --cnn-steps "$cnn_steps" --step-steps "$step_steps" --threads "$torch_threads" \
      --compile --compile-timeout "$ct"
  else
    record torch skipped 0 "$PY cannot import torch"
  fi

  # f. The summary and the logs.
  printf 'total_s\t%s\n' $(($(date +%s) - t_start)) >> "$logs/params.tsv"
  rm -f "$out/device-check.md" "$out/device-check.json" "$out/device-check-logs.tar.gz"
  local srt=0
  if command -v "$PY" >/dev/null; then
    "$PY" "$root/scripts/device-summary.py" --logs "$logs" --out "$out" \
      > "$logs/summary.txt" 2> "$logs/summary.err" || srt=$?
  else
    srt=127
  fi
  if [ "$srt" -ne 0 ]; then
    note "the summary failed (exit $srt): stages and tests only"
    { echo "# Device check (summary script failed: exit $srt)"; echo
      cat "$logs/stages.tsv"; echo; cat "$logs/tests.tsv"; } > "$out/device-check.md"
    cp "$out/device-check.md" "$logs/summary.txt"
  fi
  cp "$tmp"/cache/matmul-variants-*.json "$logs/" 2>/dev/null || true
  tar -C "$tmp" -czf "$out/device-check-logs.tar.gz" logs
  if [ "$(stat -c %s "$out/device-check-logs.tar.gz")" -gt 15000000 ]; then
    find "$logs" -name '*.log' -size +1M -exec truncate -s 1M {} +
    tar -C "$tmp" -czf "$out/device-check-logs.tar.gz" logs
  fi
  note "results in $out ($(($(date +%s) - t_start)) s)"
  cat "$logs/summary.txt"
}

main() {
  case "${1:-}" in
    pack) pack ;;
    run) run ;;
    *) die "usage: bash scripts/device-check.sh pack|run" ;;
  esac
}

# One line, read whole before it runs: editing this file during a run cannot change it.
main "$@"; exit $?
