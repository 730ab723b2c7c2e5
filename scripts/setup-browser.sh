#!/usr/bin/env bash
# Installs what the browser demo's build and test need, when missing: Debian's `binaryen`
# (wasm-opt), `chromium`, `nodejs` and `npm`, then the test's npm packages
# (`npm ci --prefix tests/browser`: playwright-core, pinned in its package-lock.json).
# Idempotent; never fails: what it cannot install it names, and the browser test then skips
# with that reason. Prints `setup-browser: ready` when everything is there.
set -u
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
chromium_present() { have chromium || have chromium-browser || have google-chrome || [[ -n "${ISL_CHROMIUM:-}" && -x "${ISL_CHROMIUM}" ]]; }

missing=()
have wasm-opt || missing+=(binaryen)
chromium_present || missing+=(chromium fonts-liberation)
have node || missing+=(nodejs)
have npm || missing+=(npm)

if ((${#missing[@]} > 0)); then
  sudo=()
  if [[ $(id -u) -ne 0 ]] && have sudo && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  fi
  if ! have apt-get; then
    echo "setup-browser: apt-get not found; not installing ${missing[*]}"
  elif [[ $(id -u) -ne 0 && ${#sudo[@]} -eq 0 ]]; then
    echo "setup-browser: not root and no passwordless sudo; not installing ${missing[*]}"
  else
    export DEBIAN_FRONTEND=noninteractive
    echo "setup-browser: installing ${missing[*]}"
    if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
      # The package lists may be missing or stale: update once and retry.
      "${sudo[@]}" apt-get update -qq >/dev/null 2>&1
      "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
        echo "setup-browser: apt-get could not install ${missing[*]}"
    fi
  fi
fi

if have npm; then
  lock=tests/browser/package-lock.json
  stamp=tests/browser/node_modules/.isl-lock.sha256
  want=$(sha256sum <"$lock" | cut -c1-64)
  if [[ ! -d tests/browser/node_modules/playwright-core || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    if npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null 2>&1; then
      echo "$want" >"$stamp"
      echo "setup-browser: installed tests/browser/node_modules"
    else
      echo "setup-browser: npm ci --prefix tests/browser failed"
    fi
  fi
fi

problems=()
have wasm-opt || problems+=("no wasm-opt (binaryen): the wasm module is built without it")
chromium_present || problems+=("no Chromium")
have node || problems+=("no node")
[[ -d tests/browser/node_modules/playwright-core ]] || problems+=("no tests/browser/node_modules")
if ((${#problems[@]} == 0)); then
  echo "setup-browser: ready (wasm-opt, $(node --version), Chromium, playwright-core)"
else
  printf 'setup-browser: %s\n' "${problems[@]}"
fi
exit 0
