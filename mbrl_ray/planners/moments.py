"""Exact moments of a Gaussian pushed through PILCO's building blocks (Deisenroth 2010;
Deisenroth, Fox & Rasmussen 2015), in torch so that a rollout of moments is differentiable:

- `se_moments`: y_a = sum_i beta_ai k_a(x, X_i), a sum of ARD squared-exponential bumps, at a
  Gaussian x. It is a GP's posterior mean (beta = K^-1 y; with `inv_k` the GP's own variance
  is added, the GP's moment matching) and PILCO's RBF-network policy (beta free).
- `trig_moments`: (sin, cos) of a Gaussian angle; `sin_squash_moments`: the policy's
  saturation u_max (9 sin z + sin 3z) / 8.
- `saturating_cost`: E[1 - exp(-|y - target|^2 / (2 w^2))] for a Gaussian y.
- `Joint`: a Gaussian over every variable computed so far; a block's output is appended with
  its cross-covariance from the block's input-output factor C (cov(in, out) = S_in C).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class Moments:
    """Mean (E,), covariance (E, E) of a block's output, and C (D, E) with
    cov(input, output) = S_input @ C."""
    mean: Tensor
    cov: Tensor
    io: Tensor


def se_moments(m: Tensor, S: Tensor, centres: Tensor, beta: Tensor, lengthscales: Tensor,
               signal_var: Tensor, inv_k: Tensor | None = None) -> Moments:
    """x ~ N(m (D,), S (D, D)); centres (n, D); beta (E, n); lengthscales (E, D);
    signal_var (E,); inv_k (E, n, n) or None. Output a: sum_i beta_ai sf2_a
    exp(-|x - X_i|^2_{Lambda_a^-1} / 2), plus with inv_k the GP's predictive variance
    sf2_a - k^T K^-1 k in expectation (its latent function, not its noise)."""
    D = m.shape[0]
    inp = centres - m                                              # (n, D)
    lam = lengthscales ** 2                                        # (E, D)
    s_plus_lam = S + torch.diag_embed(lam)                         # (E, D, D)
    solved = torch.linalg.solve(s_plus_lam, inp.T.expand(len(lam), D, len(inp)))  # (E, D, n)
    logdet = torch.logdet(s_plus_lam) - lam.log().sum(-1)          # log|S Lambda^-1 + I|
    q = signal_var[:, None] * torch.exp(-0.5 * (inp.T * solved).sum(1) - 0.5 * logdet[:, None])
    bq = beta * q                                                  # (E, n)
    mean = bq.sum(-1)
    io = (solved * bq[:, None, :]).sum(-1).T                       # (D, E)
    second = _second_moments(S, inp, beta, lam, signal_var, inv_k)
    cov = second - torch.outer(mean, mean)
    return Moments(mean, 0.5 * (cov + cov.T), io)


def _second_moments(S: Tensor, inp: Tensor, beta: Tensor, lam: Tensor, signal_var: Tensor,
                    inv_k: Tensor | None) -> Tensor:
    """E[y_a y_b] (E, E), via Q_ab,ij = k_a(X_i, m) k_b(X_j, m) |R|^-1/2
    exp(z^T R^-1 S z / 2), R = S (Lambda_a^-1 + Lambda_b^-1) + I,
    z = Lambda_a^-1 (X_i - m) + Lambda_b^-1 (X_j - m)."""
    D = S.shape[0]
    ilam = 1.0 / lam                                               # (E, D)
    z = inp[None] * ilam[:, None, :]                               # (E, n, D)
    log_k = signal_var.log()[:, None] - 0.5 * (inp[None] * z).sum(-1)  # (E, n)
    pair = ilam[:, None, :] + ilam[None, :, :]                     # (E, E, D)
    R = S * pair[..., None, :] + torch.eye(D, dtype=S.dtype)       # S diag(pair) + I
    T = torch.linalg.solve(R, S.expand_as(R))                      # R^-1 S, symmetric
    zaT = torch.einsum("and,abde->abne", z, T)
    qa = (zaT * z[:, None]).sum(-1)                                # z_a T z_a (E, E, n)
    qb = (torch.einsum("bnd,abde->abne", z, T) * z[None]).sum(-1)  # z_b T z_b (E, E, n)
    cross = torch.einsum("abne,bme->abnm", zaT, z)
    log_q = (log_k[:, None, :, None] + log_k[None, :, None, :]
             + 0.5 * (qa[..., None] + qb[..., None, :] + 2 * cross)
             - 0.5 * torch.logdet(R)[..., None, None])
    Q = log_q.exp()                                                # (E, E, n, n)
    second = torch.einsum("an,abnm,bm->ab", beta, Q, beta)
    if inv_k is not None:
        diag = torch.diagonal(Q).permute(2, 0, 1)                  # Q_aa (E, n, n)
        second = second + torch.diag(signal_var - (inv_k * diag).sum((-1, -2)))
    return second


def trig_moments(mean: Tensor, var: Tensor) -> Moments:
    """(sin t, cos t) for an angle t ~ N(mean, var) (scalars)."""
    e1, e2 = torch.exp(-var / 2), torch.exp(-2 * var)
    ms, mc = e1 * torch.sin(mean), e1 * torch.cos(mean)
    vs = 0.5 * (1 - e2 * torch.cos(2 * mean)) - ms ** 2
    vc = 0.5 * (1 + e2 * torch.cos(2 * mean)) - mc ** 2
    csc = 0.5 * e2 * torch.sin(2 * mean) - ms * mc
    cov = torch.stack([torch.stack([vs, csc]), torch.stack([csc, vc])])
    return Moments(torch.stack([ms, mc]), cov, torch.stack([mc, -ms])[None])  # Stein's lemma


SQUASH = ((9.0 / 8.0, 1.0), (1.0 / 8.0, 3.0))  # (weight, frequency): (9 sin z + sin 3z) / 8


def sin_squash_moments(m: Tensor, S: Tensor, u_max: float = 1.0) -> Moments:
    """u_i = u_max (9 sin z_i + sin 3 z_i) / 8 for z ~ N(m (A,), S (A, A)): a saturation to
    [-u_max, u_max] whose moments are exact (PILCO's policy squashing)."""
    var = torch.diagonal(S)
    mean, io = torch.zeros_like(m), torch.zeros_like(S)
    second = torch.zeros_like(S)
    for w, f in SQUASH:
        decay = torch.exp(-0.5 * f * f * var)
        mean = mean + w * decay * torch.sin(f * m)
        io = io + torch.diag(w * f * decay * torch.cos(f * m))      # Stein: E[du/dz]
        for w2, f2 in SQUASH:  # E[sin(f z_i) sin(f2 z_j)] = (E cos(diff) - E cos(sum)) / 2
            diff = f * m[:, None] - f2 * m[None, :]
            summ = f * m[:, None] + f2 * m[None, :]
            base = f * f * var[:, None] + f2 * f2 * var[None, :]
            cross = 2 * f * f2 * S
            second = second + w * w2 * 0.5 * (torch.exp(-0.5 * (base - cross)) * torch.cos(diff)
                                               - torch.exp(-0.5 * (base + cross)) * torch.cos(summ))
    cov = u_max ** 2 * (second - torch.outer(mean, mean))
    return Moments(u_max * mean, 0.5 * (cov + cov.T), u_max * io)


def saturating_cost(mean: Tensor, cov: Tensor, target: Tensor, width: float) -> Tensor:
    """E[1 - exp(-|y - target|^2 / (2 width^2))] for y ~ N(mean, cov)."""
    k = len(mean)
    eye = torch.eye(k, dtype=cov.dtype)
    A = eye + cov / width ** 2                                    # I + S W, W = I / width^2
    gap = mean - target
    quad = gap @ torch.linalg.solve(A, gap) / width ** 2
    return 1 - torch.exp(-0.5 * quad) / torch.sqrt(torch.det(A))


@dataclass
class Joint:
    """A Gaussian over every variable computed so far in a step: mean (N,), cov (N, N)."""
    mean: Tensor
    cov: Tensor

    def block(self, idx: list[int]) -> tuple[Tensor, Tensor]:
        return self.mean[idx], self.cov[idx][:, idx]

    def append(self, idx: list[int], out: Moments) -> "Joint":
        """Append a block's output computed from the variables `idx`."""
        cross = self.cov[:, idx] @ out.io                          # cov(all, out) (N, E)
        mean = torch.cat([self.mean, out.mean])
        cov = torch.cat([torch.cat([self.cov, cross], 1),
                         torch.cat([cross.T, out.cov], 1)], 0)
        return Joint(mean, cov)
