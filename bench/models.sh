#!/usr/bin/env bash
# The model routes over HTTP on loopback: a release `isl serve --warmup` over the fetched models
# (scripts/fetch-models.sh runs first if they are missing), then `isl bench` on
#   forecast-30  (hourly week, horizon 30; sequential, every request distinct),
#   verify-5x10  (5 claims × 10 passages, top 3; sequential, distinct),
#   embed-8, nli-8 (8 texts / pairs per request; sequential, and 8 connections at once),
# and the server's resident memory with every model loaded (from /health).
# Writes bench/out/models-*.json and prints a Markdown table.
#
#   bash bench/models.sh          # REQUESTS=2000 (forecast; the others scale from it)
#
# The embedding peer (onnxruntime, same model, texts, batches and threads) is the library-level
# comparison in crates/isl-models/examples/embed_timing.rs and embed_timing_ort.py (PEER=1 runs it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
requests="${REQUESTS:-2000}"

bash scripts/fetch-models.sh >/dev/null
cargo build --release --locked -q -p isl
bin="${CARGO_TARGET_DIR:-$root/target}/release/isl"

log="$out/models-server.log"
source "$root/bench/lib.sh"
isl_start "$log" "$bin" serve --warmup --fetch-models false --backend cpu
addr="$ISL_ADDR"
for _ in $(seq 1 600); do
  code="$(python3 -c "import urllib.request,sys
try: print(urllib.request.urlopen('$addr/health').status)
except Exception as e: print(getattr(e,'code',0))")"
  [[ "$code" == 200 ]] && break
  sleep 0.2
done

run() { # mix scenario file requests seed extra...
  local mix="$1" scenario="$2" file="$3" n="$4" seed="$5"; shift 5
  "$bin" bench --url "$addr" --mix "$mix" --scenario "$scenario" --requests "$n" --seed "$seed" --json "$@" >"$out/$file"
}
run forecast-30 sequential-uncached models-forecast.json "$requests" 1 --warmup 100
run verify-5x10 sequential-uncached models-verify.json "$((requests / 40))" 1 --warmup 5
run embed-8 sequential-uncached models-embed-seq.json "$((requests / 10))" 1 --warmup 20
run embed-8 concurrent models-embed-conc.json "$((requests / 5))" 100000 --concurrency 8 --warmup 20
run nli-8 sequential-uncached models-nli-seq.json "$((requests / 10))" 1 --warmup 20
run nli-8 concurrent models-nli-conc.json "$((requests / 5))" 100000 --concurrency 8 --warmup 20
python3 -c "import json,urllib.request; json.dump(json.load(urllib.request.urlopen('$addr/health')), open('$out/models-health.json','w'), indent=1)"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [("/v1/forecast, horizon 30", "models-forecast.json", 1),
        ("/v1/verify, 5 claims × 10 passages", "models-verify.json", 1),
        ("/v1/embed, 8 texts, sequential", "models-embed-seq.json", 8),
        ("/v1/embed, 8 texts, 8 connections", "models-embed-conc.json", 8),
        ("/v1/nli, 8 pairs, sequential", "models-nli-seq.json", 8),
        ("/v1/nli, 8 pairs, 8 connections", "models-nli-conc.json", 8)]
print("| route | connections | requests | errors | P50 ms | P95 ms | P99 ms | req/s | items/s |")
print("|---|---|---|---|---|---|---|---|---|")
for label, f, items in rows:
    r = json.load(open(f"{out}/{f}"))
    l = r["latency_ms"]
    print(f"| {label} | {r['concurrency']} | {r['requests']} | {r['errors'] + r['transport_errors']} | "
          f"{l['p50']:.2f} | {l['p95']:.2f} | {l['p99']:.2f} | {r['throughput_rps']:,.1f} | {r['throughput_rps'] * items:,.0f} |")
h = json.load(open(f"{out}/models-health.json"))["models"]
print()
print(f"Resident memory with every model loaded and warm, after the runs: {h['resident_bytes'] / 2**20:.0f} MiB")
for b in h["batchers"]:
    print(f"- batcher {b['model']}: {b['items']} items in {b['batches']} batches ({b['items'] / max(b['batches'], 1):.1f} per batch), {b['rejected']} rejected")
PY

if [[ "${PEER:-0}" == 1 ]]; then
  cargo run --release --locked -q -p isl-models --example embed_timing -- --threads 2
  .models-venv/bin/python crates/isl-models/examples/embed_timing_ort.py --threads 2
fi
