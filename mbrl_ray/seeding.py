"""The one place that turns `train.seed` into every actor's seeds.

Each actor seeds its process (Python's `random`, numpy's global generator, torch's CPU and CUDA
generators) once, before it builds anything, and derives its own generators from the same
number, so networks start from the same weights for the same seed in any process:

    learner          seed + LEARNER            network init, minibatches, planner noise
    replay actor     seed + REPLAY             sampling
    rollout worker i s = seed + WORKER * (i + 1): its agent derive(s, AGENT), env j's resets
                     derive(s, ENVS) + j
    evaluator        s = seed + EVALUATOR: its agent derive(s, AGENT); evaluation k's
                     episodes derive(s, ENVS) + EVAL_STRIDE * k
    each resume      + RESUME x (resumes so far) on workers and evaluator, so a resumed run
                     does not replay the episodes it already saw

`derive(s, key)` hashes (s, key) through numpy's SeedSequence, so that generators built from one
number (an env's reset noise, an agent's random first actions, a component's sampling noise:
PETS's SAC part takes derive(agent seed, SAC), MBPO's model part derive(agent seed, MODEL))
never draw the same stream. All seeds stay below 2**32 for seeds up to MAX_SEED (checked by
config validation).
"""
from __future__ import annotations

import random

import numpy as np
import torch

LEARNER = 0
REPLAY = 500
WORKER = 1000
EVALUATOR = 10_000_000
RESUME = 1_000_003
MAX_SEED = 2**31 - 1
EVAL_STRIDE = 7919
AGENT, ENVS, SAC, MODEL = 1, 2, 3, 4  # keys of derive()


def derive(seed: int, key: int) -> int:
    """An independent 32-bit seed for the part `key` of whatever `seed` seeds."""
    return int(np.random.SeedSequence([seed, key]).generate_state(1)[0])


def worker_seed(seed: int, index: int, resumes: int = 0) -> int:
    return seed + WORKER * (index + 1) + RESUME * resumes


def evaluator_seed(seed: int, resumes: int = 0) -> int:
    return seed + EVALUATOR + RESUME * resumes


def evaluation_env_seed(evaluator: int, k: int) -> int:
    """Env seed of the k-th evaluation run by an evaluator seeded `evaluator`."""
    return derive(evaluator, ENVS) + EVAL_STRIDE * k


def seed_process(seed: int) -> None:
    """Seed every global generator of this process."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
