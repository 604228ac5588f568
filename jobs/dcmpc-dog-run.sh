#!/usr/bin/env bash
# DC-MPC on dmc:dog-run at the paper's size: the learner (world model, 5 critics, actor; one update
# per agent step at batch 512) on the head's GPU, 4 rollout workers planning MPPI 512 x 6.
# Planning costs ~117 GFLOP per action at d = 512 (bench/dcmpc_bench.py): workers plan on
# the GPU of their node where it has one (workers.device auto in the preset).
exec bash "$(dirname "$0")/submit.sh" dcmpc-dog-run \
    learner.device=cuda learner.num_gpus=1 learner.num_cpus=4 \
    workers.num=4 workers.num_cpus=2 "$@"
