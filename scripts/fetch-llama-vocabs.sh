#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer test vocabularies (vocab-only GGUF files with the strings and the
# token ids llama.cpp's own test-tokenizer-0 checks, MIT) out of the llama-cpp-python 0.3.36
# source package, pinned by sha256, into ${ISL_MODELS_DIR:-$HOME/.cache/isl/models}/llama-cpp-vocabs.
# crates/isl-llm/tests/vocabs.rs tokenises them. Idempotent; prints the directory.
#
#   scripts/fetch-llama-vocabs.sh
set -euo pipefail
models="${ISL_MODELS_DIR:-$HOME/.cache/isl/models}"
dir="$models/llama-cpp-vocabs"
version=0.3.36
sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
names=(llama-spm phi-3 llama-bpe qwen2 gpt-2 starcoder refact command-r)

if [[ -f "$dir/.sdist-sha256" && "$(cat "$dir/.sdist-sha256")" == "$sha" ]]; then
  echo "$dir"
  exit 0
fi
packages="$models/packages"
mkdir -p "$packages"
sdist="$packages/llama_cpp_python-$version.tar.gz"
if [[ ! -f "$sdist" ]] || [[ "$(sha256sum "$sdist" | cut -c1-64)" != "$sha" ]]; then
  tmp=$(mktemp -d "$packages/.llama-sdist.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # The source package only: its build backend's own dependencies come as wheels.
  python3 -m pip download --disable-pip-version-check -q --no-deps \
    --no-binary llama-cpp-python -d "$tmp" "llama-cpp-python==$version" >&2
  mv "$tmp/llama_cpp_python-$version.tar.gz" "$sdist"
fi
got=$(sha256sum "$sdist" | cut -c1-64)
if [[ "$got" != "$sha" ]]; then
  echo "fetch-llama-vocabs: $sdist has sha256 $got, pinned $sha; refusing it" >&2
  exit 1
fi
mkdir -p "$dir"
members=()
for n in "${names[@]}"; do
  for ext in gguf gguf.inp gguf.out; do
    members+=("llama_cpp_python-$version/vendor/llama.cpp/models/ggml-vocab-$n.$ext")
  done
done
tar -xzf "$sdist" -C "$dir" --strip-components=4 "${members[@]}"
printf '%s\n' "$sha" >"$dir/.sdist-sha256"
echo "$dir"
