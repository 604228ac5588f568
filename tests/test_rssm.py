"""The RSSM world model's pieces against closed forms and hand-built cases: shapes, the KL
term, resets at episode starts, filtering on a worker as in training, lambda-returns, latent
CEM and the actor's gradient through imagined dynamics."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.agents.planet import latent_returns
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.critics.imagination import ImaginedActorCritic, lambda_returns
from mbrl_ray.envs import EnvSpec
from mbrl_ray.planners import make_planner
from mbrl_ray.world_models.latents import CategoricalLatent, GaussianLatent
from mbrl_ray.world_models.rssm import RSSM, Belief
from mbrl_ray.world_models.rssm_world_model import RSSMWorldModel

STATE = EnvSpec.state(3, 2)
PIXELS = EnvSpec((3, 32, 32), "uint8", 2)


def _cfg(preset="planet-debug", *overrides):
    return apply_overrides(load_preset(preset), list(overrides))


def _batch(spec, b=4, t=7, seed=0, first_at=()):
    rng = np.random.default_rng(seed)
    if spec.kind == "pixels":
        obs = rng.integers(0, 256, (b, t, *spec.obs_shape)).astype(np.uint8)
    else:
        obs = rng.normal(size=(b, t, *spec.obs_shape)).astype(np.float32)
    is_first = np.zeros((b, t), bool)
    is_first[:, 0] = True
    is_first[:, list(first_at)] = True
    batch = {"obs": obs, "action": rng.uniform(-1, 1, (b, t, spec.act_dim)).astype(np.float32),
             "reward": rng.normal(size=(b, t)).astype(np.float32), "is_first": is_first,
             "is_terminal": np.zeros((b, t), bool)}
    return {k: torch.as_tensor(v) for k, v in batch.items()}


# ---- shapes -----------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("spec", [STATE, PIXELS], ids=["mlp", "conv"])
@pytest.mark.parametrize("latent", ["gaussian", "categorical"])
def test_shapes_through_a_sequence(spec, latent):
    c = _cfg("planet-debug", f"rssm.latent={latent}", "rssm.stoch=4", "rssm.classes=5",
             "rssm.cnn_depth=4", "rssm.cnn_layers=3").rssm
    model = RSSMWorldModel(spec, c, image_size=32)
    batch = _batch(spec)
    post, prior = model.observe(batch["obs"], batch["action"], batch["is_first"])
    stoch = 4 if latent == "gaussian" else 20
    assert post.h.shape == (4, 7, c.deter) and post.s.shape == (4, 7, stoch)
    assert prior.shape == post.stats.shape == (4, 7, model.rssm.latent.stats_dim)
    assert model.decoder(post.feat).shape == (4, 7, *spec.obs_shape)
    assert model.reward(post.feat).shape == model.continues(post.feat).shape == (4, 7)
    loss, logs, _ = model.loss(batch)
    loss.backward()
    assert math.isfinite(loss.item()) and {"rssm_recon", "rssm_kl", "rssm_reward_mse"} <= set(logs)
    assert all(p.grad is not None for p in model.encoder.parameters())


# ---- the KL term ------------------------------------------------------------------------------
def _gaussian_stats(mean, std, min_std=0.1):
    raw = torch.log(torch.expm1(torch.as_tensor(std - min_std)))  # softplus^-1
    return torch.cat([torch.as_tensor(mean), raw.expand_as(torch.as_tensor(mean))], -1)


@pytest.mark.unit
def test_gaussian_kl_matches_the_closed_form():
    lat = GaussianLatent(3)
    post, prior = _gaussian_stats([0.5, -1.0, 0.0], 0.4), _gaussian_stats([0.0, 0.0, 1.0], 1.1)
    expected = sum(math.log(1.1 / 0.4) + (0.4 ** 2 + d ** 2) / (2 * 1.1 ** 2) - 0.5
                   for d in (0.5, -1.0, -1.0))
    assert lat.kl(post, prior).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.unit
def test_free_nats_stop_the_gradient_below_them_and_pass_it_above():
    rssm = RSSM(act_dim=1, embed_dim=1, stoch=3)
    prior = _gaussian_stats([0.0, 0.0, 0.0], 1.0)
    near = _gaussian_stats([0.3, 0.0, 0.0], 1.0).requires_grad_(True)  # KL 0.045
    term, kl = rssm.kl_loss(near, prior, free_nats=1.0)
    term.backward()
    assert term.item() == 1.0 and kl.item() == pytest.approx(0.045, rel=1e-4)
    assert near.grad.abs().max() == 0
    far = _gaussian_stats([3.0, 0.0, 0.0], 1.0).requires_grad_(True)  # KL 4.5
    term, kl = rssm.kl_loss(far, prior, free_nats=1.0)
    term.backward()
    assert term.item() == pytest.approx(4.5, rel=1e-4) and far.grad[0].item() > 0


@pytest.mark.unit
def test_kl_balancing_splits_the_gradient_between_prior_and_posterior():
    rssm = RSSM(act_dim=1, embed_dim=1, stoch=3)
    grads = {}
    for balance in (0.0, 0.8):
        post = _gaussian_stats([2.0, 1.0, 0.0], 0.5).requires_grad_(True)
        prior = _gaussian_stats([0.0, 0.0, 0.0], 1.0).requires_grad_(True)
        term, kl = rssm.kl_loss(post, prior, free_nats=0.0, balance=balance)
        term.backward()
        assert term.item() == pytest.approx(kl.item(), rel=1e-5)  # same value either way
        grads[balance] = (post.grad.clone(), prior.grad.clone())
    assert torch.allclose(grads[0.8][1], 0.8 * grads[0.0][1], atol=1e-6)
    assert torch.allclose(grads[0.8][0], 0.2 * grads[0.0][0], atol=1e-6)


@pytest.mark.unit
def test_categorical_latent_draws_one_hots_in_proportion_and_passes_gradients():
    lat = CategoricalLatent(variables=2, classes=4)
    logits = torch.tensor([[2.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    g = torch.Generator().manual_seed(0)
    draws = lat.sample(logits.expand(20_000, -1), g)
    hard = draws.detach().round().unflatten(-1, (2, 4))  # one-hot up to float rounding
    assert torch.equal(hard.sum(-1), torch.ones(20_000, 2))
    assert torch.allclose(hard.mean(0), lat.probs(logits.detach())[0], atol=0.015)
    (draws * torch.arange(8.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    assert lat.kl(logits, logits).abs().max() < 1e-6


FREE_NATS = 1.0
GRAD_ATOL = 1e-6  # float32 gradients of terms of order 1 vs float64 closed forms
KL_REL = 1e-5  # float32 KL sums of a few terms vs float64
# Four steps x two dims, (mean, std) of posterior and prior: steps 0 and 2 lie within the free
# nats (KL 0.09, 0.25), steps 1 and 3 beyond them (KL 2.7, 2.4); their mean (1.34) is above
# too, so clamping the mean instead of each step passes gradient to every step (term 1.34, not
# 1.76).
POST = [((0.3, -0.2), (0.9, 1.1)), ((2.0, -1.0), (0.5, 0.7)),
        ((0.5, 0.4), (0.8, 1.0)), ((-1.2, 0.9), (0.6, 1.3))]
PRIOR = [((0.0, 0.0), (1.0, 1.0)), ((0.5, 0.5), (1.2, 0.9)),
         ((0.0, 0.0), (1.0, 1.0)), ((0.3, -0.2), (0.8, 1.1))]


def _stats(rows: list, min_std: float = 0.1) -> torch.Tensor:
    """(steps, 2 x dims) Gaussian statistics (mean, softplus^-1(std - min_std)) of rows of
    (means, stds)."""
    return torch.tensor([[*m, *(math.log(math.expm1(s - min_std)) for s in sd)]
                         for m, sd in rows])


def _softplus_std(raw: float, min_std: float = 0.1) -> tuple[float, float]:
    """std = softplus(raw) + min_std and d std / d raw = sigmoid(raw), in float64."""
    return math.log1p(math.exp(raw)) + min_std, 1.0 / (1.0 + math.exp(-raw))


def _kl_and_grads(post: list[float], prior: list[float]) -> tuple[float, list, list]:
    """KL(post || prior) of one step's diagonal Gaussians and its gradients w.r.t. both
    statistics rows (means, raw stds), from the closed form's derivatives."""
    dims = len(post) // 2
    kl, g_post, g_prior = 0.0, [0.0] * (2 * dims), [0.0] * (2 * dims)
    for d in range(dims):
        m1, m2 = post[d], prior[d]
        (s1, ds1), (s2, ds2) = _softplus_std(post[dims + d]), _softplus_std(prior[dims + d])
        kl += math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
        g_post[d], g_prior[d] = (m1 - m2) / s2 ** 2, -(m1 - m2) / s2 ** 2
        g_post[dims + d] = (-1 / s1 + s1 / s2 ** 2) * ds1
        g_prior[dims + d] = (1 / s2 - (s1 ** 2 + (m1 - m2) ** 2) / s2 ** 3) * ds2
    return kl, g_post, g_prior


