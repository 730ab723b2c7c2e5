#!/usr/bin/env bash
# The edge component under `isl edge` beside the native `isl serve`, in one run: component size,
# time from process start to the first answer (compiling the component, and mapping the compiled
# form kept from an earlier start), per-request instantiation cost, and `isl bench` on the same
# request mix (validate-200, fixed seeds) against both, with the service's own time (from
# Server-Timing) split out. Prints a Markdown section; JSON in bench/out/edge-*.
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
cwasm="$out/edge-cwasm"
rm -rf "$cwasm" && mkdir -p "$cwasm"

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# start NAME ARGS...: starts a server, waits for its first 200 on /health; prints the address,
# the milliseconds from spawning the process to that answer, and the process id.
start() {
  local name="$1"; shift
  local log="$out/edge-$name.log"
  local t0 t1 addr=""
  : >"$log"   # truncate here: the background child may open it after the grep below starts
  t0=$(date +%s%N)
  "$bin" "$@" --addr 127.0.0.1:0 >>"$log" 2>&1 &
  local pid=$!
  while [[ -z "$addr" ]]; do addr="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n1 || true)"; done
  local tries=0
  until curl -sf "$addr/health" >/dev/null; do
    tries=$((tries + 1))
    if ((tries > 20000)); then echo "bench/edge.sh: $name never answered on $addr" >&2; kill "$pid"; return 1; fi
  done
  t1=$(date +%s%N)
  echo "$addr $(( (t1 - t0) / 1000000 )) $pid"
}
# first_answer NAME ARGS...: median over 5 starts of the time to the first answer.
first_answer() {
  local name="$1"; shift
  local times=()
  for _ in 1 2 3 4 5; do
    read -r _ ms pid < <(start "$name" "$@")
    times+=("$ms")
    kill "$pid"; while kill -0 "$pid" 2>/dev/null; do :; done
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}
native_first=$(first_answer native-start serve)
edge_compile_first=$(first_answer edge-start-compile edge --component "$component" --no-precompiled)
# One start that compiles and keeps the compiled form, then starts that map it.
read -r _ _ pid < <(start edge-prime edge --component "$component" --precompiled-dir "$cwasm"); kill "$pid"
edge_mapped_first=$(first_answer edge-start-mapped edge --component "$component" --precompiled-dir "$cwasm")

read -r native _ pid < <(start native serve); pids+=("$pid")
read -r edge _ pid < <(start edge edge --component "$component" --precompiled-dir "$cwasm"); pids+=("$pid")

run() { # url scenario file [extra...]
  local url="$1" scenario="$2" file="$3"; shift 3
  "$bin" bench --url "$url" --mix validate-200 --scenario "$scenario" --requests "$requests" --warmup 50 --json "$@" >"$out/$file"
}
for side in native edge; do
  url="${!side}"
  run "$url" sequential-uncached "edge-$side-uncached.json" --seed 1
  run "$url" sequential-cached "edge-$side-cached.json" --seed 1
  run "$url" concurrent "edge-$side-concurrent-uncached.json" --concurrency 8 --seed 1000000
  run "$url" concurrent-cached "edge-$side-concurrent-cached.json" --concurrency 8 --seed 1
done
curl -sf "$edge/metrics" >"$out/edge-metrics.txt"

python3 - "$out" "$(wc -c <"$component")" "$native_first" "$edge_compile_first" "$edge_mapped_first" <<'PY'
import json, re, sys
out, size = sys.argv[1], int(sys.argv[2])
native_first, compile_first, mapped_first = sys.argv[3:6]
metrics = open(f"{out}/edge-metrics.txt").read()
def metric(name):
    m = re.search(rf'^{re.escape(name)} ([0-9.e+-]+)$', metrics, re.M)
    return float(m.group(1)) if m else float("nan")
inst = {q: metric(f'isl_edge_instantiate_seconds{{quantile="{q}"}}') * 1e3 for q in ("0.5", "0.95", "0.99")}
print(f"Component: {size:,} bytes.\n")
print("Time from spawning the process to the first answer (median of 5 starts):\n")
print("| host | first answer ms |")
print("|---|---|")
print(f"| native `isl serve` | {native_first} |")
print(f"| `isl edge`, compiling the component at start (`--no-precompiled`) | {compile_first} |")
print(f"| `isl edge`, mapping the compiled form kept from an earlier start (the default) | {mapped_first} |")
print()
print(f"Per-request instantiation (fresh instance from the pooling allocator, from the edge host's "
      f"`/metrics` over the whole run): P50 {inst['0.5']:.3f} ms, P95 {inst['0.95']:.3f} ms, P99 {inst['0.99']:.3f} ms.\n")
print("| scenario | host | P50 ms | P95 ms | P99 ms | req/s | server P50 ms (Server-Timing) | x-cache hit rate |")
print("|---|---|---|---|---|---|---|---|")
rows = {}
for scenario in ("uncached", "cached", "concurrent-uncached", "concurrent-cached"):
    for side in ("native", "edge"):
        r = json.load(open(f"{out}/edge-{side}-{scenario}.json"))
        rows[(scenario, side)] = r
        l = r["latency_ms"]
        st = r.get("server_time_ms") or {}
        print(f"| {scenario} | {side} | {l['p50']:.3f} | {l['p95']:.3f} | {l['p99']:.3f} | {r['throughput_rps']:,.0f} "
              f"| {st.get('p50', float('nan')):.3f} | {r['cache']['hit_rate']:.2f} |")
n, e = rows[("uncached", "native")], rows[("uncached", "edge")]
ratio = e["server_time_ms"]["mean"] / n["server_time_ms"]["mean"]
stages_n, stages_e = n["server_stage_mean_ms"], e["server_stage_mean_ms"]
compute_ratio = stages_e.get("compute", 0) / max(stages_n.get("compute", 1e-9), 1e-9)
overhead = (e["latency_ms"]["p50"] - e["server_time_ms"]["p50"]) - (n["latency_ms"]["p50"] - n["server_time_ms"]["p50"])
print()
print(f"Sequential uncached, derived: time inside the service {ratio:.2f}x native in the component "
      f"(mean Server-Timing; compute stage alone {compute_ratio:.2f}x, decode {stages_e.get('decode',0)/max(stages_n.get('decode',1e-9),1e-9):.2f}x); "
      f"per-request overhead of the component beyond the service's own time: {overhead*1000:.0f} µs at P50 "
      f"(edge P50 minus its server P50, minus the same for native).")
PY
