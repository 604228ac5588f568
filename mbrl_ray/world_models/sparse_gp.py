"""PILCO's dynamics once the data outgrows an exact GP: the FITC approximation (Snelson &
Ghahramani 2006), as the PILCO authors' code switches to past a set number of transitions.

M inducing inputs Z, shared by the outputs, stand in for the n data inputs: the prior
covariance of the data is Q + Lambda, Q = K_xz K_zz^-1 K_zx and Lambda = diag(K_xx - Q) + sn^2
I, so the likelihood costs O(n M^2) instead of O(n^3). Z is learned with the hyperparameters
by L-BFGS on that likelihood (from a random subset of the data, or the last fit's Z). The
posterior is a GP's in form, with weights on Z,

    beta = A^-1 K_zx Lambda^-1 y,   inv_k = K_zz^-1 - A^-1,   A = K_zz + K_zx Lambda^-1 K_xz,

so prediction and the moment matching (planners/moments.py) are the exact GP's with Z for X
and inv_k for (K + sn^2 I)^-1; with Z = X they are the exact GP's."""
from __future__ import annotations

import math

import torch

from mbrl_ray.world_models.gp import ExactGP, cross_kernel, initial_hyper

Tensor = torch.Tensor
JITTER = 1e-6  # relative to the signal variance, on K_zz


class SparseGP(ExactGP):
    """FITC GPs f_a(x), a = 1..E, on X (n, D), Y (n, E) with `inducing` inputs (hyper key
    "inducing", (M, D): kept from `hyper` when it holds that many, else a random subset of X
    drawn with `generator`); float64."""

    def __init__(self, X: Tensor, Y: Tensor, inducing: int,
                 hyper: dict[str, Tensor] | None, generator: torch.Generator) -> None:
        hyper = dict(initial_hyper(X, Y) if hyper is None else hyper)
        if len(hyper.get("inducing", ())) != inducing:
            hyper["inducing"] = X[torch.randperm(len(X), generator=generator)[:inducing]]
        super().__init__(X, Y, hyper)

    @property
    def centres(self) -> Tensor:
        """The inducing inputs Z (M, D): the posterior's weights sit on them."""
        return self.hyper["inducing"]

    def _factors(self, hyper: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Lz = chol(K_zz), V = Lz^-1 K_zx, Lambda (E, n), LB = chol(I + V Lambda^-1 V^T)."""
        Z = hyper["inducing"]
        sf2, sn2 = (2 * hyper["log_sf"]).exp(), (2 * hyper["log_sn"]).exp()
        eye = torch.eye(len(Z), dtype=Z.dtype)
        Lz = torch.linalg.cholesky(cross_kernel(hyper, Z, Z) + JITTER * sf2[:, None, None] * eye)
        V = torch.linalg.solve_triangular(Lz, cross_kernel(hyper, Z, self.X), upper=False)
        lam = sf2[:, None] - (V ** 2).sum(1) + sn2[:, None] + 1e-8          # (E, n)
        LB = torch.linalg.cholesky(eye + (V / lam[:, None, :]) @ V.transpose(1, 2))
        return Lz, V, lam, LB

    def neg_log_likelihood(self, hyper: dict[str, Tensor]) -> Tensor:
        """-log N(Y; 0, Q + Lambda) summed over outputs (by Woodbury), plus the barrier."""
        _, V, lam, LB = self._factors(hyper)
        y = self.Y.T                                                        # (E, n)
        c = torch.linalg.solve_triangular(LB, (V @ (y / lam)[..., None]), upper=False)
        quad = (y ** 2 / lam).sum(-1) - (c ** 2).sum((-1, -2))
        logdet = lam.log().sum(-1) + 2 * torch.diagonal(LB, dim1=-2, dim2=-1).log().sum(-1)
        nll = (0.5 * (quad + logdet + len(self.X) * math.log(2 * math.pi))).sum()
        return nll + self.barrier(hyper)

    def _posterior(self) -> None:
        Lz, V, lam, LB = self._factors(self.hyper)
        eye = torch.eye(len(self.centres), dtype=Lz.dtype)
        Lz_inv = torch.linalg.solve_triangular(Lz, eye.expand_as(Lz), upper=False)
        B_inv = torch.cholesky_inverse(LB)
        # A^-1 = Lz^-T B^-1 Lz^-1 and K_zz^-1 = Lz^-T Lz^-1
        self.inv_k = Lz_inv.transpose(1, 2) @ (eye - B_inv) @ Lz_inv          # (E, M, M)
        w = B_inv @ (V @ (self.Y.T / lam)[..., None])                        # (E, M, 1)
        self.beta = (Lz_inv.transpose(1, 2) @ w)[..., 0]                     # (E, M)
