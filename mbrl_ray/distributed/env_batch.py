"""The envs of one rollout worker, stepped in lock-step, and the episodes they finish."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mbrl_ray.envs import env_kwargs, make_env


@dataclass
class Episode:
    """A finished episode. success: max of info['success'] over its steps (Meta-World), None
    for envs that report no success."""
    ret: float
    length: int
    success: float | None


class EnvBatch:
    """`count` envs of the config's `env` section; finished episodes reset at once."""

    def __init__(self, env_cfg, count: int, seed: int, render_size: int = 0) -> None:
        kwargs = env_kwargs(env_cfg)
        self.envs = [make_env(env_cfg.id, seed + i, render_size=render_size, **kwargs)
                     for i in range(count)]
        self.obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])
        self.ret = np.zeros(count)
        self.len = np.zeros(count, np.int64)
        self.success: list[float | None] = [None] * count

    def step(self, actions: np.ndarray, rows: dict | None = None, t: int = 0):
        """Step every env; write transition t of each into rows[k][env, t] when rows are given;
        return the episodes that finished and the done mask."""
        done = np.zeros(len(self.envs), bool)
        finished: list[Episode] = []
        for i, env in enumerate(self.envs):
            nxt, reward, term, trunc, info = env.step(actions[i])
            if rows is not None:
                for key, value in (("obs", self.obs[i]), ("action", actions[i]),
                                   ("reward", reward), ("next_obs", nxt),
                                   ("terminated", term), ("episode_end", term or trunc)):
                    rows[key][i, t] = value
            self.ret[i] += reward
            self.len[i] += 1
            if "success" in info:
                self.success[i] = max(self.success[i] or 0.0, float(info["success"]))
            if term or trunc:
                done[i] = True
                finished.append(Episode(float(self.ret[i]), int(self.len[i]), self.success[i]))
                self.ret[i], self.len[i], self.success[i] = 0.0, 0, None
                nxt, _ = env.reset()
            self.obs[i] = nxt
        return finished, done

    def close(self) -> None:
        for env in self.envs:
            env.close()
