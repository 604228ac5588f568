"""DreamerV3's pieces (dreamer.version=v3) against independent float64 computations written
here: symlog and symexp, the two-hot encoding, its read-out and loss, the KL's dynamics and
representation weights with free bits, the world model's v3 loss, the bounded actor, and the
actor's and critic's losses with gamma and continue in their weights and the critic's pull
toward its slow copy."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.config import ConfigError, apply_overrides, load_preset, validate
from mbrl_ray.critics.imagination_v3 import STD_RANGE, BoundedActor, ImaginedActorCriticV3
from mbrl_ray.envs import EnvSpec
from mbrl_ray.world_models.rssm import Belief
from mbrl_ray.world_models.rssm_world_model import RSSMWorldModel
from mbrl_ray.world_models.symlog import TwoHot, symexp, symlog

pytestmark = pytest.mark.unit

F32_REL = 1e-5
LOSS_REL = 1e-4
STATE = EnvSpec.state(3, 2)
BIN_VALUES = [-20 + 40 * k / 254 for k in range(255)]  # V3's bins in symlog space


def _cfg(*overrides: str):
    return apply_overrides(load_preset("dreamer-debug"), ["dreamer.version=v3", *overrides])


def _symlog(x: float) -> float:
    return math.copysign(math.log(abs(x) + 1), x)


def _two_hot(value: float) -> list[float]:
    """The two bins around symlog(value), weighted by closeness (clipped into [-20, 20])."""
    y = min(max(_symlog(value), -20.0), 20.0)
    out = [0.0] * 255
    k = min(int((y + 20) / (40 / 254)), 253)
    upper = (y - BIN_VALUES[k]) / (BIN_VALUES[k + 1] - BIN_VALUES[k])
    out[k], out[k + 1] = 1 - upper, upper
    return out


def _log_softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    norm = top + math.log(sum(math.exp(x - top) for x in logits))
    return [x - norm for x in logits]


def _read_out(logits: list[float]) -> float:
    """symexp of the expected bin."""
    y = sum(math.exp(lp) * b for lp, b in zip(_log_softmax(logits), BIN_VALUES))
    return math.copysign(math.expm1(abs(y)), y)


def _cross_entropy(logits: list[float], target: float) -> float:
    return -sum(w * lp for w, lp in zip(_two_hot(target), _log_softmax(logits)))


# ---- symlog, two-hot --------------------------------------------------------------------------
def test_symlog_compresses_both_signs_and_symexp_inverts_it():
    x = torch.tensor([-1e4, -math.e + 1, -0.3, 0.0, 0.3, math.e - 1, 1e4], dtype=torch.float64)
    assert symlog(x).tolist() == pytest.approx([_symlog(v) for v in x.tolist()], rel=1e-12)
    assert symlog(x)[5].item() == pytest.approx(1.0) and symlog(x)[1].item() == pytest.approx(-1)
    assert symexp(symlog(x)).tolist() == pytest.approx(x.tolist(), rel=1e-12)


def test_two_hot_puts_its_weight_on_the_two_bins_around_the_symlog_value():
    values = torch.tensor([-250.0, -0.7, 0.0, 0.013, 3.2, 917.0, 1e12], dtype=torch.float64)
    encoded = TwoHot().encode(values)
    for row, value in zip(encoded.tolist(), values.tolist()):
        assert row == pytest.approx(_two_hot(value), abs=1e-9)
        assert sum(row) == pytest.approx(1.0)
        assert sum(r > 0 for r in row) <= 2
    # the weighted mean of the bins is symlog(value) inside the range; 1e12 clips to 20
    means = (encoded * torch.tensor(BIN_VALUES, dtype=torch.float64)).sum(-1)
    assert means[:-1].tolist() == pytest.approx(symlog(values[:-1]).tolist(), abs=1e-9)
    assert means[-1].item() == pytest.approx(20.0)


def test_two_hot_read_out_and_loss_match_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(4, 255, generator=g, dtype=torch.float64)
    targets = torch.tensor([-40.0, 0.5, 2.0, 300.0], dtype=torch.float64)
    two_hot = TwoHot()
    assert two_hot.mean(logits).tolist() == pytest.approx(
        [_read_out(row) for row in logits.tolist()], rel=1e-9)
    assert two_hot.loss(logits, targets).tolist() == pytest.approx(
        [_cross_entropy(row, t) for row, t in zip(logits.tolist(), targets.tolist())], rel=1e-9)


def test_logits_of_a_two_hot_target_read_out_that_target():
    """The round trip: log of the encoding as logits reads out the value encoded."""
    values = torch.tensor([-1234.5, -2.0, 0.25, 41.0], dtype=torch.float64)
    two_hot = TwoHot()
    logits = torch.log(two_hot.encode(values) + 1e-300)
    assert two_hot.mean(logits).tolist() == pytest.approx(values.tolist(), rel=1e-9)


# ---- the world model's v3 terms ---------------------------------------------------------------
def test_the_v3_encoder_reads_symlog_observations_through_normed_silu_layers():
    model = RSSMWorldModel(STATE, _cfg().rssm, version="v3")
    obs = torch.tensor([[250.0, -3.0, 0.5]])
    x = torch.tensor([[_symlog(v) for v in obs[0].tolist()]])
    for layer in model.encoder.net:  # by hand: Linear, LayerNorm, SiLU per hidden layer
        if isinstance(layer, torch.nn.Linear):
            x = x @ layer.weight.T + layer.bias
        elif isinstance(layer, torch.nn.LayerNorm):
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False,
                                                                keepdim=True) + 1e-5)
            x = x * layer.weight + layer.bias
        else:
            x = x * torch.sigmoid(x)
    assert torch.allclose(model.encoder(obs), x, rtol=1e-5, atol=1e-6)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in model.encoder.net) == 2


def _categorical_kl(post: torch.Tensor, prior: torch.Tensor, variables: int) -> torch.Tensor:
    """KL of 1%-uniform-mixed categoricals, summed over variables and classes."""
    def probs(stats):
        p = stats.unflatten(-1, (variables, -1)).softmax(-1)
        return 0.99 * p + 0.01 / p.shape[-1]
    p, q = probs(post), probs(prior)
    return (p * (p / q).log()).sum((-1, -2))


def test_v3_kl_weighs_dynamics_half_and_representation_a_tenth_with_free_bits():
    """Value 0.6 mean(max(KL, 1)); gradient 0.5 dKL on the prior, 0.1 dKL on the posterior,
    none at steps whose KL is below 1 nat (some steps are, some are not)."""
    cfg = _cfg("rssm.latent=categorical", "rssm.stoch=4", "rssm.classes=5",
               "rssm.free_nats=1.0")
    model = RSSMWorldModel(STATE, cfg.rssm, version="v3").double()
    g = torch.Generator().manual_seed(1)
    scales = torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)[:, None]
    post = (scales * torch.randn(6, 20, generator=g, dtype=torch.float64)).requires_grad_()
    prior = (scales * torch.randn(6, 20, generator=g, dtype=torch.float64)).requires_grad_()
    loss = model.v3_kl(post, prior)
    loss.backward()
    kl = _categorical_kl(post, prior, 4)
    assert ((kl < 1).any() and (kl > 1).any()).item()
    assert loss.item() == pytest.approx(0.6 * kl.clamp_min(1).mean().item(), rel=1e-9)
    post2, prior2 = post.detach().requires_grad_(), prior.detach().requires_grad_()
    active = (_categorical_kl(post2, prior2, 4) > 1).double()
    (active * _categorical_kl(post2, prior2, 4)).mean().backward()
    assert torch.allclose(prior.grad, 0.5 * prior2.grad, rtol=1e-9, atol=1e-12)
    assert torch.allclose(post.grad, 0.1 * post2.grad, rtol=1e-9, atol=1e-12)


def test_v3_world_model_loss_reads_symlog_targets_and_two_hot_rewards():
    """Recon sum over dims of (decoder - symlog obs)^2, reward two-hot cross-entropy and
    continue BCE on arrived rows (an is_first row mid-sequence excluded), KL 0.6 x the KL
    (free bits 0). float32 model, float64 sums here."""
    cfg = _cfg("rssm.free_nats=0.0")
    model = RSSMWorldModel(STATE, cfg.rssm, version="v3")
    rng = np.random.default_rng(2)
    b, t = 3, 5
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    batch = {"obs": f32(rng.normal(0, 30, (b, t, 3))), "action": f32(rng.uniform(-1, 1, (b, t, 2))),
             "reward": f32(rng.normal(0, 50, (b, t))),
             "is_first": torch.zeros(b, t, dtype=torch.bool),
             "is_terminal": torch.zeros(b, t, dtype=torch.bool)}
    batch["is_first"][:, 0] = True
    batch["is_first"][1, 3] = True
    batch["is_terminal"][0, 2] = True
    with torch.no_grad():  # the reward head starts at zero: give it something to read out
        for p in model.reward_head[-1].parameters():
            p.normal_(0, 0.3, generator=torch.Generator().manual_seed(3))
    total, logs, post = model.loss(batch, torch.Generator().manual_seed(4))
    post2, prior = model.observe(batch["obs"], batch["action"], batch["is_first"],
                                 torch.Generator().manual_seed(4))
    feat = post2.feat
    obs = batch["obs"].tolist()
    recon = 0.0
    for i in range(b):
        for k in range(t):
            dec = model.decoder(feat[i, k]).tolist()
            recon += sum((d - _symlog(o)) ** 2 for d, o in zip(dec, obs[i][k]))
    recon /= b * t
    logits = model.reward_head(feat).tolist()
    cont = model.continue_head(feat)[..., 0].tolist()
    arrived = [(i, k) for i in range(b) for k in range(t) if not batch["is_first"][i, k]]
    reward = sum(_cross_entropy(logits[i][k], batch["reward"][i, k].item())
                 for i, k in arrived) / len(arrived)
    bce = sum(F.softplus(torch.tensor(-cont[i][k] if not batch["is_terminal"][i, k]
                                      else cont[i][k])).item() for i, k in arrived)
    bce /= len(arrived)
    kl = 0.6 * _categorical_kl(post2.stats, prior, cfg.rssm.stoch).mean().item()
    assert logs["rssm_recon"] == pytest.approx(recon, rel=LOSS_REL)
    assert logs["rssm_reward_loss"] == pytest.approx(reward, rel=LOSS_REL)
    assert logs["rssm_continue_bce"] == pytest.approx(bce, rel=LOSS_REL)
    assert total.item() == pytest.approx(recon + reward + bce + kl, rel=LOSS_REL)


# ---- the actor and critic ---------------------------------------------------------------------
def test_the_bounded_actor_keeps_its_std_in_range_and_its_entropy_is_the_gaussians():
    actor = BoundedActor(4, 3, 16, 2).double()
    with torch.no_grad():
        actor.net[-1].bias.copy_(torch.tensor([0.0, 5.0, -5.0, -30.0, 0.0, 30.0]))
    feat = torch.randn(7, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean, std = actor.params(feat)
    raw = actor.net(feat)
    low, high = STD_RANGE
    expected_std = (high - low) * torch.sigmoid(raw[:, 3:] + 2.0) + low
    assert torch.allclose(std, expected_std) and torch.allclose(mean, torch.tanh(raw[:, :3]))
    assert std.min().item() >= 0.1 - 1e-12 and std.max().item() <= 1.0 + 1e-12
    assert std[:, 0].max().item() < 0.1001 and std[:, 2].min().item() > 0.9999  # both bounds
    _, entropy = actor(feat, deterministic=True)
    normal = torch.distributions.Normal(mean, std)
    assert torch.allclose(entropy, normal.entropy().sum(-1), rtol=1e-12)


class Steer(torch.nn.Module):
    """Latent = the action (2-D, feat [a, a]); reward 1000 a_0 + 300; the episode ends where
    a_1 > 0.5, else continues with probability 0.9."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Linear(1, 1)

    def img_step(self, prev: Belief, action: torch.Tensor, generator=None) -> Belief:
        return Belief(action, action, action)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        return 1000 * feat[..., 0] + 300

    def continues(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.where(feat[..., 1] > 0.5, 0.0, 0.9)


def _constant_critic(net: torch.nn.Sequential, seed: int) -> float:
    """Random logits in the output bias, no weights: the same distribution at every state;
    -> its read-out value (by the hand computation)."""
    bias = 2 * torch.randn(255, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.copy_(bias)
    return _read_out(bias.double().tolist())


def _spread(values: list[float]) -> float:
    xs = sorted(values)

    def pct(q: float) -> float:
        pos = q * (len(xs) - 1)
        lo = math.floor(pos)
        return xs[lo] + (pos - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])
    return pct(0.95) - pct(0.05)


def _expected(ac, feats, entropies, goes_on, value, slow_value, bias) -> dict[str, float]:
    """Loops over each imagined trajectory: lambda-returns bootstrapped from the online critic
    (value), weights w_0 = c_0 (the start's), w_k = w_{k-1} gamma c_k; actor loss
    -mean(w (R / S + eta H)), critic loss mean(w (CE(R) + slow_reg CE(slow value)))."""
    c = ac.cfg
    a = feats[1:].double()
    horizon, n = a.shape[:2]
    r = (1000 * a[..., 0] + 300).tolist()
    cont = [[0.0 if a[k, i, 1] > 0.5 else 0.9 for i in range(n)] for k in range(horizon)]
    returns = [[0.0] * n for _ in range(horizon)]
    for i in range(n):
        last = value
        for k in reversed(range(horizon)):
            last = r[k][i] + c.gamma * cont[k][i] * ((1 - c.lam) * value + c.lam * last)
            returns[k][i] = last
    scale = max(1.0, 0.01 * _spread([x for row in returns for x in row]))
    ent = entropies.double().tolist()
    logits = bias.double().tolist()
    slow_ce = _cross_entropy(logits, slow_value)
    actor = critic = 0.0
    for i in range(n):
        w = goes_on[i]
        for k in range(horizon):
            actor -= w * (returns[k][i] / scale + c.entropy * ent[k][i])
            critic += w * (_cross_entropy(logits, returns[k][i]) + c.slow_reg * slow_ce)
            w *= c.gamma * cont[k][i]
    return {"dreamer_actor_loss": actor / (horizon * n), "dreamer_return_scale": scale,
            "dreamer_critic_loss": critic / (horizon * n)}


def test_v3_actor_and_critic_losses_match_a_hand_computation():
    """Returns of ~1e3 (scale ~20), terminations mid-rollout and continues 0.9, a start that is
    itself terminal, gamma 0.9 (so a weight without gamma shows), the critic and its slow copy
    reading out different values (so bootstrapping from the wrong one shows), entropy 0.1."""
    cfg = _cfg("dreamer.horizon=4", "dreamer.gamma=0.9", "dreamer.entropy=0.1",
               "dreamer.slow_reg=0.7").dreamer
    ac = ImaginedActorCriticV3(feat_dim=4, act_dim=2, cfg=cfg, device=torch.device("cpu"))
    value = _constant_critic(ac.critic, 0)
    slow_value = _constant_critic(ac.slow_critic, 1)
    assert abs(value - slow_value) > 0.5
    bias = ac.critic[-1].bias.detach().clone()
    g = torch.Generator().manual_seed(3)
    start = Belief(*(torch.rand(32, 2, generator=g) * 2 - 1 for _ in range(3)))
    goes_on = torch.ones(32)
    goes_on[[2, 9]] = 0.0
    with torch.no_grad():
        feats, entropies = ac.imagine(Steer(), start, torch.Generator().manual_seed(1))
    expected = _expected(ac, feats, entropies, goes_on.tolist(), value, slow_value, bias)
    logs = ac.update(Steer(), start, torch.Generator().manual_seed(1), goes_on)
    assert expected["dreamer_return_scale"] > 5.0
    for key, want in expected.items():
        assert logs[key] == pytest.approx(want, rel=LOSS_REL), (key, logs[key], want)


def test_the_v3_actor_moves_toward_higher_returns_through_the_model():
    """One actor step at a large lr raises the mean of a_0 (reward 1000 a_0), and lowers a_1
    where it would end the episode (only the returns' gradient reaches the actor)."""
    cfg = _cfg("dreamer.horizon=3", "dreamer.actor_lr=0.01", "dreamer.entropy=0").dreamer
    ac = ImaginedActorCriticV3(feat_dim=4, act_dim=2, cfg=cfg, device=torch.device("cpu"))
    start = Belief(*(torch.zeros(64, 2) for _ in range(3)))
    before = ac.actor.params(torch.zeros(1, 4))[0]
    for _ in range(5):
        ac.update(Steer(), start, torch.Generator().manual_seed(1))
    after = ac.actor.params(torch.zeros(1, 4))[0]
    assert after[0, 0] > before[0, 0] + 0.05


# ---- the agent --------------------------------------------------------------------------------
def _sequences(b: int, t: int, seed: int) -> dict[str, np.ndarray]:
    """b sequences of t rows of 3-D states and 2-D actions; no resets, no terminals."""
    rng = np.random.default_rng(seed)
    return {"obs": rng.normal(0, 5, (b, t, 3)).astype(np.float32),
            "action": rng.uniform(-1, 1, (b, t, 2)).astype(np.float32),
            "reward": rng.normal(0, 20, (b, t)).astype(np.float32),
            "is_first": np.zeros((b, t), bool), "is_terminal": np.zeros((b, t), bool)}


def test_v3_refuses_the_v1_kl_keys_naming_them():
    with pytest.raises(ConfigError, match="rssm.kl_balance=0.8"):
        validate(_cfg("rssm.kl_balance=0.8"))
    with pytest.raises(ConfigError, match="rssm.kl_scale=2"):
        validate(_cfg("rssm.kl_scale=2.0"))


def test_a_v3_learner_trains_hands_its_weights_to_an_actor_and_resumes_exactly():
    cfg = _cfg()
    batch = _sequences(4, 16, seed=0)
    batch["is_first"][:, 0] = True
    batch["is_terminal"][1, 5] = True
    learner = make_learner(STATE, cfg, seed=0)
    assert isinstance(learner.behaviour, ImaginedActorCriticV3) and learner.model.v3
    first = learner.update(batch)
    assert {"rssm_reward_loss", "dreamer_critic_loss"} <= set(first)
    saved = io.BytesIO()  # through bytes, as a checkpoint: no tensor shared with the twin
    torch.save(learner.state_dict(), saved)
    saved.seek(0)
    twin = make_learner(STATE, cfg, seed=9)
    twin.load_state_dict(torch.load(saved, weights_only=False))
    assert twin.update(batch) == learner.update(batch)
    actor = make_actor(STATE, cfg, seed=1)
    actor.load_inference_weights(learner.inference_weights())
    state = actor.initial_state(2)
    action, _ = actor.act(np.zeros((2, 3), np.float32), state, explore=False)
    assert action.shape == (2, 2) and np.abs(action).max() <= 1.0


def test_a_v3_learner_gives_imagination_from_terminal_rows_no_weight():
    """Rows that end an episode start no imagined rollout that counts: with every row
    terminal the actor's and critic's losses are zero; with none they are not."""
    cfg = _cfg()
    batch = _sequences(2, 8, seed=1)
    logs = make_learner(STATE, cfg, seed=0).update({**batch, "is_terminal": np.ones((2, 8), bool)})
    assert logs["dreamer_actor_loss"] == 0.0 and logs["dreamer_critic_loss"] == 0.0
    logs = make_learner(STATE, cfg, seed=0).update(batch)
    assert logs["dreamer_actor_loss"] != 0.0 and logs["dreamer_critic_loss"] > 0.0


def test_v3_reward_and_critic_start_at_zero_for_any_state():
    """Zero-initialised output layers (kept through the seeded init): every state's predicted
    reward and value read out 0 (the middle bin, up to float32 rounding of the bins) before
    training; the actor's output is not zeroed."""
    learner = make_learner(STATE, _cfg(), seed=3)
    feat = 5 * torch.randn(6, learner.model.rssm.feat_dim,
                           generator=torch.Generator().manual_seed(0))
    critic = learner.behaviour.critic
    assert learner.model.reward(feat).abs().max().item() < 1e-6
    assert learner.behaviour.two_hot.mean(critic(feat)).abs().max().item() < 1e-6
    assert not critic[-1].weight.any() and not learner.model.reward_head[-1].bias.any()
    assert learner.behaviour.actor.net[-1].weight.abs().max().item() > 0.0
