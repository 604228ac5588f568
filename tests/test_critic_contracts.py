"""Contracts of the critics that the math tests leave open, found by mutation testing (issue 39):
TD3's critic loss over members and valid rows and its step, Q still training after an actor step,
seeded draws of pairs and noise, the prior policy's noise; SAC's fit over minibatches, random
actions before the first update, the dtype and explore flag of act_numpy, the temperature in its
weights; the imagined actor-critic's seeded weights, optimiser settings, rollouts, batch shapes,
return normalisation switched off, the critic's per-step values and its checkpoint."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.critics.imagination import ImaginedActorCritic, lambda_returns
from mbrl_ray.critics.sac import SoftActorCritic
from mbrl_ray.critics.td3 import TD3Critics
from mbrl_ray.world_models.rssm import Belief
from test_dcmpc import _actor64, _f64, _q64
from test_imagination import Steer, _actor_critic, _expected_losses, _start

pytestmark = pytest.mark.unit

TOL = 1e-4  # float32 code against float64 references, sums of a few dozen terms


def _td3(**overrides) -> TD3Critics:
    cfg = apply_overrides(load_preset("dcmpc-debug"),
                          [f"dcmpc.{k}={v}" for k, v in overrides.items()])
    return TD3Critics(3, 1, cfg.dcmpc, torch.device("cpu"), seed=0)


def _td3_batch(weight: list[float]) -> tuple[torch.Tensor, ...]:
    n, g = len(weight), torch.Generator().manual_seed(2)
    return (torch.randn(n, 3, generator=g), torch.rand(n, 1, generator=g) * 2 - 1,
            torch.randn(n, generator=g), torch.full((n,), 0.9), torch.randn(n, 3, generator=g),
            torch.tensor(weight))


def _constant_target(critics: TD3Critics, value: float) -> None:
    """Every target member returns `value`: y = r + discount x value whatever pair is drawn."""
    with torch.no_grad():
        critics.q_target.head.weight.zero_()
        critics.q_target.head.bias.fill_(value)


def _weighted_td_loss(critics: TD3Critics, batch, q=None) -> float:
    """mean over members of sum_n w_n (Q_e(z_n, a_n) - y_n)^2, divided by max(1, sum w)."""
    z, a, r, d, _, w = (_f64(t) for t in batch)
    y = r + d * 1.5
    q = q or critics.q
    errors = torch.stack([(_q64(q, e, z, a) - y) ** 2 for e in range(q.members)])
    return ((errors * w).sum(1).mean() / w.sum().clamp_min(1.0)).item()


# ---- TD3 critics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", [[1, 0, 1, 1, 0, 1, 1, 1], [0, 0, 0, 1, 0, 0, 0, 0],
                                    [0.0] * 8])
def test_td3_critic_loss_averages_members_over_the_valid_rows_and_descends(weight):
    """Three members, masked rows, one valid row (the max(1, .) floor binds: a floor of 2
    would halve it) and none (loss 0, no division by 0); y = r + 0.9 x 1.5 from a constant
    target. The step lowers that loss, and the step count is 1."""
    critics = _td3(num_q=3, actor_every=2)
    _constant_target(critics, 1.5)
    batch = _td3_batch(weight)
    before = copy.deepcopy(critics.q)
    logs = critics.update(*batch)
    expected = _weighted_td_loss(critics, batch, before)
    assert logs["dcmpc_critic_loss"] == pytest.approx(expected, rel=TOL, abs=1e-7)
    assert logs["dcmpc_q"] == pytest.approx((batch[2] + 0.9 * 1.5).mean().item(), rel=TOL)
    assert critics.critic_steps == 1
    if sum(weight) > 0:
        assert _weighted_td_loss(critics, batch) < expected


def test_td3_q_gradients_are_the_critic_loss_alone_and_q_trains_after_an_actor_step():
    """An actor step leaves no gradient in Q (its twin without the actor step holds the same
    Q gradients), and the critic step after it still moves Q."""
    critics = _td3(num_q=2, actor_every=1)
    batch = _td3_batch([1.0] * 8)
    still = _td3(num_q=2, actor_every=5)
    still.load_state_dict(copy.deepcopy(critics.state_dict()))
    assert "dcmpc_actor_loss" in critics.update(*batch)
    assert "dcmpc_actor_loss" not in still.update(*batch)
    for p, s in zip(critics.q.parameters(), still.q.parameters()):
        assert p.requires_grad and torch.equal(p.grad, s.grad)
    before = [p.clone() for p in critics.q.parameters()]
    critics.update(*batch)
    assert any(not torch.equal(b, p) for b, p in zip(before, critics.q.parameters()))


def test_td3_actor_loss_is_minus_the_mean_of_two_qs_at_the_actors_actions():
    critics = _td3(num_q=2, actor_every=1)
    batch = _td3_batch([1.0] * 8)
    still = _td3(num_q=2, actor_every=5)
    still.load_state_dict(copy.deepcopy(critics.state_dict()))
    logs = critics.update(*batch)
    still.update(*batch)  # its Q is critics' Q before the actor step, its actor the old one
    z = _f64(batch[0])
    action = _actor64(still.actor, z)
    expected = -((_q64(still.q, 0, z, action) + _q64(still.q, 1, z, action)) / 2).mean()
    assert logs["dcmpc_actor_loss"] == pytest.approx(expected.item(), rel=TOL)


def test_td3_draws_pairs_and_noise_from_its_own_generators_only():
    """Five members: which pair the actor climbs and which pair values a plan come from the
    seeded generators, not from torch's global one."""
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        critics = _td3(num_q=5, actor_every=1)
        for _ in range(2):
            critics.update(*_td3_batch([1.0] * 8))
        z = _td3_batch([1.0] * 8)[0]
        runs.append([*critics.actor.parameters(), *critics.q.parameters(),
                     critics.value(z, 0.3, torch.Generator().manual_seed(4)),
                     critics.act(z, 0.3, torch.Generator().manual_seed(4))])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_td3_prior_action_is_the_actor_plus_clamped_gaussian_noise():
    critics = _td3(num_q=5)
    z = torch.randn(256, 3, generator=torch.Generator().manual_seed(5))
    greedy = _actor64(critics.actor, _f64(z))
    assert (_f64(critics.act(z)) - greedy).abs().max() < TOL  # no noise by default
    noise = _f64(torch.randn((256, 1), generator=torch.Generator().manual_seed(6)))
    noisy = _f64(critics.act(z, 0.5, torch.Generator().manual_seed(6)))
    expected = (greedy + 0.5 * noise).clamp(-1.0, 1.0)
    assert (noisy - expected).abs().max() < TOL
    assert (expected == 1.0).any() and (expected == -1.0).any()  # the clamp binds both sides
    pair = torch.randperm(5, generator=torch.Generator().manual_seed(7))[:2]
    value = critics.value(z, generator=torch.Generator().manual_seed(7))
    mean = sum(_q64(critics.q, e.item(), _f64(z), greedy) for e in pair) / 2
    assert (_f64(value) - mean).abs().max() < TOL


