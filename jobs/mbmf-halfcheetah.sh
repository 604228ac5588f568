#!/usr/bin/env bash
# MBMF on HalfCheetah-v5 at the authors' settings (the preset mbmf-halfcheetah): 4 rollout
# workers plan with random shooting (1,000 x 20 steps per action) on the newest delta network,
# the learner refits it every 10,000 env steps on the head's GPU; after 80,000 steps the MPC
# expert is imitated by DAgger and RLlib's PPO fine-tunes that policy for mbmf.finetune_steps.
exec bash "$(dirname "$0")/submit.sh" mbmf-halfcheetah \
    learner.device=cuda learner.num_gpus=1 workers.num=4 "$@"
