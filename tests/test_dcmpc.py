"""DC-MPC's pieces against closed forms and hand-built cases, and DC-MPC through the topology."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mbrl_ray.agents import DCMPCAgent, make_actor, make_learner
from mbrl_ray.critics.nstep import nstep_target_parts
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.critics.td3 import TD3Critics
from mbrl_ray.envs import EnvSpec
from mbrl_ray.world_models.dcwm import DCWM
from mbrl_ray.world_models.fsq import FSQ, cross_entropy, gumbel_softmax_straight_through

SPEC = EnvSpec.state(4, 1)


def _cfg(*overrides):
    return apply_overrides(load_preset("dcmpc-debug"), list(overrides))


# ---- independent float64 forward passes (the references of the hand computations below) --------
TOL = 1e-4  # float32 code under test against these float64 references


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().double()


def _mish64(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tanh(torch.log1p(torch.exp(x)))


def _layer_norm64(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def _normed_mlp64(net: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Linear -> LayerNorm -> Mish per hidden layer, then a Linear, from net's parameters."""
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    norms = [m for m in net if isinstance(m, torch.nn.LayerNorm)]
    for linear, norm in zip(linears[:-1], norms):
        x = x @ _f64(linear.weight).T + _f64(linear.bias)
        x = _mish64(_layer_norm64(x) * _f64(norm.weight) + _f64(norm.bias))
    return x @ _f64(linears[-1].weight).T + _f64(linears[-1].bias)


