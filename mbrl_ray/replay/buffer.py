"""A numpy ring buffer of transitions with episode boundaries. No Python object per step."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Field name -> (dtype, trailing shape given obs_dim/act_dim).
FIELDS = {
    "obs": (np.float32, "obs"),
    "action": (np.float32, "act"),
    "reward": (np.float32, None),
    "next_obs": (np.float32, "obs"),
    "terminated": (np.bool_, None),   # the MDP ended: no bootstrap, the model must predict it
    "episode_end": (np.bool_, None),  # terminated or truncated: the sequence boundary
}


def empty_chunk(obs_dim: int, act_dim: int, n: int = 0) -> dict[str, np.ndarray]:
    dims = {"obs": (obs_dim,), "act": (act_dim,), None: ()}
    return {k: np.zeros((n, *dims[d]), dt) for k, (dt, d) in FIELDS.items()}


class ReplayBuffer:
    """Fixed-capacity FIFO storage; `add` takes a chunk (dict of arrays with a leading time axis)."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity, self.obs_dim, self.act_dim = capacity, obs_dim, act_dim
        self.data = empty_chunk(obs_dim, act_dim, capacity)
        self.cursor = 0          # next write position
        self.size = 0            # valid rows
        self.total_inserted = 0  # rows ever added (counts past wrap-around)

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        n = len(chunk["reward"])
        if n > self.capacity:  # only the newest rows can survive anyway
            chunk = {k: v[-self.capacity:] for k, v in chunk.items()}
            self.total_inserted += n - self.capacity
            n = self.capacity
        idx = (self.cursor + np.arange(n)) % self.capacity
        for key in FIELDS:
            self.data[key][idx] = chunk[key]
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self.total_inserted += n

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """n rows drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, n)
        return {k: v[idx] for k, v in self.data.items()}

    def all(self) -> dict[str, np.ndarray]:
        """Every stored row, oldest first (a copy)."""
        start = self.cursor if self.size == self.capacity else 0
        idx = (start + np.arange(self.size)) % self.capacity
        return {k: v[idx] for k, v in self.data.items()}

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.data.values())

    def save(self, path: str | Path) -> None:
        """Write the valid rows and counters to one .npz file."""
        np.savez(path, **self.all(), capacity=self.capacity,
                 total_inserted=self.total_inserted)

    @classmethod
    def load(cls, path: str | Path) -> "ReplayBuffer":
        with np.load(path) as f:
            buf = cls(int(f["capacity"]), f["obs"].shape[1], f["action"].shape[1])
            buf.add({k: f[k] for k in FIELDS})
            buf.total_inserted = int(f["total_inserted"])
        return buf
