"""The RSSM's stochastic latent: a diagonal Gaussian (PlaNet, Dreamer) or a vector of
categoricals sampled straight-through (DreamerV2/V3). Each is described by its statistics, one
tensor (..., stats_dim) that a network outputs; the latent itself is (..., size)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

UNIMIX = 0.01  # DreamerV3: 1% uniform mixed into every categorical


class GaussianLatent:
    """stats = (mean, raw std) -> N(mean, softplus(raw) + min_std)."""

    def __init__(self, dims: int, min_std: float = 0.1) -> None:
        self.size, self.stats_dim, self.min_std = dims, 2 * dims, min_std

    def params(self, stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = stats.chunk(2, -1)
        return mean, F.softplus(raw) + self.min_std

    def sample(self, stats: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """A reparameterised draw (gradients reach the statistics)."""
        mean, std = self.params(stats)
        noise = torch.randn(mean.shape, device=mean.device, generator=generator)
        return mean + std * noise

    def mode(self, stats: torch.Tensor) -> torch.Tensor:
        return self.params(stats)[0]

    def kl(self, post: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """KL(post || prior), summed over the latent's dims -> (...)."""
        m1, s1 = self.params(post)
        m2, s2 = self.params(prior)
        return (torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5).sum(-1)


class CategoricalLatent:
    """stats = logits of `variables` categoricals of `classes` classes; the latent is their
    one-hot samples, flattened."""

    def __init__(self, variables: int, classes: int) -> None:
        self.variables, self.classes = variables, classes
        self.size = self.stats_dim = variables * classes

    def probs(self, stats: torch.Tensor) -> torch.Tensor:
        """(..., variables, classes) probabilities with the uniform mix."""
        logits = stats.unflatten(-1, (self.variables, self.classes))
        return (1 - UNIMIX) * logits.softmax(-1) + UNIMIX / self.classes

    def sample(self, stats: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """One-hot draws forward, the probabilities' gradient backward (straight-through)."""
        probs = self.probs(stats)
        one_hot = F.one_hot(self._draw(probs.detach(), generator), self.classes).to(probs.dtype)
        return (one_hot + probs - probs.detach()).flatten(-2)

    def _draw(self, probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Class indices (..., variables) by inverse CDF: the number of cumulative probabilities
        below one uniform draw per variable (several times faster than torch.multinomial on
        CPU; clamped, as the last cumulative sum may round below 1)."""
        u = torch.rand((*probs.shape[:-1], 1), device=probs.device, generator=generator,
                       dtype=probs.dtype)
        return (probs.cumsum(-1) < u).sum(-1).clamp_max(self.classes - 1)

    def mode(self, stats: torch.Tensor) -> torch.Tensor:
        probs = self.probs(stats)
        return F.one_hot(probs.argmax(-1), self.classes).to(probs.dtype).flatten(-2)

    def kl(self, post: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        p, q = self.probs(post), self.probs(prior)
        return (p * (p.log() - q.log())).sum((-1, -2))


def make_latent(kind: str, stoch: int, classes: int, min_std: float):
    """The latent `rssm.latent` names."""
    if kind == "gaussian":
        return GaussianLatent(stoch, min_std)
    return CategoricalLatent(stoch, classes)
