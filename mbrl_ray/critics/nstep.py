"""The n-step TD target's parts, from the sequences a learner samples (B, L, ...) with episode
boundaries inside them (is_first, is_last, is_terminal per row): the one n-step implementation
(DC-MPC's critics; the replay hands 1-step transitions)."""
from __future__ import annotations

import torch


def nstep_target_parts(d: dict[str, torch.Tensor], n: int, gamma: float
                       ) -> dict[str, torch.Tensor]:
    """The n-step transition from row 0 of sequences (B, L >= n+1): discounted reward sum up to
    the episode's end, the observation reached, its discount gamma^steps x (1 - terminated),
    and whether the transition exists (row 1 continues row 0's episode)."""
    last = d["is_last"][:, 1:n + 1]
    ended = last.any(1)
    steps = torch.where(ended, last.float().argmax(1) + 1, torch.full_like(ended, n,
                                                                          dtype=torch.long))
    ks = torch.arange(1, n + 1, device=last.device)
    live = ks[None, :] <= steps[:, None]
    reward = (d["reward"][:, 1:n + 1].float() * live * gamma ** (ks - 1).float()).sum(1)
    idx = torch.arange(len(steps), device=steps.device)
    terminal = d["is_terminal"][idx, steps]
    return {"reward": reward, "next_obs": d["obs"][idx, steps].float(),
            "discount": gamma ** steps.float() * (~terminal).float(),
            "valid": ~d["is_first"][:, 1]}