def _q64(q, member: int, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Member `member` of a QEnsemble (mish layers) at latents z and actions a, (N,)."""
    x = torch.cat([z, a], -1)
    for layer, scale, shift in zip(q.hidden, q.scale, q.shift):
        x = x @ _f64(layer.weight[member]) + _f64(layer.bias[member])
        x = _mish64(_layer_norm64(x) * _f64(scale[member]) + _f64(shift[member]))
    return (x @ _f64(q.head.weight[member]) + _f64(q.head.bias[member]))[..., 0]


def _actor64(actor, z: torch.Tensor) -> torch.Tensor:
    return torch.tanh(_normed_mlp64(actor.net, z))


def _codebook_5_3() -> torch.Tensor:
    """FSQ [5, 3] codes by hand: index i = l0 + 5 l1, code ((l0 - 2) / 2, l1 - 1)."""
    return torch.tensor([[(i % 5 - 2) / 2, i // 5 - 1.0] for i in range(15)], dtype=torch.float64)


def _fsq_5_3(x: torch.Tensor) -> torch.Tensor:
    """FSQ [5, 3] of (..., 2) numbers: channel j squashed to (L-1)/2 (1 + 1e-3) tanh, rounded,
    divided by L // 2 (odd levels: no shift)."""
    bounded = torch.tanh(x) * torch.tensor([2.0, 1.0], dtype=torch.float64) * (1 + 1e-3)
    return torch.round(bounded) / torch.tensor([2.0, 1.0], dtype=torch.float64)


# ---- FSQ --------------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("levels", [[5, 3], [8, 5, 5, 5], [4, 2], [7]])
def test_codebook_is_the_product_of_the_levels_and_codes_round_trip(levels):
    fsq = FSQ(levels)
    assert fsq.size == int(np.prod(levels))
    assert len(torch.unique(fsq.codebook, dim=0)) == fsq.size
    assert torch.equal(fsq.indices(fsq.codebook), torch.arange(fsq.size))
    codes = fsq(torch.randn(500, 3, len(levels), generator=torch.Generator().manual_seed(0)) * 3)
    assert torch.equal(fsq.codebook[fsq.indices(codes)], codes)  # code -> index -> same code
    for j, n in enumerate(levels):  # every level of every channel is reached
        assert len(codes[..., j].unique()) == n
    assert codes.abs().max() <= 1.0


@pytest.mark.unit
def test_gradient_flows_through_the_straight_through_rounding():
    fsq = FSQ([5, 3])
    z = torch.randn(64, 2, requires_grad=True)
    fsq(z).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    (fsq.bound(z2) / fsq.half_width).sum().backward()  # the same without rounding
    assert torch.allclose(z.grad, z2.grad) and (z.grad.abs() > 0).all()


@pytest.mark.unit
def test_expected_code_is_the_codebook_mean_under_uniform_logits():
    fsq = FSQ([5, 3])
    expected = fsq.expected(torch.zeros(7, fsq.size))
    assert torch.allclose(expected, fsq.codebook.mean(0).expand(7, -1), atol=1e-6)
    peaked = torch.full((fsq.size,), -1e4)
    peaked[11] = 0
    assert torch.allclose(fsq.expected(peaked), fsq.codebook[11])


@pytest.mark.unit
def test_cross_entropy_and_softmax_helpers_match_torch():
    logits = torch.randn(6, 9, 15)
    target = torch.randint(0, 15, (6, 9))
    ours = cross_entropy(logits, target)
    theirs = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
    assert torch.allclose(ours.flatten(), theirs, atol=1e-5)


@pytest.mark.unit
def test_gumbel_softmax_is_one_hot_forward_samples_the_categorical_and_passes_gradients():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0], requires_grad=True)
    g = torch.Generator().manual_seed(0)
    sample = gumbel_softmax_straight_through(logits.expand(20_000, -1), 1.0, g)
    hard = sample.detach().round()  # forward values are one-hot up to float rounding
    assert (sample.detach() - hard).abs().max() < 1e-6
    assert torch.equal(hard.sum(-1), torch.ones(20_000))
    freq = hard.mean(0)
    assert torch.allclose(freq, torch.softmax(logits.detach(), -1), atol=0.015)
    (sample * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert (logits.grad.abs() > 0).all()


def _fsq_by_hand(z: float, level: int) -> tuple[float, float]:
    """One channel of FSQ (Mentzer et al.): bound to h tanh(z + s) - o with h = (L-1)/2 (1+1e-3),
    o = 1/2 for even L (s = atanh(o / h), so that z = 0 stays 0), round, divide by L // 2
    -> (code, d code / dz with the rounding passed straight through)."""
    h, o = (level - 1) / 2 * (1 + 1e-3), 0.5 if level % 2 == 0 else 0.0
    t = math.tanh(z + math.atanh(o / h))
    return round(t * h - o) / (level // 2), h * (1 - t * t) / (level // 2)


@pytest.mark.unit
def test_fsq_codes_and_straight_through_gradient_by_hand():
    """Levels [5, 4, 3] (odd and even) over z in [-4, 4]: every code and every slope against
    the channel's hand computation."""
    levels = [5, 4, 3]
    z = torch.linspace(-4, 4, 321).repeat(3, 1).T.contiguous().requires_grad_(True)
    (grad,) = torch.autograd.grad(FSQ(levels)(z).sum(), z)
    codes, z = FSQ(levels)(z.detach()), z.detach()
    for j, level in enumerate(levels):
        for i in range(len(z)):
            code, slope = _fsq_by_hand(z[i, j].item(), level)
            assert codes[i, j].item() == code and abs(grad[i, j].item() - slope) < TOL
    # the hand facts: even levels lose +1 (L = 4: -1, -1/2, 0, 1/2), and z = 0 maps to 0
    assert sorted(set(codes[:, 1].tolist())) == [-1.0, -0.5, 0.0, 0.5]
    assert sorted(set(codes[:, 0].tolist())) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert torch.equal(FSQ(levels)(torch.zeros(3)), torch.zeros(3))
    assert torch.equal(FSQ([5, 3]).codebook.double(), _codebook_5_3())


# ---- world model ------------------------------------------------------------------------------
def _model(seed=0):
    from mbrl_ray import seeding
    return seeding.init_weights(DCWM(4, 1, 6, [5, 3], 32, 32, 2), seeding.init_generator(seed))


@pytest.mark.unit
def test_cross_entropy_target_is_the_encoders_code_of_the_next_observation():
    model = _model()
    obs = torch.randn(8, 2, 4)
    action, reward = torch.randn(8, 1, 1), torch.randn(8, 1)
    valid = torch.ones(8, 1, dtype=torch.bool)
    out = model.loss(obs, action, reward, valid, rho=0.9)
    code = model.encode(obs[:, 0])
    target = model.code_indices(model.encode(obs[:, 1]))
    logits = model.next_logits(code, action[:, 0])
    ce = F.cross_entropy(logits.flatten(0, 1), target.flatten())
    assert torch.allclose(out["consistency"], ce, atol=1e-5)


@pytest.mark.unit
def test_invalid_steps_do_not_count_in_the_loss():
    model = _model()
    obs, action, reward = torch.randn(4, 4, 4), torch.randn(4, 3, 1), torch.randn(4, 3)
    valid = torch.ones(4, 3, dtype=torch.bool)
    valid[:, 1:] = False
    g = torch.Generator().manual_seed(0)
    masked = model.loss(obs, action, reward, valid, 0.9, generator=g)
    changed, moved = reward.clone(), obs.clone()
    changed[:, 1:] += 100.0  # rewards and observations after the episode's end
    moved[:, 2:] += 100.0
    g = torch.Generator().manual_seed(0)
    again = model.loss(moved, action, changed, valid, 0.9, generator=g)
    assert torch.allclose(masked["reward"], again["reward"])
    assert torch.allclose(masked["consistency"], again["consistency"])
    g = torch.Generator().manual_seed(0)
    valid[:, 1] = True  # the check can fail: counted, the same changes move the loss
    counted = model.loss(moved, action, changed, valid, 0.9, generator=g)
    assert not torch.allclose(masked["reward"], counted["reward"])


def _dcwm_loss_by_hand(model: DCWM, obs, action, reward, valid, rho: float,
                       seed: int) -> tuple[float, float]:
    """(consistency, reward) of the multi-step loss by hand: step t's cross-entropy of the
    dynamics' logits against the code of obs[t+1] and the reward's squared error, weighted
    rho^t, invalid rows zeroed, summed over rows / B, averaged over the H steps. The latent
    rolls forward from the code of obs[0] by Gumbel-max samples: argmax(logits - log(-log u)),
    u the generator's uniforms, one draw of (B, d, 15) per step."""
    g, book = torch.Generator().manual_seed(seed), _codebook_5_3()
    b, horizon = action.shape[:2]

    def encode(o: torch.Tensor) -> torch.Tensor:
        return _fsq_5_3(_normed_mlp64(model.encoder, _f64(o)).reshape(model.slots, 2))

    codes = [encode(obs[i, 0]) for i in range(b)]
    consistency = reward_err = 0.0
    for t in range(horizon):
        u = _f64(torch.rand((b, model.slots, 15), generator=g))
        for i in range(b):
            x = torch.cat([codes[i].flatten(), _f64(action[i, t])])
            logits = _normed_mlp64(model.dynamics, x).reshape(model.slots, 15)
            target = encode(obs[i, t + 1])
            ce = 0.0
            for s in range(model.slots):
                k = int((book - target[s]).abs().sum(1).argmin())  # the code's row in the book
                ce += math.log(sum(math.exp(v) for v in logits[s].tolist())) - logits[s, k].item()
            err = (_normed_mlp64(model.reward_head, x)[0].item() - reward[i, t].item()) ** 2
            w = rho ** t * float(valid[i, t]) / b / horizon
            consistency += w * ce / model.slots
            reward_err += w * err
            codes[i] = book[(logits - torch.log(-torch.log(u[i]))).argmax(-1)]
    return consistency, reward_err


def _loss_case(horizon: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(4, horizon + 1, 4, generator=g) * 2
    action = torch.rand(4, horizon, 1, generator=g) * 2 - 1
    valid = torch.ones(4, horizon, dtype=torch.bool)
    valid[1, horizon - 1] = False  # one row ended its episode early
    return obs, action, torch.randn(4, horizon, generator=g), valid


@pytest.mark.unit
def test_dcwm_loss_weights_step_t_by_rho_to_the_t_by_hand():
    model, (obs, action, reward, valid) = _model(), _loss_case(horizon=3)
    out = model.loss(obs, action, reward, valid, rho=0.5,
                     generator=torch.Generator().manual_seed(7))
    consistency, reward_err = _dcwm_loss_by_hand(model, obs, action, reward, valid, 0.5, 7)
    assert abs(out["consistency"].item() - consistency) < TOL
    assert abs(out["reward"].item() - reward_err) < TOL
    assert abs(out["total"].item() - consistency - reward_err) < TOL


@pytest.mark.unit
def test_dcwm_loss_rolls_the_latent_forward_from_the_first_observation():
    """rho = 1, so only the latents fed to steps 1.. tell the rollout (samples of the dynamics)
    from re-encoding each true observation."""
    model, (obs, action, reward, valid) = _model(1), _loss_case(horizon=4, seed=1)
    out = model.loss(obs, action, reward, valid, rho=1.0,
                     generator=torch.Generator().manual_seed(3))
    consistency, reward_err = _dcwm_loss_by_hand(model, obs, action, reward, valid, 1.0, 3)
    assert abs(out["consistency"].item() - consistency) < TOL
    assert abs(out["reward"].item() - reward_err) < TOL


@pytest.mark.unit
def test_update_hands_model_and_critics_the_right_rows():
    """Row t+1 holds the action and reward of the transition t -> t+1: the model gets rows
    1..H of actions and rewards, the critic the first transition; steps after a new episode
    starts are masked."""
    agent = make_learner(SPEC, _cfg("dcmpc.nstep=1"), seed=0)
    length = agent.cfg.dcmpc.horizon + 1
    b = 2
    batch = {"obs": torch.arange(length, dtype=torch.float32).repeat(b, 1)[..., None]
             .expand(-1, -1, 4).contiguous(),
             "action": torch.arange(length, dtype=torch.float32).repeat(b, 1)[..., None] / 10,
             "reward": torch.arange(length, dtype=torch.float32).repeat(b, 1) * 10,
             "is_first": torch.zeros(b, length, dtype=torch.bool),
             "is_last": torch.zeros(b, length, dtype=torch.bool),
             "is_terminal": torch.zeros(b, length, dtype=torch.bool)}
    batch["is_first"][1, 3] = True  # sequence 1: a new episode from row 3
    batch["is_last"][1, 2] = True
    seen = {}
    real_loss = agent.model.loss

    def loss(obs, action, reward, valid, *args):
        seen.update(obs=obs, action=action, reward=reward, valid=valid)
        return real_loss(obs, action, reward, valid, *args)

    def critic_update(z, action, reward, discount, next_z, weight):
        seen.update(critic_action=action, critic_reward=reward, discount=discount,
                    weight=weight, z=z, next_z=next_z)
        return {}

    agent.model.loss, agent.critics.update = loss, critic_update
    logs = agent.update(batch)
    assert set(logs) == {"dcmpc_consistency", "dcmpc_reward_mse", "dcmpc_explore_std",
                         "dcmpc_codebook_usage", "dcmpc_latent_rank"}
    with torch.no_grad():  # the critics see row 0 and the row reached, through the new encoder
        assert torch.equal(seen["z"], agent.model.encode(batch["obs"][:, 0]))
        assert torch.equal(seen["next_z"], agent.model.encode(batch["obs"][:, 1]))
    assert agent.updates == 1
    agent.update(batch)
    assert agent.updates == 2
    assert torch.equal(seen["action"][0, :, 0], torch.arange(1, length) / 10)
    assert torch.equal(seen["reward"][0], torch.arange(1, length) * 10.0)
    assert seen["valid"][0].all()
    assert seen["valid"][1].tolist() == [True, True, False, False, False]
    assert torch.equal(seen["critic_action"][:, 0], torch.full((b,), 0.1))
    assert torch.equal(seen["critic_reward"], torch.full((b,), 10.0))
    assert torch.allclose(seen["discount"], torch.full((b,), 0.99))


# ---- n-step targets and the TD3 critics -------------------------------------------------------
def _critic_discount(*overrides: str) -> torch.Tensor:
    """The discount DC-MPC's update hands its critics on two 6-row sequences, no ends."""
    agent = make_learner(SPEC, _cfg(*overrides), seed=0)
    length = agent.cfg.dcmpc.horizon + 1
    batch = {"obs": torch.randn(2, length, 4, generator=torch.Generator().manual_seed(0)),
             "action": torch.zeros(2, length, 1), "reward": torch.ones(2, length),
             **{k: torch.zeros(2, length, dtype=torch.bool)
                for k in ("is_first", "is_last", "is_terminal")}}
    seen = {}
    agent.critics.update = lambda z, action, reward, discount, next_z, weight: (
        seen.update(discount=discount) or {})
    agent.update(batch)
    return seen["discount"]


@pytest.mark.unit
def test_the_one_step_discount_is_gamma_or_one_as_the_authors_code():
    assert torch.allclose(_critic_discount("dcmpc.nstep=1"), torch.full((2,), 0.99))
    assert torch.equal(_critic_discount("dcmpc.nstep=1", "dcmpc.one_step_discount=one"),
                       torch.ones(2))
    # n-step targets keep gamma^n either way (the authors' buffer applies it there)
    assert torch.allclose(_critic_discount("dcmpc.nstep=2", "dcmpc.one_step_discount=one"),
                          torch.full((2,), 0.99 ** 2))


@pytest.mark.unit
@pytest.mark.parametrize("mode", ["independent", "shared"])
def test_the_prior_sequences_noise_is_drawn_per_sequence_or_shared_per_env(mode):
    """shared (the authors' code): an env's prior sequences are copies; independent: each
    draws its own noise; envs differ either way."""
    agent = make_learner(SPEC, _cfg("planner.prior_samples=4", f"dcmpc.prior_noise={mode}"),
                       seed=0)
    with torch.no_grad():
        code = agent.model.encode(torch.randn(2, 4, generator=torch.Generator().manual_seed(1)))
        seqs = agent._prior_sequences(code, 0.5)
    assert seqs.shape == (2, 4, agent.cfg.planner.horizon, 1)
    copies = all(torch.equal(seqs[b, 0], seqs[b, p]) for b in range(2) for p in range(4))
    assert copies == (mode == "shared")
    assert not torch.equal(seqs[0, 0], seqs[1, 0])


@pytest.mark.unit
def test_codebook_usage_is_the_mean_fraction_of_codes_each_slot_uses():
    from mbrl_ray.world_models.dcwm import codebook_usage
    indices = torch.tensor([[0, 3], [0, 4], [1, 3], [0, 3]])  # slot 0: {0, 1}; slot 1: {3, 4}
    assert codebook_usage(indices, 5) == pytest.approx((2 / 5 + 2 / 5) / 2)
    assert codebook_usage(torch.tensor([[0, 1], [2, 1]]), 4) == pytest.approx((2 / 4 + 1 / 4) / 2)


@pytest.mark.unit
def test_latent_rank_counts_directions_above_the_tolerance_of_the_largest_possible():
    from mbrl_ray.world_models.dcwm import latent_rank
    basis = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))[0]
    # 6 rows in 8 dims spanning 3 directions with singular values 5, 1, 0.2, and one at 1e-3
    # (below the 1e-2 tolerance): rank 3 of a possible 6
    scales = torch.tensor([5.0, 1.0, 0.2, 1e-3])
    latents = (torch.linalg.qr(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)))[0]
               * scales) @ basis[:4]
    assert latent_rank(latents) == pytest.approx(3 / 6)
    assert latent_rank(latents, tol=1e-4) == pytest.approx(4 / 6)
    assert latent_rank(latents.T) == pytest.approx(3 / 6)  # (8, 6): min(N, dim) is 6 again


