"""The envs of one rollout worker, stepped in lock-step, the episodes they finish, and the
time-ordered rows each env's stream adds (see replay/storage.py for a row's meaning)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mbrl_ray.envs import EnvSpec, env_kwargs, make_env
from mbrl_ray.replay import empty_rows


@dataclass
class Episode:
    """A finished episode. success: max of info['success'] over its steps (Meta-World), None
    for envs that report no success."""
    ret: float
    length: int
    success: float | None


class StreamRows:
    """The rows of each env written during one collect of `steps` steps, preallocated: at most
    one arrival and one reset row per step, plus a first row at the start."""

    def __init__(self, spec: EnvSpec, n_envs: int, steps: int) -> None:
        room = 2 * steps + 1
        self.rows = {k: v.reshape(n_envs, room, *v.shape[1:])
                     for k, v in empty_rows(spec, n_envs * room).items()}
        self.count = np.zeros(n_envs, np.int64)

    def put(self, env: int, obs, action=None, reward=0.0, is_first=False, is_last=False,
            is_terminal=False) -> None:
        t = self.count[env]
        r = self.rows
        r["obs"][env, t] = obs
        if action is not None:
            r["action"][env, t] = action
        r["reward"][env, t], r["is_first"][env, t] = reward, is_first
        r["is_last"][env, t], r["is_terminal"][env, t] = is_last, is_terminal
        self.count[env] += 1

    def segments(self, keys: list) -> list[tuple]:
        """[(stream key, rows of that env oldest first)] for the replay's insert."""
        return [(key, {k: v[i, :self.count[i]] for k, v in self.rows.items()})
                for i, key in enumerate(keys)]


class EnvBatch:
    """`count` envs of the config's `env` section; finished episodes reset at once."""

    def __init__(self, env_cfg, count: int, seed: int, render_size: int = 0) -> None:
        kwargs = env_kwargs(env_cfg)
        self.envs = [make_env(env_cfg.id, seed + i, render_size=render_size, **kwargs)
                     for i in range(count)]
        self.obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])
        self.first_row_due = np.ones(count, bool)  # the reset observation is not yet a row
        self.ret = np.zeros(count)
        self.len = np.zeros(count, np.int64)
        self.success: list[float | None] = [None] * count

    def step(self, actions: np.ndarray, rows: StreamRows | None = None):
        """Step every env; with `rows`, write each env's new rows (its first row where due, the
        arrival, the reset after an episode's end); return the finished episodes and the done
        mask."""
        done = np.zeros(len(self.envs), bool)
        finished: list[Episode] = []
        for i, env in enumerate(self.envs):
            if rows is not None and self.first_row_due[i]:
                rows.put(i, self.obs[i], is_first=True)
                self.first_row_due[i] = False
            nxt, reward, term, trunc, info = env.step(actions[i])
            if rows is not None:
                rows.put(i, nxt, actions[i], reward, is_last=term or trunc, is_terminal=term)
            self.ret[i] += reward
            self.len[i] += 1
            if "success" in info:
                self.success[i] = max(self.success[i] or 0.0, float(info["success"]))
            if term or trunc:
                done[i] = True
                finished.append(Episode(float(self.ret[i]), int(self.len[i]), self.success[i]))
                self.ret[i], self.len[i], self.success[i] = 0.0, 0, None
                nxt, _ = env.reset()
                self.first_row_due[i] = True
            self.obs[i] = nxt
        return finished, done

    def close(self) -> None:
        for env in self.envs:
            env.close()
