"""PILCO's dynamics model: one exact Gaussian process per output (state differences), with an
ARD squared-exponential kernel and zero prior mean, hyperparameters by maximising the marginal
likelihood. Our own ~80 lines rather than GPyTorch: PILCO needs the GP's moments at a
Gaussian input (planners/moments.py), which GPyTorch does not give, and the exact GP's algebra
is short enough to read in one place.

The hyperparameters are kept in a sane range as in the PILCO authors' code: a soft barrier
(power 30) on lengthscales more than 100x the inputs' spread from it, and on signal-to-noise
ratios above 500."""
from __future__ import annotations

import math

import torch

from mbrl_ray.planners.moments import Moments, se_moments

Tensor = torch.Tensor
CURB_LENGTHSCALE, CURB_SNR, CURB_POWER = 100.0, 500.0, 30


def cross_kernel(hyper: dict[str, Tensor], A: Tensor, B: Tensor) -> Tensor:
    """k_a(A_i, B_j) = sf_a^2 exp(-|A_i - B_j|^2_{Lambda_a^-1} / 2), (E, |A|, |B|)."""
    ell = hyper["log_ell"].exp()[:, None, :]                         # (E, 1, D)
    sq = torch.cdist(A[None] / ell, B[None] / ell) ** 2
    return (2 * hyper["log_sf"]).exp()[:, None, None] * torch.exp(-0.5 * sq)


def initial_hyper(X: Tensor, Y: Tensor) -> dict[str, Tensor]:
    """Lengthscales the inputs' spread, signal the targets' std, noise a tenth of it."""
    spread = X.std(0).clamp(min=1e-3).log()
    sf = Y.std(0).clamp(min=1e-3).log()
    return {"log_ell": spread.expand(Y.shape[1], -1).clone(), "log_sf": sf,
            "log_sn": sf - math.log(10.0)}


class ExactGP:
    """GPs f_a(x) for a = 1..E on inputs X (n, D) and targets Y (n, E), float64."""

    def __init__(self, X: Tensor, Y: Tensor, hyper: dict[str, Tensor] | None = None) -> None:
        self.X, self.Y = X, Y
        hyper = initial_hyper(X, Y) if hyper is None else hyper
        self.hyper = {k: v.detach().clone() for k, v in hyper.items()}
        self._posterior()

    def neg_log_likelihood(self, hyper: dict[str, Tensor]) -> Tensor:
        """-log p(Y | X, hyper) summed over outputs, plus the hyperparameter barrier."""
        L = torch.linalg.cholesky(self._kernel(hyper))               # (E, n, n)
        y = self.Y.T[..., None]                                      # (E, n, 1)
        alpha = torch.cholesky_solve(y, L)
        n = len(self.X)
        nll = (0.5 * (y * alpha).sum((-1, -2)) + torch.diagonal(L, dim1=-2, dim2=-1).log().sum(-1)
               + 0.5 * n * math.log(2 * math.pi)).sum()
        return nll + self.barrier(hyper)

    def barrier(self, hyper: dict[str, Tensor]) -> Tensor:
        """The authors' soft walls on lengthscales and signal-to-noise ratios."""
        spread = self.X.std(0).clamp(min=1e-3).log()
        barrier = (((hyper["log_ell"] - spread) / math.log(CURB_LENGTHSCALE)) ** CURB_POWER).sum()
        return barrier + (((hyper["log_sf"] - hyper["log_sn"]) / math.log(CURB_SNR))
                          ** CURB_POWER).sum()

    def fit(self, iterations: int = 100) -> float:
        """Hyperparameters by L-BFGS on the marginal likelihood, from the current ones."""
        params = {k: v.clone().requires_grad_(True) for k, v in self.hyper.items()}
        opt = torch.optim.LBFGS(list(params.values()), max_iter=iterations,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = self.neg_log_likelihood(params)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            loss = float(self.neg_log_likelihood(params))
        if math.isfinite(loss):
            self.hyper = {k: v.detach() for k, v in params.items()}
        else:  # a failed search keeps the hyperparameters it started from
            loss = float(self.neg_log_likelihood(self.hyper))
        self._posterior()
        return loss

    @property
    def centres(self) -> Tensor:
        """The inputs the posterior's weights sit on: the data here."""
        return self.X

    def _kernel(self, hyper: dict[str, Tensor]) -> Tensor:
        eye = torch.eye(len(self.X), dtype=self.X.dtype)
        return cross_kernel(hyper, self.X, self.X) + \
            ((2 * hyper["log_sn"]).exp()[:, None, None] + 1e-8) * eye

    def _posterior(self) -> None:
        K = self._kernel(self.hyper)
        self.inv_k = torch.cholesky_inverse(torch.linalg.cholesky(K))  # (E, n, n)
        self.beta = (self.inv_k @ self.Y.T[..., None])[..., 0]          # (E, n)

    def predict(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and variance of the latent f at deterministic inputs x (N, D):
        (N, E) each."""
        k = cross_kernel(self.hyper, x, self.centres)                 # (E, N, n)
        mean = (k * self.beta[:, None, :]).sum(-1)                   # (E, N)
        sf2 = (2 * self.hyper["log_sf"]).exp()
        var = sf2[:, None] - torch.einsum("ani,aij,anj->an", k, self.inv_k, k)
        return mean.T, var.T

    def moments(self, m: Tensor, S: Tensor) -> Moments:
        """Exact mean and covariance of f(x) and its input-output factor, x ~ N(m, S)."""
        return se_moments(m, S, self.centres, self.beta, self.hyper["log_ell"].exp(),
                          (2 * self.hyper["log_sf"]).exp(), self.inv_k)
