#!/usr/bin/env bash
# PETS on HalfCheetah-v5 at the paper's size (5 x 4x200 ensemble, CEM 500 x 20 particles x H30):
# the learner on the head's GPU, 8 rollout workers of 4 CPUs each, spread over the CPU nodes.
# Planning costs ~3.6 s per action on 2 CPU cores (bench/pets_bench.py): give workers many cores.
exec bash "$(dirname "$0")/submit.sh" pets-halfcheetah \
    learner.device=cuda learner.num_gpus=1 learner.num_cpus=4 \
    workers.num=8 workers.num_cpus=4 workers.envs_per_worker=1 "$@"
