"""Replay: time-ordered stream storage, selectors over it, a transition buffer for synthetic
data, and the samples-per-insert limiter. Plain numpy, no Ray."""
from mbrl_ray.replay.buffer import TransitionBuffer, empty_transitions
from mbrl_ray.replay.limiter import SamplesPerInsertLimiter
from mbrl_ray.replay.selectors import (BatchSpec, all_transitions, sample, sample_sequences,
                                       sample_transitions)
from mbrl_ray.replay.storage import ROW_FIELDS, StreamStorage, empty_rows

__all__ = ["BatchSpec", "ROW_FIELDS", "SamplesPerInsertLimiter", "StreamStorage",
           "TransitionBuffer", "all_transitions", "empty_rows", "empty_transitions", "sample",
           "sample_sequences", "sample_transitions"]
