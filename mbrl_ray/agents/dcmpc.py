"""DC-MPC (Scannell et al. 2025): the discrete codebook world model, TD3-style critics and a
deterministic prior policy on its latents, and MPC with a sequence planner (MPPI as the paper)
over expected codes, closed by the critics' value.

Learner: one update per sampled batch of sequences (H+1 rows): the world model's multi-step
loss, then a critic step (and an actor step every `actor_every`) on the encoder's codes under
no-grad. Workers: plan from the code of each observation; the prior policy's sequences join the
samples; exploration noise (decaying with the learner's updates) only when exploring.
"""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.base import AgentLearner, cpu
from mbrl_ray.agents.mpc import PlanningAgent, Problem, rollouts_line
from mbrl_ray.config.schema import Config
from mbrl_ray.critics.nstep import nstep_target_parts
from mbrl_ray.critics.td3 import TD3Critics
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay.selectors import BatchSpec
from mbrl_ray.world_models.base import rollout_returns
from mbrl_ray.world_models.dcwm import DCWM, CodeRollout, codebook_usage, latent_rank

RANK_EVERY = 100  # updates between two measurements of the latents' rank (dcmpc_latent_rank)


class DCMPCAgent(PlanningAgent):
    """Acts uniformly at random until it holds weights, then plans (see module docstring)."""

    size_keys = ("dcmpc.latent_dim", "dcmpc.fsq_levels", "dcmpc.encoder_hidden",
                 "dcmpc.hidden_size", "dcmpc.num_layers", "dcmpc.num_q")
    schedules = ("async",)

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        c = cfg.dcmpc
        self.model = seeding.init_weights(
            DCWM(spec.obs_dim, spec.act_dim, c.latent_dim, c.fsq_levels, c.encoder_hidden,
                 c.hidden_size, c.num_layers, c.reward_range),
            seeding.init_generator(seed)).to(self.device)
        self.critics = TD3Critics(self.model.code_dim, spec.act_dim, c, self.device,
                                  seeding.derive(seed, seeding.SAC), self.trains)
        self.updates = 0  # the learner's, which the exploration noise decays with

    @classmethod
    def planning_cost(cls, cfg: Config, spec: EnvSpec) -> str:
        return (rollouts_line(cfg.planner, "on expected codes")
                + f", {cfg.planner.prior_samples} of the prior policy's sequences mixed in")

    # ---- acting -----------------------------------------------------------------------------
    @property
    def explore_std(self) -> float:
        """Exploration noise after `updates` learner updates: linear from start to end, from
        the first update or from the end of the pre-training updates (dcmpc.explore_decay_from)."""
        c = self.cfg.dcmpc
        skip = self.cfg.train.pretrain_updates if c.explore_decay_from == "pretrain_end" else 0
        frac = min(1.0, max(0, self.updates - skip) / max(1, c.explore_decay_updates))
        return c.explore_std_start + frac * (c.explore_std_end - c.explore_std_start)

    def problem(self, obs: torch.Tensor, explore: bool) -> Problem:
        """Values along expected codes from each observation's code; the prior policy's
        sequences mixed in; exploration noise on both when exploring."""
        code = self.model.encode(obs)
        noise = self.explore_std if explore else 0.0
        prior = (lambda: self._prior_sequences(code, noise)) if self.cfg.planner.prior_samples \
            else None
        return Problem(lambda a: self.plan_values(code, a, noise), prior)

    def explore_action(self, action: torch.Tensor, explore: bool) -> torch.Tensor:
        noise = self.explore_std if explore else 0.0
        if noise > 0:
            action = action + noise * torch.randn(action.shape, device=action.device,
                                                  generator=self.generator)
        return action.clamp(-1.0, 1.0)

    def plan_values(self, code: torch.Tensor, actions: torch.Tensor,
                    noise_std: float = 0.0) -> torch.Tensor:
        """Values of action sequences (B, N, H, A) from codes (B, d*b): discounted predicted
        rewards along expected codes, plus the discounted critics' value at the horizon."""
        def value(z: torch.Tensor) -> torch.Tensor:
            return self.critics.value(z, noise_std, self.generator)

        return rollout_returns(CodeRollout(self.model, code), actions, self.cfg.planner.discount,
                               value)

    def _prior_sequences(self, code: torch.Tensor, noise_std: float) -> torch.Tensor:
        """The prior policy's sequences (B, P, H, A) along expected codes."""
        p = self.cfg.planner
        z = code[:, None].expand(-1, p.prior_samples, -1)
        actions = []
        shared = self.cfg.dcmpc.prior_noise == "shared"
        for _ in range(p.horizon):
            actions.append(self.critics.act(z, noise_std, self.generator, shared))
            z = self.model.expected_next(z, actions[-1])
        return torch.stack(actions, 2)

    def load_inference_weights(self, weights: dict | None) -> None:
        self.fitted = weights is not None
        if weights is None:
            return
        self.model.load_state_dict(weights["model"])
        self.critics.actor.load_state_dict(weights["actor"])
        self.critics.q.load_state_dict(weights["q"])
        self.updates = int(weights["updates"])


