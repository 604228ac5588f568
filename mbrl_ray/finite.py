"""The non-finite guard: a NaN or infinity in a loss, a weight, a prediction or an action stops
the run with a message naming the quantity, instead of spreading into replay and checkpoints."""
from __future__ import annotations

import math

import numpy as np
import torch


class NonFiniteError(RuntimeError):
    """A quantity that must be finite is not; the message names it and where it was seen."""


def first_nonfinite(tree, name: str = "") -> str | None:
    """The dotted name of the first non-finite entry of a nested dict/list of tensors, arrays
    and numbers (integer and boolean entries are skipped), or None."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return name if not _finite(tree) else None
    for key, value in items:
        found = first_nonfinite(value, f"{name}.{key}" if name else str(key))
        if found is not None:
            return found
    return None


def _finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, np.ndarray):
        return value.dtype.kind != "f" or bool(np.isfinite(value).all())
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def check_finite(tree, what: str) -> None:
    """Raise NonFiniteError naming the first non-finite entry of `tree` (`what`: where)."""
    found = first_nonfinite(tree)
    if found is not None:
        raise NonFiniteError(f"non-finite {what}: {found}")
