#!/usr/bin/env bash
# d-separation over HTTP on the causal benchmark's 1,000-node graphs (`er-n1000-s2`,
# `local-n1000-s4`): a release `isl serve` with its defaults, `isl bench --mix dsep-1000-*` —
# 100 queries per request about one DAG, every request distinct (uncached responses; the DAG
# cache holds the checked graph after the first) — beside networkx on the same requests in the
# same run (bench/dsep_http_peer.py, in-process), answers compared. Prints a Markdown table and
# writes bench/out/dsep-http-*.json.
#
#   bash bench/dsep-http.sh          # REQUESTS=300 PEER_MAX_S=60 to change the sizes
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
requests="${REQUESTS:-300}"
peer_max_s="${PEER_MAX_S:-60}"

cargo build --release --locked -q -p isl
bin="${CARGO_TARGET_DIR:-$root/target}/release/isl"
bash bench/setup-venv.sh
py="$root/.bench-venv/bin/python"

source "$root/bench/lib.sh"
isl_start "$out/dsep-http-server.log" "$bin" serve
addr="$ISL_ADDR"
# The same server without the DAG cache: every request decodes, canonicalises and builds its DAG.
isl_start "$out/dsep-http-server-nocache.log" "$bin" serve --dag-cache-bytes 0
addr_nocache="$ISL_ADDR"

for family in er local; do
  mix="dsep-1000-$family"
  "$bin" bench --mix "$mix" --seed 1 --warmup 20 --requests "$requests" --print-requests >"$out/dsep-http-$family.ndjson"
  "$bin" bench --url "$addr" --mix "$mix" --scenario sequential-uncached --seed 1 --warmup 20 \
    --requests "$requests" --json >"$out/dsep-http-$family-isl.json"
  "$bin" bench --url "$addr_nocache" --mix "$mix" --scenario sequential-uncached --seed 1 --warmup 20 \
    --requests "$requests" --json >"$out/dsep-http-$family-isl-nocache.json"
  "$py" bench/dsep_http_peer.py "$out/dsep-http-$family.ndjson" --max-s "$peer_max_s" >"$out/dsep-http-$family-networkx.json"
  # isl's answers to the requests networkx timed (in-process through the same binary's route).
  head -n "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" "$out/dsep-http-$family-networkx.json")" \
    "$out/dsep-http-$family.ndjson" | while read -r body; do
      curl -s "$addr/v1/causal/d-separation" -H 'content-type: application/json' --data-binary "$body"; echo
    done >"$out/dsep-http-$family-answers.ndjson"
done

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| graph | requests | isl over HTTP P50 ms | P95 ms | without the DAG cache P50 ms | networkx per request (same queries) ms | networkx / isl (P50) | without the DAG cache | answers equal |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
bad = False
for family, case in (("er", "er-n1000-s2"), ("local", "local-n1000-s4")):
    isl = json.load(open(f"{out}/dsep-http-{family}-isl.json"))
    nocache = json.load(open(f"{out}/dsep-http-{family}-isl-nocache.json"))["latency_ms"]["p50"]
    nx = json.load(open(f"{out}/dsep-http-{family}-networkx.json"))
    mine = [json.loads(l)["results"] for l in open(f"{out}/dsep-http-{family}-answers.ndjson") if l.strip()]
    equal = mine == nx["answers"]
    bad |= not equal or isl["errors"] + isl["transport_errors"] > 0
    l = isl["latency_ms"]
    print(f"| {case} | {isl['requests']} | {l['p50']:.3f} | {l['p95']:.3f} | {nocache:.3f} | {nx['mean_ms']:.1f} (mean of {nx['requests']}) "
          f"| {nx['mean_ms'] / l['p50']:,.0f}× | {nx['mean_ms'] / nocache:,.0f}× | {'yes' if equal else 'NO'} ({len(mine)} requests) |")
sys.exit(1 if bad else 0)
PY
