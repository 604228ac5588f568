"""Imagination's math against independent float64 computations written here: PlaNet's latent
returns (the reward of the step on which the episode ends counts, later ones do not), latent
CEM over a horizon with a termination mid-way and its warm start, and Dreamer's lambda-returns,
return scale, entropy bonus, per-step continue weights and slow critic."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mbrl_ray.agents import make_actor
from mbrl_ray.agents.planet import latent_returns
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.critics.imagination import ImaginedActorCritic, ReturnScale, lambda_returns
from mbrl_ray.envs import EnvSpec
from mbrl_ray.planners import make_planner
from mbrl_ray.world_models.rssm import Belief

pytestmark = pytest.mark.unit

F32_REL = 1e-5  # float32 code vs float64 expectation, sums of a few dozen terms
LOSS_REL = 1e-4  # means over a few hundred float32 terms of magnitude up to ~1e3
CEM_ATOL = 0.05  # CEM's elite mean after 8 iterations of 400 samples (measured spread ~0.01)
WARM_ATOL = 0.05  # one CEM iteration at std 0.01 stays this close to its warm start


def _cfg(preset: str, *overrides: str):
    return apply_overrides(load_preset(preset), list(overrides))


def _zero_belief(batch: int, dims: tuple[int, int, int]) -> Belief:
    return Belief(*(torch.zeros(batch, d) for d in dims))


# ---- PlaNet: the latent objective ---------------------------------------------------------------
class ActionIsState(nn.Module):
    """Latent = the last action a (1-D); reward a + 0.5; continue 0 where a > 0.9 (the episode
    ends on that step), sigmoid(2a) elsewhere (a soft termination probability)."""

    def img_step(self, prev: Belief, action: torch.Tensor, generator=None) -> Belief:
        return Belief(action, action, action)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        return feat[..., 0] + 0.5

    def continues(self, feat: torch.Tensor) -> torch.Tensor:
        a = feat[..., 0]
        return torch.where(a > 0.9, torch.zeros_like(a), torch.sigmoid(2 * a))


def _planet_return(actions: list[float], discount: float) -> float:
    """sum_t discount^t (prod_{j<t} c_j) r_t: alive is updated after the reward is added."""
    total, alive = 0.0, 1.0
    for t, a in enumerate(actions):
        total += discount ** t * alive * (a + 0.5)
        alive *= 0.0 if a > 0.9 else 1.0 / (1.0 + math.exp(-2.0 * a))
    return total


def test_latent_returns_count_the_terminating_steps_reward_and_drop_later_ones():
    g = torch.Generator().manual_seed(0)
    actions = torch.rand((2, 5, 4, 1), generator=g) * 1.6 - 0.8  # no hard termination
    actions[0, 1, 1] = 0.95  # the episode ends on step 1 (mid-horizon)
    actions[1, 2, 0] = 0.95  # on step 0
    actions[1, 3, 3] = 0.95  # on the last step
    out = latent_returns(ActionIsState(), _zero_belief(2, (1, 1, 1)), actions, discount=0.9)
    expected = torch.tensor([[_planet_return(actions[b, n, :, 0].tolist(), 0.9)
                              for n in range(5)] for b in range(2)], dtype=torch.float64)
    assert torch.allclose(out.double(), expected, rtol=F32_REL, atol=F32_REL)
    # Ending on the first step: that step's reward is the whole return.
    assert out[1, 2].item() == pytest.approx(0.95 + 0.5, rel=F32_REL)


class Timed(nn.Module):
    """h = (steps taken t, the first action a_0), s = the last action a_t (1-D). Step k's reward
    couples a_0 into three steps with different targets; the episode ends on step 1 with
    probability 1 - C1. a_0's best value is then the mean of its targets weighted by each
    step's weight discount^k x P(alive before step k), which the objective's mistakes move."""

    TARGETS_A0 = (-0.9, 0.6, 0.9)  # a_0's target in steps 0, 1, 2
    TARGETS = (None, 0.5, -0.4)  # a_1's in step 1, a_2's in step 2
    C1 = 0.1  # continue probability of step 1

    def img_step(self, prev: Belief, action: torch.Tensor, generator=None) -> Belief:
        t = prev.h[:, :1] + 1
        first = torch.where(t == 1, action, prev.h[:, 1:])
        return Belief(torch.cat([t, first], -1), action, action)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        k, a0, a = feat[..., 0] - 1, feat[..., 1], feat[..., 2]
        out = torch.zeros_like(a0)
        for step, target in enumerate(self.TARGETS_A0):
            own = 0.0 if self.TARGETS[step] is None else (a - self.TARGETS[step]) ** 2
            out = torch.where(k == step, -(a0 - target) ** 2 - own, out)
        return out

    def continues(self, feat: torch.Tensor) -> torch.Tensor:
        k = feat[..., 0] - 1
        return torch.where(k == 1, torch.full_like(k, self.C1), torch.ones_like(k))


def test_latent_cem_weights_a_horizon_by_discount_and_survival_and_shifts_its_plan():
    """Horizon 3, discount 0.6, the episode ending on step 1 with probability 0.9: a_0 must
    settle at the targets' mean weighted by (1, 0.6, 0.36 x 0.1) = -0.310. Dropping step 1's
    reward where it ends gives -0.759, no discount -0.1, ignoring survival -0.110."""
    discount = 0.6
    cfg = _cfg("planet-debug", "planner.horizon=3", "planner.population=400",
               "planner.num_elites=40", "planner.iterations=8",
               f"planner.discount={discount}").planner
    planner = make_planner(cfg, act_dim=1)
    start = _zero_belief(4, (2, 1, 1))
    seq, state = planner.plan(lambda a: latent_returns(Timed(), start, a, discount),
                              planner.initial_state(4), torch.Generator().manual_seed(0))
    weights = (1.0, discount, discount ** 2 * Timed.C1)
    best_a0 = sum(w * g for w, g in zip(weights, Timed.TARGETS_A0)) / sum(weights)
    assert torch.allclose(seq[:, 0, 0], torch.full((4,), best_a0), atol=CEM_ATOL), seq[:, 0, 0]
    assert torch.allclose(seq[:, 1, 0], torch.full((4,), Timed.TARGETS[1]), atol=CEM_ATOL)
    # The next step's warm start: the plan without its executed step, zeros appended.
    assert torch.equal(state[:, :2], seq[:, 1:]) and torch.equal(state[:, 2], torch.zeros(4, 1))


def test_planet_plans_from_its_warm_start_and_carries_the_shifted_plan():
    """With one CEM iteration at std 0.01 the executed action stays at the warm start's first
    action (not at 0, where a restart from N(0, 1) would centre), and the state carried to the
    next step is that plan shifted by one step."""
    cfg = _cfg("planet-debug", "planner.iterations=1", "planner.init_std=0.01",
               "planner.population=16", "planner.num_elites=4")
    agent = make_actor(EnvSpec.state(3, 2), cfg, seed=0)
    horizon = cfg.planner.horizon
    plan = torch.linspace(-0.8, 0.8, 2 * horizon * 2).reshape(2, horizon, 2)
    plan[:, 0] = torch.tensor([[0.6, -0.5], [-0.7, 0.4]])
    state = {**agent.initial_state(2), "plan": plan.clone()}
    with torch.no_grad():
        action, after = agent.policy_action(agent.model.rssm.initial(2), state, explore=False)
    assert torch.allclose(action, plan[:, 0], atol=WARM_ATOL), action
    assert torch.allclose(after["plan"][:, :-1], plan[:, 1:], atol=WARM_ATOL)
    assert torch.equal(after["plan"][:, -1], torch.zeros(2, 2))


def test_a_cold_started_planner_restarts_from_the_initial_distribution_every_step():
    """planner.warm_start=false (PlaNet): a plan carried in the state is ignored for the next
    step: the state handed on is the one handed in, so a run that starts at the initial
    state plans every step from it (one iteration at std 0.01 acts near 0, not near a plan)."""
    cfg = _cfg("planet-debug", "planner.iterations=1", "planner.init_std=0.01",
               "planner.population=16", "planner.num_elites=4", "planner.warm_start=false")
    agent = make_actor(EnvSpec.state(3, 2), cfg, seed=0)
    state = agent.initial_state(2)
    initial = state["plan"].clone()
    with torch.no_grad():
        for _ in range(3):
            action, state = agent.policy_action(agent.model.rssm.initial(2), state,
                                                explore=False)
            assert torch.equal(state["plan"], initial)
            assert action.abs().max().item() < WARM_ATOL


# ---- Dreamer: lambda-returns --------------------------------------------------------------------
def _n_step_lambda_return(r: list[float], v: list[float], d: list[float], lam: float,
                          k: int) -> float:
    """R_k as the lambda-weighted mean of n-step returns (Sutton & Barto 12.1), not the
    recursion the code uses: (1 - lam) sum_{n<H-k} lam^(n-1) G_n + lam^(H-k-1) G_(H-k),
    G_n = sum_{i<n} (prod_{j<i} d_(k+j)) r_(k+i) + (prod_{j<n} d_(k+j)) v_(k+n)."""
    def n_step(n: int) -> float:
        total, disc = 0.0, 1.0
        for i in range(n):
            total += disc * r[k + i]
            disc *= d[k + i]
        return total + disc * v[k + n]

    last = len(r) - k
    mixed = sum(lam ** (n - 1) * n_step(n) for n in range(1, last))
    return (1 - lam) * mixed + lam ** (last - 1) * n_step(last)


def test_lambda_returns_equal_the_weighted_n_step_returns_across_a_termination():
    g = torch.Generator().manual_seed(0)
    horizon, gamma, lam = 6, 0.9, 0.8
    rewards = torch.randn(horizon, 3, generator=g)
    values = 5 * torch.randn(horizon + 1, 3, generator=g)
    cont = torch.rand(horizon, 3, generator=g) * 0.5 + 0.5  # soft continue probabilities
    cont[2, 1] = 0.0  # column 1: the episode ends on arriving at state 3
    cont[:, 2] = 1.0  # column 2: never ends
    out = lambda_returns(rewards, values, gamma * cont, lam)
    for n in range(3):
        r, v = rewards[:, n].tolist(), values[:, n].tolist()
        d = [gamma * c for c in cont[:, n].tolist()]
        expected = [_n_step_lambda_return(r, v, d, lam, k) for k in range(horizon)]
        assert out[:, n].tolist() == pytest.approx(expected, rel=F32_REL, abs=F32_REL)


# ---- Dreamer: return scale, actor and critic losses, slow critic --------------------------------
def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's and torch's default)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def _spread(values: list[float]) -> float:
    return _percentile(values, 0.95) - _percentile(values, 0.05)


def test_return_scale_is_the_ema_of_the_5th_to_95th_percentile_range_floored_at_1():
    """DreamerV3: S = EMA_0.99(Per(R, 95) - Per(R, 5)) from 0, the returns divided by
    max(1, S)."""
    g = torch.Generator().manual_seed(0)
    first = 400 * torch.randn(15, 64, generator=g)  # range ~1,300: S ~13 after one update
    second = 7 + 50 * torch.randn(15, 64, generator=g)
    scale = ReturnScale()
    ema = 0.01 * _spread(first.flatten().tolist())
    assert scale.update(first) == pytest.approx(max(1.0, ema), rel=F32_REL)
    ema = 0.99 * ema + 0.01 * _spread(second.flatten().tolist())
    assert scale.update(second) == pytest.approx(max(1.0, ema), rel=F32_REL)
    assert ema > 1.0  # both above the floor: the range itself was checked
    assert ReturnScale().update(first / 1000) == 1.0  # S ~0.013: the floor


class Steer(nn.Module):
    """Latent = the action (2-D, feat [a, a]); reward 1000 a_0 + 300 (returns of ~1e3 that the
    scale must shrink); the episode ends where a_1 > 0.5, else continues with probability 0.9."""

    def __init__(self, reward_scale: float = 1000.0, reward_offset: float = 300.0) -> None:
        super().__init__()
        self.reward_scale, self.reward_offset = reward_scale, reward_offset
        self.unused = nn.Linear(1, 1)

    def img_step(self, prev: Belief, action: torch.Tensor, generator=None) -> Belief:
        return Belief(action, action, action)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.reward_scale * feat[..., 0] + self.reward_offset

    def continues(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.where(feat[..., 1] > 0.5, 0.0, 0.9)


def _constant(net: nn.Sequential, value: float) -> None:
    """A critic whose output is `value` everywhere (its last layer zeroed, bias = value)."""
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.fill_(value)


def _actor_critic(*overrides: str) -> ImaginedActorCritic:
    cfg = _cfg("dreamer-debug", "dreamer.horizon=4", *overrides).dreamer
    ac = ImaginedActorCritic(feat_dim=4, act_dim=2, cfg=cfg, device=torch.device("cpu"))
    _constant(ac.slow_critic, 5.0)  # what the returns bootstrap from
    _constant(ac.critic, -3.0)  # what the critic loss regresses
    return ac


def _start(n: int = 32) -> Belief:
    g = torch.Generator().manual_seed(3)
    return Belief(*(torch.rand(n, 2, generator=g) * 2 - 1 for _ in range(3)))


def _expected_losses(model: Steer, feats: torch.Tensor, log_probs: torch.Tensor, gamma: float,
                     lam: float, entropy: float, scale_on: bool) -> dict[str, float]:
    """The update's logged losses by plain loops: lambda-returns bootstrapped from the slow
    critic (5), weights prod_{j<k} c_j, S = max(1, 0.01 x the returns' 5-95% range) after one
    update, actor loss -mean(w (R / S - entropy x log pi)), critic 0.5 mean(w (-3 - R)^2)."""
    a = feats[1:].double()
    horizon, n = a.shape[:2]
    r = (model.reward_scale * a[..., 0] + model.reward_offset).tolist()
    c = [[0.0 if a[k, i, 1] > 0.5 else 0.9 for i in range(n)] for k in range(horizon)]
    returns = [[0.0] * n for _ in range(horizon)]
    for i in range(n):
        last = 5.0
        for k in reversed(range(horizon)):
            last = r[k][i] + gamma * c[k][i] * ((1 - lam) * 5.0 + lam * last)
            returns[k][i] = last
    flat = [x for row in returns for x in row]
    scale = max(1.0, 0.01 * _spread(flat)) if scale_on else 1.0
    logp = log_probs.double().tolist()
    actor, critic = 0.0, 0.0
    for i in range(n):
        w = 1.0
        for k in range(horizon):
            actor -= w * (returns[k][i] / scale - entropy * logp[k][i])
            critic += 0.5 * w * (-3.0 - returns[k][i]) ** 2
            w *= c[k][i]
    return {"dreamer_actor_loss": actor / (horizon * n), "dreamer_return_scale": scale,
            "dreamer_critic_loss": critic / (horizon * n)}


def _update_and_expect(ac: ImaginedActorCritic, model: Steer) -> tuple[dict, dict]:
    """One update, and the expected logs from the same imagined rollout (same seed)."""
    start = _start()
    with torch.no_grad():
        feats, log_probs = ac.imagine(model, start, torch.Generator().manual_seed(1))
    c = ac.cfg
    expected = _expected_losses(model, feats, log_probs, c.gamma, c.lam, c.entropy,
                                c.return_norm)
    return ac.update(model, start, torch.Generator().manual_seed(1)), expected


def test_the_actor_loss_divides_returns_by_the_percentile_scale():
    """Returns of ~1e3 (the scale S ~ 20 after the first update), continues 0.9 with hard
    terminations mid-rollout, the slow critic at 5 and the critic at -3 (so bootstrapping from
    the wrong one shows)."""
    ac = _actor_critic()
    logs, expected = _update_and_expect(ac, Steer())
    assert expected["dreamer_return_scale"] > 5.0  # the scale is in play
    for key, value in expected.items():
        assert logs[key] == pytest.approx(value, rel=LOSS_REL), (key, logs[key], value)


def test_the_actor_loss_rewards_entropy():
    """Zero rewards and entropy weight 1: the actor loss is +mean(w log pi), i.e. minimising it
    raises -log pi (the entropy estimate); the logged entropy is -mean(log pi)."""
    ac = _actor_critic("dreamer.entropy=1.0")
    model = Steer(reward_scale=0.0, reward_offset=0.0)
    start = _start()
    with torch.no_grad():
        _, log_probs = ac.imagine(model, start, torch.Generator().manual_seed(1))
    logs, expected = _update_and_expect(ac, model)
    assert logs["dreamer_actor_loss"] == pytest.approx(expected["dreamer_actor_loss"],
                                                       rel=LOSS_REL)
    assert logs["dreamer_entropy"] == pytest.approx(-log_probs.double().mean().item(),
                                                    rel=F32_REL)


def test_the_slow_critic_moves_2_percent_toward_the_critic_per_update():
    """DreamerV3's slow critic: slow <- 0.98 slow + 0.02 critic, after the critic's step. The
    slow copy starts 0.3-noise away and the critic's lr is large, so the rate, its side and
    the order all show."""
    ac = _actor_critic("dreamer.critic_lr=0.05")
    assert ac.cfg.slow_critic_rate == 0.02  # the preset keeps DreamerV3's rate
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in ac.slow_critic.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    before = [p.detach().double().clone() for p in ac.slow_critic.parameters()]
    ac.update(Steer(), _start(), torch.Generator().manual_seed(1))
    for old, slow, fast in zip(before, ac.slow_critic.parameters(), ac.critic.parameters()):
        expected = 0.98 * old + 0.02 * fast.detach().double()
        assert torch.allclose(slow.double(), expected, atol=1e-6)
