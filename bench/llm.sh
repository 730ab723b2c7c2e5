#!/usr/bin/env bash
# Text generation over HTTP, isl beside llama.cpp's OpenAI-compatible server (llama-cpp-python
# 0.3.36, bench/setup-llama-cpp.sh) on the same GGUF (the default SmolLM2-135M-Instruct Q4_1),
# the same machine and the same run, both with 2 threads. `isl bench --llm` drives both:
#   single stream: TTFT and decode tokens/s for a ~256-token prompt, 64 new tokens;
#   concurrency 4 and 16: aggregate tokens/s (llama.cpp's server decodes one sequence at a time:
#     llama-cpp-python's default, its requests are serialised);
#   seed 003's SLA: P95 < 2 s for 64-token answers at concurrency 4, for the ~256-token prompt
#     and for a chat-sized one (32 words); a cached answer (isl only).
# Then isl serve's peak resident memory (VmHWM) with the model loaded.
#
#   bash bench/llm.sh             # REQUESTS=16 per scenario
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
requests="${REQUESTS:-16}"
bash scripts/fetch-models.sh >/dev/null
gguf="${ISL_MODELS_DIR:-$HOME/.cache/isl/models}/smollm2-135m-instruct/model.gguf"
py="$(bash bench/setup-llama-cpp.sh)"
cargo build --release --locked -q -p isl
bin="${CARGO_TARGET_DIR:-$root/target}/release/isl"
source "$root/bench/lib.sh"

isl_start "$out/llm-isl.log" "$bin" serve --backend cpu --warmup --fetch-models false
isl="$ISL_ADDR"
isl_pid="${ISL_PIDS[-1]}"
for _ in $(seq 1 600); do
  curl -sf "$isl/v1/models" | grep -q '"ready"' && break
  sleep 0.1
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$py" -m llama_cpp.server --model "$gguf" --n_threads 2 --n_threads_batch 2 --n_ctx 4096 \
  --host 127.0.0.1 --port "$port" >"$out/llm-llamacpp.log" 2>&1 &
ISL_PIDS+=("$!")
peer="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
  curl -sf "$peer/v1/models" >/dev/null && break
  sleep 0.1
done

bench() { # NAME URL REQUESTS ARGS...
  local name="$1" url="$2" n="$3"; shift 3
  "$bin" bench --llm --url "$url" --json --warmup 1 --requests "$n" "$@" >"$out/llm-$name.json" || true
  python3 - "$out/llm-$name.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {r['ok']}/{r['requests']} | {r['ttft_ms']['p50']:.0f} | {r['latency_ms']['p50']:.0f} | {r['latency_ms']['p95']:.0f} | {r['latency_ms']['p99']:.0f} | {r['stream_tokens_per_second_p50']:.1f} | {r['aggregate_tokens_per_second']:.1f} | {'met' if r['sla_ok'] else 'not met'} |")
PY
}
echo "| run | ok | TTFT P50 ms | P50 ms | P95 ms | P99 ms | stream tok/s | aggregate tok/s | SLA P95<2s |"
echo "|---|---|---|---|---|---|---|---|---|"
for who in isl llama.cpp; do
  url="$isl"
  if [[ $who == llama.cpp ]]; then url="$peer"; fi
  name="$who"
  bench "$name-sequential" "$url" "$requests" --scenario sequential-uncached
  bench "$name-concurrent-4" "$url" "$requests" --scenario concurrent --concurrency 4
  # Seed 003's SLA on a chat-sized prompt (32 words, about 40 tokens).
  bench "$name-concurrent-4-short" "$url" "$requests" --scenario concurrent --concurrency 4 --llm-prompt-tokens 32
  bench "$name-concurrent-16" "$url" $((requests * 2)) --scenario concurrent --concurrency 16
done
bench "isl-sequential-cached" "$isl" 200 --scenario sequential-cached
echo
echo "isl serve peak resident memory, all models (the ONNX ones too): $(grep VmHWM /proc/$isl_pid/status | awk '{printf "%.0f MiB", $2/1024}')"

# The language model alone: a models directory holding only the GGUF, one concurrent-4 run.
solo="$(mktemp -d)"
mkdir -p "$solo/smollm2-135m-instruct"
ln -s "$gguf" "$solo/smollm2-135m-instruct/model.gguf"
isl_start "$out/llm-isl-solo.log" "$bin" serve --backend cpu --warmup --fetch-models false --models-dir "$solo"
for _ in $(seq 1 600); do
  curl -sf "$ISL_ADDR/v1/models" | grep -q '"ready"' && break
  sleep 0.1
done
"$bin" bench --llm --url "$ISL_ADDR" --warmup 1 --requests 8 --scenario concurrent --concurrency 4 >/dev/null || true
echo "isl serve peak resident memory, the language model alone: $(grep VmHWM /proc/${ISL_PIDS[-1]}/status | awk '{printf "%.0f MiB", $2/1024}')"
rm -rf "$solo"
