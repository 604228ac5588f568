"""Samples-per-insert rate limiter (Reverb's SampleToInsertRatio) holding the update-to-data ratio."""
from __future__ import annotations


class SamplesPerInsertLimiter:
    """Keeps `inserts * spi - samples` inside `min_size * spi - owed ± error_buffer` once
    `min_size` rows are in. Inserts may proceed while the learner is not too far behind; samples
    while they do not get too far ahead. `error_buffer` must exceed one sample request.
    `owed`: samples the learner may draw at once when the warm-up rows are in, inserts waiting
    meanwhile (TD-MPC2's and DC-MPC's pre-training updates after the random steps)."""

    def __init__(self, samples_per_insert: float, min_size: int, error_buffer: float,
                 owed: float = 0.0) -> None:
        self.spi, self.min_size, self.error_buffer = samples_per_insert, min_size, error_buffer
        self.owed = owed
        self.inserts = 0
        self.samples = 0

    @property
    def _diff(self) -> float:
        return self.inserts * self.spi - self.samples

    @property
    def _target(self) -> float:
        return self.min_size * self.spi - self.owed

    def can_insert(self) -> bool:
        return self.inserts < self.min_size or self._diff <= self._target + self.error_buffer

    def can_sample(self, n: int) -> bool:
        return self.inserts >= self.min_size and self._diff - n >= self._target - self.error_buffer

    def insert(self, n: int) -> None:
        self.inserts += n

    def sample(self, n: int) -> None:
        self.samples += n

    @property
    def due(self) -> float:
        """Samples the ratio has granted so far: the point the learner is held around (0
        before the warm-up rows are in)."""
        if self.inserts < self.min_size:
            return 0.0
        return (self.inserts - self.min_size) * self.spi + self.owed

    @property
    def ratio(self) -> float:
        """Samples drawn per inserted row so far, counted after the warm-up rows."""
        after = self.inserts - self.min_size
        return self.samples / after if after > 0 else 0.0

    def state_dict(self) -> dict:
        return {"inserts": self.inserts, "samples": self.samples}

    def load_state_dict(self, state: dict) -> None:
        self.inserts, self.samples = state["inserts"], state["samples"]
