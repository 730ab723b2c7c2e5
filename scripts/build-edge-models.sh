#!/usr/bin/env bash
# Builds the edge component with the model routes (isl-edge's `models` feature): tract and the
# tokenizer compiled to wasm32-wasip2 with SIMD (simd128, which wasmtime and Spin run; not
# relaxed-simd, whose results may differ between hosts), at full optimisation. Output:
# $CARGO_TARGET_DIR/wasm32-wasip2/edge-models/isl_edge.wasm (default target/). Serve it with
#   isl edge --component target/wasm32-wasip2/edge-models/isl_edge.wasm --models-dir DIR
# where DIR holds the fetched models (scripts/fetch-models.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-C target-feature=+simd128"
cargo build --locked -p isl-edge --features models --target wasm32-wasip2 --profile edge-models "$@"