@pytest.mark.unit
def test_the_latent_rank_is_measured_on_the_first_update_and_every_hundredth():
    from mbrl_ray.agents import dcmpc
    agent = make_learner(SPEC, _cfg(), seed=0)
    length = agent.cfg.dcmpc.horizon + 1
    batch = {"obs": torch.randn(8, length, 4, generator=torch.Generator().manual_seed(0)),
             "action": torch.zeros(8, length, 1), "reward": torch.ones(8, length),
             **{k: torch.zeros(8, length, dtype=torch.bool)
                for k in ("is_first", "is_last", "is_terminal")}}
    seen = []
    real = dcmpc.latent_rank
    dcmpc.latent_rank = lambda z: seen.append(z.shape) or real(z)
    try:
        ranks = [agent.update(batch)["dcmpc_latent_rank"] for _ in range(3)]
        agent.updates = dcmpc.RANK_EVERY
        agent.update(batch)
    finally:
        dcmpc.latent_rank = real
    assert seen == [(8, agent.model.code_dim)] * 2  # update 0 and update 100, not 1 or 2
    assert ranks[0] == ranks[1] == ranks[2] > 0


@pytest.mark.unit
def test_a_reward_range_squashes_the_reward_head_by_tanh_into_it():
    free = DCWM(4, 1, 3, [5, 3], 16, 16, 1)
    bounded = DCWM(4, 1, 3, [5, 3], 16, 16, 1, reward_range=(0.0, 2.0))
    bounded.load_state_dict(free.state_dict())
    code, action = free.encode(torch.randn(5, 4)), torch.randn(5, 1)
    raw = free.reward(code, action)
    assert torch.allclose(bounded.reward(code, action), 1.0 + torch.tanh(raw))
    shifted = DCWM(4, 1, 3, [5, 3], 16, 16, 1, reward_range=(-3.0, 1.0))
    shifted.load_state_dict(free.state_dict())
    assert torch.allclose(shifted.reward(code, action), -1.0 + 2.0 * torch.tanh(raw))
    agent = make_learner(SPEC, _cfg("dcmpc.reward_range=[0,2]"), seed=0)
    assert agent.model.reward_range == (0.0, 2.0)


