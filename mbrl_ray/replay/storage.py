"""Time-ordered replay storage: one row per observation, rows of many streams interleaved in one
ring, each row linked to its predecessor in its stream.

A stream is the experience of one env of one rollout-worker incarnation, in time order. A row
holds an observation and how the env got there (DreamerV1/V2's convention):

    obs         o_t (float32 state or uint8 frame, stored once)
    action      a_{t-1}, the action that led to o_t (zeros on a first row)
    reward      r_{t-1}, the reward for that step (0 on a first row)
    is_first    o_t came from a reset
    is_last     o_t ends its episode (terminated or truncated): the final observation is kept
    is_terminal the episode terminated at o_t (no bootstrap beyond it)

Every row is known the moment the env returns it, so a worker's chunk is complete when sent.
The transition into row j is (obs[prev(j)], action[j], reward[j], obs[j], is_terminal[j]): next
observations are derived within the stream, never stored twice. A row is identified by its serial
number (rows ever written before it); the ring keeps serials [written - capacity, written), and a
row's `prev` serial outside that range (or -1) means its past is gone or never existed.
"""
from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

import numpy as np

from mbrl_ray.envs.spec import EnvSpec

ROW_FIELDS = ("obs", "action", "reward", "is_first", "is_last", "is_terminal")


def row_dtypes(spec: EnvSpec) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Field -> (dtype, per-row shape) of one stored row."""
    return {"obs": (spec.np_obs_dtype, spec.obs_shape), "action": (np.dtype(np.float32),
                                                                   (spec.act_dim,)),
            "reward": (np.dtype(np.float32), ()), "is_first": (np.dtype(bool), ()),
            "is_last": (np.dtype(bool), ()), "is_terminal": (np.dtype(bool), ())}


def bytes_per_row(spec: EnvSpec) -> int:
    """Memory one stored row takes: its fields, its stream id (int32) and the serial of the row
    before it in its stream (int64)."""
    fields = sum(dt.itemsize * int(np.prod(shape)) for dt, shape in row_dtypes(spec).values())
    return fields + np.dtype(np.int32).itemsize + np.dtype(np.int64).itemsize


def empty_rows(spec: EnvSpec, n: int) -> dict[str, np.ndarray]:
    """n zeroed rows of the spec's fields (what a worker fills and sends)."""
    return {k: np.zeros((n, *shape), dt) for k, (dt, shape) in row_dtypes(spec).items()}


class StreamStorage:
    """Fixed-capacity FIFO ring of rows; `add(rows, stream)` appends one stream's next rows."""

    def __init__(self, capacity: int, spec: EnvSpec) -> None:
        self.capacity, self.spec = capacity, spec
        self.data = empty_rows(spec, capacity)
        self.stream = np.full(capacity, -1, np.int32)  # stream id of each row
        self.prev = np.full(capacity, -1, np.int64)    # serial of the row before, same stream
        self.written = 0         # rows ever written = serial of the next row
        self.steps_inserted = 0  # env steps ever inserted (rows that are not first rows)
        self._ids: dict[Hashable, int] = {}   # stream key -> id
        self._tails: dict[int, int] = {}      # stream id -> serial of its newest row
        self.next_stream_id = 0

    # ---- writing ------------------------------------------------------------------------------
    def add(self, rows: dict[str, np.ndarray], stream: Hashable) -> None:
        """Append the next rows of `stream` (any hashable key, e.g. (worker, env, incarnation)),
        oldest first. A stream's first row must be a first row (is_first)."""
        n = len(rows["reward"])
        if n == 0:
            return
        sid = self._stream_id(stream)
        tail = self._tails.get(sid, -1)
        if tail < 0 and not rows["is_first"][0]:
            raise ValueError(f"stream {stream!r} starts with a row that is not is_first")
        serials = self.written + np.arange(n)
        prev = np.concatenate([[tail], serials[:-1]])
        self.steps_inserted += int(n - rows["is_first"].sum())
        keep = slice(max(0, n - self.capacity), n)  # only the newest rows can survive
        pos = serials[keep] % self.capacity
        for key in ROW_FIELDS:
            self.data[key][pos] = rows[key][keep]
        self.stream[pos] = sid
        self.prev[pos] = prev[keep]
        self.written += n
        self._tails[sid] = self.written - 1

    def _stream_id(self, key: Hashable) -> int:
        if key not in self._ids:
            self._ids[key] = self.next_stream_id
            self.next_stream_id += 1
        return self._ids[key]

    # ---- reading ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Rows held now."""
        return min(self.written, self.capacity)

    @property
    def oldest(self) -> int:
        """Serial of the oldest row held."""
        return max(0, self.written - self.capacity)

    def pos(self, serials: np.ndarray) -> np.ndarray:
        return serials % self.capacity

    def prev_of(self, serials: np.ndarray) -> np.ndarray:
        """Serial of each row's predecessor in its stream; -1 where it is gone or never was."""
        prev = self.prev[self.pos(serials)]
        return np.where(prev >= self.oldest, prev, -1)

    def gather(self, serials: np.ndarray) -> dict[str, np.ndarray]:
        """The rows at `serials` (any shape), fields stacked on that shape."""
        p = self.pos(serials)
        return {k: v[p] for k, v in self.data.items()}

    @property
    def nbytes(self) -> int:
        return (sum(v.nbytes for v in self.data.values()) + self.stream.nbytes
                + self.prev.nbytes)

    # ---- checkpoints --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the ring exactly (rows, links, counters) to one .npz. Arrays are written from
        views in numpy's buffered chunks, so the buffer is never copied whole in memory."""
        used = slice(0, self.size)
        np.savez(path, **{k: v[used] for k, v in self.data.items()}, stream=self.stream[used],
                 prev=self.prev[used], capacity=self.capacity, written=self.written,
                 steps_inserted=self.steps_inserted, next_stream_id=self.next_stream_id,
                 obs_shape=np.array(self.spec.obs_shape), obs_dtype=self.spec.obs_dtype,
                 act_dim=self.spec.act_dim)

    @classmethod
    def load(cls, path: str | Path) -> "StreamStorage":
        """The storage `save` wrote. Old streams are closed: a resumed run's workers start new
        ones (their first rows are is_first), so no link is made across the resume."""
        with np.load(path) as f:
            spec = EnvSpec(tuple(int(d) for d in f["obs_shape"]), str(f["obs_dtype"]),
                           int(f["act_dim"]))
            store = cls(int(f["capacity"]), spec)
            n = len(f["stream"])
            for key in ROW_FIELDS:  # one field in memory at a time
                store.data[key][:n] = f[key]
            store.stream[:n], store.prev[:n] = f["stream"], f["prev"]
            store.written, store.steps_inserted = int(f["written"]), int(f["steps_inserted"])
            store.next_stream_id = int(f["next_stream_id"])
        return store
