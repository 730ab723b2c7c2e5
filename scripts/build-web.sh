#!/usr/bin/env bash
# Builds the browser demo into web/dist (committed, so `isl serve` from a fresh clone embeds it):
#   - web/ (isl-web: isl-service behind wasm-bindgen) for wasm32-unknown-unknown, --profile web;
#   - the JavaScript bindings with `wasm-bindgen --target web` (the CLI is installed at the exact
#     version of the wasm-bindgen crate when missing);
#   - wasm-opt -O3 when binaryen is installed (Debian: apt-get install binaryen);
#   - web/dist/SOURCES.sha256: a hash of every input (see inputs_hash), which `--check` compares.
#
# Usage:
#   scripts/build-web.sh              build into web/dist
#   scripts/build-web.sh --out DIR    build into DIR
#   scripts/build-web.sh --check      exit 1 if web/dist was not built from the current sources
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)

# JS + wasm of the page must stay within this (uncompressed).
BUDGET_BYTES=$((1536 * 1024))

out=web/dist
mode=build
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --check) mode=check; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-web.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Files under the given paths: git's (tracked, and untracked but not ignored), or every file
# outside a git checkout.
list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -co --exclude-standard -- "$@"
  else
    find "$@" -type f 2>/dev/null || true
  fi
}

# The hash of what the bundle is made of: the crates compiled into the module (path crates'
# src/, Cargo.toml and build.rs; registry crates by version and features, from `cargo tree`),
# the page files, the web profile, and this script. Independent of the machine and of the
# toolchain's own version (the channel is `stable`), so a fresh clone computes the same hash.
inputs_hash() {
  local tree dirs
  tree=$(cargo tree --locked -p isl-web --target wasm32-unknown-unknown -e normal,build --prefix none \
    --format '{p} {f}' | sed -e 's/ (\*)$//' -e "s# (${root}/\{0,1\}# (./#" | LC_ALL=C sort -u)
  dirs=$(printf '%s\n' "$tree" | sed -n 's#.* (\./\([^)]*\)).*#\1#p' | LC_ALL=C sort -u)
  {
    printf '%s\n' "$tree"
    local paths=(web/page scripts/build-web.sh)
    local d
    for d in $dirs; do
      paths+=("${d:-.}/src" "${d:-.}/Cargo.toml" "${d:-.}/build.rs")
    done
    list_files "${paths[@]}" | LC_ALL=C sort -u | while IFS= read -r f; do
      if [[ -f "$f" ]]; then
        printf '%s  %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$f"
      fi
    done
    sed -n '/^\[profile\.release\]/,/^$/p; /^\[profile\.web\]/,/^$/p' Cargo.toml
  } | sha256sum | cut -c1-64
}

hash=$(inputs_hash)

if [[ $mode == check ]]; then
  have=$(cat web/dist/SOURCES.sha256 2>/dev/null || true)
  if [[ "$have" != "$hash" ]]; then
    echo "web/dist is out of date with its sources (web/, the crates it compiles, Cargo profiles):" >&2
    echo "  built from ${have:-nothing}, sources are $hash" >&2
    echo "  run scripts/build-web.sh and commit web/dist" >&2
    exit 1
  fi
  echo "web/dist is up to date with its sources ($hash)"
  exit 0
fi

version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' web/Cargo.toml)
if [[ -z "$version" ]]; then
  echo "build-web.sh: web/Cargo.toml must pin wasm-bindgen with '='" >&2
  exit 1
fi
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $version" ]]; then
  echo "installing wasm-bindgen-cli $version (once; a few minutes)"
  # Without --locked: the CLI's own lockfile names a yanked transitive version.
  cargo install wasm-bindgen-cli --version "$version"
fi

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
# Paths inside the module (panic locations) do not depend on where the clone or CARGO_HOME is.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$root=/isl"$'\x1f'"--remap-path-prefix=$cargo_home=/cargo"
cargo build --locked -p isl-web --lib --target wasm32-unknown-unknown --profile web
unset CARGO_ENCODED_RUSTFLAGS
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
module="$target_dir/wasm32-unknown-unknown/web/isl_web.wasm"

stage=$(mktemp -d "${TMPDIR:-/tmp}/isl-web.XXXXXX")
trap 'rm -rf "$stage"' EXIT
# wasm-opt runs on rustc's module, before wasm-bindgen: Debian bookworm's binaryen 108 cannot
# read what wasm-bindgen adds for reference types (table.fill), and turns its externref table
# into a funcref one.
if command -v wasm-opt >/dev/null; then
  wasm-opt -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$module" -o "$stage/isl_web.wasm"
  echo "optimised with $(wasm-opt --version)"
else
  echo "wasm-opt not found (apt-get install binaryen): the module is not optimised further"
  cp "$module" "$stage/isl_web.wasm"
fi
wasm-bindgen --target web --no-typescript --out-dir "$stage/pkg" "$stage/isl_web.wasm"
rm "$stage/isl_web.wasm"
printf '%s\n' "$hash" >"$stage/SOURCES.sha256"

# The page is web/page (served as it is) plus the built module and bindings.
size=$(find "$stage" web/page -type f \( -name '*.js' -o -name '*.wasm' \) -printf '%s\n' | awk '{s += $1} END {print s}')
echo "JS + wasm: $size bytes (budget $BUDGET_BYTES)"
if ((size > BUDGET_BYTES)); then
  echo "build-web.sh: the page's JS + wasm is over 1.5 MB" >&2
  exit 1
fi

mkdir -p "$out"
find "$out" -mindepth 1 -delete
cp -R "$stage"/. "$out"/
echo "built $out"
