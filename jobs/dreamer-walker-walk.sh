#!/usr/bin/env bash
# DreamerV3 on DeepMind Control from 64x64 pixels at the paper's size S (the preset
# dreamer-walker-walk): the learner (RSSM on 16 x 64 frame sequences) on the head's GPU, 4 rollout workers filtering
# their beliefs and acting on the GPU of their node where it has one (workers.device auto).
exec bash "$(dirname "$0")/submit.sh" dreamer-walker-walk \
    learner.device=cuda learner.num_gpus=1 learner.num_cpus=4 \
    workers.num=4 "$@"
