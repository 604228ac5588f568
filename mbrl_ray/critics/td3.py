"""TD3-style critics as DC-MPC trains them (Fujimoto et al. 2018; REDQ's random pair): an
ensemble of Q networks and a deterministic actor on latents, with Polyak targets.

    target   y = r_n + discount x min over 2 random target Qs of Q'(z', a'),
             a' = clamp(pi'(z') + clip(N(0, policy_noise), +-noise_clip), -1, 1)
    critics  every member regresses to y
    actor    every `actor_every` critic steps: maximise the mean of 2 random Qs at pi(z)
"""
from __future__ import annotations

import copy

import torch

from mbrl_ray.critics.nets import DeterministicActor, QEnsemble
from mbrl_ray.seeding import (device_generator, init_generator, init_weights,
                              load_torch_generator)


class TD3Critics:
    """Actor and Q ensemble on `in_dim` latents; optimisers and targets only when trainable.
    c: the config's `dcmpc` section."""

    def __init__(self, in_dim: int, act_dim: int, c, device: torch.device, seed: int = 0,
                 trainable: bool = True) -> None:
        self.c, self.device = c, device
        init = init_generator(seed)
        self.actor = init_weights(DeterministicActor(in_dim, act_dim, c.hidden_size,
                                                     c.num_layers), init).to(device)
        self.q = init_weights(QEnsemble(c.num_q, in_dim, act_dim, c.hidden_size, c.num_layers,
                                        activation="mish"), init).to(device)
        self.generator = device_generator(device, seed)
        self.critic_steps = 0
        if trainable:
            self.q_target = copy.deepcopy(self.q).requires_grad_(False)
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
            self.q_opt = torch.optim.Adam(self.q.parameters(), lr=c.lr)
            self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.lr)

    @torch.no_grad()
    def target(self, reward: torch.Tensor, discount: torch.Tensor,
               next_z: torch.Tensor) -> torch.Tensor:
        """y = reward + discount x min of 2 random target Qs at the smoothed target action."""
        action = self.actor_target(next_z)
        noise = torch.randn(action.shape, device=action.device, generator=self.generator)
        noise = (noise * self.c.policy_noise).clamp(-self.c.noise_clip, self.c.noise_clip)
        action = (action + noise).clamp(-1.0, 1.0)
        return reward + discount * self.q_target.min_of_two(next_z, action, self.generator)

    def update(self, z: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
               discount: torch.Tensor, next_z: torch.Tensor,
               weight: torch.Tensor) -> dict[str, float]:
        """One critic step (and an actor step every `actor_every`) on latents under no-grad;
        weight (N,) masks rows without a valid transition."""
        y = self.target(reward, discount, next_z)
        errors = (self.q(z, action) - y) ** 2  # (E, N)
        critic_loss = (errors * weight).sum(1).mean() / weight.sum().clamp_min(1.0)
        self._step(self.q_opt, self.q, critic_loss)
        _lerp(self.q_target, self.q, self.c.tau)
        self.critic_steps += 1
        out = {"dcmpc_critic_loss": critic_loss.item(), "dcmpc_q": y.mean().item()}
        if self.critic_steps % self.c.actor_every == 0:
            self.q.requires_grad_(False)
            actor_loss = -self.q.mean_of_two(z, self.actor(z), self.generator).mean()
            self.q.requires_grad_(True)
            self._step(self.actor_opt, self.actor, actor_loss)
            _lerp(self.actor_target, self.actor, self.c.tau)
            out["dcmpc_actor_loss"] = actor_loss.item()
        return out

    def _step(self, optimizer, module, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), self.c.grad_clip)
        optimizer.step()

    def value(self, z: torch.Tensor, noise_std: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """Planning's terminal value: mean of 2 random Qs at the actor's action (plus
        exploration noise of std `noise_std`)."""
        return self.q.mean_of_two(z, self.act(z, noise_std, generator), generator)

    def act(self, z: torch.Tensor, noise_std: float = 0.0,
            generator: torch.Generator | None = None, shared: bool = False) -> torch.Tensor:
        """The prior policy's action, with Gaussian exploration noise when noise_std > 0;
        shared: one draw for all rows of dim -2 (z (B, P, ·): the same noise for an env's P
        sequences)."""
        action = self.actor(z)
        if noise_std > 0:
            shape = (*action.shape[:-2], 1, action.shape[-1]) if shared else action.shape
            noise = torch.randn(shape, device=action.device, generator=generator)
            action = (action + noise_std * noise).clamp(-1.0, 1.0)
        return action

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "q": self.q.state_dict(),
                "actor_target": self.actor_target.state_dict(),
                "q_target": self.q_target.state_dict(), "q_opt": self.q_opt.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_steps": self.critic_steps,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "q", "actor_target", "q_target", "q_opt", "actor_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.critic_steps = state["critic_steps"]
        load_torch_generator(self.generator, state["generator"])


@torch.no_grad()
def _lerp(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
