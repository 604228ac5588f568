"""iCEM (Pinneri et al. 2020): CEM with temporally coloured noise, a population that shrinks
per iteration, elites kept from one iteration (and one time step) to the next, the mean among
the last iteration's candidates, and the best sequence seen (not the mean) executed."""
from __future__ import annotations

import math

import torch

from mbrl_ray.planners.base import (ActionPriorOptions, Objective, gather_rows, keep_best, refit,
                                    sample_around, shift, with_prior)


def colored_noise(shape: tuple[int, ...], beta: float, device: torch.device | str = "cpu",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise with power spectrum ~ 1/f^beta along dim -2 (time), unit std per sequence
    step on average: beta = 0 is white noise, larger beta smoother action sequences."""
    steps = shape[-2]
    freqs = torch.fft.rfftfreq(steps, device=device)
    freqs[0] = freqs[1] if steps > 1 else 1.0  # the DC term gets the lowest frequency's power
    scale = freqs ** (-beta / 2)
    spectrum_shape = (*shape[:-2], len(freqs), shape[-1])
    real = torch.randn(spectrum_shape, device=device, generator=generator)
    imag = torch.randn(spectrum_shape, device=device, generator=generator)
    # irfft drops the imaginary parts of the DC and (even steps) Nyquist bins and counts the
    # others twice: those two get their real part's variance doubled, so beta = 0 is white.
    single = torch.zeros_like(scale, dtype=torch.bool)
    single[0] = True
    if steps % 2 == 0:
        single[-1] = True
    real = real * torch.where(single, math.sqrt(2.0), 1.0)[:, None]
    signal = torch.fft.irfft(torch.complex(real, imag) * scale[:, None], n=steps, dim=-2)
    variance = (torch.where(single, 2.0, 4.0) * scale ** 2).sum() / steps ** 2
    return signal / variance.sqrt()


class ICEMPlanner(ActionPriorOptions):
    """State (B, 1 + K, H, A): row 0 the mean, rows 1.. the kept elites, both shifted one step."""

    def __init__(self, act_dim: int, horizon: int, population: int, num_elites: int,
                 iterations: int, alpha: float = 0.1, init_std: float = 0.5,
                 noise_beta: float = 2.0, population_decay: float = 1.25,
                 keep_elites: float = 0.3) -> None:
        self.act_dim, self.horizon = act_dim, horizon
        self.population, self.num_elites, self.iterations = population, num_elites, iterations
        self.alpha, self.init_std, self.beta = alpha, init_std, noise_beta
        self.decay, self.keep = population_decay, max(0, round(keep_elites * num_elites))

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, 1 + self.keep, self.horizon, self.act_dim, device=device)

    def population_at(self, i: int) -> int:
        """Samples drawn in iteration i: N * decay^-i, never fewer than 2 x elites."""
        return max(round(self.population * self.decay ** -i), 2 * self.num_elites)

    @torch.no_grad()
    def plan(self, objective: Objective, state: torch.Tensor,
             generator: torch.Generator | None = None,
             prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, device = state.shape[0], state.device
        mean, kept = state[:, 0], state[:, 1:]
        mean, std = self.start(mean, torch.full_like(mean, self.init_std), prior)
        best = mean.clone()
        best_value = torch.full((b,), -math.inf, device=device)
        for i in range(self.iterations):
            shape = (b, self.population_at(i), self.horizon, self.act_dim)
            noise = colored_noise(shape, self.beta, device, generator)
            extra = [kept] + ([mean.unsqueeze(1)] if i == self.iterations - 1 else [])
            samples = with_prior(torch.cat([sample_around(mean, std, noise), *extra], 1), prior)
            # q: the per-step Gaussian marginals of the coloured noise
            top_values, top = self.score(objective, samples, mean, std).topk(self.num_elites, 1)
            elites = gather_rows(samples, top)
            best, best_value = keep_best(best, best_value, elites[:, 0], top_values[:, 0])
            kept = elites[:, :self.keep]
            mean, std = refit(mean, std, elites, self.alpha)
        return best, shift(torch.cat([mean.unsqueeze(1), kept], 1))
