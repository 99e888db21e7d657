#!/usr/bin/env bash
# The CUDA check: builds libavg with the `cuda` feature, runs the GPU tests (the CUDA
# path against the CPU path on the same seed) and the device benchmark (tokenizer
# epoch, t5-small-sized training step, beam-20 search) on the GPU and on the CPU.
#
#   scripts/gpu-check.sh               build and run here (cargo, nvcc and a GPU)
#   scripts/gpu-check.sh --bundle DIR  build only: the test and bench programs and the
#                                      T5 tokenizer go to DIR
#   scripts/gpu-check.sh --run DIR     run such a bundle on a GPU machine without Rust
#
# Build: nvcc on PATH (or in $CUDA_HOME/bin); CUDA_COMPUTE_CAP=90 for an H100/H200
# (without it the kernels' build asks nvidia-smi). AVG_CHECK_CPU=0 skips the CPU side of
# the benchmark. The bench writes a 240 MB checkpoint under $TMPDIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# Builds the GPU test and the device bench; prints their paths.
build() {
  cd "$root"
  [ -n "${CUDA_HOME:-}" ] && export PATH="$CUDA_HOME/bin:$PATH"
  command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found (set CUDA_HOME or PATH)" >&2; exit 1; }
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/cuda}
  local log
  log=$( { cargo test --release --locked --features cuda --test gpu --no-run && cargo bench --locked --features cuda --bench device --no-run; } 2>&1 ) \
    || { echo "$log" >&2; exit 1; }
  echo "$log" | sed -n 's/.*Executable [^ ]* (\(.*\))$/\1/p'
}

bundle() {
  local dir=$1
  mkdir -p "$dir"
  local bins
  bins=$(build)
  cp "$(echo "$bins" | grep '/gpu-')" "$dir/gpu"
  cp "$(echo "$bins" | grep '/device-')" "$dir/device"
  strip "$dir/gpu" "$dir/device"
  cp "$root/../shared/data/t5-tokenizer/tokenizer.json" "$dir/tokenizer.json"
  echo "gpu-check: bundle in $dir"
}

run_bundle() {
  local dir=$1
  # cuBLAS, cuRAND and NVRTC from the system, else from Python's nvidia packages.
  if ldd "$dir/gpu" | grep -q "not found"; then
    local extra
    extra=$(python3 -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in sorted(os.listdir(p)) if os.path.isdir(os.path.join(p, d, "lib"))))' 2>/dev/null || true)
    export LD_LIBRARY_PATH="$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  if ldd "$dir/gpu" | grep "not found"; then echo "gpu-check: CUDA libraries missing" >&2; exit 1; fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "== GPU tests"
  local failed=0
  "$dir/gpu" --ignored --nocapture --test-threads 1 || failed=1
  echo "== device bench: cuda:0"
  AVG_T5_TOKENIZER="$dir/tokenizer.json" "$dir/device" cuda:0
  if [ "${AVG_CHECK_CPU:-1}" != 0 ]; then
    echo "== device bench: cpu ($(nproc) cores)"
    AVG_T5_TOKENIZER="$dir/tokenizer.json" "$dir/device" cpu
  fi
  [ "$failed" = 0 ] || { echo "gpu-check: GPU tests failed" >&2; exit 1; }
}

case "${1:-}" in
  --bundle) [ $# -eq 2 ] || usage; bundle "$2" ;;
  --run) [ $# -eq 2 ] || usage; run_bundle "$2" ;;
  "") dir="${CARGO_TARGET_DIR:-$root/target/cuda}/gpu-bundle"; bundle "$dir"; run_bundle "$dir" ;;
  *) usage ;;
esac