@pytest.mark.unit
@pytest.mark.parametrize("balance, scale, dyn, rep", [(0.0, 1.0, 1.0, 1.0),
                                                      (5 / 6, 0.6, 0.5, 0.1)],
                         ids=["plain", "dreamerv3-balance"])
def test_free_nats_clamp_each_step_and_kl_balancing_weights_each_side(balance, scale, dyn, rep):
    """The KL term is mean_t max(KL_t, free nats) (not max(mean_t KL_t, free nats)): steps
    within the free nats get no gradient, the others 1/T of theirs. Balanced, the prior's
    gradient (the posterior held fixed: DreamerV3's dynamics term) is scaled by dyn and the
    posterior's (the prior held fixed: the representation term) by rep; kl_scale 0.6 x
    balance 5/6 is DreamerV3's 0.5 dyn + 0.1 rep."""
    post, prior = _stats(POST).requires_grad_(True), _stats(PRIOR).requires_grad_(True)
    term, kl = RSSM(act_dim=1, embed_dim=1, stoch=2).kl_loss(post, prior, FREE_NATS, balance)
    (scale * term).backward()
    rows = [_kl_and_grads(p, q) for p, q in zip(post.double().tolist(), prior.double().tolist())]
    kls = [k for k, _, _ in rows]
    assert min(kls) < FREE_NATS < sum(kls) / len(kls) < max(kls)  # the case described above
    assert term.item() == pytest.approx(sum(max(k, FREE_NATS) for k in kls) / 4, rel=KL_REL)
    assert kl.item() == pytest.approx(sum(kls) / 4, rel=KL_REL)
    beyond = [float(k > FREE_NATS) for k in kls]
    want_post = torch.tensor([[rep * b / 4 * g for g in gp] for b, (_, gp, _) in zip(beyond, rows)])
    want_prior = torch.tensor([[dyn * b / 4 * g for g in gq]
                               for b, (_, _, gq) in zip(beyond, rows)])
    assert torch.allclose(post.grad.double(), want_post.double(), atol=GRAD_ATOL)
    assert torch.allclose(prior.grad.double(), want_prior.double(), atol=GRAD_ATOL)


