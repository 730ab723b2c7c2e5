#!/usr/bin/env bash
# Runs every test of isl from a fresh clone with only the Rust toolchain installed:
# formatting, lints, unit / property / integration tests, end-to-end HTTP tests against the real
# `isl` binary, and the wasm32 builds of the transport-free crates.
#
# Set CARGO_TARGET_DIR to a cache outside the clone to speed reruns; nothing depends on it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain targets"
# rust-toolchain.toml declares them; adding them here covers rustup versions that do not
# install a toolchain file's targets on their own.
rustup target add wasm32-wasip2 wasm32-unknown-unknown >/dev/null

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --locked -p isl-edge --features models -- -D warnings

# at_most_mib FILE MIB: prints FILE's size; fails when it is over MIB MiB.
at_most_mib() {
  local size
  size=$(wc -c <"$1")
  echo "$1: $size bytes (limit $2 MiB)"
  if (( size > $2 * 1024 * 1024 )); then
    echo "$1 is over $2 MiB" >&2
    exit 1
  fi
}

step "edge component (wasm32-wasip2, --profile edge; the parity tests run it)"
cargo build --locked -p isl-edge --target wasm32-wasip2 --profile edge
at_most_mib "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/edge/isl_edge.wasm" 3

step "edge component with the model routes (scripts/build-edge-models.sh; tests/models_http.rs runs it)"
./scripts/build-edge-models.sh
at_most_mib "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/edge-models/isl_edge.wasm" 32

step "Vulkan driver for the GPU tests (lavapipe; they skip with a reason without one)"
./scripts/setup-gpu.sh

step "browser demo: web/dist (committed, embedded by isl serve) is built from the current sources"
./scripts/build-web.sh --check

step "browser demo: binaryen, Chromium, Node and the browser test's npm packages"
setup=$(./scripts/setup-browser.sh)
printf '%s\n' "$setup"
if grep -q '^setup-browser: ready' <<<"$setup"; then
  # Everything is installed: the browser test (tests/browser.rs) must run, not skip.
  export ISL_BROWSER_TEST=require
else
  echo "the browser test will skip (reason above)"
fi

step "browser demo: build from source (scripts/build-web.sh; installs wasm-bindgen-cli once)"
cargo clippy --locked -p isl-web --target wasm32-unknown-unknown -- -D warnings
./scripts/build-web.sh --out "${CARGO_TARGET_DIR:-target}/web-dist"
# For information: with the same toolchain and wasm-opt the build is byte for byte web/dist.
if diff -rq "${CARGO_TARGET_DIR:-target}/web-dist" web/dist >/dev/null; then
  echo "the fresh build equals web/dist byte for byte"
else
  echo "the fresh build differs from web/dist in bytes (another rustc or wasm-opt than web/dist was built with)"
fi

step "cargo test"
cargo test --workspace --locked

step "wasm32 builds of the core crates"
for target in wasm32-wasip2 wasm32-unknown-unknown; do
  cargo check --locked -p isl-causal -p isl-service -p isl-llm --target "$target"
done

echo
echo "all tests passed"
