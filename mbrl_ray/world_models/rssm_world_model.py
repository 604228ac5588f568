"""The world model PlaNet and Dreamer share: an observation encoder, the RSSM, an observation
decoder, a reward head and (where episodes can end) a continue head, trained on B x L sequences
by the negative ELBO: reconstruction and reward errors (unit-variance Gaussians: half squared
errors, summed over an observation's dims) and the KL term with free nats."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.world_models.observation_nets import (ConvDecoder, ConvEncoder, MLPDecoder,
                                                    MLPEncoder, elu_mlp, preprocess)
from mbrl_ray.world_models.rssm import RSSM, Belief


class RSSMWorldModel(nn.Module):
    def __init__(self, spec: EnvSpec, rssm_cfg, image_size: int = 64,
                 termination: bool = True) -> None:
        super().__init__()
        c = rssm_cfg
        self.pixels = spec.kind == "pixels"
        if self.pixels:
            self.encoder = ConvEncoder(image_size, c.cnn_depth, c.cnn_layers)
        else:
            self.encoder = MLPEncoder(spec.obs_dim, c.mlp_hidden, c.mlp_layers)
        self.rssm = RSSM(spec.act_dim, self.encoder.embed_dim, c.deter, c.stoch, c.hidden,
                         c.latent, c.classes, c.min_std)
        feat = self.rssm.feat_dim
        if self.pixels:
            self.decoder = ConvDecoder(feat, image_size, c.cnn_depth, c.cnn_layers)
        else:
            self.decoder = MLPDecoder(feat, spec.obs_dim, c.mlp_hidden, c.mlp_layers)
        self.reward_head = elu_mlp(feat, 1, c.hidden, 2)
        self.continue_head = elu_mlp(feat, 1, c.hidden, 2) if termination else None
        self.free_nats, self.kl_balance, self.kl_scale = c.free_nats, c.kl_balance, c.kl_scale

    def img_step(self, prev: Belief, action: torch.Tensor,
                 generator: torch.Generator | None = None) -> Belief:
        """One imagined step of the prior (the RSSM's), for planning and imagination."""
        return self.rssm.img_step(prev, action, generator)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.reward_head(feat)[..., 0]

    def continues(self, feat: torch.Tensor) -> torch.Tensor:
        """P(the episode goes on) at each state (1 without a continue head)."""
        if self.continue_head is None:
            return torch.ones(feat.shape[:-1], device=feat.device)
        return torch.sigmoid(self.continue_head(feat)[..., 0])

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                generator: torch.Generator | None = None, sample: bool = True
                ) -> tuple[Belief, torch.Tensor]:
        """Posterior beliefs and prior statistics of sequences (B, T, ...); latents drawn, or
        at their modes with sample=False."""
        return self.rssm.observe(self.encoder(preprocess(obs)), actions.float(), is_first,
                                 generator=generator, sample=sample)

    def loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, float], Belief]:
        """The negative ELBO of sequences (B, L): obs, action, reward, is_first, is_terminal
        -> (loss, logged terms, the posterior beliefs for imagination). Reward and continue
        are learnt on rows that arrive by a transition (not is_first)."""
        obs = batch["obs"]
        post, prior = self.observe(obs, batch["action"], batch["is_first"], generator)
        feat = post.feat
        target = preprocess(obs)
        recon = 0.5 * (self.decoder(feat) - target).pow(2).flatten(2).sum(-1).mean()
        arrived = (~batch["is_first"].bool()).float()
        denom = arrived.sum().clamp_min(1.0)
        reward_err = 0.5 * (self.reward(feat) - batch["reward"].float()).pow(2)
        reward = (reward_err * arrived).sum() / denom
        kl_term, kl = self.rssm.kl_loss(post.stats, prior, self.free_nats, self.kl_balance)
        total = recon + reward + self.kl_scale * kl_term
        logs = {"rssm_recon": recon.item(), "rssm_reward_mse": 2 * reward.item(),
                "rssm_kl": kl.item()}
        if self.continue_head is not None:
            goes_on = (~batch["is_terminal"].bool()).float()
            bce = F.binary_cross_entropy_with_logits(self.continue_head(feat)[..., 0], goes_on,
                                                     reduction="none")
            cont = (bce * arrived).sum() / denom
            total = total + cont
            logs["rssm_continue_bce"] = cont.item()
        return total, logs, post


class LatentRollout:
    """The RSSM's planning view (world_models/base.py): one sampled latent trajectory of the
    prior per candidate from each belief; reward and continuation read the state reached."""

    def __init__(self, model: RSSMWorldModel, belief: Belief) -> None:
        self.model, self.belief = model, belief

    def start(self, actions: torch.Tensor) -> tuple[Belief, torch.Tensor]:
        b, n, horizon, _ = self.shape = actions.shape
        state = Belief(*(x.repeat_interleave(n, 0) for x in
                         (self.belief.h, self.belief.s, self.belief.stats)))
        return state, actions.reshape(b * n, horizon, -1)

    def step(self, state: Belief, action: torch.Tensor, generator: torch.Generator | None):
        state = self.model.img_step(state, action, generator)
        feat = state.feat
        return state, self.model.reward(feat), self.model.continues(feat)

    def values(self, returns: torch.Tensor) -> torch.Tensor:
        return returns.reshape(self.shape[:2])