def _sequence(rewards, last=(), terminal=(), first=()):
    n = len(rewards)
    d = {"reward": torch.tensor(rewards, dtype=torch.float32)[None],
         "obs": torch.arange(n, dtype=torch.float32)[None, :, None],
         "is_first": torch.zeros(1, n, dtype=torch.bool),
         "is_last": torch.zeros(1, n, dtype=torch.bool),
         "is_terminal": torch.zeros(1, n, dtype=torch.bool)}
    for key, rows in (("is_last", last), ("is_terminal", terminal), ("is_first", first)):
        d[key][0, list(rows)] = True
    return d


@pytest.mark.unit
def test_nstep_target_parts_by_hand():
    full = nstep_target_parts(_sequence([0, 1, 2, 4, 8]), 3, 0.5)
    assert full["reward"].item() == 1 + 0.5 * 2 + 0.25 * 4
    assert full["discount"].item() == 0.125 and full["next_obs"].item() == 3
    ended = nstep_target_parts(_sequence([0, 1, 2, 4, 8], last=[2], terminal=[2]), 3, 0.5)
    assert ended["reward"].item() == 2 and ended["discount"].item() == 0
    assert ended["next_obs"].item() == 2 and ended["valid"].item()
    truncated = nstep_target_parts(_sequence([0, 1, 2, 4, 8], last=[2]), 3, 0.5)
    assert truncated["discount"].item() == 0.25  # bootstraps from the last observation
    crossing = nstep_target_parts(_sequence([0, 1, 2, 4, 8], last=[0], first=[1]), 3, 0.5)
    assert not crossing["valid"].item()  # row 0 ended an episode: no transition from it
    # the same sequences as one batch: each row as alone (an episode ends in some rows only)
    rows = [_sequence([0, 1, 2, 4, 8]), _sequence([0, 1, 2, 4, 8], last=[2], terminal=[2]),
            _sequence([0, 1, 2, 4, 8], last=[2])]
    batch = nstep_target_parts({k: torch.cat([r[k] for r in rows]) for k in rows[0]}, 3, 0.5)
    for key in ("reward", "discount", "next_obs"):
        assert batch[key].flatten().tolist() == [full[key].item(), ended[key].item(),
                                                 truncated[key].item()], key


