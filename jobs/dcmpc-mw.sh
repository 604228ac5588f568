#!/usr/bin/env bash
# DC-MPC on one Meta-World task of the DCWM slides at the paper's size (eval/success):
#   bash jobs/dcmpc-mw.sh TASK [key=value ...]
# TASK: button-press door-open drawer-open drawer-close window-open window-close pick-place
#       push reach peg-insert-side (preset dcmpc-mw-TASK).
task="${1:?usage: jobs/dcmpc-mw.sh TASK [key=value ...]}"
shift
exec bash "$(dirname "$0")/submit.sh" "dcmpc-mw-${task}" \
    learner.device=cuda learner.num_gpus=1 learner.num_cpus=4 \
    workers.num=4 workers.num_cpus=2 "$@"