def _mixed_probs(logits: list[float], classes: int, mix: float = 0.01) -> list[list[float]]:
    """Per variable: (1 - mix) softmax(logits) + mix / classes, in float64."""
    out = []
    for v in range(len(logits) // classes):
        row = logits[v * classes:(v + 1) * classes]
        top = max(row)
        exps = [math.exp(x - top) for x in row]
        out.append([(1 - mix) * e / sum(exps) + mix / classes for e in exps])
    return out


@pytest.mark.unit
def test_unimix_mixes_one_percent_uniform_into_every_categorical():
    """DreamerV3's unimix: probabilities 0.99 softmax + 0.01 / classes, so no class falls
    below 0.0025 of 4 even where the softmax gives it e^-30."""
    lat = CategoricalLatent(variables=2, classes=4)
    logits = torch.tensor([[30.0, 0.0, 0.0, 0.0, -5.0, 0.0, 5.0, 1.0]])
    expected = torch.tensor(_mixed_probs(logits[0].tolist(), 4), dtype=torch.float64)
    assert torch.allclose(lat.probs(logits)[0].double(), expected, atol=1e-7)
    assert lat.probs(logits).min().item() == pytest.approx(0.01 / 4, rel=1e-5)


@pytest.mark.unit
def test_categorical_kl_matches_a_hand_computed_kl_away_from_identity():
    """KL(post || prior) = sum over variables and classes of p log(p / q), both with unimix,
    on distinct, some near-one-hot, distributions (not the identity case, where every wrong
    formula gives 0 too)."""
    lat = CategoricalLatent(variables=3, classes=4)
    g = torch.Generator().manual_seed(0)
    post, prior = 3 * torch.randn(5, 12, generator=g), 3 * torch.randn(5, 12, generator=g)
    post[0, :4] = torch.tensor([12.0, 0.0, -3.0, 1.0])  # near one-hot: unimix decides its KL
    expected = []
    for p_row, q_row in zip(post.tolist(), prior.tolist()):
        p, q = _mixed_probs(p_row, 4), _mixed_probs(q_row, 4)
        expected.append(sum(pk * math.log(pk / qk) for pv, qv in zip(p, q)
                            for pk, qk in zip(pv, qv)))
    assert min(expected) > 0.5  # far from the identity
    assert lat.kl(post, prior).tolist() == pytest.approx(expected, rel=KL_REL)


@pytest.mark.unit
def test_posterior_learns_to_equal_the_prior_when_observations_carry_no_information():
    """Trained with zero free nats, a posterior that reads a constant observation gains
    nothing over the prior, so the KL goes to ~0; with informative observations (i.i.d.,
    std 5) the same model keeps the posterior well apart from the prior."""
    cfg = _cfg("planet-debug", "rssm.free_nats=0.0", "rssm.stoch=4").rssm
    kls = {}
    for informative in (False, True):
        torch.manual_seed(0)
        model = RSSMWorldModel(STATE, cfg, termination=False)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for step in range(300):
            batch = _batch(STATE, b=16, t=10, seed=step)
            # Unit-variance noise is not worth encoding under a unit-variance decoder (the
            # rate-distortion optimum is no code); noise of std 5 is (~log 5 nats a dim).
            batch["obs"] = 5 * batch["obs"] if informative else torch.zeros_like(batch["obs"])
            loss, logs, _ = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        kls[informative] = logs["rssm_kl"]
    assert kls[False] < 0.02
    assert kls[True] > 0.5


# ---- resets and filtering ---------------------------------------------------------------------
@pytest.mark.unit
def test_the_state_resets_where_is_first():
    model = RSSMWorldModel(STATE, _cfg().rssm)
    batch = _batch(STATE, b=3, t=9, first_at=[5])
    enc = model.encoder(batch["obs"])
    whole, _ = model.rssm.observe(enc, batch["action"], batch["is_first"], sample=False)
    tail, _ = model.rssm.observe(enc[:, 5:], batch["action"][:, 5:], batch["is_first"][:, 5:],
                                 sample=False)
    assert torch.allclose(whole.h[:, 5:], tail.h, atol=1e-6)
    assert torch.allclose(whole.stats[:, 5:], tail.stats, atol=1e-6)
    # ... and not without the mark: the state carried over from row 4 changes row 5
    batch["is_first"][:, 5] = False
    carried, _ = model.rssm.observe(enc, batch["action"], batch["is_first"], sample=False)
    assert not torch.allclose(carried.h[:, 5], tail.h[:, 0], atol=1e-3)


@pytest.mark.unit
def test_a_reset_mid_sequence_restarts_exactly_as_at_the_first_row():
    """Row 5 is marked is_first and holds row 0's observation, with a different non-zero
    action and a different state carried into it; rows 0 and 5 must both equal one filtering
    step from the zero state with a zero action (the state a worker restarts from), and a start
    belief passed in is forgotten at row 0, which is marked is_first too."""
    model = RSSMWorldModel(STATE, _cfg().rssm)
    batch = _batch(STATE, b=3, t=9, first_at=[5])
    batch["obs"][:, 5] = batch["obs"][:, 0]
    assert (batch["action"][:, 0] != batch["action"][:, 5]).all()  # zeroed only by the reset
    g = torch.Generator().manual_seed(1)
    dims = (model.rssm.deter, model.rssm.latent.size, model.rssm.latent.stats_dim)
    start = Belief(*(torch.randn(3, d, generator=g) for d in dims))
    with torch.no_grad():
        embed = model.encoder(batch["obs"])
        post, prior = model.rssm.observe(embed, batch["action"], batch["is_first"], start=start,
                                         sample=False)
        fresh, fresh_prior = model.rssm.obs_step(model.rssm.initial(3), torch.zeros(3, 2),
                                                 embed[:, 0], sample=False)
    for row in (0, 5):
        assert torch.allclose(post.h[:, row], fresh.h, atol=1e-6), row
        assert torch.allclose(post.stats[:, row], fresh.stats, atol=1e-6), row
        assert torch.allclose(prior[:, row], fresh_prior, atol=1e-6), row
    assert not torch.allclose(post.h[:, 4], fresh.h, atol=1e-3)  # row 5 had state to forget


@pytest.mark.unit
def test_a_worker_filters_its_observations_as_the_learner_does():
    """Acting step by step (with the contract's reset at an episode's end) draws the same
    beliefs as the learner's observe over the rows that the same steps write to replay."""
    cfg = _cfg("dreamer-debug", "rssm.explore_noise=0.0")
    learner = make_learner(STATE, cfg, seed=3)
    learner.updates = 1
    worker = make_actor(STATE, cfg, seed=3)
    worker.load_inference_weights(learner.inference_weights())
    batch = _batch(STATE, b=2, t=8, first_at=[4])
    worker.generator.manual_seed(11)
    state, hs, actions = worker.initial_state(2), [], []
    for t in range(8):
        if t and batch["is_first"][0, t]:
            state = worker.reset_state(state, np.ones(2, bool))
        action, state = worker.act(batch["obs"][:, t].numpy(), state, explore=False)
        hs.append(state["h"].clone())  # the contract's reset zeroes state rows in place
        actions.append(torch.as_tensor(action))
    # Row t's action is the one that led to o_t: the action taken at t - 1 (zero at a start).
    rows = torch.stack([torch.zeros(2, 2)] + actions[:-1], 1)
    rows[batch["is_first"]] = 0
    learner.generator.manual_seed(11)
    post, _ = learner.model.observe(batch["obs"], rows, batch["is_first"], learner.generator)
    assert torch.allclose(torch.stack(hs, 1), post.h, atol=1e-5)


@pytest.mark.unit
def test_open_loop_sees_only_the_context_and_follows_the_actions():
    """After the context rows the prediction is the prior's alone: changing later frames
    changes nothing, changing later actions changes it; the context rows are the posterior's
    reconstructions. The video strip is real | predicted | difference."""
    from mbrl_ray.world_models import open_loop

    c = _cfg("planet-debug", "rssm.cnn_depth=4", "rssm.cnn_layers=3").rssm
    model = RSSMWorldModel(PIXELS, c, image_size=32)
    batch = _batch(PIXELS, b=1, t=12)
    obs, actions = batch["obs"][0], batch["action"][0]
    actions[0] = 0.0  # the reset row
    pred = open_loop.open_loop(model, obs, actions)
    assert pred.shape == obs.shape
    other = obs.clone()
    other[open_loop.CONTEXT:] = 255 - other[open_loop.CONTEXT:]
    assert torch.equal(open_loop.open_loop(model, other, actions), pred)
    steered = actions.clone()
    steered[open_loop.CONTEXT + 1:] *= -1
    moved = open_loop.open_loop(model, obs, steered)
    assert torch.equal(moved[:open_loop.CONTEXT + 1], pred[:open_loop.CONTEXT + 1])
    assert not torch.allclose(moved[open_loop.CONTEXT + 1:], pred[open_loop.CONTEXT + 1:])
    c = open_loop.CONTEXT
    with torch.no_grad():
        post, _ = model.rssm.observe(model.encoder(obs[None, :c].float() / 255 - 0.5),
                                     actions[None, :c], batch["is_first"][:, :c], sample=False)
        assert torch.allclose(pred[:c], model.decoder(post.feat[0]), atol=1e-5)
    strip = open_loop.side_by_side(obs, pred)
    assert strip.shape == (12, 32, 96, 3) and strip.dtype == torch.uint8
    assert torch.equal(strip[..., :32, :], obs.permute(0, 2, 3, 1))


# ---- returns, planning, imagination -----------------------------------------------------------
@pytest.mark.unit
def test_lambda_returns_match_a_hand_computed_example():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[10.0], [20.0], [30.0], [40.0]])
    discounts = torch.tensor([[0.9], [0.9], [0.0]])  # the episode ends on arriving at state 3
    lam = 0.5
    r2 = 3.0 + 0.0 * (0.5 * 40 + 0.5 * 40)
    r1 = 2.0 + 0.9 * (0.5 * 30 + 0.5 * r2)
    r0 = 1.0 + 0.9 * (0.5 * 20 + 0.5 * r1)
    out = lambda_returns(rewards, values, discounts, lam)
    assert torch.allclose(out[:, 0], torch.tensor([r0, r1, r2]))
    # lam = 1: discounted sum of rewards bootstrapped at the end; lam = 0: one-step targets
    assert lambda_returns(rewards, values, torch.full((3, 1), 0.5), 1.0)[0, 0].item() == \
        pytest.approx(1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 40)
    assert torch.allclose(lambda_returns(rewards, values, torch.full((3, 1), 0.5), 0.0)[:, 0],
                          rewards[:, 0] + 0.5 * values[1:, 0])


