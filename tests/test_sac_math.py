"""SAC's update (Haarnoja et al. 2018, the automatic-temperature version) recomputed in float64
from copies of the networks taken before it: the soft Bellman target with twin target critics,
mid-batch terminations and n-step discounts, the actor's loss after the critic step, and the
temperature's first Adam step in the direction of the entropy target."""
import copy
import math

import numpy as np
import pytest
import torch

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.critics.sac import SoftActorCritic

pytestmark = pytest.mark.unit

OBS, ACT, N = 3, 2, 16
TOL = dict(rtol=1e-4, atol=1e-5)  # float32 update against a float64 recomputation


def _sac(*overrides: str) -> SoftActorCritic:
    cfg = apply_overrides(load_preset("debug"), ["sac.hidden_size=16", "sac.init_alpha=0.3",
                                                 "sac.gamma=0.9", *overrides])
    return SoftActorCritic(OBS, ACT, cfg.sac, torch.device("cpu"), seed=3)


def _batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    batch = {"obs": rng.normal(size=(N, OBS)), "action": rng.uniform(-0.9, 0.9, (N, ACT)),
             "reward": rng.normal(size=N) + 1.0, "next_obs": rng.normal(size=(N, OBS)),
             "terminated": np.arange(N) % 5 == 2}  # terminations among the rows
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in batch.items()}


def _double(module: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(module).double().requires_grad_(False)


def _policy(net: torch.nn.Module, obs: torch.Tensor, noise: torch.Tensor):
    """A tanh-Gaussian sample from the noise and its log density, by the change of variables
    log pi(a) = log N(u; mu, sigma) - sum log(1 - tanh(u)^2), u = mu + sigma noise."""
    mean, log_std = net(obs).chunk(2, -1)
    log_std = log_std.clamp(-5.0, 2.0)
    u = mean + log_std.exp() * noise
    gauss = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    return torch.tanh(u), gauss - torch.log1p(-torch.tanh(u) ** 2).sum(-1)


def _twin_q(critic: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor):
    """Both Q networks on [s, a], read from their layers (not TwinQ.forward, under test)."""
    x = torch.cat([obs, act], -1)
    return critic.q1(x)[..., 0], critic.q2(x)[..., 0]


def _noises(sac: SoftActorCritic) -> tuple[torch.Tensor, torch.Tensor]:
    """The two draws of (N, ACT) standard normals the update makes: next action, new action."""
    g = torch.Generator().manual_seed(0)
    g.set_state(sac.generator.get_state())
    return tuple(torch.randn(N, ACT, generator=g).double() for _ in range(2))


def test_critic_loss_is_the_soft_bellman_error_of_both_critics():
    """y = r + d (min_i Q'_i(s', a') - alpha log pi(a' | s')), a' ~ pi(. | s'), with
    d = gamma (1 - terminated); loss = sum_i mean (Q_i - y)^2."""
    sac, batch = _sac(), _batch()
    actor, critic, target = _double(sac.actor.net), _double(sac.critic), _double(sac.target)
    alpha = sac.alpha
    next_noise, _ = _noises(sac)
    out = sac.update(batch)
    d = {k: torch.as_tensor(v).double() for k, v in batch.items()}
    discount = 0.9 * (1 - d["terminated"])
    next_action, next_logp = _policy(actor, d["next_obs"], next_noise)
    q1t, q2t = _twin_q(target, d["next_obs"], next_action)
    y = d["reward"] + discount * (torch.minimum(q1t, q2t) - alpha * next_logp)
    q1, q2 = _twin_q(critic, d["obs"], d["action"])
    expected = ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean()
    assert math.isclose(out["sac_critic_loss"], float(expected), rel_tol=1e-4)
    assert math.isclose(out["sac_q"], float(q1.mean()), rel_tol=1e-4)  # Q1 before the step
    assert math.isclose(out["sac_alpha"], alpha, rel_tol=1e-6)


@pytest.mark.parametrize("consolidation", [0.0, 0.5])
def test_actor_loss_uses_the_updated_critics_and_the_consolidation_term(consolidation):
    """actor loss = mean(alpha log pi(a|s) - min_i Q_i(s, a)), a ~ pi(. | s), with the critics
    after this update's critic step; consolidation c adds -c mean log pi(a_replay | s)."""
    sac = _sac(f"sac.consolidation={consolidation}")
    batch = _batch()
    actor, alpha = _double(sac.actor.net), sac.alpha
    _, noise = _noises(sac)
    out = sac.update(batch)
    critic = _double(sac.critic)  # the critic step is done before the actor's
    obs, replay_action = (torch.as_tensor(batch[k]).double() for k in ("obs", "action"))
    action, logp = _policy(actor, obs, noise)
    expected = (alpha * logp - torch.minimum(*_twin_q(critic, obs, action))).mean()
    mean, log_std = actor(obs).chunk(2, -1)
    u = torch.atanh(replay_action)
    replay_logp = (torch.distributions.Normal(mean, log_std.clamp(-5, 2).exp()).log_prob(u)
                   - torch.log1p(-replay_action ** 2)).sum(-1)
    expected = expected - consolidation * replay_logp.mean()
    assert math.isclose(out["sac_actor_loss"], float(expected), rel_tol=1e-4, abs_tol=1e-5)


@pytest.mark.parametrize("log_std_bias, rises", [(-3.0, True), (-1.2, False), (0.0, False)])
def test_temperature_steps_towards_the_target_entropy(log_std_bias, rises):
    """J(alpha) = -log alpha (log pi + target entropy), target -|A|: Adam's first step moves
    log alpha by lr against the sign of its gradient -(mean log pi - |A|). A narrow policy
    (entropy below the target: mean log pi > |A|) raises alpha; a wider one lowers it, the
    case log_std -1.2 (mean log pi in (-|A|, |A|)) also where a target of +|A| would raise it."""
    sac = _sac("sac.lr=0.01")
    with torch.no_grad():
        sac.actor.net[-1].bias[ACT:] = log_std_bias
        sac.actor.net[-1].weight[ACT:] *= 0.1
    batch = _batch()
    actor, before = _double(sac.actor.net), float(sac.log_alpha.detach())
    _, noise = _noises(sac)
    sac.update(batch)
    _, logp = _policy(actor, torch.as_tensor(batch["obs"]).double(), noise)
    gradient = -(float(logp.mean()) - ACT)
    assert (gradient < 0) == rises, "the test's two cases must straddle the target"
    assert math.isclose(float(sac.log_alpha.detach()), before - 0.01 * math.copysign(1, gradient),
                        rel_tol=0, abs_tol=1e-5)
    # the temperature's loss -log alpha (log pi + target entropy), by its gradient
    assert math.isclose(float(sac.log_alpha.grad), gradient, rel_tol=1e-4, abs_tol=1e-6)
