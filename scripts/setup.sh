#!/usr/bin/env bash
# Creates .venv with the checked dependency set and the suites' extras (dm_control, Meta-World),
# and makes sure the system libraries for headless MuJoCo rendering are there (EGL through Mesa;
# OSMesa as the fallback). Idempotent: the Python part re-runs only when pyproject.toml or
# constraints.txt changed. torch==2.13.0 goes first so that pip never pulls the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

GL_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libosmesa6)
missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${GL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing system libraries for headless rendering: ${missing[*]}"
  if ! { $sudo apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } >/dev/null; then
    echo "warning: could not install ${missing[*]}; state-based envs work, pixels and" \
         "evaluation videos need them (see docs/operations.md, Environments)" >&2
  fi
fi

stamp=.venv/.mbrl-ray-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,dmc,metaworld]"
echo "$want" > "$stamp"