class TwoPeaks(nn.Module):
    """A hand-built latent model: the state is the last action; reward 1 - 50 (a - 0.7)^2
    near a = 0.7 (a narrow, high peak) and 0.5 - 2 (a + 0.5)^2 near a = -0.5 (a broad, lower
    one)."""

    def img_step(self, prev, action, generator=None):
        return Belief(action, action, action)

    def reward(self, feat):
        a = feat[..., 0]
        return torch.maximum(1 - 50 * (a - 0.7) ** 2, 0.5 - 2 * (a + 0.5) ** 2)

    def continues(self, feat):
        return torch.ones(feat.shape[:-1])


@pytest.mark.unit
def test_latent_cem_finds_the_better_of_two_actions():
    cfg = _cfg("planet-debug", "planner.horizon=1", "planner.population=200",
               "planner.num_elites=20", "planner.iterations=6").planner
    planner = make_planner(cfg, act_dim=1)
    start = Belief(torch.zeros(8, 1), torch.zeros(8, 0), torch.zeros(8, 0))
    seq, _ = planner.plan(lambda a: latent_returns(TwoPeaks(), start, a),
                          planner.initial_state(8), torch.Generator().manual_seed(0))
    assert torch.allclose(seq[:, 0, 0], torch.full((8,), 0.7), atol=0.05)


