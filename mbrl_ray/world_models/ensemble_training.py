"""Fitting the ensemble: holdout split, per-member bootstrap samples (or shuffles), early
stopping, best weights, elites."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mbrl_ray.seeding import init_generator, init_weights
from mbrl_ray.world_models.ensemble import ProbabilisticEnsemble

IMPROVEMENT = 0.01  # relative validation improvement that resets patience (mbrl-lib, MBPO)


@dataclass
class FitResult:
    elites: list[int]
    train_nll: float
    val_mse: float | None  # None: too little data to hold any out
    epochs: int


def to_tensors(data: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """The transition fields as tensors on `device`: numpy arrays are copied (Ray hands out
    read-only ones), tensors already there are used as they are."""
    keys = ("obs", "action", "reward", "next_obs", "terminated")
    return {k: torch.as_tensor(data[k], device=device) if torch.is_tensor(data[k])
            else torch.tensor(data[k], device=device) for k in keys}


def fit_normalizers(model: ProbabilisticEnsemble, d: dict[str, torch.Tensor]) -> None:
    model.in_norm.fit(torch.cat([d["obs"], d["action"]], -1))
    model.out_norm.fit(torch.cat([d["next_obs"] - d["obs"], d["reward"].unsqueeze(-1)], -1))


def _rows(d: dict[str, torch.Tensor], idx: torch.Tensor) -> tuple:
    """Gather rows by an (E, N) index: each member gets its own minibatch."""
    return (d["obs"][idx], d["action"][idx], d["reward"][idx], d["next_obs"][idx],
            d["terminated"][idx])


@torch.no_grad()
def member_val_mse(model: ProbabilisticEnsemble, d: dict[str, torch.Tensor]) -> torch.Tensor:
    """Standardised MSE of each member's mean on all rows of d: shape (E,)."""
    e = model.members
    expand = lambda x: x.unsqueeze(0).expand(e, *x.shape)  # noqa: E731
    mean, _ = model(expand(d["obs"]), expand(d["action"]))
    target = model.targets(expand(d["obs"]), expand(d["reward"]), expand(d["next_obs"]))
    return ((mean - target) ** 2).mean(dim=(1, 2))


def ensemble_from_config(m, obs_dim: int, act_dim: int, device: torch.device,
                         trainable: bool = True, seed: int = 0):
    """The ensemble `cfg.model` describes, its weights drawn from `seed`, and, when trainable,
    its Adam optimiser (else None)."""
    model = ProbabilisticEnsemble(obs_dim, act_dim, m.ensemble_size, m.hidden_size,
                                  m.num_layers, m.termination)
    model = init_weights(model, init_generator(seed)).to(device)
    optimizer = (torch.optim.Adam(model.parameters(), lr=m.lr, weight_decay=m.weight_decay)
                 if trainable else None)
    return model, optimizer


def fit_from_config(m, model: ProbabilisticEnsemble, optimizer: torch.optim.Optimizer,
                    data: dict[str, np.ndarray], generator: torch.Generator) -> FitResult:
    """fit_ensemble with the early-stopping settings of `cfg.model`."""
    return fit_ensemble(model, optimizer, data, num_elites=m.num_elites, batch_size=m.batch_size,
                        holdout=m.holdout, patience=m.patience, max_epochs=m.max_epochs,
                        generator=generator, bootstrap=m.bootstrap)


def fit_ensemble(model: ProbabilisticEnsemble, optimizer: torch.optim.Optimizer,
                 data: dict[str, np.ndarray], *, num_elites: int, batch_size: int,
                 holdout: float, patience: int, max_epochs: int,
                 generator: torch.Generator, bootstrap: bool = True) -> FitResult:
    """Train on all of `data` until validation stops improving; keep each member's best weights.

    bootstrap: each member trains on its own n rows drawn with replacement from the n training
    rows (PETS; the members' disagreement then carries the epistemic uncertainty that
    trajectory sampling and the LST density use); else each sees its own shuffle of all rows."""
    device = model.max_logvar.device
    d = to_tensors(data, device)
    fit_normalizers(model, d)
    n = len(d["reward"])
    perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
    n_val = int(n * holdout) if n >= 10 else 0
    val = {k: v[perm[:n_val]] for k, v in d.items()}
    train = {k: v[perm[n_val:]] for k, v in d.items()}
    n_train = n - n_val
    member_rows = _member_rows(model.members, n_train, bootstrap, generator, device)

    best = member_val_mse(model, val) if n_val else torch.full((model.members,), float("inf"))
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    stale, nll, epoch = 0, float("nan"), 0
    for epoch in range(1, max_epochs + 1):
        nll = _train_epoch(model, optimizer, train, member_rows, batch_size, generator)
        if not n_val:
            continue
        score = member_val_mse(model, val)
        improved = (best - score) / best.abs().clamp_min(1e-12) > IMPROVEMENT
        if improved.any():
            _keep_best(model, best_state, improved)
            best = torch.where(improved, score, best)
            stale = 0
        else:
            stale += 1
            if stale >= patience:
                break
    if n_val:
        model.load_state_dict(best_state)
    order = torch.argsort(best).tolist()
    elites = sorted(order[:num_elites])
    val_mse = float(best[elites].mean()) if n_val else None
    return FitResult(elites=elites, train_nll=nll, val_mse=val_mse, epochs=epoch)


def _member_rows(members: int, n_train: int, bootstrap: bool, generator: torch.Generator,
                 device: torch.device) -> torch.Tensor:
    """(E, n_train) training-row indices per member: a bootstrap sample, or every row once."""
    if bootstrap:
        rows = torch.randint(0, n_train, (members, n_train), generator=generator,
                             device=generator.device)
        return rows.to(device)
    return torch.arange(n_train, device=device).expand(members, n_train)


def _train_epoch(model, optimizer, train, member_rows, batch_size, generator) -> float:
    """One pass in which each member sees its own rows (member_rows) in its own order."""
    e, n_train = member_rows.shape
    shuffle = torch.argsort(torch.rand(e, n_train, generator=generator, device=generator.device),
                            dim=1)
    order = member_rows.gather(1, shuffle.to(member_rows.device))
    total, steps = 0.0, 0
    for start in range(0, n_train, batch_size):
        loss, nll, _ = model.loss(*_rows(train, order[:, start:start + batch_size]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(nll.detach())
        steps += 1
    return total / max(steps, 1)


def _keep_best(model, best_state: dict, improved: torch.Tensor) -> None:
    """Copy the improved members' current weights into best_state (shared params: always)."""
    for key, value in model.state_dict().items():
        if value.dim() == 3 and value.shape[0] == model.members and not key.endswith("logvar"):
            best_state[key][improved] = value[improved]
        else:
            best_state[key].copy_(value)
