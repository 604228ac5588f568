"""Replay storage and rate limiting. Plain numpy, no Ray."""
from mbrl_ray.replay.buffer import FIELDS, ReplayBuffer, empty_chunk
from mbrl_ray.replay.limiter import SamplesPerInsertLimiter

__all__ = ["FIELDS", "ReplayBuffer", "SamplesPerInsertLimiter", "empty_chunk"]