def _critics(**overrides):
    cfg = _cfg(*(f"dcmpc.{k}={v}" for k, v in overrides.items()))
    return TD3Critics(3, 1, cfg.dcmpc, torch.device("cpu"), seed=0)


@pytest.mark.unit
def test_td_target_is_reward_plus_discounted_min_of_two_random_target_qs():
    critics = _critics(num_q=5)
    with torch.no_grad():  # target Q member e returns the constant c_e
        critics.q_target.head.weight.zero_()
        constants = torch.tensor([3.0, -1.0, 2.0, 5.0, 0.5])
        critics.q_target.head.bias.copy_(constants[:, None, None])
    reward, discount = torch.tensor([1.0, 2.0]), torch.tensor([0.9, 0.0])
    twin = torch.Generator().set_state(critics.generator.get_state())
    torch.randn((2, 1), generator=twin)  # the smoothing noise is drawn first
    pair = torch.randperm(5, generator=twin)[:2]
    y = critics.target(reward, discount, torch.randn(2, 3))
    assert torch.allclose(y, reward + discount * constants[pair].min())


@pytest.mark.unit
def test_td_target_by_hand_smoothed_clipped_min_of_two_and_terminal_rows():
    """y = r + discount x min(Q'_1, Q'_2)(z', clamp(pi'(z') + clip(0.5 eps, +-0.3), -1, 1)) from
    the target networks (the online ones moved away), eps the generator's first normal draw;
    discount 0 on terminal rows."""
    critics = _critics(num_q=2, policy_noise=0.5, noise_clip=0.3)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in [*critics.actor.parameters(), *critics.q.parameters()]:
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    n = 64
    reward, next_z = torch.randn(n, generator=g), torch.randn(n, 3, generator=g)
    discount = torch.where(torch.arange(n) % 4 == 0, 0.0, 0.99)  # every 4th row terminal
    twin = torch.Generator().set_state(critics.generator.get_state())
    noise = (0.5 * _f64(torch.randn((n, 1), generator=twin))).clamp(-0.3, 0.3)
    y = critics.target(reward, discount, next_z)
    z = _f64(next_z)
    greedy = _actor64(critics.actor_target, z)
    q = torch.stack([_q64(critics.q_target, e, z, (greedy + noise).clamp(-1, 1)) for e in (0, 1)])
    expected = _f64(reward) + _f64(discount) * q.min(0).values
    assert (_f64(y) - expected).abs().max() < TOL
    # the case tells the variants apart: the clip binds, the members disagree, noise matters
    assert (noise.abs() == 0.3).any() and ((q[0] - q[1]).abs() > 100 * TOL).any()
    unsmoothed = _q64(critics.q_target, 0, z, greedy)
    assert ((unsmoothed - q[0]).abs() > 100 * TOL).any()


