"""The one place that turns `train.seed` into every actor's seeds.

No process-wide generator is seeded or used: each actor derives its own generators from
`train.seed`, and networks draw their initial weights from a generator of their own
(`init_weights`), so they start from the same weights for the same seed in any process:

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
never draw the same stream. All seeds stay below 2**32 for seeds up to MAX_SEED (2**31 - 1,
mbrl_ray/config/validate.py, checked by config validation).
"""
from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

LEARNER = 0
REPLAY = 500
WORKER = 1000
EVALUATOR = 10_000_000
RESUME = 1_000_003
EVAL_STRIDE = 7919
AGENT, ENVS, SAC, MODEL, INIT, NOISE = 1, 2, 3, 4, 5, 6  # keys of derive()


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


def device_generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A generator on `device` seeded with `seed`, for noise drawn where the tensors live. The
    meta device (shapes only, for preflight's memory estimate) has no generator and draws
    nothing: it gets a CPU one."""
    device = torch.device(device)
    return torch.Generator("cpu" if device.type == "meta" else device).manual_seed(seed)


def init_generator(seed: int) -> torch.Generator:
    """The CPU generator a component's networks draw their initial weights from."""
    return torch.Generator().manual_seed(derive(seed, INIT))


def init_weights(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Draw every layer's initial weights from `generator`: torch's default distributions for
    linear and convolution layers, the layer's own for layers that declare `seeded_init`
    (`reset_parameters(generator)`, e.g. EnsembleLinear). Call it on CPU, before copies
    (target networks) are made."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif getattr(m, "seeded_init", False):
            m.reset_parameters(generator)
    return module


def generator_state(generator: torch.Generator, rng: np.random.Generator) -> dict:
    """A component's torch and numpy generator states, for its state_dict."""
    return {"generator": generator.get_state(), "rng": rng.bit_generator.state}


def load_generator_state(generator: torch.Generator, rng: np.random.Generator,
                         state: dict) -> None:
    """Restore both generators of `generator_state` (torch's as `load_torch_generator` does;
    numpy's stream continues exactly on any device)."""
    load_torch_generator(generator, state["generator"])
    rng.bit_generator.state = state["rng"]


def load_torch_generator(generator: torch.Generator, saved: torch.Tensor) -> None:
    """Restore a torch generator's saved state. One saved on another device kind (a GPU
    learner's checkpoint resumed on CPU, or back) has another layout and cannot continue
    here: the generator restarts from a seed drawn from that state, the same for the same
    checkpoint."""
    here = generator.get_state().numel()
    if saved.numel() == here:
        generator.set_state(saved)
        return
    generator.manual_seed(int(np.random.default_rng(saved.tolist()).integers(2 ** 63)))
    log.warning("a generator state saved on another device kind (%d bytes, %d here) "
                "restarted from a seed drawn from it", saved.numel(), here)
