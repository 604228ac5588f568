"""The world model PlaNet and Dreamer share: an observation encoder, the RSSM, an observation
decoder, a reward head and (where episodes can end) a continue head, trained on B x L sequences
by the negative ELBO: reconstruction and reward errors (unit-variance Gaussians: half squared
errors, summed over an observation's dims) and the KL term with free nats.

version="v3" (DreamerV3, Hafner et al. 2023): LayerNorm + SiLU layers; state observations
encoded from and decoded to symlog space (squared errors summed over dims); the reward head a
two-hot categorical over 255 symlog-space bins (output layer zero-initialised, cross-entropy);
the KL as 0.5 x the dynamics term + 0.1 x the representation term, each clipped below
free_nats (V3: 1) per step."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.nn import silu_mlp
from mbrl_ray.world_models.observation_nets import (ConvDecoder, ConvEncoder, MLPDecoder,
                                                    MLPEncoder, elu_mlp, preprocess)
from mbrl_ray.world_models.rssm import RSSM, Belief
from mbrl_ray.world_models.symlog import TwoHot, symlog

KL_DYN, KL_REP = 0.5, 0.1  # DreamerV3's weights of the two KL terms


class RSSMWorldModel(nn.Module):
    def __init__(self, spec: EnvSpec, rssm_cfg, image_size: int = 64,
                 termination: bool = True, version: str = "v1") -> None:
        super().__init__()
        c, v3 = rssm_cfg, version == "v3"
        self.pixels, self.v3 = spec.kind == "pixels", v3
        if self.pixels:
            self.encoder = ConvEncoder(image_size, c.cnn_depth, c.cnn_layers, v3)
        else:
            self.encoder = MLPEncoder(spec.obs_dim, c.mlp_hidden, c.mlp_layers, v3)
        self.rssm = RSSM(spec.act_dim, self.encoder.embed_dim, c.deter, c.stoch, c.hidden,
                         c.latent, c.classes, c.min_std, v3)
        feat = self.rssm.feat_dim
        if self.pixels:
            self.decoder = ConvDecoder(feat, image_size, c.cnn_depth, c.cnn_layers, v3)
        else:
            self.decoder = MLPDecoder(feat, spec.obs_dim, c.mlp_hidden, c.mlp_layers, v3)
        self.two_hot = TwoHot() if v3 else None
        if v3:
            self.reward_head = silu_mlp(feat, self.two_hot.bins, c.hidden, 2, zero_out=True)
        else:
            self.reward_head = elu_mlp(feat, 1, c.hidden, 2)
        head = silu_mlp if v3 else elu_mlp
        self.continue_head = head(feat, 1, c.hidden, 2) if termination else None
        self.free_nats, self.kl_balance, self.kl_scale = c.free_nats, c.kl_balance, c.kl_scale
        self.bits, self.reward_weight = c.bit_depth, c.reward_weight

    def img_step(self, prev: Belief, action: torch.Tensor,
                 generator: torch.Generator | None = None) -> Belief:
        """One imagined step of the prior (the RSSM's), for planning and imagination."""
        return self.rssm.img_step(prev, action, generator)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        if self.v3:
            return self.two_hot.mean(self.reward_head(feat))
        return self.reward_head(feat)[..., 0]

    def continues(self, feat: torch.Tensor) -> torch.Tensor:
        """P(the episode goes on) at each state (1 without a continue head)."""
        if self.continue_head is None:
            return torch.ones(feat.shape[:-1], device=feat.device)
        return torch.sigmoid(self.continue_head(feat)[..., 0])

    def inputs(self, obs: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Observations as the encoder reads them (observation_nets.preprocess at rssm.bit_depth;
        dequantisation noise from `generator`, its mean without one)."""
        return preprocess(obs, self.bits, generator)

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                generator: torch.Generator | None = None, sample: bool = True
                ) -> tuple[Belief, torch.Tensor]:
        """Posterior beliefs and prior statistics of sequences (B, T, ...); latents drawn, or
        at their modes with sample=False."""
        return self._observe(self.inputs(obs), actions, is_first, generator, sample)

    def _observe(self, inputs: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                 generator: torch.Generator | None = None, sample: bool = True
                 ) -> tuple[Belief, torch.Tensor]:
        return self.rssm.observe(self.encoder(inputs), actions.float(), is_first,
                                 generator=generator, sample=sample)

    def loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, float], Belief]:
        """The negative ELBO of sequences (B, L): obs, action, reward, is_first, is_terminal
        -> (loss, logged terms, the posterior beliefs for imagination). Reward and continue
        are learnt on rows that arrive by a transition (not is_first)."""
        inputs = self.inputs(batch["obs"], generator)  # draws only for frames below 8 bits
        post, prior = self._observe(inputs, batch["action"], batch["is_first"], generator)
        feat = post.feat
        arrived = (~batch["is_first"].bool()).float()
        terms = self._v3_terms if self.v3 else self._v1_terms
        total, logs = terms(batch, inputs, feat, post.stats, prior, arrived)
        if self.continue_head is not None:
            goes_on = (~batch["is_terminal"].bool()).float()
            bce = F.binary_cross_entropy_with_logits(self.continue_head(feat)[..., 0], goes_on,
                                                     reduction="none")
            cont = self._arrived_mean(bce, arrived)
            total = total + cont
            logs["rssm_continue_bce"] = cont.item()
        return total, logs, post

    def _v1_terms(self, batch: dict, inputs: torch.Tensor, feat: torch.Tensor,
                  post: torch.Tensor, prior: torch.Tensor, arrived: torch.Tensor
                  ) -> tuple[torch.Tensor, dict]:
        """Reconstruction, reward and KL: PlaNet's and Dreamer's (v1) Gaussian errors."""
        recon = 0.5 * (self.decoder(feat) - inputs).pow(2).flatten(2).sum(-1).mean()
        reward_err = 0.5 * (self.reward(feat) - batch["reward"].float()).pow(2)
        reward = self._arrived_mean(reward_err, arrived)
        kl_term, kl = self.rssm.kl_loss(post, prior, self.free_nats, self.kl_balance)
        return recon + self.reward_weight * reward + self.kl_scale * kl_term, {
            "rssm_recon": recon.item(), "rssm_reward_mse": 2 * reward.item(),
            "rssm_kl": kl.item()}

    def _v3_terms(self, batch: dict, inputs: torch.Tensor, feat: torch.Tensor,
                  post: torch.Tensor, prior: torch.Tensor, arrived: torch.Tensor
                  ) -> tuple[torch.Tensor, dict]:
        """DreamerV3's: symlog squared errors, two-hot reward, KL dynamics and representation."""
        target = inputs if self.pixels else symlog(batch["obs"].float())
        recon = (self.decoder(feat) - target).pow(2).flatten(2).sum(-1).mean()
        logits, real = self.reward_head(feat), batch["reward"].float()
        reward = self._arrived_mean(self.two_hot.loss(logits, real), arrived)
        with torch.no_grad():  # logged only
            mse = self._arrived_mean((self.two_hot.mean(logits) - real).pow(2), arrived)
            kl = self.rssm.latent.kl(post, prior).mean()
        return recon + self.reward_weight * reward + self.v3_kl(post, prior), {
            "rssm_recon": recon.item(), "rssm_reward_loss": reward.item(),
            "rssm_reward_mse": mse.item(), "rssm_kl": kl.item()}

    def v3_kl(self, post: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """DreamerV3's KL loss from posterior and prior statistics: 0.5 x the dynamics term
        plus 0.1 x the representation term (rssm.RSSM.kl_terms), free bits free_nats."""
        dyn, rep = self.rssm.kl_terms(post, prior, self.free_nats)
        return KL_DYN * dyn + KL_REP * rep

    @staticmethod
    def _arrived_mean(values: torch.Tensor, arrived: torch.Tensor) -> torch.Tensor:
        """The mean over rows that arrive by a transition (not is_first)."""
        return (values * arrived).sum() / arrived.sum().clamp_min(1.0)


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