class DCMPCLearner(DCMPCAgent, AgentLearner):
    """One update per sampled batch of sequences (see the module docstring)."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        c = cfg.dcmpc
        self.model_opt = torch.optim.AdamW(self.model.parameters(), lr=c.model_lr,
                                           weight_decay=c.model_weight_decay)
        self.rank: float | None = None  # the latents' rank, refreshed every RANK_EVERY updates

    @classmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        """Sequences of horizon + 1 rows; they may cross an episode's end (masked)."""
        c = cfg.dcmpc
        return BatchSpec("sequences", c.batch_size, length=c.horizon + 1, boundaries=True,
                         keys="dcmpc.batch_size x (dcmpc.horizon + 1)")

    # ---- learning ---------------------------------------------------------------------------
    def update(self, batch: dict) -> dict[str, float]:
        """One step of world model, critics (and actor) on sequences (B, H+1, ...)."""
        c = self.cfg.dcmpc
        d = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        obs = d["obs"].float()
        # Row t+1 holds the action and reward of the transition t -> t+1; a transition is
        # valid while no new episode has started since row 0.
        valid = (~d["is_first"][:, 1:]).cumprod(1).bool()
        losses = self.model.loss(obs, d["action"][:, 1:].float(), d["reward"][:, 1:].float(),
                                 valid, c.rho, c.gumbel_temperature, self.generator)
        self.model_opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.model_opt.step()
        one = c.nstep == 1 and c.one_step_discount == "one"
        target = nstep_target_parts(d, c.nstep, 1.0 if one else c.gamma)
        with torch.no_grad():
            z = self.model.encode(obs[:, 0])
            next_z = self.model.encode(target["next_obs"])
            usage = codebook_usage(self.model.code_indices(z), self.model.fsq.size)
            if self.rank is None or self.updates % RANK_EVERY == 0:  # an SVD: not every update
                self.rank = latent_rank(z)
        critic = self.critics.update(z, d["action"][:, 1].float(), target["reward"],
                                     target["discount"], next_z, target["valid"].float())
        self.updates += 1
        return {"dcmpc_consistency": losses["consistency"].item(),
                "dcmpc_reward_mse": losses["reward"].item(), **critic,
                "dcmpc_explore_std": self.explore_std, "dcmpc_codebook_usage": usage,
                "dcmpc_latent_rank": self.rank}

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        if self.updates == 0:
            return None
        return {"model": cpu(self.model), "actor": cpu(self.critics.actor),
                "q": cpu(self.critics.q), "updates": torch.tensor(self.updates)}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "model_opt": self.model_opt.state_dict(),
                "critics": self.critics.state_dict(), "updates": self.updates,
                "latent_rank": self.rank,
                **seeding.generator_state(self.generator, self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model_opt.load_state_dict(state["model_opt"])
        self.critics.load_state_dict(state["critics"])
        self.updates = state["updates"]
        self.rank = state.get("latent_rank")  # absent from checkpoints before it was logged
        seeding.load_generator_state(self.generator, self.rng, state)

