#!/usr/bin/env bash
# The README's main job, on a cluster: PETS on InvertedPendulum-v5 with 4 rollout workers.
exec bash "$(dirname "$0")/submit.sh" pets-pendulum workers.num=4 "$@"
