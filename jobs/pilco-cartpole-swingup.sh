#!/usr/bin/env bash
# PILCO on cart-pole swing-up with 4 trials per round, one per rollout worker (each from its
# own draw of the start distribution): the GP gets 4 trials of data per refit, the same
# interaction time is spent in a quarter of the rounds. The learner's GP fit and policy search
# run on one CPU (float64 moments; seconds to minutes per round as the data grows).
exec bash "$(dirname "$0")/submit.sh" pilco-cartpole-swingup \
    workers.num=4 workers.envs_per_worker=1 train.random_steps=100 \
    train.steps_per_round=100 train.steps=500 "$@"
