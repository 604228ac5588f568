"""A flat numpy ring of transitions with no time order: MBPO's model rollouts, which are
synthetic one-step transitions from many branch points (real experience goes to StreamStorage)."""
from __future__ import annotations

import numpy as np

# Field name -> (dtype, trailing shape given obs_dim/act_dim).
FIELDS = {
    "obs": (np.float32, "obs"),
    "action": (np.float32, "act"),
    "reward": (np.float32, None),
    "next_obs": (np.float32, "obs"),
    "terminated": (np.bool_, None),
}


def empty_transitions(obs_dim: int, act_dim: int, n: int = 0) -> dict[str, np.ndarray]:
    dims = {"obs": (obs_dim,), "act": (act_dim,), None: ()}
    return {k: np.zeros((n, *dims[d]), dt) for k, (dt, d) in FIELDS.items()}


class TransitionBuffer:
    """Fixed-capacity FIFO storage; `add` takes a dict of arrays with a leading row axis."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = capacity
        self.data = empty_transitions(obs_dim, act_dim, capacity)
        self.cursor = 0  # next write position
        self.size = 0    # valid rows

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        n = len(chunk["reward"])
        if n > self.capacity:  # only the newest rows can survive anyway
            chunk = {k: v[-self.capacity:] for k, v in chunk.items()}
            n = self.capacity
        idx = (self.cursor + np.arange(n)) % self.capacity
        for key in FIELDS:
            self.data[key][idx] = chunk[key]
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """n rows drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty transition buffer")
        idx = rng.integers(0, self.size, n)
        return {k: v[idx] for k, v in self.data.items()}
