#!/usr/bin/env bash
# Creates .venv with the checked dependency set. Idempotent: re-runs only when pyproject.toml or
# constraints.txt changed. torch==2.13.0 goes first so that pip never pulls the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.mbrl-ray-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
echo "$want" > "$stamp"
