"""Fixed initial states ("conditions", as guided policy search calls them): with
`env.conditions` = M > 0 every episode starts from one of M states, condition c being the
env's reset with seed `env.condition_seed` + c. An env cycles through them in order from its
own seed's condition, so that each env of a batch plays every condition in turn and a round of
M x (episodes per condition) x episode length steps per env gives each condition the same
number of episodes, whatever the workers' seeds."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class FixedStarts(gym.Wrapper):
    """reset(seed=s) starts condition s mod M; reset() the next one after the last."""

    def __init__(self, env: gym.Env, conditions: int, condition_seed: int) -> None:
        super().__init__(env)
        self.conditions, self.condition_seed = conditions, condition_seed
        self.condition = -1

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.condition = (seed if seed is not None else self.condition + 1) % self.conditions
        obs, info = self.env.reset(seed=self.condition_seed + self.condition, options=options)
        return obs, {**info, "condition": self.condition}


def initial_observations(env_cfg) -> np.ndarray:
    """The M conditions' first observations (M, obs_dim), in condition order."""
    from mbrl_ray.envs.make import env_kwargs, make_env
    env = make_env(env_cfg.id, seed=0, **env_kwargs(env_cfg))
    try:
        return np.stack([env.reset(seed=c)[0] for c in range(env_cfg.conditions)])
    finally:
        env.close()


def condition_episodes(data: dict, new: int, starts, horizon: int) -> list:
    """Per condition, the whole episodes among the last `new` transitions of `data` (the
    replay's transitions in arrival order): states (N, horizon+1, n) and actions
    (N, horizon, m) as float64 tensors, None where it has none. An episode is `horizon`
    chained transitions from a condition's first observation (`starts` (M, n)); a worker
    restarted mid-episode, or an episode that terminated early, leaves none."""
    import torch

    obs, nxt, act = (torch.as_tensor(data[k][len(data[k]) - new:], dtype=torch.float64)
                     for k in ("obs", "next_obs", "action"))
    gap = (obs[:, None] - starts[None]).abs().amax(-1)  # (L, M)
    match = torch.where(gap.amin(1) <= 1e-6, gap.argmin(1), -1)
    found: list[list] = [[] for _ in range(len(starts))]
    i, T = 0, horizon
    while i + T <= len(obs):
        cond = int(match[i])
        if cond >= 0 and torch.equal(nxt[i:i + T - 1], obs[i + 1:i + T]):
            found[cond].append((torch.cat([obs[i:i + T], nxt[i + T - 1:i + T]]), act[i:i + T]))
            i += T
        else:
            i += 1
    return [(torch.stack([e[0] for e in eps]), torch.stack([e[1] for e in eps]))
            if eps else None for eps in found]