class Reward_is_action(nn.Module):
    """Latent = the action taken; reward = its first component (so more is better)."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(1, 1)

    def img_step(self, prev, action, generator=None):
        return Belief(action, action, action)

    def reward(self, feat):
        return feat[..., 0]

    def continues(self, feat):
        return torch.ones(feat.shape[:-1])


@pytest.mark.unit
def test_the_actor_climbs_the_imagined_reward_through_the_dynamics():
    cfg = _cfg("dreamer-debug", "dreamer.horizon=3", "dreamer.actor_lr=0.01").dreamer
    ac = ImaginedActorCritic(feat_dim=4, act_dim=2, cfg=cfg, device=torch.device("cpu"))
    start = Belief(torch.zeros(64, 2), torch.zeros(64, 2), torch.zeros(64, 2))
    g = torch.Generator().manual_seed(0)
    model = Reward_is_action()
    before = ac.act(start.feat, explore=False)[:, 0].mean().item()
    for _ in range(100):
        ac.update(model, start, g)
    after = ac.act(torch.cat([torch.full((64, 2), 0.9)] * 2, -1), explore=False)
    assert after[:, 0].mean().item() > 0.9 > before
    assert model.unused.weight.requires_grad  # frozen only while imagining


# ---- agents -----------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("preset", ["planet-debug", "dreamer-debug"])
def test_agent_state_round_trips_and_seeds_fix_the_weights(preset):
    a, b = make_learner(STATE, _cfg(preset), seed=4), make_learner(STATE, _cfg(preset), seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
    a.update(_batch(STATE, b=16, t=16))
    b.load_state_dict(a.state_dict())
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
    assert b.updates == 1


# ---- through the topology ---------------------------------------------------------------------
@pytest.mark.ray
def test_planet_learns_the_dummy_env_through_the_async_topology(ray_session, tmp_path):
    """planet-debug, 2,400 steps (about 40 s): above what random play reaches on the dummy env
    (about 0 on average, best of 200 episodes 33; the optimum is about 49)."""
    from mbrl_ray.distributed.driver import Driver

    result = Driver(_cfg("planet-debug"), tmp_path / "planet", printer=lambda *a, **k: None).run()
    assert result.env_steps == 2400 and result.final_eval_return >= 35.0


@pytest.mark.ray
def test_dreamer_runs_through_the_async_topology_across_a_resume(ray_session, tmp_path):
    """dreamer-debug for 600 steps, resumed to 800: the world model's, actor's and critic's
    losses reach TensorBoard on both sides of the resume. Learning: the slow test below."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.distributed.driver import Driver

    quiet = {"printer": lambda *a, **k: None}
    short = ["train.eval_every=0", "train.eval_episodes=2"]
    first = Driver(_cfg("dreamer-debug", "train.steps=600", *short), tmp_path / "d",
                   **quiet).run()
    assert first.env_steps == 600
    result = Driver(_cfg("dreamer-debug", "train.steps=800", *short), tmp_path / "d",
                    resume=True, **quiet).run()
    assert result.env_steps == 800
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    for tag in ("losses/rssm_kl", "losses/dreamer_actor_loss", "losses/dreamer_critic_loss"):
        steps = [e.step for e in acc.Scalars(tag)]
        assert min(steps) <= 600 < max(steps), (tag, steps)


