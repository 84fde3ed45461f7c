#!/usr/bin/env bash
# Installs everything r1kit needs to build and test on a fresh Debian machine,
# idempotently: Debian packages through apt-get, LibTorch as PyPI's torch wheel
# in a virtual environment. On a ready machine it finishes in about a second.
#   scripts/setup.sh          build dependencies
#   scripts/setup.sh tools    also the Python packages of tools/ and bench/peers
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${R1KIT_VENV:-$HOME/.cache/r1kit/venv}"

apt_packages=(
  build-essential cmake ninja-build ccache pkg-config python3-venv clang-format
  nlohmann-json3-dev libcpp-httplib-dev libboost-dev libcli11-dev
  libpcre2-dev libicu-dev libgtest-dev libgmock-dev libgloo-dev libssl-dev
  libcairo2-dev fonts-dejavu-core iproute2 clang libclang-rt-dev
)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup: creating the Python environment $venv"
  python3 -m venv "$venv"
fi
want_torch="$(sed -n 's/^torch==//p' "$root/tools/requirements-build.txt")"
have_torch="$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
if [[ "$have_torch" != "$want_torch" ]]; then
  echo "setup: installing torch $want_torch (LibTorch) into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tools/requirements-build.txt"
fi
if [[ "${1:-}" == "tools" ]]; then
  if ! "$venv/bin/python" -c 'import transformers, tokenizers, safetensors, numpy, trl, peft, datasets, tensorboard' 2>/dev/null; then
    echo "setup: installing the Python packages of tools/"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tools/requirements-tools.txt"
  fi
fi