# ---- SAC -----------------------------------------------------------------------------------------
def _sac(**overrides) -> SoftActorCritic:
    cfg = apply_overrides(load_preset("debug"), ["sac.hidden_size=16", "sac.batch_size=8",
                                                 *(f"sac.{k}={v}" for k, v in overrides.items())])
    return SoftActorCritic(3, 2, cfg.sac, torch.device("cpu"), seed=3)


def _sac_data(n: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"obs": rng.normal(size=(n, 3)).astype(np.float32),
            "action": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
            "reward": rng.normal(size=n).astype(np.float32),
            "next_obs": rng.normal(size=(n, 3)).astype(np.float32),
            "terminated": np.arange(n) % 7 == 3}


def test_sac_fit_averages_the_updates_on_minibatches_drawn_from_its_rng():
    """fit = updates_per_fit updates on rows rng.integers(0, n, batch_size) (rng seeded with
    the component's seed), the logs averaged."""
    sac, twin, data = _sac(updates_per_fit=3), _sac(), _sac_data()
    rng = np.random.default_rng(3)
    rows = [rng.integers(0, 40, 8) for _ in range(3)]
    logs = [twin.update({k: v[idx] for k, v in data.items()}) for idx in rows]
    fitted = sac.fit(data)
    assert fitted.keys() == logs[0].keys()
    for key in fitted:
        assert fitted[key] == pytest.approx(np.mean([log[key] for log in logs]), rel=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(sac.actor.parameters(), twin.actor.parameters()))


def test_sac_acts_uniformly_at_random_before_its_first_update():
    sac = _sac()
    obs = np.zeros((500, 3))
    actions = sac.act_numpy(obs)
    expected = np.random.default_rng(3).uniform(-1, 1, (500, 2)).astype(np.float32)
    assert actions.dtype == np.float32 and np.array_equal(actions, expected)
    assert actions.min() < -0.99 and actions.max() > 0.99


