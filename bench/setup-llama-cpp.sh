#!/usr/bin/env bash
# The peer for the generation benchmarks and the isl-llm fixtures: llama.cpp's OpenAI-compatible
# server through llama-cpp-python, built from its source package into .llama-venv (git-ignored;
# a C++ compile of 10-25 minutes on 2 cores the first time, then pip's cached wheel).
# Prints the venv's python. LLAMA_VENV overrides the location.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LLAMA_VENV:-$root/.llama-venv}"
if ! "$venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  python3 -m venv "$venv"
  echo "building llama-cpp-python (10-25 minutes the first time) ..." >&2
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$venv/bin/pip" install -q 'llama-cpp-python[server]==0.3.36' >&2
fi
echo "$venv/bin/python"
