#!/usr/bin/env bash
# The model routes inside the edge component (`scripts/build-edge-models.sh`, served by
# `isl edge --models-dir`) beside the native `isl serve`, in one run: `isl bench` sequential and
# uncached (every request distinct, so every edge request runs in a fresh instance that loads the
# model it needs) on the forecast-30, nli-8, embed-8 and verify-5x10 mixes, then the embed-8
# mix cached (answered by the edge host's tier). Prints a Markdown table; JSON in
# bench/out/edge-models-*.
#
#   bash bench/edge-models.sh            # REQUESTS=30 to change the size
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
requests="${REQUESTS:-30}"

cargo build --release --locked -q -p isl
./scripts/build-edge-models.sh -q
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/isl"
component="$target/wasm32-wasip2/edge-models/isl_edge.wasm"
models="${ISL_MODELS_DIR:-$HOME/.cache/isl/models}"
[[ -f "$models/all-minilm-l6-v2/model.onnx" ]] || ISL_MODELS_DIR="$models" ./scripts/fetch-models.sh

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
start() { # NAME ARGS...: prints the address once /health answers
  local log="$out/edge-models-$1.log"; shift
  : >"$log"
  "$bin" "$@" --addr 127.0.0.1:0 >>"$log" 2>&1 &
  pids+=("$!")
  local addr=""
  while [[ -z "$addr" ]]; do addr="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n1 || true)"; sleep 0.1; done
  until curl -sf "$addr/health" >/dev/null; do sleep 0.1; done
  echo "$addr"
}
native=$(ISL_MODELS_DIR="$models" start native serve --fetch-models false)
edge=$(start edge edge --component "$component" --models-dir "$models")

for mix in forecast-30 nli-8 embed-8 verify-5x10; do
  for side in native edge; do
    url="${!side}"
    "$bin" bench --url "$url" --mix "$mix" --scenario sequential-uncached --requests "$requests" --warmup 2 \
      --seed 1 --json >"$out/edge-models-$side-$mix.json"
  done
done
"$bin" bench --url "$edge" --mix embed-8 --scenario sequential-cached --requests 300 --warmup 10 --seed 1 --json \
  >"$out/edge-models-edge-embed-8-cached.json"

python3 - "$out" "$(wc -c <"$component")" <<'PY'
import json, sys
out, size = sys.argv[1], int(sys.argv[2])
print(f"Component with models: {size / 1e6:.1f} MB. Sequential, uncached, ms:\n")
print("| mix | native P50 | native P95 | edge P50 | edge P95 |")
print("|---|---|---|---|---|")
for mix in ["forecast-30", "nli-8", "embed-8", "verify-5x10"]:
    row = [mix]
    for side in ["native", "edge"]:
        r = json.load(open(f"{out}/edge-models-{side}-{mix}.json"))
        assert r["errors"] == 0, (side, mix, r["status_counts"])
        row += [f'{r["latency_ms"]["p50"]:.2f}', f'{r["latency_ms"]["p95"]:.2f}']
    print("| " + " | ".join(row) + " |")
c = json.load(open(f"{out}/edge-models-edge-embed-8-cached.json"))
print(f'\nembed-8 from the edge host\'s tier (cached): P50 {c["latency_ms"]["p50"]:.3f} ms, P95 {c["latency_ms"]["p95"]:.3f} ms')
PY