@pytest.mark.unit
def test_actor_steps_every_second_critic_step():
    """The actor moves on every second critic step only, leaves Q alone (a twin that skips that
    actor step ends with the same Q), and moves uphill on the mean of the two Qs: its change of
    action has a positive inner product with dQ/da (autograd on the float64 reference) and Q at
    its actions rises."""
    critics = _critics(actor_every=2, num_q=2)
    g = torch.Generator().manual_seed(0)
    z, a = torch.randn(32, 3, generator=g), torch.rand(32, 1, generator=g) * 2 - 1
    args = (z, a, torch.randn(32, generator=g), torch.full((32,), 0.99),
            torch.randn(32, 3, generator=g), torch.ones(32))
    before = [p.clone() for p in critics.actor.parameters()]
    assert "dcmpc_actor_loss" not in critics.update(*args)
    assert all(torch.equal(b, p) for b, p in zip(before, critics.actor.parameters()))
    still = _critics(actor_every=3, num_q=2)  # the same state; no actor step on its next step
    still.load_state_dict(copy.deepcopy(critics.state_dict()))  # Adam's step tensor: not shared
    assert "dcmpc_actor_loss" in critics.update(*args)
    assert "dcmpc_actor_loss" not in still.update(*args)
    assert all(torch.equal(p, s) for p, s in zip(critics.q.parameters(), still.q.parameters()))
    z64 = _f64(z)
    old = _actor64(still.actor, z64).requires_grad_(True)
    q_old = (_q64(critics.q, 0, z64, old) + _q64(critics.q, 1, z64, old)) / 2
    (dq_da,) = torch.autograd.grad(q_old.sum(), old)
    new = _actor64(critics.actor, z64)
    assert ((new - old.detach()) * dq_da).sum() > 0
    q_new = (_q64(critics.q, 0, z64, new) + _q64(critics.q, 1, z64, new)) / 2
    assert q_new.mean() > q_old.mean()


# ---- planning on expected codes ---------------------------------------------------------------
class SignModel(DCWM):
    """Hand-built: a positive action moves every slot to the code (1, 1), a negative one to
    (-1, -1); the reward is the mean of the code (so +1 per step after a positive action)."""

    def next_logits(self, code, action):
        logits = torch.full((*code.shape[:-1], self.slots, self.fsq.size), -1e4)
        logits[..., -1] = torch.where(action > 0, 0.0, -1e4)   # index 14 = (1, 1)
        logits[..., 0] = torch.where(action > 0, -1e4, 0.0)    # index 0 = (-1, -1)
        return logits

    def reward(self, code, action):
        return code.mean(-1)


@pytest.mark.unit
def test_mppi_on_expected_codes_picks_the_better_of_two_actions():
    cfg = _cfg("planner.prior_samples=0", "planner.horizon=3")
    agent = DCMPCAgent(SPEC, cfg)
    agent.model = SignModel(4, 1, cfg.dcmpc.latent_dim, [5, 3], 16, 16, 1)
    with torch.no_grad():
        for q in (agent.critics.q.head,):
            q.weight.zero_()
            q.bias.zero_()
    agent.fitted = True
    obs = np.zeros((3, 4), np.float32)
    code = agent.model.encode(torch.as_tensor(obs))
    up, down = torch.ones(3, 1, 3, 1), -torch.ones(3, 1, 3, 1)
    mean0 = code.mean(-1)
    assert torch.allclose(agent.plan_values(code, up)[:, 0], mean0 + 0.9 * 1 + 0.81 * 1)
    assert torch.allclose(agent.plan_values(code, down)[:, 0], mean0 - 0.9 - 0.81)
    action, _ = agent.act(obs, agent.initial_state(3), explore=False)
    assert (action > 0).all()
    agent.cfg.dcmpc.explore_std_start = agent.cfg.dcmpc.explore_std_end = 5.0
    wide = np.zeros((64, 4), np.float32)
    noisy, _ = agent.act(wide, agent.initial_state(64), explore=True)
    assert (noisy < 0).mean() > 0.2  # the exploration noise, only when exploring
    calm, _ = agent.act(wide, agent.initial_state(64), explore=False)
    assert (calm > 0).all()


