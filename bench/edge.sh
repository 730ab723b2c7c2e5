#!/usr/bin/env bash
# The edge component under `isl edge` beside the native `isl serve`, in one run: component size,
# time from process start to the first answer, and `isl bench` on the same request mix
# (validate-200, fixed seeds) against both. Prints a Markdown section; JSON in bench/out/edge-*.
#
#   bash bench/edge.sh            # REQUESTS=2000 to change the size
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
requests="${REQUESTS:-2000}"

cargo build --release --locked -q -p isl
cargo build --locked -q -p isl-edge --target wasm32-wasip2 --profile edge
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/isl"
component="$target/wasm32-wasip2/edge/isl_edge.wasm"

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# start NAME ARGS...: starts a server, waits for its first 200 on /health, records the time.
start() {
  local name="$1"; shift
  local log="$out/edge-$name.log"
  local t0
  t0=$(date +%s%N)
  "$bin" "$@" --addr 127.0.0.1:0 >"$log" 2>&1 &
  pids+=($!)
  local addr=""
  while [[ -z "$addr" ]]; do addr="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n1 || true)"; done
  until curl -sf "$addr/health" >/dev/null; do :; done
  local t1
  t1=$(date +%s%N)
  echo "$addr $(( (t1 - t0) / 1000000 ))"
}
read -r native native_ms < <(start native serve)
read -r edge edge_ms < <(start edge edge --component "$component")

run() { # url scenario seed file
  "$bin" bench --url "$1" --mix validate-200 --scenario "$2" --requests "$requests" --seed "$3" --warmup 50 --json >"$out/$4"
}
for side in native edge; do
  url="${!side}"
  run "$url" sequential-uncached 1 "edge-$side-uncached.json"
  run "$url" sequential-cached 1 "edge-$side-cached.json"
  run "$url" concurrent-cached 1 "edge-$side-concurrent-cached.json"
done

python3 - "$out" "$(wc -c <"$component")" "$native_ms" "$edge_ms" <<'PY'
import json, sys
out, size, native_ms, edge_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"Component: {size:,} bytes. First answer after process start: native {native_ms} ms, edge {edge_ms} ms "
      "(edge includes compiling the component).\n")
print("| scenario | host | P50 ms | P95 ms | P99 ms | req/s |")
print("|---|---|---|---|---|---|")
for scenario in ("uncached", "cached", "concurrent-cached"):
    for side in ("native", "edge"):
        r = json.load(open(f"{out}/edge-{side}-{scenario}.json"))
        l = r["latency_ms"]
        print(f"| {scenario} | {side} | {l['p50']:.3f} | {l['p95']:.3f} | {l['p99']:.3f} | {r['throughput_rps']:,.0f} |")
PY