@pytest.mark.slow
def test_dreamer_learns_the_dummy_env_through_the_async_topology_across_a_resume(ray_session,
                                                                                 tmp_path):
    """dreamer-debug for 1,200 steps, then resumed from its checkpoint to 2,400 (about a
    minute): world model, actor, critics, optimisers and the return scale come back, and the
    run ends above random play's best on the dummy env."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.distributed.driver import Driver

    quiet = {"printer": lambda *a, **k: None}
    first = Driver(_cfg("dreamer-debug", "train.steps=1200"), tmp_path / "d", **quiet).run()
    assert first.env_steps == 1200
    result = Driver(_cfg("dreamer-debug"), tmp_path / "d", resume=True, **quiet).run()
    assert result.env_steps == 2400 and result.final_eval_return >= 35.0
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    assert {"losses/rssm_kl", "losses/rssm_recon", "losses/dreamer_actor_loss",
            "losses/dreamer_critic_loss"} <= set(acc.Tags()["scalars"])


@pytest.mark.ray
def test_a_pixel_run_shows_open_loop_predictions_in_tensorboard(ray_session, tmp_path):
    """planet-debug on dmc:cartpole-balance from 32x32 frames, 500 steps: each filmed
    evaluation once the model is trained writes eval/open_loop (real | imagined | difference,
    50 rows of the episode) to the IMAGES tab and eval/open_loop_error beside the return."""
    import io

    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.distributed.driver import Driver
    from mbrl_ray.envs import make_env
    from mbrl_ray.telemetry.video import shown_frames
    from mbrl_ray.world_models import open_loop

    cfg = _cfg("planet-debug", "env.id=dmc:cartpole-balance", "env.obs=pixels",
               "env.image_size=32", "env.action_repeat=8", "rssm.cnn_depth=4",
               "workers.envs_per_worker=1", "train.steps=500", "train.random_steps=250",
               "train.pretrain_updates=20", "train.steps_per_round=125",
               "train.updates_per_round=20", "train.eval_every=250", "train.eval_episodes=1",
               "train.video_every=1", "train.video_size=32")
    result = Driver(cfg, tmp_path / "pixels", printer=lambda *a, **k: None).run()
    acc = EventAccumulator(str(result.run_dir / "tb"), size_guidance={"images": 0})
    acc.Reload()
    strips = acc.Images("eval/open_loop")
    errors = [e.value for e in acc.Scalars("eval/open_loop_error")]
    assert strips and len(errors) == len(strips) and all(0 < e < 1 for e in errors)
    gif = strips[-1].encoded_image_string
    assert Image.open(io.BytesIO(gif)).size == (3 * 32, 32)
    fps = make_env("dmc:cartpole-balance").metadata["render_fps"] / 8  # action_repeat=8
    assert shown_frames(gif, fps) == open_loop.LENGTH
    assert len(acc.Images("eval/video")) >= len(strips)
