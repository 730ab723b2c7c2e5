#!/usr/bin/env bash
# Installs a Vulkan driver for the GPU tests when none is there: Debian's lavapipe (Mesa's
# software Vulkan, `mesa-vulkan-drivers`) and the Vulkan loader (`libvulkan1`). Idempotent and
# quiet; never fails: without apt (or root) it says why and the GPU tests skip.
set -u

pkgs=(mesa-vulkan-drivers libvulkan1)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "setup-gpu: Vulkan driver present (${pkgs[*]})"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-gpu: apt-get not found; not installing ${missing[*]} (GPU tests will skip without a Vulkan adapter)"
  exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "setup-gpu: not root and no passwordless sudo; not installing ${missing[*]} (GPU tests will skip)"
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  # The package lists may be missing or stale: update once and retry.
  if ! { "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 &&
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }; then
    echo "setup-gpu: apt-get could not install ${missing[*]} (GPU tests will skip without a Vulkan adapter)"
    exit 0
  fi
fi
echo "setup-gpu: installed ${missing[*]}"
exit 0
