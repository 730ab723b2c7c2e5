#!/usr/bin/env bash
# Regenerates the figures of BENCHMARKS.md in one run on this machine:
#  1. causal algorithms — isl vs networkx and pgmpy on the same seeded random DAGs (200 and
#     1,000 nodes; two families), answers cross-checked (bench/report_causal.py exits non-zero
#     on any disagreement);
#  2. /v1/causal/validate over HTTP on loopback with `isl bench` (bench/http.sh);
#  3. the Monte Carlo engine beside numpy, and adaptive sampling (bench/mc.sh);
#  4. /v1/counterfactual and /v1/sensitivity over HTTP (bench/http.sh with MIX=...);
#  5. the edge component under `isl edge` beside `isl serve` (bench/edge.sh);
#  6. GPU Monte Carlo beside the CPU (bench/gpu.sh; lavapipe where there is no GPU; on an NVIDIA
#     machine without a toolchain, bench/gpu-nvidia.sh over binaries built here);
#  7. the model routes natively and inside the edge component (bench/models.sh,
#     bench/edge-models.sh), preference elicitation, the browser demo.
# Output: bench/out/report.md (also printed). Takes 15-25 minutes, mostly the Python peers.
#
#   bash bench/run.sh        # MINIMAL_TIMEOUT / ALL_SETS_TIMEOUT (seconds) bound pgmpy's calls
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
data="$out/causal"
mkdir -p "$data"

bash bench/setup-venv.sh
py="$root/.bench-venv/bin/python"

echo "==> isl (Rust): generating the workload and timing it" >&2
cargo bench --locked -q -p isl-causal --bench causal_vs_peers -- generate "$data"
cargo bench --locked -q -p isl-causal --bench causal_vs_peers -- run "$data"

echo "==> networkx and pgmpy on the same graphs" >&2
"$py" bench/causal_peers.py --data "$data/graphs.json" --out "$data/python.json" \
  --minimal-timeout "${MINIMAL_TIMEOUT:-5}" --all-sets-timeout "${ALL_SETS_TIMEOUT:-5}"

echo "==> HTTP" >&2
bash bench/http.sh >"$out/http.md"
bash bench/dsep-http.sh >"$out/dsep-http.md"
echo "==> Monte Carlo" >&2
bash bench/mc.sh >"$out/mc.md"
MIX=counterfactual-10 REQUESTS=1000 bash bench/http.sh >"$out/http-counterfactual.md"
MIX=sensitivity-10 REQUESTS=1000 bash bench/http.sh >"$out/http-sensitivity.md"
echo "==> Edge" >&2
bash bench/edge.sh >"$out/edge.md"
echo "==> GPU" >&2
bash bench/gpu.sh >/dev/null
echo "==> Models" >&2
PEER=1 bash bench/models.sh >"$out/models.md"
bash bench/edge-models.sh >"$out/edge-models.md"
echo "==> Preference elicitation" >&2
MIX=preferences-5 REQUESTS=300 bash bench/http.sh >"$out/http-preferences.md"
cargo test --release --locked -q -p isl-service --test elicit_timing -- --ignored --nocapture >"$out/elicit-timing.txt" 2>&1
cargo run --release --locked -q -p isl-elicit --example elicit_quality -- 50 100 2000 >"$out/elicit-quality.txt"
echo "==> Browser" >&2
ISL_BROWSER_BENCH=1 cargo test --locked -q -p isl --test browser -- --nocapture >"$out/browser.txt" 2>&1

{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(rustc --version)."
  echo
  "$py" bench/report_causal.py --rust "$data/rust.json" --python "$data/python.json" --data "$data/graphs.json"
  echo
  echo "### /v1/causal/validate over HTTP (200-node DAGs, isl bench on loopback)"
  echo
  cat "$out/http.md"
  echo
  echo "### d-separation over HTTP (1,000-node DAGs, 100 queries per request, beside networkx)"
  echo
  cat "$out/dsep-http.md"
  echo
  echo "### Monte Carlo engine vs numpy"
  echo
  cat "$out/mc.md"
  echo
  echo "### /v1/counterfactual over HTTP (10-node models, 10^5 samples, isl bench on loopback)"
  echo
  cat "$out/http-counterfactual.md"
  echo
  echo "### /v1/sensitivity over HTTP (10-node models, isl bench on loopback)"
  echo
  cat "$out/http-sensitivity.md"
  echo
  echo "### Edge component under isl edge vs isl serve"
  echo
  cat "$out/edge.md"
  echo
  echo "### GPU Monte Carlo vs CPU"
  echo
  cat "$out/gpu.md"
  echo
  echo "### Model routes over HTTP, embeddings vs onnxruntime"
  echo
  cat "$out/models.md"
  echo
  echo "### Model routes inside the edge component"
  echo
  cat "$out/edge-models.md"
  echo
  echo "### /v1/preferences/next"
  echo
  cat "$out/http-preferences.md"
  echo
  echo '```'
  grep -v '^running\|^test \|^$' "$out/elicit-timing.txt" || true
  cat "$out/elicit-quality.txt"
  echo '```'
  echo
  echo "### Browser demo (headless Chromium)"
  echo
  echo '```'
  grep 'BENCH' "$out/browser.txt" || true
  echo '```'
} >"$out/report.md"
cat "$out/report.md"
