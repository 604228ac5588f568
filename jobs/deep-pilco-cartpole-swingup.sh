#!/usr/bin/env bash
# Deep PILCO on cart-pole swing-up with 4 trials per round, one per rollout worker: the dropout
# network trains on 4 trials of data per round. The network and the particle rollouts are small
# and run on the learner's CPU in float64, as PILCO's moments do.
exec bash "$(dirname "$0")/submit.sh" deep-pilco-cartpole-swingup \
    workers.num=4 workers.envs_per_worker=1 train.random_steps=100 \
    train.steps_per_round=100 train.steps=1200 "$@"
