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

source "$root/bench/lib.sh"
ISL_MODELS_DIR="$models" isl_start "$out/edge-models-native.log" "$bin" serve --fetch-models false
native="$ISL_ADDR"
isl_start "$out/edge-models-edge.log" "$bin" edge --component "$component" --models-dir "$models"
edge="$ISL_ADDR"

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
