#!/usr/bin/env bash
# One route over HTTP on loopback with `isl bench`: a release `isl serve` on a free port, then
# uncached (every request distinct), cached (one request repeated), concurrent-cached and
# concurrent uncached scenarios. Writes bench/out/http-MIX-*.json and prints a Markdown table.
#
#   bash bench/http.sh            # MIX=counterfactual-10 (default validate-200),
#                                 # REQUESTS=5000 CONCURRENCY=8 to change the sizes
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
requests="${REQUESTS:-3000}"
mix="${MIX:-validate-200}"
concurrency="${CONCURRENCY:-8}"

cargo build --release --locked -q -p isl
bin="${CARGO_TARGET_DIR:-$root/target}/release/isl"

source "$root/bench/lib.sh"
isl_start "$out/http-server.log" "$bin" serve
addr="$ISL_ADDR"

# Seeds are fixed so reruns send the same requests; the two uncached runs use disjoint ranges.
seed="${SEED:-1}"
run() { # scenario file seed requests extra-args...
  local scenario="$1" file="$2" s="$3" n="$4"; shift 4
  "$bin" bench --url "$addr" --mix "$mix" --scenario "$scenario" --requests "$n" --seed "$s" --json "$@" >"$out/$file"
}
run sequential-uncached "http-$mix-uncached.json" "$seed" "$requests" --warmup 100
run sequential-cached "http-$mix-cached.json" "$seed" "$((requests * 3))" --warmup 100
run concurrent-cached "http-$mix-concurrent-cached.json" "$seed" "$((requests * 10))" --concurrency "$concurrency" --warmup 200
run concurrent "http-$mix-concurrent-uncached.json" "$((seed + 1000000))" "$requests" --concurrency "$concurrency" --warmup 100

python3 - "$out" "$mix" <<'PY'
import json, sys
out, mix = sys.argv[1], sys.argv[2]
rows = [("sequential, uncached (distinct requests)", f"http-{mix}-uncached.json"),
        ("sequential, cached (one request repeated)", f"http-{mix}-cached.json"),
        ("concurrent-cached", f"http-{mix}-concurrent-cached.json"),
        ("concurrent, uncached", f"http-{mix}-concurrent-uncached.json")]
print("| scenario | connections | requests | errors | P50 ms | P95 ms | P99 ms | max ms | req/s | cache hit rate |")
print("|---|---|---|---|---|---|---|---|---|---|")
for label, f in rows:
    r = json.load(open(f"{out}/{f}"))
    l = r["latency_ms"]
    print(f"| {label} | {r['concurrency']} | {r['requests']} | {r['errors'] + r['transport_errors']} | "
          f"{l['p50']:.3f} | {l['p95']:.3f} | {l['p99']:.3f} | {l['max']:.3f} | {r['throughput_rps']:,.0f} | {r['cache']['hit_rate']:.2f} |")
PY
