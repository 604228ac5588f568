#!/usr/bin/env bash
# Resume a run from its newest checkpoint, as a job on the cluster that wrote it.
#   RAY_ADDRESS=http://127.0.0.1:8265 bash jobs/resume.sh RUN_DIR_ON_THE_HEAD
set -euo pipefail
cd "$(dirname "$0")/.."
source jobs/ray_auth.sh
run_dir="${1:?usage: jobs/resume.sh RUN_DIR (a path on the head)}"
: "${RAY_ADDRESS:?set RAY_ADDRESS to the dashboard address of the head, e.g. http://127.0.0.1:8265}"
exec ray job submit --address "$RAY_ADDRESS" --submission-id "${JOB_ID:-mbrl-resume-$(date +%Y%m%d-%H%M%S)}" \
    --working-dir . --runtime-env jobs/runtime_env.yaml ${NO_WAIT:+--no-wait} -- \
    mbrl-ray resume "$run_dir"
