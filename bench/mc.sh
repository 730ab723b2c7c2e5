#!/usr/bin/env bash
# Monte Carlo engine figures, in one run on this machine:
#  1. 10^6 samples of a 30-node linear model with uncertain coefficients (isl-mc's mc_timing
#     example: all threads and one thread) beside numpy doing the same model vectorised
#     (crates/isl-mc/examples/mc_timing_numpy.py, numpy from bench/setup-venv.sh);
#  2. adaptive sampling: the samples `target_error` needs vs a fixed 10^6, on the same model
#     through `isl counterfactual`.
# Prints Markdown; raw output in bench/out/mc-*.txt.
#
#   bash bench/mc.sh          # SAMPLES=1000000 to change the size
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
samples="${SAMPLES:-1000000}"

bash bench/setup-venv.sh >&2
py="$root/.bench-venv/bin/python"
cargo build --release --locked -q -p isl
cargo build --release --locked -q -p isl-mc --example mc_timing
target="${CARGO_TARGET_DIR:-$root/target}"
model="$out/mc-model-30.json"

"$target/release/examples/mc_timing" "$samples" "$model" >"$out/mc-isl.txt"
"$py" crates/isl-mc/examples/mc_timing_numpy.py "$model" "$samples" >"$out/mc-numpy.txt"

# Adaptive vs fixed on the same model and outcome (N29).
request() { # extra JSON fields
  "$py" - "$model" "$1" <<'PY'
import json, sys
model = json.load(open(sys.argv[1]))
req = {"model": model, "outcome": "N29", "seed": 1}
req.update(json.loads(sys.argv[2]))
print(json.dumps(req))
PY
}
timed() { # file json
  local t0 t1
  t0=$(date +%s%N)
  "$target/release/isl" counterfactual - <<<"$2" >"$out/$1"
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
fixed_ms=$(timed mc-fixed.json "$(request "{\"samples\": $samples}")")
std=$("$py" -c "import json; print(json.load(open('$out/mc-fixed.json'))['std'])")
target_error=$("$py" -c "print(round($std / 100, 6))")
adaptive_ms=$(timed mc-adaptive.json "$(request "{\"target_error\": $target_error, \"max_samples\": $samples}")")

"$py" - "$out" "$samples" "$fixed_ms" "$adaptive_ms" "$target_error" <<'PY'
import json, re, sys
out, samples, fixed_ms, adaptive_ms, target_error = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
isl = open(f"{out}/mc-isl.txt").read()
numpy = open(f"{out}/mc-numpy.txt").read()
def ms(text, label):
    m = re.search(rf"{label}.*? in ([0-9.]+) ms", text)
    return float(m.group(1)) if m else float("nan")
def threads(text):
    m = re.search(r"all threads \((\d+)\)", text)
    return int(m.group(1)) if m else 0
m = re.search(r"in ([0-9.]+) ms", numpy)
numpy_ms = float(m.group(1)) if m else float("nan")
all_ms, one_ms, n = ms(isl, "all threads"), ms(isl, "one thread"), threads(isl)
nodes = 30
print(f"{samples:,} samples of a 30-node linear model with uncertain coefficients (85 random inputs per sample):\n")
print("| engine | threads | ms | samples/s | node-samples/s per core | numpy / engine |")
print("|---|---|---|---|---|---|")
for label, t, cores in (("isl-mc (CPU backend)", all_ms, n), ("isl-mc (CPU backend)", one_ms, 1), ("numpy, vectorised", numpy_ms, 1)):
    print(f"| {label} | {cores} | {t:.1f} | {samples / (t / 1e3):.3e} | {samples * nodes / (t / 1e3) / cores:.3e} | {numpy_ms / t:.2f} |")
f = json.load(open(f"{out}/mc-fixed.json"))
a = json.load(open(f"{out}/mc-adaptive.json"))
print()
print(f"Adaptive sampling on the same model (outcome N29, std {f['std']:.4f}): asking for a standard error of "
      f"{target_error} (1% of the std) took {a['samples_used']:,} samples and {adaptive_ms} ms "
      f"(standard error reached {a['std_error']:.5f}); a fixed {samples:,} samples took {fixed_ms} ms for a standard "
      f"error of {f['std_error']:.5f} — {samples / a['samples_used']:.0f}x the samples for an error nobody asked for. "
      f"(Both timings are whole `isl counterfactual` processes.)")
PY