def _plan_value_by_hand(agent: DCMPCAgent, code: torch.Tensor, actions: torch.Tensor,
                        pair: list[int]) -> float:
    """sum_h rho^h r(z_h, a_h) + rho^H mean over the pair of Q(z_H, pi(z_H)) for one sequence
    (H, A), each slot of z_{h+1} the expected code sum_i p_i c^(i) of its categorical."""
    model, critics, rho = agent.model, agent.critics, agent.cfg.planner.discount
    z, ret = _f64(code), 0.0
    for h in range(len(actions)):
        x = torch.cat([z, _f64(actions[h])])
        ret += rho ** h * _normed_mlp64(model.reward_head, x)[0].item()
        logits = _normed_mlp64(model.dynamics, x).reshape(model.slots, 15)
        p = torch.exp(logits - logits.max(-1, keepdim=True).values)
        z = (p / p.sum(-1, keepdim=True) @ _codebook_5_3()).flatten()
    a = _actor64(critics.actor, z[None])
    value = sum(_q64(critics.q, e, z[None], a).item() for e in pair) / 2
    return ret + rho ** len(actions) * value


@pytest.mark.unit
def test_plan_values_on_expected_codes_and_the_critics_value_by_hand():
    """A random DCWM (its categoricals far from one-hot, so the expected code is not the most
    likely one) and critics (Q heads not zero, so rho^H and the horizon value count)."""
    agent = DCMPCAgent(SPEC, _cfg(), seed=1)
    with torch.no_grad():  # members apart by 0.5 each: the pair drawn counts too
        agent.critics.q.head.bias.copy_(1.0 + 0.5 * torch.arange(
            float(agent.critics.q.members))[:, None, None])
    g = torch.Generator().manual_seed(0)
    code = agent.model.encode(torch.randn(2, 4, generator=g))
    actions = torch.rand(2, 3, 3, 1, generator=g) * 2 - 1
    twin = torch.Generator().set_state(agent.generator.get_state())
    pair = torch.randperm(agent.cfg.dcmpc.num_q, generator=twin)[:2].tolist()
    values = agent.plan_values(code, actions)
    for b in range(2):
        for n in range(3):
            expected = _plan_value_by_hand(agent, code[b], actions[b, n], pair)
            assert abs(values[b, n].item() - expected) < TOL
    with torch.no_grad():  # far from one-hot: the most likely code is not the expected one
        probs = torch.softmax(agent.model.next_logits(code, actions[:, 0, 0]), -1)
    assert probs.max() < 0.5


class TwoModeModel(DCWM):
    """Hand-built: after a positive action each slot is the code (1, 1) with probability 0.4,
    else (0, 0) (expected code (0.4, 0.4), most likely (0, 0)); after a negative one surely
    (0.5, 0). The reward is the mean of the code: 0.4 after a positive action in expectation,
    0.25 after a negative one, 0 at the most likely code after a positive one."""

    def next_logits(self, code, action):
        logits = torch.full((*code.shape[:-1], self.slots, self.fsq.size), -1e4)
        up = action > 0
        logits[..., 14] = torch.where(up, math.log(0.4), -1e4)  # index 14 = (1, 1)
        logits[..., 7] = torch.where(up, math.log(0.6), -1e4)   # index 7 = (0, 0)
        logits[..., 8] = torch.where(up, -1e4, 0.0)             # index 8 = (0.5, 0)
        return logits

    def reward(self, code, action):
        return code.mean(-1)


@pytest.mark.unit
def test_mppi_plans_on_the_expected_code_not_the_most_likely_one():
    cfg = _cfg("planner.prior_samples=0", "planner.horizon=3")
    agent = DCMPCAgent(SPEC, cfg)
    agent.model = TwoModeModel(4, 1, cfg.dcmpc.latent_dim, [5, 3], 16, 16, 1)
    with torch.no_grad():
        agent.critics.q.head.weight.zero_()
        agent.critics.q.head.bias.zero_()
    agent.fitted = True
    obs = np.zeros((3, 4), np.float32)
    code = agent.model.encode(torch.as_tensor(obs))
    up, down = torch.ones(3, 1, 3, 1), -torch.ones(3, 1, 3, 1)
    start = code.mean(-1)
    assert torch.allclose(agent.plan_values(code, up)[:, 0], start + (0.9 + 0.81) * 0.4)
    assert torch.allclose(agent.plan_values(code, down)[:, 0], start + (0.9 + 0.81) * 0.25)
    action, _ = agent.act(obs, agent.initial_state(3), explore=False)
    assert (action > 0).all()


@pytest.mark.unit
def test_exploration_noise_decays_and_only_applies_when_exploring():
    cfg = _cfg("dcmpc.explore_std_start=1.0", "dcmpc.explore_std_end=0.1",
               "dcmpc.explore_decay_updates=100")
    agent = make_actor(SPEC, cfg)
    assert agent.explore_std == 1.0
    agent.updates = 50
    assert abs(agent.explore_std - 0.55) < 1e-9
    agent.updates = 10_000
    assert abs(agent.explore_std - 0.1) < 1e-9