def test_sac_act_numpy_takes_float64_observations_and_samples_by_default():
    sac = _sac()
    sac.fit(_sac_data())
    obs = np.random.default_rng(1).normal(size=(6, 3))  # float64, as envs return them
    twin = copy.deepcopy(sac)
    sample = sac.act_numpy(obs)
    expected = twin.act(torch.as_tensor(obs, dtype=torch.float32), True).numpy()
    mean = twin.act(torch.as_tensor(obs, dtype=torch.float32), False).numpy()
    assert sample.dtype == np.float32 and np.array_equal(sample, expected)
    assert not np.allclose(sample, mean)


def test_sac_weights_carry_the_temperature():
    sac, worker = _sac(), _sac(init_alpha=0.7)
    sac.fit(_sac_data())
    worker.load_weights(sac.weights())
    assert worker.alpha == sac.alpha != pytest.approx(0.7)
    assert torch.equal(worker.weights()["log_alpha"], sac.log_alpha.detach())


# ---- imagined actor-critic -----------------------------------------------------------------------
class NoisyDrift(nn.Module):
    """h' = s' = h + a + 0.1 eps (eps from the generator); reward h_0, continue 0.9."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(1, 1)

    def img_step(self, prev: Belief, action: torch.Tensor, generator=None) -> Belief:
        noise = torch.randn(action.shape, generator=generator)
        h = prev.h + action + 0.1 * noise
        return Belief(h, h, h)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        return feat[..., 0]

    def continues(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.full(feat.shape[:-1], 0.9)


def _dreamer(seed: int | None = None, *overrides: str) -> ImaginedActorCritic:
    """On features [h, s] of 2 + 2 dimensions, 2-D actions (as NoisyDrift and Steer)."""
    cfg = apply_overrides(load_preset("dreamer-debug"), ["dreamer.horizon=4", *overrides]).dreamer
    kwargs = {} if seed is None else {"seed": seed}
    return ImaginedActorCritic(feat_dim=4, act_dim=2, cfg=cfg, device=torch.device("cpu"),
                               **kwargs)


def _params(ac: ImaginedActorCritic) -> list[torch.Tensor]:
    return [*ac.actor.parameters(), *ac.critic.parameters(), *ac.slow_critic.parameters()]


def test_imagined_actor_critic_weights_come_from_the_seed_alone():
    torch.manual_seed(0)
    default = _dreamer()
    torch.manual_seed(1)
    zero, one = _dreamer(0), _dreamer(1)
    assert all(torch.equal(a, b) for a, b in zip(_params(default), _params(zero)))
    assert not torch.equal(_params(zero)[0], _params(one)[0])
    assert all(torch.equal(a, b) for a, b in zip(zero.critic.parameters(),
                                                 zero.slow_critic.parameters()))
    assert zero.critic(torch.zeros(5, 4)).shape == (5, 1)  # one value per state


def test_imagined_actor_critic_optimisers_use_the_configured_rates_and_dreamers_eps():
    ac = _dreamer(0, "dreamer.actor_lr=0.002", "dreamer.critic_lr=0.003")
    for opt, lr in ((ac.actor_opt, 0.002), (ac.critic_opt, 0.003)):
        assert opt.param_groups[0]["lr"] == lr and opt.param_groups[0]["eps"] == 1e-5


def test_imagination_carries_the_state_and_draws_from_the_given_generator():
    """feats[k+1] = feats[k] + a_k + 0.1 eps_k with every draw from the generator: the same
    rollout under any global seed."""
    ac, model = _dreamer(0), NoisyDrift()
    start = Belief(*(torch.randn(6, 2, generator=torch.Generator().manual_seed(8)),) * 3)
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        with torch.no_grad():
            runs.append(ac.imagine(model, start, torch.Generator().manual_seed(9)))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    feats = runs[0][0]
    steps = feats[1:] - feats[:-1]
    assert (steps.abs() > 0).all() and (steps - steps.clamp(-1, 1)).abs().max() < 0.5


def test_the_slow_critic_takes_no_gradient():
    ac = _actor_critic()
    ac.update(Steer(), _start(), torch.Generator().manual_seed(1))
    assert all(p.grad is None and not p.requires_grad for p in ac.slow_critic.parameters())


def test_a_batch_of_sequences_updates_as_its_flattened_rows():
    """Posterior states (B, T, D) with T != D: flattened to (B T, D) rows."""
    start = _start(32)
    seq = Belief(*(x.reshape(4, 8, 2) for x in (start.h, start.s, start.stats)))
    logs = [_actor_critic().update(Steer(), s, torch.Generator().manual_seed(1))
            for s in (start, seq)]
    assert logs[0] == logs[1]


def test_without_return_normalisation_the_scale_is_1():
    ac = _actor_critic("dreamer.return_norm=false")
    start = _start()
    with torch.no_grad():
        feats, log_probs = ac.imagine(Steer(), start, torch.Generator().manual_seed(1))
    c = ac.cfg
    expected = _expected_losses(Steer(), feats, log_probs, c.gamma, c.lam, c.entropy, False)
    logs = ac.update(Steer(), start, torch.Generator().manual_seed(1))
    assert logs["dreamer_return_scale"] == 1.0
    assert logs["dreamer_actor_loss"] == pytest.approx(expected["dreamer_actor_loss"], rel=1e-4)


def test_the_critic_regresses_each_imagined_steps_own_value_and_the_mean_return_is_logged():
    """A critic that varies over states: 0.5 mean(w (v(s_k) - R_k)^2), v from s_0..s_{H-1}."""
    ac = _dreamer(0)
    with torch.no_grad():
        for p in ac.slow_critic.parameters():
            p.zero_()
    model, start = NoisyDrift(), _start(16)
    with torch.no_grad():
        feats, _ = ac.imagine(model, start, torch.Generator().manual_seed(1))
    critic = copy.deepcopy(ac.critic).double()
    logs = ac.update(model, start, torch.Generator().manual_seed(1))
    f = feats.double()
    horizon = feats.shape[0] - 1
    returns = lambda_returns(f[1:, :, 0], torch.zeros(horizon + 1, 16, dtype=torch.float64),
                             torch.full((horizon, 16), ac.cfg.gamma * 0.9, dtype=torch.float64),
                             ac.cfg.lam)
    weights = torch.tensor([0.9 ** k for k in range(horizon)], dtype=torch.float64)[:, None]
    values = critic(f[:-1])[..., 0]
    expected = 0.5 * (weights * (values - returns) ** 2).mean()
    assert (values[1:] - values[:1]).abs().max() > 1e-3  # the values differ across steps
    assert logs["dreamer_critic_loss"] == pytest.approx(expected.item(), rel=1e-4)
    assert logs["dreamer_return"] == pytest.approx(returns.mean().item(), rel=1e-4, abs=1e-6)


def test_imagined_actor_critic_acts_by_sample_or_mode():
    ac = _dreamer(0)
    feat = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    mode = ac.act(feat, explore=False)
    assert torch.equal(mode, ac.actor(feat, deterministic=True)[0])
    sample = ac.act(feat, True, torch.Generator().manual_seed(3))
    assert torch.equal(sample, ac.actor(feat, generator=torch.Generator().manual_seed(3))[0])
    assert not torch.allclose(sample, mode)


def test_imagined_actor_critic_state_round_trips_and_resumes_identically():
    ac = _actor_critic()
    ac.update(Steer(), _start(), torch.Generator().manual_seed(1))
    copy_ = _dreamer(5)
    copy_.load_state_dict(copy.deepcopy(ac.state_dict()))
    assert copy_.scale.range == ac.scale.range > 0
    logs = [x.update(Steer(), _start(), torch.Generator().manual_seed(2)) for x in (ac, copy_)]
    assert logs[0] == logs[1]
    assert all(torch.equal(a, b) for a, b in zip(_params(ac), _params(copy_)))


def test_td3_defaults_settings_and_frozen_targets():
    """seed 0 by default; Adam at dcmpc.lr; the target networks take no gradient (they move by
    Polyak averaging only)."""
    cfg = apply_overrides(load_preset("dcmpc-debug"), ["dcmpc.lr=0.0007"]).dcmpc
    default = TD3Critics(3, 1, cfg, torch.device("cpu"))
    zero = TD3Critics(3, 1, cfg, torch.device("cpu"), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(default.q.parameters(), zero.q.parameters()))
    assert torch.equal(default.generator.get_state(), zero.generator.get_state())
    for opt in (zero.q_opt, zero.actor_opt):
        assert opt.param_groups[0]["lr"] == 0.0007
    for target in (zero.q_target, zero.actor_target):
        assert not any(p.requires_grad for p in target.parameters())


# ---- the networks --------------------------------------------------------------------------------
def _tanh_gaussian_log_prob64(actor, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """log pi(a | s) of a tanh-squashed Gaussian in float64, actions kept 1e-4 inside +-1:
    log N(atanh a; mu, sigma) - sum log(1 - a^2)."""
    net = copy.deepcopy(actor.net).double()
    mean, log_std = net(obs.double()).chunk(2, -1)
    log_std = log_std.clamp(-5.0, 2.0)
    a = action.double().clamp(-1 + 1e-4, 1 - 1e-4)
    u = torch.atanh(a)
    gauss = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    return gauss - torch.log1p(-torch.tanh(u) ** 2).sum(-1)


def test_actor_log_prob_of_given_actions_with_three_dims_batched_and_at_the_bounds():
    """Three action dims, states (2, 5, obs) as planners pass them, actions on +-1 exactly
    (clamped 1e-4 inside, so the log-density stays finite), against float64."""
    from mbrl_ray.critics.nets import Actor

    torch.manual_seed(0)
    actor = Actor(4, 3, 16, 2)
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(2, 5, 4, generator=g)
    action = torch.rand(2, 5, 3, generator=g) * 2 - 1
    action[0, 0] = torch.tensor([1.0, -1.0, 0.3])
    got = actor.log_prob(obs, action)
    assert got.shape == (2, 5) and torch.isfinite(got).all()
    assert torch.allclose(got.double(), _tanh_gaussian_log_prob64(actor, obs, action),
                          rtol=1e-4, atol=1e-3)


def test_q_ensemble_of_one_hidden_layer_and_pairs_without_a_generator():
    """One hidden layer (its head reads the hidden width, not the input's); mean_of_two and
    min_of_two also work with torch's global generator."""
    from mbrl_ray.critics.nets import QEnsemble

    q = QEnsemble(4, 3, 2, 16, 1)
    obs, act = torch.randn(7, 3), torch.rand(7, 2)
    values = q(obs, act)
    assert values.shape == (4, 7)
    torch.manual_seed(0)
    pair = torch.randperm(4)[:2]
    torch.manual_seed(0)
    assert torch.allclose(q.mean_of_two(obs, act), values[pair].mean(0))
    torch.manual_seed(0)
    assert torch.allclose(q.min_of_two(obs, act), values[pair].min(0).values)


def test_twin_q_reads_any_leading_shape_as_rows_of_both_networks():
    """TwinQ (obs (..., D), act (..., A)) -> two (...): each network on [s, a], last axis."""
    from mbrl_ray.critics.nets import TwinQ

    torch.manual_seed(0)
    twin = TwinQ(3, 2, 8, 2)
    obs, act = torch.randn(2, 5, 3), torch.randn(2, 5, 2)
    q1, q2 = twin(obs, act)
    rows = torch.cat([obs, act], -1).reshape(10, 5)
    assert q1.shape == q2.shape == (2, 5)
    assert torch.allclose(q1.reshape(10), twin.q1(rows)[:, 0])
    assert torch.allclose(q2.reshape(10), twin.q2(rows)[:, 0])
    assert not torch.allclose(q1, q2)


def test_sac_learner_settings_and_unfitted_state():
    """Adam at sac.lr for actor, critics and temperature; the target critics frozen (Polyak
    only); before any update `fitted` is False in its checkpoint; the seed defaults to 0."""
    sac = _sac(lr=0.0037)
    assert [o.param_groups[0]["lr"] for o in (sac.actor_opt, sac.critic_opt, sac.alpha_opt)] \
        == [0.0037] * 3
    assert not any(p.requires_grad for p in sac.target.parameters())
    assert all(p.requires_grad for p in sac.critic.parameters())
    assert sac.state_dict()["fitted"] is False
    cfg = apply_overrides(load_preset("debug"), ["sac.hidden_size=16"])
    default, zero = (SoftActorCritic(3, 2, cfg.sac, torch.device("cpu"), **kw)
                     for kw in ({}, {"seed": 0}))
    assert all(torch.equal(a, b) for a, b in zip(default.actor.parameters(),
                                                 zero.actor.parameters()))


def test_actor_halves_its_output_into_mean_and_log_std_for_any_leading_shape():
    """With 3 action dims and (2, 4, obs) inputs: the mean action is tanh of the first 3
    outputs, a sample tanh(mean + exp(clamped log std) noise) with the generator's noise."""
    from mbrl_ray.critics.nets import Actor

    torch.manual_seed(0)
    actor = Actor(5, 3, 8, 2)
    obs = torch.randn(2, 4, 5)
    out = actor.net(obs)
    mean, log_std = out[..., :3], out[..., 3:].clamp(-5.0, 2.0)
    deterministic, none = actor(obs, deterministic=True)
    assert none is None and torch.allclose(deterministic, torch.tanh(mean))
    gen = torch.Generator().manual_seed(7)
    action, _, mean_action = actor.sample_with_mean(obs, torch.Generator().manual_seed(7))
    noise = torch.randn(2, 4, 3, generator=gen)
    assert torch.allclose(mean_action, torch.tanh(mean))
    assert torch.allclose(action, torch.tanh(mean + log_std.exp() * noise))
