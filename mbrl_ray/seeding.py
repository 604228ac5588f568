"""The one place that turns `train.seed` into every actor's seeds.

Each actor seeds its process (Python's `random`, numpy's global generator, torch's CPU and CUDA
generators) once, before it builds anything, and derives its own generators from the same
number, so networks start from the same weights for the same seed in any process:

    learner          seed + LEARNER            network init, minibatches, planner noise
    replay actor     seed + REPLAY             sampling
    rollout worker i seed + WORKER * (i + 1)   + env index for env i's reset seed
    evaluator        seed + EVALUATOR          + 7919 x (evaluation number) per evaluation
    each resume      + RESUME x (resumes so far) on workers and evaluator, so a resumed run
                     does not replay the episodes it already saw

All seeds stay below 2**32 for seeds up to MAX_SEED (checked by config validation).
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


def worker_seed(seed: int, index: int, resumes: int = 0) -> int:
    return seed + WORKER * (index + 1) + RESUME * resumes


def evaluator_seed(seed: int, resumes: int = 0) -> int:
    return seed + EVALUATOR + RESUME * resumes


def seed_process(seed: int) -> None:
    """Seed every global generator of this process."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
