"""The config sections of the latent world models and what trains on them: DC-MPC's discrete
codebook model and critics (`dcmpc`), the RSSM (`rssm`) and Dreamer's actor-critic (`dreamer`),
each field documented in place with its bound, and each section's cross-key rules in its
`check(cfg)`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mbrl_ray.config.fields import ConfigError, doc

if TYPE_CHECKING:
    from mbrl_ray.config.schema import Config

MAX_CODEBOOK = 2**16  # FSQ's largest codebook in its paper; the planner holds one row each


@dataclass
class DCMPCConfig:
    latent_dim: int = doc(512, "latent slots d (the paper: 512; 1024 for dog and humanoid)",
                          bound="count", upper=65_536)
    fsq_levels: list[int] = doc([5, 3], "FSQ levels of each slot's channels; the codebook is "
                                "their product (15 codes of 2 numbers for [5, 3])")
    encoder_hidden: int = doc(256, "width of the encoder's hidden layer",
                              bound="count", upper=16_384)
    hidden_size: int = doc(512, "width of the hidden layers of dynamics, reward, critics, actor",
                           bound="count", upper=16_384)
    num_layers: int = doc(2, "hidden layers of dynamics, reward head, each critic and the actor",
                          bound="count", upper=64)
    horizon: int = doc(5, "steps of each training rollout (sequences of horizon + 1 rows)",
                       bound="count", upper=1_000)
    rho: float = doc(0.9, "weight rho^t of rollout step t in the world model's loss",
                     bound="[0, 1]")
    gumbel_temperature: float = doc(1.0, "temperature of the straight-through Gumbel-softmax "
                                    "samples fed forward in training rollouts", bound="> 0")
    model_lr: float = doc(1e-4, "AdamW learning rate of encoder, dynamics and reward head",
                          bound="> 0")
    model_weight_decay: float = doc(0.01, "AdamW weight decay of the world model", bound=">= 0")
    lr: float = doc(3e-4, "Adam learning rate of the critics and the actor", bound="> 0")
    grad_clip: float = doc(20.0, "gradient norm clip, separately for model, critics and actor",
                           bound="> 0")
    batch_size: int = doc(512, "sequences per gradient step", bound="count", upper=1_000_000)
    num_q: int = doc(5, "Q networks of the critic ensemble (targets: min of 2 drawn at random)",
                     upper=100)
    gamma: float = doc(0.99, "discount of the TD targets", bound="[0, 1]")
    tau: float = doc(0.005, "Polyak rate of the target critics and target actor", bound="(0, 1)")
    nstep: int = doc(1, "n of the n-step TD target (the paper: 3 for dog and Meta-World)",
                     bound="count")
    policy_noise: float = doc(0.2, "std of the target actor's smoothing noise (TD3)", bound=">= 0")
    noise_clip: float = doc(0.3, "the smoothing noise is clipped to +-this", bound=">= 0")
    actor_every: int = doc(2, "critic steps per actor step", bound="count")
    explore_std_start: float = doc(1.0, "std of the exploration noise added to acted actions, "
                                   "at the first update", bound=">= 0")
    explore_std_end: float = doc(0.1, "... reached after explore_decay_updates (then kept)",
                                 bound=">= 0")
    explore_decay_updates: int = doc(25_000, "learner updates over which the exploration std "
                                     "decays linearly (one update per env step: env steps)",
                                     bound="count")
    explore_decay_from: str = doc("first_update", "where the decay starts: at the first update "
                                  "(train.pretrain_updates count), or at pretrain_end as the "
                                  "authors' code (its schedule steps once for the whole "
                                  "pre-training)", choices=("first_update", "pretrain_end"))
    reward_range: list[float] = doc([], "[] for an unbounded reward head, or [low, high]: the "
                                    "head's output squashed by tanh into it (the authors' code on "
                                    "DMC: [0, env.action_repeat])")
    one_step_discount: str = doc("gamma", "discount of the 1-step TD target (dcmpc.nstep=1): "
                                 "gamma as the paper writes it, or one as the authors' code "
                                 "runs (its buffer never applies gamma to 1-step targets)",
                                 choices=("gamma", "one"))
    prior_noise: str = doc("independent", "exploration noise of the prior policy's sequences "
                           "mixed into the planner: independent per sequence, or shared (one "
                           "draw per env and step, as the authors' code: the sequences of an env "
                           "are copies of each other)", choices=("independent", "shared"))

    def check(self, cfg: Config) -> None:
        if not self.fsq_levels or any(level < 2 for level in self.fsq_levels):
            raise ConfigError(f"dcmpc.fsq_levels={self.fsq_levels!r}: give one or more levels, "
                              "each >= 2 (the paper: [5, 3])")
        codebook = math.prod(self.fsq_levels)
        if codebook > MAX_CODEBOOK:
            raise ConfigError(f"dcmpc.fsq_levels={self.fsq_levels!r} make a codebook of "
                              f"{codebook:,} codes per slot, above {MAX_CODEBOOK:,} (the paper: "
                              "[5, 3], 15 codes)")
        if self.reward_range and (len(self.reward_range) != 2
                                  or not self.reward_range[0] < self.reward_range[1]):
            raise ConfigError(f"dcmpc.reward_range={self.reward_range!r}: give [] (unbounded) "
                              "or [low, high] with low < high (the authors on DMC: [0, "
                              "env.action_repeat])")
        if self.num_q < 2:
            raise ConfigError(f"dcmpc.num_q={self.num_q!r}: the targets take the min of 2 Q "
                              "networks drawn at random; use at least 2 (the paper: 5)")
        if self.nstep > self.horizon:
            raise ConfigError(f"dcmpc.nstep={self.nstep} exceeds dcmpc.horizon={self.horizon}: "
                              "the n-step target lies inside the sampled sequences of horizon "
                              "+ 1 rows")
        p = cfg.planner
        if cfg.agent.name == "dcmpc" and (p.name == "smcp" or p.posterior != "mpc"):
            raise ConfigError(f"agent.name='dcmpc' plans with a sequence planner (mppi as the "
                              f"paper, cem, icem, rs) and planner.posterior='mpc', not "
                              f"planner.name={p.name!r} with planner.posterior={p.posterior!r}")


@dataclass
class RSSMConfig:
    deter: int = doc(200, "size of the deterministic (GRU) state h", bound="count", upper=16_384)
    stoch: int = doc(30, "stochastic latent s: Gaussian dims, or categorical variables",
                     bound="count", upper=4_096)
    latent: str = doc("gaussian", "stochastic latent: gaussian (PlaNet, Dreamer) or "
                      "categorical (stoch variables of rssm.classes classes, straight-through "
                      "samples with 1% uniform mixed in: DreamerV2/V3)",
                      choices=("gaussian", "categorical"))
    classes: int = doc(32, "classes of each categorical variable (rssm.latent=categorical)",
                       bound="count", upper=4_096)
    hidden: int = doc(200, "width of the RSSM's hidden layers and of the reward/continue heads",
                      bound="count", upper=16_384)
    min_std: float = doc(0.1, "lower bound of the Gaussian latent's std", bound="> 0")
    free_nats: float = doc(3.0, "the KL term is max(KL, free_nats) per step (PlaNet 3, "
                           "DreamerV3 1)", bound=">= 0")
    kl_balance: float = doc(0.0, "0: plain KL(posterior || prior); in (0, 1): KL balancing "
                            "(DreamerV2 0.8), this weight on training the prior toward the "
                            "posterior, the rest on the posterior (each side's free nats apart)")
    kl_scale: float = doc(1.0, "weight of the KL term in the world model's loss", bound=">= 0")
    cnn_depth: int = doc(32, "pixels: channels of the first conv layer, doubled per layer "
                         "(PlaNet 32-64-128-256)", bound="count", upper=1_024)
    cnn_layers: int = doc(4, "pixels: conv layers of kernel 4, stride 2 (each halves the "
                          "image; env.image_size must be a multiple of 2^cnn_layers)",
                          bound="count", upper=8)
    mlp_hidden: int = doc(200, "state observations: width of the encoder and decoder MLPs",
                          bound="count", upper=16_384)
    mlp_layers: int = doc(2, "state observations: hidden layers of the encoder and decoder",
                          bound="count", upper=64)
    batch_size: int = doc(50, "sequences per gradient step (B)", bound="count", upper=1_000_000)
    seq_len: int = doc(50, "rows per sequence (L); sequences may cross episode starts, where "
                       "is_first resets the state", bound="count", upper=100_000)
    lr: float = doc(1e-3, "Adam learning rate of the world model (PlaNet 1e-3, Dreamer 6e-4)",
                    bound="> 0")
    eps: float = doc(1e-4, "Adam epsilon of every RSSM agent's optimiser", bound="> 0")
    grad_clip: float = doc(1000.0, "gradient norm clip of the world model (PlaNet 1000, "
                           "Dreamer 100)", bound="> 0")
    explore_noise: float = doc(0.3, "std of Gaussian noise added to acted actions when "
                               "exploring (PlaNet and Dreamer 0.3)", bound=">= 0")
    reward_weight: float = doc(1.0, "weight of the reward term in the world model's loss "
                               "(PlaNet's code: 10)", bound=">= 0")
    bit_depth: int = doc(8, "pixels: bits kept of each 8-bit channel; below 8 (PlaNet: 5) the "
                         "frames are reduced to them and dequantised by uniform noise in "
                         "training (its mean when acting)", bound="count", upper=8)

    def check(self, cfg: Config) -> None:
        if not 0 <= self.kl_balance < 1:
            raise ConfigError(f"rssm.kl_balance={self.kl_balance!r} must lie in [0, 1): 0 for "
                              "the plain KL, DreamerV2's 0.8 for balancing")
        env = cfg.env
        if (cfg.agent.name in ("planet", "dreamer") and env.obs == "pixels"
                and env.image_size % 2 ** self.cnn_layers):
            raise ConfigError(
                f"env.image_size={env.image_size} cannot pass rssm.cnn_layers="
                f"{self.cnn_layers} conv layers of stride 2: the size must be a multiple of "
                f"{2 ** self.cnn_layers} (64 as the papers)")
        p = cfg.planner
        if cfg.agent.name == "planet" and (p.name == "smcp" or p.posterior != "mpc"
                                           or p.prior_samples or p.value_weight):
            raise ConfigError(f"agent.name='planet' plans with a sequence planner (cem as the "
                              f"paper, icem, mppi, rs), planner.posterior='mpc' and no prior "
                              f"or value, not planner.name={p.name!r}, planner.posterior="
                              f"{p.posterior!r}, planner.prior_samples={p.prior_samples}, "
                              f"planner.value_weight={p.value_weight:g}")


@dataclass
class DreamerConfig:
    version: str = doc("v1", "v1: Dreamer's heads (Hafner et al. 2020: Gaussian reward and "
                       "critic by squared error, tanh-Gaussian actor, ELU layers); v3: "
                       "DreamerV3's (symlog inputs and targets, two-hot reward and critic, KL "
                       "0.5 / 0.1 with rssm.free_nats as free bits, LayerNorm + SiLU, bounded "
                       "std actor, critic regularised toward its slow copy)",
                       choices=("v1", "v3"))
    horizon: int = doc(15, "imagination horizon of actor and critic training",
                       bound="count", upper=1_000)
    gamma: float = doc(0.99, "discount of imagined rewards", bound="[0, 1]")
    lam: float = doc(0.95, "lambda of the lambda-returns", bound="[0, 1]")
    hidden: int = doc(300, "width of the actor's and critic's hidden layers",
                      bound="count", upper=16_384)
    layers: int = doc(3, "hidden layers of actor and critic", bound="count", upper=64)
    actor_lr: float = doc(8e-5, "Adam learning rate of the actor", bound="> 0")
    critic_lr: float = doc(8e-5, "Adam learning rate of the critic", bound="> 0")
    grad_clip: float = doc(100.0, "gradient norm clip of actor and critic", bound="> 0")
    entropy: float = doc(3e-4, "weight of the actor's entropy bonus (DreamerV3 3e-4)",
                         bound=">= 0")
    slow_critic_rate: float = doc(0.02, "Polyak rate of the slow critic (v1: the "
                                  "lambda-returns bootstrap from it; v3: the critic is "
                                  "regularised toward it) (DreamerV3 0.02)", bound="(0, 1)")
    return_norm: bool = doc(True, "scale returns by max(1, S), S the EMA (0.99) of their "
                            "5th-95th percentile range (DreamerV3); false: unscaled")
    slow_reg: float = doc(1.0, "dreamer.version=v3: weight of the critic's cross-entropy to "
                          "its slow copy's predictions (DreamerV3 1)", bound=">= 0")

    def check(self, cfg: Config) -> None:
        r = cfg.rssm
        if self.version == "v3" and (r.kl_balance or r.kl_scale != 1.0):
            raise ConfigError(f"rssm.kl_balance={r.kl_balance:g} and rssm.kl_scale="
                              f"{r.kl_scale:g} apply to dreamer.version=v1; v3 weighs its KL "
                              "terms as DreamerV3 (dynamics 0.5, representation 0.1): leave them "
                              "at 0 and 1")
