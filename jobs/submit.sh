#!/usr/bin/env bash
# Submit `mbrl-ray train PRESET [args]` to a Ray cluster as a job; prints the submission id.
#   RAY_ADDRESS=http://127.0.0.1:8265 bash jobs/submit.sh PRESET [--steps N] [key=value ...]
# RUN_ROOT: where the head keeps run dirs (default /home/ray/runs, the image's user home; it
#           must outlive the job). JOB_ID: submission id (default mbrl-PRESET-<time>).
# RESOURCE_WAIT_S: how long the run waits for an autoscaling cluster to grow (default 900).
# NO_WAIT=1: return at once; follow with `ray job logs --follow <id>`.
set -euo pipefail
cd "$(dirname "$0")/.."
source jobs/ray_auth.sh
preset="${1:?usage: jobs/submit.sh PRESET [args...]}"
shift
: "${RAY_ADDRESS:?set RAY_ADDRESS to the dashboard address of the head, e.g. http://127.0.0.1:8265}"
id="${JOB_ID:-mbrl-${preset}-$(date +%Y%m%d-%H%M%S)}"
echo "submission id: ${id}  run dir on the head: ${RUN_ROOT:-/home/ray/runs}/${id}"
exec ray job submit --address "$RAY_ADDRESS" --submission-id "$id" --working-dir . \
    --runtime-env jobs/runtime_env.yaml ${NO_WAIT:+--no-wait} -- \
    mbrl-ray train "$preset" --run-dir "${RUN_ROOT:-/home/ray/runs}/${id}" \
    ray.resource_wait_s="${RESOURCE_WAIT_S:-900}" "$@"
