#!/usr/bin/env bash
# GPU Monte Carlo beside the CPU engine, in one run: isl-gpu's gpu_timing example on the first
# Vulkan adapter (lavapipe where there is no GPU: scripts/setup-gpu.sh installs it) for 10^6 ..
# 10^MAX samples of the 30-node linear model of bench/mc.sh. Prints the example's report.
#
#   bash bench/gpu.sh            # MAX=9 for 10^9 (minutes on a software adapter); default 8
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
./scripts/setup-gpu.sh >&2
cargo build --release --locked -q -p isl-gpu --example gpu_timing
target="${CARGO_TARGET_DIR:-$root/target}"
{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo 'no NVIDIA GPU')."
  echo
  echo '```'
  "$target/release/examples/gpu_timing" "${MAX:-8}" 2>/dev/null
  echo '```'
} | tee "$out/gpu.md"
