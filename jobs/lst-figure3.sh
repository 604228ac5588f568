#!/usr/bin/env bash
# The LST paper's Figure 3 at the paper's sizes as one Ray job (bench/lst_figure3.py): 5 methods
# x 3 envs x 10 paired seeds, 10 evaluation episodes per point; runs go out as Ray tasks placed
# by SPREAD, --parallel at a time (each holds its preset's worker and learner CPUs).
#   RAY_ADDRESS=http://127.0.0.1:8265 bash jobs/lst-figure3.sh [--parallel 8] [--envs ...] [--eval-wait]
# Results (curves.csv, table.md, figure3.png) land in RUN_ROOT/<id> on the head.
set -euo pipefail
cd "$(dirname "$0")/.."
source jobs/ray_auth.sh
: "${RAY_ADDRESS:?set RAY_ADDRESS to the dashboard address of the head, e.g. http://127.0.0.1:8265}"
id="${JOB_ID:-mbrl-lst-figure3-$(date +%Y%m%d-%H%M%S)}"
echo "submission id: ${id}  results on the head: ${RUN_ROOT:-/home/ray/runs}/${id}"
exec ray job submit --address "$RAY_ADDRESS" --submission-id "$id" --working-dir . \
    --runtime-env jobs/runtime_env.yaml ${NO_WAIT:+--no-wait} -- \
    python bench/lst_figure3.py --size paper --address auto --parallel 8 \
    --out "${RUN_ROOT:-/home/ray/runs}/${id}" "$@"
