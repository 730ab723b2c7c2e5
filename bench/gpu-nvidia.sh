#!/usr/bin/env bash
# The GPU issue's figures on a machine with an NVIDIA GPU, from binaries built beforehand (such
# a machine may have no Rust toolchain and no network): isl-gpu's gpu_timing for 10^6 .. 10^MAX
# samples with every CPU thread, again with Philox's products emulated from 16-bit halves (the
# comparison for 64-bit shader integers), again with the CPU held to 2 threads (the "2-core CPU"
# the target compares with), then 10^8 samples with 10 quantiles end to end over HTTP
# (`isl serve --backend gpu`, `isl bench --mix counterfactual-30-1e8`).
#
#   cargo build --release --locked -p isl --bin isl -p isl-gpu --example gpu_timing
#   BIN=target/release MAX=9 bash bench/gpu-nvidia.sh        # on the GPU machine
#
# BIN holds `isl` and `examples/gpu_timing` (default: the release target directory). OUT
# (default bench/out) receives gpu-nvidia.md and the bench JSON. Needs the Vulkan loader
# (libvulkan1) and the NVIDIA driver's Vulkan ICD; where the loader finds no ICD on its own,
# VK_DRIVER_FILES is pointed at the driver's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}"
out="${OUT:-$root/bench/out}"
max="${MAX:-9}"
mkdir -p "$out"

if [[ -z "${VK_DRIVER_FILES:-}" ]]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    if [[ -f "$icd" ]]; then export VK_DRIVER_FILES="$icd"; break; fi
  done
fi

report="$out/gpu-nvidia.md"
{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no NVIDIA GPU')."
  echo
  echo "### gpu_timing $max (CPU: every thread)"
  echo '```'
  "$bin/examples/gpu_timing" "$max" 2>&1
  echo '```'
  echo
  echo "### gpu_timing 8 0 narrow (Philox's products from 16-bit halves, for comparison)"
  echo '```'
  "$bin/examples/gpu_timing" 8 0 narrow 2>&1
  echo '```'
  echo
  echo "### gpu_timing 8 (CPU: 2 threads on 2 cores)"
  echo '```'
  RAYON_NUM_THREADS=2 taskset -c 0,1 "$bin/examples/gpu_timing" 8 2>&1
  echo '```'
} | tee "$report"

# End to end over HTTP: 10^8 samples, 10 quantiles, a threshold, every request uncached.
log="$out/gpu-nvidia-server.log"
source "$root/bench/lib.sh"
isl_start "$log" "$bin/isl" serve --backend gpu --max-samples 1000000000
addr="$ISL_ADDR"
"$bin/isl" bench --url "$addr" --mix counterfactual-30-1e8 --scenario sequential-uncached \
  --requests "${REQUESTS:-50}" --warmup 3 --json >"$out/gpu-nvidia-http.json"
{
  echo
  echo "### 10^8 samples, 10 quantiles, over HTTP (isl serve --backend gpu; isl bench --mix counterfactual-30-1e8, sequential, uncached)"
  echo '```'
  cat "$out/gpu-nvidia-http.json"
  echo
  echo "backend runs (/metrics):"
  curl -s "$addr/metrics" | grep '^isl_mc_backend_runs_total' || true
  echo '```'
  echo "server log:"
  echo '```'
  head -n 20 "$log"
  echo '```'
} | tee -a "$report"
