"""DreamerV3's scale-free regression (Hafner et al. 2023, Sec. 3): symlog squashing of vector
inputs and targets, and a categorical over 255 bins spaced evenly in symlog space (so their
values are symexp-spaced) for rewards and returns, learnt by cross-entropy against the
two-hot encoding of the target and read out as the symexp of the expected bin."""
from __future__ import annotations

import torch
import torch.nn.functional as F

BINS, LOW, HIGH = 255, -20.0, 20.0


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) ln(|x| + 1)."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """sign(x) (e^|x| - 1), the inverse of symlog."""
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHot:
    """Logits (..., bins) of a categorical over symlog-space bins <-> real values (...)."""

    def __init__(self, bins: int = BINS, low: float = LOW, high: float = HIGH) -> None:
        self.bins, self.low, self.high = bins, low, high

    def points(self, like: torch.Tensor) -> torch.Tensor:
        return torch.linspace(self.low, self.high, self.bins, device=like.device,
                              dtype=like.dtype)

    def encode(self, value: torch.Tensor) -> torch.Tensor:
        """(...) real values -> (..., bins): weights on the two bins around symlog(value)
        that sum to 1 and whose weighted mean is symlog(value) (clipped into the range)."""
        y = symlog(value).clamp(self.low, self.high)
        step = (self.high - self.low) / (self.bins - 1)
        below = ((y - self.low) / step).floor().clamp(0, self.bins - 2)
        upper = (y - (self.low + below * step)) / step
        index = below.long()
        return (F.one_hot(index, self.bins) * (1 - upper)[..., None]
                + F.one_hot(index + 1, self.bins) * upper[..., None])

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The value the distribution predicts: symexp of the expected bin."""
        return symexp((logits.softmax(-1) * self.points(logits)).sum(-1))

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the logits against the two-hot target, per element (...)."""
        return -(self.encode(target.detach()) * logits.log_softmax(-1)).sum(-1)