@pytest.mark.unit
def test_exploration_noise_decay_can_start_at_the_end_of_pretraining():
    """pretrain_end (the authors' code): the pre-training updates do not count, so the noise
    still starts at its start value after them; first_update counts them."""
    base = ("dcmpc.explore_std_start=1.0", "dcmpc.explore_std_end=0.1",
            "dcmpc.explore_decay_updates=100", "train.schedule=async",
            "train.pretrain_updates=40")
    later = make_actor(SPEC, _cfg(*base, "dcmpc.explore_decay_from=pretrain_end"))
    first = make_actor(SPEC, _cfg(*base))
    for agent in (later, first):
        agent.updates = 40
    assert later.explore_std == 1.0
    assert abs(first.explore_std - 0.64) < 1e-9
    later.updates = 90
    assert abs(later.explore_std - 0.55) < 1e-9
    later.updates = 140
    assert abs(later.explore_std - 0.1) < 1e-9


@pytest.mark.unit
def test_weights_and_state_round_trip():
    cfg = _cfg()
    learner = make_learner(SPEC, cfg, seed=3)
    assert learner.inference_weights() is None  # acts at random until the first update
    rng = np.random.default_rng(0)
    b, length = 64, cfg.dcmpc.horizon + 1
    batch = {"obs": rng.normal(size=(b, length, 4)).astype(np.float32),
             "action": rng.uniform(-1, 1, (b, length, 1)).astype(np.float32),
             "reward": rng.normal(size=(b, length)).astype(np.float32),
             "is_first": np.zeros((b, length), bool), "is_last": np.zeros((b, length), bool),
             "is_terminal": np.zeros((b, length), bool)}
    losses = learner.update(batch)
    assert all(np.isfinite(v) for v in losses.values())
    worker = make_actor(SPEC, cfg, seed=9)
    worker.load_inference_weights(learner.inference_weights())
    obs = rng.normal(size=(2, 4)).astype(np.float32)
    assert torch.equal(worker.model.encode(torch.as_tensor(obs)),
                       learner.model.encode(torch.as_tensor(obs)))
    copy = make_learner(SPEC, cfg, seed=5)
    copy.load_state_dict(learner.state_dict())
    assert copy.updates == 1 and torch.equal(copy.critics.q.head.weight,
                                             learner.critics.q.head.weight)


@pytest.mark.unit
def test_same_seed_same_initial_weights():
    a, b = make_learner(SPEC, _cfg(), seed=4), make_learner(SPEC, _cfg(), seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


# ---- through the topology ---------------------------------------------------------------------
@pytest.mark.ray
def test_dcmpc_runs_through_the_async_topology_across_a_resume(ray_session, tmp_path):
    """dcmpc-debug for 600 steps (random steps and pre-training included), resumed to 800: the
    learner's update count goes on across the resume (the exploration noise keeps decaying)
    and the model's and critics' losses reach TensorBoard. Learning: the slow test below."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.distributed.driver import Driver

    quiet = {"printer": lambda *a, **k: None}
    short = ["train.eval_every=0", "train.eval_episodes=2"]
    first = Driver(_cfg("train.steps=600", *short), tmp_path / "d", **quiet).run()
    assert first.env_steps == 600
    result = Driver(_cfg("train.steps=800", *short), tmp_path / "d", resume=True, **quiet).run()
    assert result.env_steps == 800
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    assert {"losses/dcmpc_consistency", "losses/dcmpc_critic_loss",
            "losses/dcmpc_actor_loss"} <= set(acc.Tags()["scalars"])
    explore = acc.Scalars("losses/dcmpc_explore_std")
    assert explore[-1].step > 600 and explore[-1].value < min(e.value for e in explore
                                                              if e.step <= 600)


@pytest.mark.slow
def test_dcmpc_learns_the_dummy_env_through_the_async_topology_across_a_resume(ray_session,
                                                                               tmp_path):
    """dcmpc-debug for 1,200 steps, then resumed from its checkpoint to 2,400 (about a minute
    and a half): the learner's full state (world model, critics, targets, optimisers, update
    count) comes back, and the run ends above what random play reaches on the dummy env
    (about 0 on average, best of 200 episodes 33; the optimum is about 49)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.distributed.driver import Driver

    quiet = {"printer": lambda *a, **k: None}
    first = Driver(_cfg("train.steps=1200"), tmp_path / "dcmpc", **quiet).run()
    assert first.env_steps == 1200
    result = Driver(_cfg("train.steps=2400"), tmp_path / "dcmpc", resume=True, **quiet).run()
    assert result.env_steps == 2400
    assert result.final_eval_return >= 35.0
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"losses/dcmpc_consistency", "losses/dcmpc_critic_loss",
            "losses/dcmpc_actor_loss"} <= tags
    explore = [e.value for e in acc.Scalars("losses/dcmpc_explore_std")]
    assert explore[-1] < explore[0]  # the update count went on across the resume


@pytest.mark.unit
def test_fast_mish_matches_torch_in_value_and_gradient():
    from mbrl_ray.nn import mish

    x = torch.linspace(-40, 40, 4001, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(mish(x), F.mish(x), atol=1e-12)
    (grad,) = torch.autograd.grad(mish(x).sum(), x)
    (expected,) = torch.autograd.grad(F.mish(x).sum(), x)
    assert torch.allclose(grad, expected, atol=1e-10)
    xf = torch.linspace(-40, 40, 4001)
    assert torch.allclose(mish(xf), F.mish(xf), atol=2e-6)
