#!/usr/bin/env bash
# Every GPU check in one command: the CUDA tests (every agent trains, acts and resumes on CPU),
# then the RSSM, DC-MPC and planner benches on the GPU at the papers' sizes, each one's output
# kept in OUT_DIR/<name>.txt. Usage: bash bench/gpu_all.sh [OUT_DIR] (default bench/results/gpu)
# PYTHON picks the interpreter (default .venv/bin/python); DEVICE the GPU (default cuda).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/gpu}
py=${PYTHON:-.venv/bin/python}
dev=${DEVICE:-cuda}
mkdir -p "$out"
status=0
step() {  # name, command...: run, keep its output, remember a failure and go on
  local name=$1; shift
  echo "== $name: $*"
  PYTHONUNBUFFERED=1 "$@" 2>&1 | tee "$out/$name.txt" || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt"
"$py" -c "import torch; print('torch', torch.__version__)" >> "$out/gpu.txt"
cat "$out/gpu.txt"
step gpu_tests "$py" -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider
step rssm_bench "$py" bench/rssm_bench.py --device "$dev"
step dcmpc_bench "$py" bench/dcmpc_bench.py --device "$dev"
step planner_bench "$py" bench/planner_bench.py --paper --device "$dev"
exit $status
