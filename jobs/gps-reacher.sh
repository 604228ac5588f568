#!/usr/bin/env bash
# Guided policy search on Reacher-v5 with its 4 conditions spread over 4 rollout workers: each
# worker's env plays every condition in turn, 8 episodes per round (2 per condition per
# worker, 8 samples per condition), 15 rounds. The learner's LQR steps and policy fit are small
# (seconds per round on one core); the workers' envs are the parallel part.
exec bash "$(dirname "$0")/submit.sh" gps-reacher \
    workers.num=4 workers.envs_per_worker=1 train.random_steps=1600 \
    train.steps_per_round=1600 train.steps=24000 "$@"
