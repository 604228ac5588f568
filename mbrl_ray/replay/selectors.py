"""Selectors: what a learner asks of StreamStorage. Uniform 1-step transitions, B x L sequences
(n-step targets are computed from those, critics/nstep.py), and every transition at once
(PETS's full-data fit).

Each sample is a window of consecutive rows of one stream, found by walking `prev` links back
from a uniformly drawn end row: a window never crosses a stream (links stay inside one) nor the
write head (it ends at a row that exists), and a window whose past was overwritten is rejected.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mbrl_ray.replay.storage import StreamStorage

MAX_DRAWS = 64  # rounds of rejection sampling before a request is declared impossible


@dataclass(frozen=True)
class BatchSpec:
    """What one gradient step needs. kind 'transitions': `size` 1-step transitions; kind
    'sequences': `size` sequences of `length` rows, crossing episode boundaries (marked by
    is_first) only if `boundaries`."""
    kind: str = "transitions"
    size: int = 256
    length: int = 1
    boundaries: bool = False
    keys: str = ""  # the config keys that set the size, for error messages

    def __post_init__(self) -> None:
        if self.kind not in ("transitions", "sequences"):
            raise ValueError(f"BatchSpec.kind={self.kind!r}: transitions or sequences")

    @property
    def rows(self) -> int:
        """Transitions (or rows of sequences) one request draws: what the limiter counts."""
        return self.size if self.kind == "transitions" else self.size * self.length


def windows(store: StreamStorage, count: int, length: int, rng: np.random.Generator,
            accept=None) -> np.ndarray:
    """`count` windows of `length` consecutive serials of one stream, (count, length), oldest
    first; accept(window) -> bool mask filters candidates further."""
    found, have = [], 0
    for _ in range(MAX_DRAWS):
        need = count - have
        if need <= 0:
            break
        ends = rng.integers(store.oldest, store.written, 2 * need + 8)
        win = _walk_back(store, ends, length)
        win = win[(win >= 0).all(1)]
        if accept is not None and len(win):
            win = win[accept(win)]
        found.append(win[:need])
        have += len(found[-1])
    if have < count:
        raise ValueError(f"replay holds too few windows of {length} rows in one stream for "
                         f"{count} samples ({store.size} rows)")
    return np.concatenate(found)


def _walk_back(store: StreamStorage, ends: np.ndarray, length: int) -> np.ndarray:
    win = np.empty((len(ends), length), np.int64)
    win[:, -1] = ends
    for k in range(length - 1, 0, -1):
        prev = store.prev_of(np.maximum(win[:, k], 0))
        win[:, k - 1] = np.where(win[:, k] >= 0, prev, -1)
    return win


def sample_transitions(store: StreamStorage, count: int, rng: np.random.Generator
                       ) -> dict[str, np.ndarray]:
    """`count` uniform transitions: obs, action, reward, next_obs, terminated."""
    def starts_inside_an_episode(win):
        return ~store.data["is_last"][store.pos(win[:, 0])]

    return transitions_of(store, windows(store, count, 2, rng, starts_inside_an_episode))


def transitions_of(store: StreamStorage, win: np.ndarray) -> dict[str, np.ndarray]:
    """Transitions of windows (N, 2) of serials whose first row is not an episode's last (row
    1 holds the action taken in row 0, its reward and whether it terminated the episode)."""
    rows = store.gather(win)
    return {"obs": rows["obs"][:, 0], "action": rows["action"][:, 1],
            "reward": rows["reward"][:, 1].astype(np.float32), "next_obs": rows["obs"][:, 1],
            "terminated": rows["is_terminal"][:, 1]}


def sample_sequences(store: StreamStorage, batch: int, length: int, rng: np.random.Generator,
                     boundaries: bool = False) -> dict[str, np.ndarray]:
    """`batch` sequences of `length` rows, (B, L, ...) per field. boundaries=False: a sequence
    lies inside one episode (only its first row may be is_first); True: episodes may follow
    each other inside it, marked by is_first (as Dreamer trains)."""
    def inside_one_episode(win):
        return ~store.data["is_first"][store.pos(win[:, 1:])].any(1)

    win = windows(store, batch, length, rng, None if boundaries else inside_one_episode)
    return store.gather(win)


def all_transitions(store: StreamStorage) -> dict[str, np.ndarray]:
    """Every 1-step transition held, in the order its end row arrived (a copy)."""
    ends = np.arange(store.oldest, store.written)
    prev = store.prev_of(ends)
    ok = (prev >= 0) & ~store.data["is_first"][store.pos(ends)]
    return transitions_of(store, np.stack([prev[ok], ends[ok]], 1))


def sample(store: StreamStorage, spec: BatchSpec, rng: np.random.Generator
           ) -> dict[str, np.ndarray]:
    """One batch as `spec` asks."""
    if spec.kind == "transitions":
        return sample_transitions(store, spec.size, rng)
    return sample_sequences(store, spec.size, spec.length, rng, spec.boundaries)
