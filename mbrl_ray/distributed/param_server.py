"""Parameter server: holds the newest inference weights once (one object ref) with a version."""
from __future__ import annotations

import ray

from mbrl_ray.telemetry import metrics


@ray.remote(num_cpus=0)
class ParameterServer:
    def __init__(self) -> None:
        self.version = 0
        self.ref: ray.ObjectRef | None = None
        self.updates = 0  # learner updates behind the newest weights
        self.seen: dict[str, int] = {}  # worker id -> version it last loaded
        self.starts: dict[str, int] = {}  # worker id -> processes started under that name
        self.m_version = metrics.make("mbrl_params_version")
        self.m_lag = metrics.make("mbrl_params_version_lag")
        self.m_version.set(self.version)

    def _see(self, worker: str, have: int) -> None:
        self.seen[worker] = have
        self.m_lag.set(self.version - have, tags={"worker": worker})

    def publish(self, version: int, refs: list, updates: int = 0) -> None:
        """refs: [ObjectRef] (wrapped in a list so that Ray passes the ref, not the value);
        updates: the learner's updates so far, all of them in these weights."""
        self.version, self.ref, self.updates = version, refs[0], updates
        self.m_version.set(version)
        for worker, have in self.seen.items():
            self._see(worker, have)

    def get_if_newer(self, worker: str, have: int):
        """(version, [ref]) when the worker's version is behind, else None."""
        self._see(worker, have)
        if self.version > have and self.ref is not None:
            return self.version, [self.ref]
        return None

    def current(self):
        """(version, [ref]) of the newest weights (None before the first publish)."""
        return (self.version, [self.ref]) if self.ref is not None else None

    def loaded(self, worker: str, version: int) -> None:
        self._see(worker, version)

    def register(self, worker: str) -> int:
        """A worker process starts: how many started under this name before (0: the first;
        more: Ray restarted it)."""
        self.starts[worker] = self.starts.get(worker, 0) + 1
        return self.starts[worker] - 1

    def newest(self):
        """((version, [ref]) as `current`, the learner updates in those weights)."""
        return self.current(), self.updates

    def latest_version(self) -> int:
        return self.version

    def version_lag(self) -> int:
        """How many versions the most outdated worker is behind."""
        return max((self.version - v for v in self.seen.values()), default=0)
