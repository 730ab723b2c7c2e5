#!/usr/bin/env bash
# Creates (or refreshes) the Python environment for the causal-graph peers benchmark:
# `.bench-venv` at the repository root, with the exact pins of bench/requirements-causal.txt
# installed with --no-deps (pgmpy's full dependency list would pull in far more than the
# code paths used here import). Idempotent: a stamp holding the hash of the requirement file
# and the interpreter version makes a second run a no-op. Quiet on success; on failure prints
# pip's log and exits non-zero.
#
#   bash bench/setup-venv.sh            # then: .bench-venv/bin/python bench/causal_peers.py ...
#   PYTHON=python3.11 bash bench/setup-venv.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$root/.bench-venv"
req="$here/requirements-causal.txt"
stamp="$venv/.causal-peers.stamp"
python="${PYTHON:-python3}"

command -v "$python" >/dev/null 2>&1 || { echo "setup-venv: $python not found" >&2; exit 1; }
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
want="$( { cat "$req"; echo "python $pyver"; } | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
fail() {
    echo "setup-venv: $1 (log follows)" >&2
    cat "$log" >&2
    exit 1
}

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" >"$log" 2>&1 || fail "python -m venv failed"
fi
rm -f "$stamp"
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$venv/bin/python" -m pip install --quiet --no-deps -r "$req" >"$log" 2>&1 \
    || fail "pip install failed"
# --no-deps leaves declared-but-unused requirements out, so `pip check` would complain;
# importing what the benchmark uses is the real check.
"$venv/bin/python" -W ignore -c '
import networkx, numpy, pgmpy
from pgmpy.base import DAG
from pgmpy.inference import CausalInference
assert hasattr(networkx, "is_d_separator"), "networkx >= 3.3 expected"
' >"$log" 2>&1 || fail "import check failed"
echo "$want" >"$stamp"
