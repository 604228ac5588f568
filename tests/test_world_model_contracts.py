"""Contracts of the world models' small pieces against independent float64 computations written
here: FSQ's checks, softmax and cross-entropy at large logits, the Gumbel-softmax sampler's
temperature (its gradient: the forward one-hot does not depend on it) and its noise where the
uniform draw is exactly 0; the RSSM world model's loss term by term (reward and continue only on
rows that arrive by a transition, KL free nats and balancing), its imagined step and continue
probabilities; the latents' draws and modes; the observation nets' layers and defaults; the
open-loop video strip and prediction error; DCWM's encoder and expected next latent. Seeded
generators must make every draw independent of torch's global seed."""
from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray import seeding
from mbrl_ray.world_models import open_loop
from mbrl_ray.world_models.dcwm import DCWM
from mbrl_ray.world_models.fsq import FSQ, cross_entropy, gumbel_softmax_straight_through, softmax
from mbrl_ray.world_models.latents import CategoricalLatent, GaussianLatent
from mbrl_ray.world_models.observation_nets import (ConvDecoder, ConvEncoder, MLPDecoder,
                                                    MLPEncoder, preprocess)
from mbrl_ray.world_models.rssm import Belief
from mbrl_ray.world_models.rssm_world_model import RSSMWorldModel
from test_dcmpc import (_codebook_5_3, _f64, _fsq_5_3, _layer_norm64, _loss_case, _mish64,
                        _model, _normed_mlp64)
from test_rssm import PIXELS, STATE, _batch, _cfg

pytestmark = pytest.mark.unit

F32_ATOL = 1e-5  # float32 code vs float64 recomputation, values of order 1 through a few layers
LOSS_REL = 1e-5  # float32 loss terms (means of a few dozen terms of order 1) vs float64
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-7  # float32 gradients vs float64 autograd / closed forms
ONE_HOT_ATOL = 1e-6  # straight-through outputs: one-hot plus (soft - soft) rounding
DCWM_ATOL = 1e-4  # DCWM's normed MLPs in float32 vs float64 (as test_dcmpc's TOL)
FREE_NATS = 0.3  # between the smallest and largest step KL of the seeded model below (~0.25-0.37)
KL_BALANCE, KL_SCALE = 0.8, 0.5


# ---- float64 references ------------------------------------------------------------------------
def _elu64(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x, torch.expm1(x))


def _elu_mlp64(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Linear (ELU Linear)* from net's parameters, in float64."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for k, linear in enumerate(linears):
        x = x @ _f64(linear.weight).T + _f64(linear.bias)
        if k < len(linears) - 1:
            x = _elu64(x)
    return x


def _softplus64(x: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(x))


def _gaussian64(stats: torch.Tensor, min_std: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, softplus(raw) + min_std) of (..., 2 dims) statistics."""
    dims = stats.shape[-1] // 2
    return stats[..., :dims], _softplus64(stats[..., dims:]) + min_std


def _gaussian_kl64(post: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """KL(post || prior) of diagonal Gaussians, summed over dims (the closed form)."""
    (m1, s1), (m2, s2) = _gaussian64(post), _gaussian64(prior)
    return (torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5).sum(-1)


def _softmax64(x: torch.Tensor) -> torch.Tensor:
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def _gumbel64(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The Gumbel noise -log(-log u) of the uniforms a generator seeded `seed` draws first."""
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).double()
    return -torch.log(-torch.log(u))


def _relaxed_grad64(logits: torch.Tensor, noise: torch.Tensor, weights: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """d/dlogits sum(w * softmax((logits + noise) / T)) = soft (w - <soft, w>) / T."""
    soft = _softmax64((logits + noise) / temperature)
    return soft * (weights - (soft * weights).sum(-1, keepdim=True)) / temperature


def _rssm_model(termination: bool = True, seed: int = 0, *overrides: str) -> RSSMWorldModel:
    """planet-debug's RSSM on 3-D states, 2-D actions, KL balanced and scaled, seeded weights."""
    cfg = _cfg("planet-debug", f"rssm.free_nats={FREE_NATS}", f"rssm.kl_balance={KL_BALANCE}",
               f"rssm.kl_scale={KL_SCALE}", *overrides).rssm
    return seeding.init_weights(RSSMWorldModel(STATE, cfg, termination=termination),
                                seeding.init_generator(seed))


def _under_two_global_seeds(draw: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """draw() run after torch.manual_seed(1) and after torch.manual_seed(2)."""
    out = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        out.append(draw())
    return tuple(out)


# ---- FSQ ----------------------------------------------------------------------------------------
def test_fsq_refuses_a_level_below_2_naming_the_levels() -> None:
    """A one-value channel carries nothing: the config error names the levels given."""
    with pytest.raises(ValueError, match=re.escape("FSQ levels [5, 1, 3]: each must be >= 2")):
        FSQ([5, 1, 3])


def test_fsq_keeps_nothing_in_checkpoints() -> None:
    """The codebook and its helpers follow from the levels and are not learnt: neither FSQ's
    nor DCWM's state dict holds them, so a checkpoint carries only learnt weights."""
    assert dict(FSQ([8, 5, 5, 5]).state_dict()) == {}
    keys = DCWM(4, 1, 6, [5, 3], 32, 32, 2).state_dict().keys()
    assert keys and not [k for k in keys if k.startswith("fsq.")]


# Rows at very different scales (dynamics logits grow during training): a shift by the global
# instead of each row's maximum underflows the low rows (0 / 0), adding the maximum overflows.
BIG_LOGITS = [[100.0, 98.5, 95.0, 99.0], [-100.0, -99.0, -103.0, -101.5], [0.5, -0.2, 1.0, 0.3]]


def test_softmax_and_cross_entropy_are_exact_for_rows_at_any_scale() -> None:
    """Per-row softmax and -log softmax[target] on rows around +100, -100 and 0 match the
    float64 forms (each row shifted by its own maximum)."""
    logits = torch.tensor(BIG_LOGITS)
    target = torch.tensor([2, 1, 3])
    want = _softmax64(logits.double())
    assert torch.allclose(softmax(logits).double(), want, atol=F32_ATOL)
    want_ce = [-torch.log(want[i, t]).item() for i, t in enumerate(target.tolist())]
    assert cross_entropy(logits, target).tolist() == pytest.approx(want_ce, rel=LOSS_REL)


ZERO_SEED, ZERO_AT = 1, 2_753_120  # torch's CPU generator seeded 1 draws exactly 0.0 here


def test_gumbel_noise_stays_finite_where_the_uniform_draw_is_exactly_0() -> None:
    """u = 0 happens (2^-24 per draw: every few thousand updates of a large batch); the noise
    -log(-log u) is taken at u >= 1e-10, so a class of probability 1 - 1e-13 is still drawn
    rather than made impossible by -inf noise."""
    g = torch.Generator().manual_seed(ZERO_SEED)
    torch.rand(ZERO_AT, generator=g)
    state = g.get_state()
    assert torch.rand(1, generator=g).item() == 0.0  # the case this test is about
    g.set_state(state)
    logits = torch.tensor([30.0, 0.0, 0.0, 0.0])
    sample = gumbel_softmax_straight_through(logits, 1.0, g)
    assert torch.allclose(sample, torch.tensor([1.0, 0.0, 0.0, 0.0]), atol=ONE_HOT_ATOL)


@pytest.mark.parametrize("temperature", [None, 0.5], ids=["default-1", "0.5"])
def test_gumbel_softmax_is_the_argmax_forward_and_the_tempered_softmax_backward(
        temperature: float | None) -> None:
    """Forward: the one-hot argmax(logits + Gumbel noise) whatever the temperature; backward:
    the gradient of softmax((logits + noise) / T), T = 1 when not given."""
    g = torch.Generator().manual_seed(3)
    logits = (1.5 * torch.randn(3, 5, generator=g)).requires_grad_(True)
    weights = torch.randn(3, 5, generator=g)
    gen = torch.Generator().manual_seed(4)
    sample = (gumbel_softmax_straight_through(logits, generator=gen) if temperature is None
              else gumbel_softmax_straight_through(logits, temperature, gen))
    (sample * weights).sum().backward()
    noise = _gumbel64((3, 5), seed=4)
    hard = F.one_hot((_f64(logits) + noise).argmax(-1), 5).double()
    assert torch.allclose(sample.detach().double(), hard, atol=ONE_HOT_ATOL)
    want = _relaxed_grad64(_f64(logits), noise, weights.double(), temperature or 1.0)
    assert torch.allclose(logits.grad.double(), want, rtol=GRAD_RTOL, atol=GRAD_ATOL)


@pytest.mark.parametrize("sampler", ["fsq", "dcwm"])
def test_straight_through_code_samples_default_to_temperature_1(sampler: str) -> None:
    """FSQ.sample_straight_through and DCWM.sampled_next without a temperature: forward the
    codebook row of argmax(logits + noise) per slot, backward softmax((logits + noise) / 1)'s
    gradient of the code (v_i = <w, code_i>), for 2 rows x 6 slots of FSQ [5, 3] codes."""
    g = torch.Generator().manual_seed(5)
    logits = (1.5 * torch.randn(2, 6, 15, generator=g)).requires_grad_(True)
    weights = torch.randn(2, 6, 2, generator=g)
    gen = torch.Generator().manual_seed(6)
    if sampler == "fsq":
        code = FSQ([5, 3]).sample_straight_through(logits, generator=gen)
    else:
        code = _model().sampled_next(logits, generator=gen).unflatten(-1, (6, 2))
    (code * weights).sum().backward()
    book, noise = _codebook_5_3(), _gumbel64((2, 6, 15), seed=6)
    assert torch.allclose(code.detach().double(), book[(_f64(logits) + noise).argmax(-1)],
                          atol=ONE_HOT_ATOL)
    per_code = weights.double() @ book.T  # (2, 6, 15): <w, code_i>
    want = _relaxed_grad64(_f64(logits), noise, per_code, 1.0)
    assert torch.allclose(logits.grad.double(), want, rtol=GRAD_RTOL, atol=GRAD_ATOL)


def _dcwm_grads(temperature: float | None) -> list[torch.Tensor]:
    model, (obs, action, reward, valid) = _model(), _loss_case(horizon=3)
    gen = torch.Generator().manual_seed(7)
    out = (model.loss(obs, action, reward, valid, 0.9, generator=gen) if temperature is None
           else model.loss(obs, action, reward, valid, 0.9, temperature, gen))
    out["total"].backward()
    return [p.grad.clone() for p in model.dynamics.parameters()]


def test_dcwm_loss_rolls_out_at_temperature_1_by_default() -> None:
    """The rollout's straight-through samples pass gradient at T = 1 unless told otherwise
    (the value is the same at any T: only the gradient of steps 1.. tells)."""
    default, one, two = _dcwm_grads(None), _dcwm_grads(1.0), _dcwm_grads(2.0)
    assert all(torch.equal(a, b) for a, b in zip(default, one))
    assert not all(torch.allclose(a, b) for a, b in zip(one, two))  # T shows in the gradient


# ---- DCWM ---------------------------------------------------------------------------------------
def test_dcwm_encoder_has_one_hidden_layer_and_codes_flat_rows() -> None:
    """encode(obs) for (N, D) rows = FSQ(W2 mish(LN(W1 obs + b1)) + b2) flattened to (N, d*b):
    one hidden layer of encoder_hidden (DC-MPC's encoder)."""
    model = _model()
    obs = 2 * torch.randn(4, 4, generator=torch.Generator().manual_seed(8))
    first, norm, last = model.encoder[0], model.encoder[1], model.encoder[-1]
    x = _f64(obs) @ _f64(first.weight).T + _f64(first.bias)
    x = _mish64(_layer_norm64(x) * _f64(norm.weight) + _f64(norm.bias))
    z = (x @ _f64(last.weight).T + _f64(last.bias)).reshape(4, 6, 2)
    assert torch.equal(model.encode(obs).double(), _fsq_5_3(z).reshape(4, 12))


def test_expected_next_is_the_softmax_mean_code_per_slot_for_flat_rows() -> None:
    """Planning's next latent for (N, d*b) codes: per slot sum_i softmax(logits)_i code_i,
    flattened to (N, d*b)."""
    model = _model()
    g = torch.Generator().manual_seed(9)
    code = _codebook_5_3()[torch.randint(0, 15, (4, 6), generator=g)].reshape(4, 12).float()
    action = torch.rand(4, 1, generator=g) * 2 - 1
    logits = _normed_mlp64(model.dynamics, torch.cat([_f64(code), _f64(action)], -1))
    want = (_softmax64(logits.reshape(4, 6, 15)) @ _codebook_5_3()).reshape(4, 12)
    assert torch.allclose(model.expected_next(code, action).double(), want, atol=DCWM_ATOL)


# ---- RSSM world model: the loss term by term -----------------------------------------------------
def _terminal_batch() -> dict[str, torch.Tensor]:
    """3 sequences of 6 rows (obs dim 3 != 6 rows), an episode start at row 3 and terminal rows
    at (0, 2) and (2, 5)."""
    batch = _batch(STATE, b=3, t=6, seed=1, first_at=[3])
    batch["is_terminal"][0, 2] = batch["is_terminal"][2, 5] = True
    return batch


def _loss_by_hand(model: RSSMWorldModel, batch: dict, post: Belief) -> dict[str, float]:
    """The negative ELBO's terms from the posterior the loss returns, in float64: half squared
    reconstruction error summed over obs dims and averaged over rows; half squared reward
    error and continue BCE (target 1 - is_terminal) averaged over rows not is_first; the KL
    mean_t max(KL_t, free nats) (free nats per step) weighted by kl_scale."""
    feat, h, stats = _f64(post.feat), _f64(post.h), _f64(post.stats)
    recon = 0.5 * (_elu_mlp64(model.decoder.net, feat) - batch["obs"].double()).pow(2).sum(-1)
    reward = _elu_mlp64(model.reward_head, feat)[..., 0]
    cont = _elu_mlp64(model.continue_head, feat)[..., 0]
    kl = _gaussian_kl64(stats, _elu_mlp64(model.rssm.prior_net, h))
    sq, bce = [], []
    for i in range(h.shape[0]):
        for t in range(h.shape[1]):
            if batch["is_first"][i, t]:
                continue
            y, c = 1.0 - float(batch["is_terminal"][i, t]), cont[i, t]
            sq.append((reward[i, t] - float(batch["reward"][i, t])).item() ** 2)
            bce.append((y * _softplus64(-c) + (1 - y) * _softplus64(c)).item())
    kl_term = kl.clamp_min(FREE_NATS).mean().item()
    out = {"rssm_recon": recon.mean().item(), "rssm_reward_mse": sum(sq) / len(sq),
           "rssm_kl": kl.mean().item(), "rssm_continue_bce": sum(bce) / len(bce)}
    out["total"] = (out["rssm_recon"] + 0.5 * out["rssm_reward_mse"] + KL_SCALE * kl_term
                    + out["rssm_continue_bce"])
    out["kl_min"], out["kl_max"] = kl.min().item(), kl.max().item()
    return out


def test_rssm_loss_terms_by_hand_with_a_reset_and_terminals_mid_sequence() -> None:
    """Every logged term and the total against the float64 forms: rewards and continues count
    on the 12 rows that arrive by a transition, not on the 6 is_first rows; terminal rows
    target continue 0; free nats (0.3) clamp the steps below them, not kl_balance (0.8)."""
    model, batch = _rssm_model(), _terminal_batch()
    total, logs, post = model.loss(batch, torch.Generator().manual_seed(2))
    want = _loss_by_hand(model, batch, post)
    assert want["kl_min"] < FREE_NATS < want["kl_max"]  # the clamp acts on some steps only
    assert set(logs) == {"rssm_recon", "rssm_reward_mse", "rssm_kl", "rssm_continue_bce"}
    for key, value in logs.items():
        assert value == pytest.approx(want[key], rel=LOSS_REL), key
    assert total.item() == pytest.approx(want["total"], rel=LOSS_REL)


def test_rssm_loss_weighs_its_reward_term_by_reward_weight() -> None:
    """PlaNet's code weighs the reward term 10: the total grows by 9 x the half squared error,
    every logged term unchanged."""
    batch = _terminal_batch()
    plain = _rssm_model().loss(batch, torch.Generator().manual_seed(2))
    heavy = _rssm_model(True, 0, "rssm.reward_weight=10").loss(batch,
                                                                torch.Generator().manual_seed(2))
    assert heavy[1] == plain[1]
    assert heavy[0].item() == pytest.approx(
        plain[0].item() + 9 * 0.5 * plain[1]["rssm_reward_mse"], rel=LOSS_REL)


def test_five_bit_frames_are_dequantised_by_noise_in_training_and_its_mean_when_acting() -> None:
    """PlaNet's 5-bit frames: level floor(v / 8) of 32, (level + u) / 32 - 0.5 with u ~ U[0, 1)
    in training, u = 0.5 when acting; 8 bits keep v / 255 - 0.5."""
    frames = torch.tensor([0, 7, 8, 100, 200, 255], dtype=torch.uint8)
    levels = [0, 0, 1, 12, 25, 31]
    acting = preprocess(frames, bits=5)
    assert acting.tolist() == pytest.approx([(lv + 0.5) / 32 - 0.5 for lv in levels])
    noisy = preprocess(frames.repeat(200), bits=5, generator=torch.Generator().manual_seed(0))
    low = torch.tensor([lv / 32 - 0.5 for lv in levels]).repeat(200)
    offset = (noisy - low) * 32
    assert offset.min().item() >= 0 and offset.max().item() < 1
    assert 0.45 < offset.mean().item() < 0.55 and offset.std().item() > 0.25  # uniform draws
    assert preprocess(frames).tolist() == pytest.approx([v / 255 - 0.5 for v in frames.tolist()])


def test_the_world_models_loss_reconstructs_the_noisy_frames_it_encoded() -> None:
    """At 5 bits the loss draws the dequantisation noise first (from its generator), then
    filters those inputs; its reconstruction target is the same noisy frames."""
    cfg = _cfg("planet-debug", "rssm.bit_depth=5", "rssm.cnn_layers=2", "rssm.cnn_depth=4").rssm
    model = seeding.init_weights(RSSMWorldModel(PIXELS, cfg, image_size=32),
                                 seeding.init_generator(0))
    batch = {k: torch.as_tensor(v) for k, v in _batch(PIXELS, b=2, t=3, seed=5).items()}
    _, logs, _ = model.loss(batch, torch.Generator().manual_seed(6))
    g = torch.Generator().manual_seed(6)
    inputs = model.inputs(batch["obs"], g)
    post, _ = model.rssm.observe(model.encoder(inputs), batch["action"].float(),
                                 batch["is_first"], generator=g)
    recon = 0.5 * (model.decoder(post.feat) - inputs).pow(2).flatten(2).sum(-1).mean()
    assert logs["rssm_recon"] == pytest.approx(recon.item(), rel=LOSS_REL)
    quantised = model.inputs(batch["obs"])  # acting: the bins' centres
    assert not torch.allclose(inputs, quantised) and (inputs - quantised).abs().max() < 1 / 64


def test_rssm_loss_averages_reward_and_continue_over_arriving_rows_even_one() -> None:
    """A batch where one row arrives by a transition: its errors count in full (divided by 1,
    not by any floor above 1); where none arrives, reward and continue terms are 0."""
    model, batch = _rssm_model(), _batch(STATE, b=2, t=3, seed=3)
    batch["is_first"][:] = True
    batch["is_first"][1, 2] = False
    batch["is_terminal"][1, 2] = True
    _, logs, post = model.loss(batch, torch.Generator().manual_seed(4))
    feat = _f64(post.feat[1, 2])
    reward = _elu_mlp64(model.reward_head, feat)[0].item()
    cont = _elu_mlp64(model.continue_head, feat)[0]
    assert logs["rssm_reward_mse"] == pytest.approx(
        (reward - batch["reward"][1, 2].item()) ** 2, rel=LOSS_REL)
    assert logs["rssm_continue_bce"] == pytest.approx(_softplus64(cont).item(), rel=LOSS_REL)
    batch["is_first"][1, 2] = True
    _, logs, _ = model.loss(batch, torch.Generator().manual_seed(4))
    assert logs["rssm_reward_mse"] == 0.0 and logs["rssm_continue_bce"] == 0.0


def test_kl_balancing_gives_the_prior_net_balance_times_the_kl_gradient() -> None:
    """The prior net is trained by the KL term alone, through DreamerV2's balance: its
    gradient is kl_scale x 0.8 x d mean_t max(KL_t, free nats) / d theta_prior (the posterior
    held fixed), recomputed by float64 autograd from the prior net's weights."""
    model, batch = _rssm_model(), _terminal_batch()
    total, _, post = model.loss(batch, torch.Generator().manual_seed(2))
    total.backward()
    params = [p.detach().double().requires_grad_(True) for p in model.rssm.prior_net.parameters()]
    w1, b1, w2, b2 = params
    prior = _elu64(_f64(post.h) @ w1.T + b1) @ w2.T + b2
    kl = _gaussian_kl64(_f64(post.stats), prior)
    want = torch.autograd.grad(KL_SCALE * KL_BALANCE * kl.clamp_min(FREE_NATS).mean(), params)
    for p, w in zip(model.rssm.prior_net.parameters(), want):
        assert torch.allclose(p.grad.double(), w, rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_rssm_loss_and_imagined_steps_depend_only_on_the_generator_passed() -> None:
    """Learner updates and imagination are reproducible from their own generator: the same
    seeded generator gives the same loss, posterior and imagined latents under two different
    global seeds."""
    model, batch = _rssm_model(), _terminal_batch()
    prev = model.rssm.initial(3)

    def draw() -> torch.Tensor:
        with torch.no_grad():
            loss, _, post = model.loss(batch, torch.Generator().manual_seed(5))
            step = model.img_step(prev, batch["action"][:, 1], torch.Generator().manual_seed(5))
        return torch.cat([loss[None], post.s.flatten(), step.s.flatten()])

    first, second = _under_two_global_seeds(draw)
    assert torch.equal(first, second)


def _gru64(model: RSSMWorldModel, prev: Belief, action: torch.Tensor) -> torch.Tensor:
    """h_t = GRU(h_{t-1}, ELU(W [s_{t-1}, a_{t-1}] + b)): DreamerV2's layer-normed GRU with the
    update gate biased by -1, in float64."""
    rssm = model.rssm
    x = _elu64(torch.cat([_f64(prev.s), _f64(action)], -1) @ _f64(rssm.img_in[0].weight).T
               + _f64(rssm.img_in[0].bias))
    h = _f64(prev.h)
    y = torch.cat([x, h], -1) @ _f64(rssm.gru.linear.weight).T
    y = _layer_norm64(y) * _f64(rssm.gru.norm.weight) + _f64(rssm.gru.norm.bias)
    reset, cand, update = y.chunk(3, -1)
    cand = torch.tanh(torch.sigmoid(reset) * cand)
    update = torch.sigmoid(update - 1)
    return update * cand + (1 - update) * h


@pytest.mark.parametrize("caller", ["world_model", "rssm"])
def test_an_imagined_step_draws_from_the_prior_with_the_given_generator(caller: str) -> None:
    """img_step (the world model's, and the RSSM's without `sample`): h from the GRU, stats =
    prior_net(h), s = mean + std x the passed generator's normal draws (a sample, not the
    mode), on a non-zero previous belief."""
    model = _rssm_model()
    g = torch.Generator().manual_seed(12)
    dims = (model.rssm.deter, model.rssm.latent.size, model.rssm.latent.stats_dim)
    prev = Belief(*(torch.randn(4, d, generator=g) for d in dims))
    action = torch.rand(4, 2, generator=g) * 2 - 1
    step = model.img_step if caller == "world_model" else model.rssm.img_step
    torch.manual_seed(123)  # a global stream unlike the passed generator's
    with torch.no_grad():
        out = step(prev, action, torch.Generator().manual_seed(7))
    h = _gru64(model, prev, action)
    stats = _elu_mlp64(model.rssm.prior_net, h)
    mean, std = _gaussian64(stats)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7)).double()
    assert torch.allclose(out.h.double(), h, atol=F32_ATOL)
    assert torch.allclose(out.stats.double(), stats, atol=F32_ATOL)
    assert torch.allclose(out.s.double(), mean + std * noise, atol=F32_ATOL)


def test_continue_probabilities_are_the_heads_sigmoid_or_1_without_a_head() -> None:
    """continues(feat) over (B, T) = (2, 3) features: sigmoid of the continue head; a model
    without termination continues with probability 1 at every (b, t)."""
    feat = torch.randn(2, 3, 40, generator=torch.Generator().manual_seed(13))
    model = _rssm_model()
    want = torch.sigmoid(_elu_mlp64(model.continue_head, _f64(feat))[..., 0])
    assert torch.allclose(model.continues(feat).double(), want, atol=F32_ATOL)
    assert torch.equal(_rssm_model(termination=False).continues(feat), torch.ones(2, 3))


# ---- latents ------------------------------------------------------------------------------------
def test_gaussian_latent_draws_mean_plus_std_noise_and_its_mode_is_the_mean() -> None:
    """The reparameterised draw is mean + (softplus(raw) + min_std) x the generator's standard
    normal draws (so seeded runs repeat); the mode is the mean."""
    lat = GaussianLatent(4, min_std=0.1)
    stats = 2 * torch.randn(3, 8, generator=torch.Generator().manual_seed(14))
    mean, std = _gaussian64(_f64(stats))
    noise = torch.randn(3, 4, generator=torch.Generator().manual_seed(15)).double()
    draw = lat.sample(stats, torch.Generator().manual_seed(15))
    assert torch.allclose(draw.double(), mean + std * noise, atol=F32_ATOL)
    assert torch.equal(lat.mode(stats).double(), mean)


def test_categorical_mode_is_the_one_hot_of_each_variables_most_likely_class() -> None:
    """mode: per variable the one-hot of its largest logit (unimix keeps the order),
    flattened, in the logits' dtype; 3 variables of 4 classes, rows with different winners."""
    lat = CategoricalLatent(variables=3, classes=4)
    logits = torch.tensor([[0.3, 2.0, -1.0, 0.5, -2.0, -0.5, -3.0, -0.6, 1.0, 0.9, 0.8, 4.0],
                           [5.0, 0.0, 0.1, 0.2, 0.0, 0.0, 0.7, 0.0, -1.0, 0.2, 0.1, -4.0]])
    want = torch.zeros(2, 12)
    for row in range(2):
        for v in range(3):
            block = logits[row, 4 * v:4 * v + 4].tolist()
            want[row, 4 * v + block.index(max(block))] = 1.0
    assert torch.equal(lat.mode(logits), want) and lat.mode(logits).dtype == logits.dtype
    assert torch.equal(lat.mode(logits[1:]), want[1:])  # no winner in the last class


def test_categorical_draws_depend_only_on_the_generator_passed() -> None:
    """Seeded categorical draws repeat under any global seed (and another generator seed
    gives other draws, so the draw is random)."""
    lat = CategoricalLatent(variables=3, classes=4)
    logits = torch.randn(200, 12, generator=torch.Generator().manual_seed(16))
    first, second = _under_two_global_seeds(
        lambda: lat.sample(logits, torch.Generator().manual_seed(17)))
    assert torch.equal(first, second)
    assert not torch.equal(first, lat.sample(logits, torch.Generator().manual_seed(18)))


def test_a_one_class_categorical_that_config_validation_admits_draws_its_only_class() -> None:
    """rssm.classes = 1 passes config validation (a positive count): every draw and the mode
    are that one class, for each variable."""
    lat = CategoricalLatent(variables=4, classes=1)
    stats = torch.randn(3, 4, generator=torch.Generator().manual_seed(21))
    assert torch.equal(lat.sample(stats, torch.Generator().manual_seed(0)), torch.ones(3, 4))
    assert torch.equal(lat.mode(stats), torch.ones(3, 4))


# ---- observation nets ---------------------------------------------------------------------------
def test_conv_nets_default_to_planets_32_64_128_256_channels() -> None:
    """Defaults depth 32, 4 layers: encoder 3 -> 32 -> 64 -> 128 -> 256, embedding 256 x 4 x 4
    of a 64x64 frame; decoder the reverse from a 256 x 4 x 4 projection to 3 channels."""
    enc = ConvEncoder(64)
    assert [(m.in_channels, m.out_channels) for m in enc.net if isinstance(m, nn.Conv2d)] == \
        [(3, 32), (32, 64), (64, 128), (128, 256)]
    assert enc.embed_dim == 256 * 4 * 4
    dec = ConvDecoder(10, 64)
    assert dec.linear.out_features == 256 * 4 * 4
    assert [(m.in_channels, m.out_channels) for m in dec.net
            if isinstance(m, nn.ConvTranspose2d)] == [(256, 128), (128, 64), (64, 32), (32, 3)]


def test_mlp_nets_default_to_two_hidden_layers_of_200() -> None:
    """Defaults hidden 200, 2 layers (rssm.mlp_hidden, rssm.mlp_layers): the encoder embeds
    into 200 numbers."""
    def shapes(net: nn.Sequential) -> list[tuple[int, int]]:
        return [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)]

    enc = MLPEncoder(5)
    assert enc.embed_dim == 200 and shapes(enc.net) == [(5, 200), (200, 200), (200, 200)]
    assert shapes(MLPDecoder(7, 5).net) == [(7, 200), (200, 200), (200, 5)]


def test_conv_decoder_is_linear_then_transposed_convs_with_elu_between_not_after() -> None:
    """depth 2, 3 layers, 16x16 frames: Linear to 8 x 2 x 2, then transposed convs (kernel 4,
    stride 2, pad 1) 8 -> 4 -> 2 -> 3 with ELU after all but the last (the mean frame is
    unbounded), for (B, T) = (2, 3) features."""
    dec = seeding.init_weights(ConvDecoder(5, 16, depth=2, layers=3), seeding.init_generator(1))
    feat = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(19))
    x = (_f64(feat).reshape(6, 5) @ _f64(dec.linear.weight).T
         + _f64(dec.linear.bias)).reshape(6, 8, 2, 2)
    convs = [m for m in dec.net if isinstance(m, nn.ConvTranspose2d)]
    for k, conv in enumerate(convs):
        x = F.conv_transpose2d(x, _f64(conv.weight), _f64(conv.bias), stride=2, padding=1)
        x = _elu64(x) if k < len(convs) - 1 else x
    out = dec(feat)
    assert out.shape == (2, 3, 3, 16, 16)
    assert torch.allclose(out.double(), x.reshape(2, 3, 3, 16, 16), atol=F32_ATOL)


# ---- open-loop video and error -------------------------------------------------------------------
def _frames_and_prediction() -> tuple[torch.Tensor, torch.Tensor]:
    """real (8, 3, 2, 3) uint8 and predicted frames in the preprocessed scale: inside
    [-0.5, 0.5] at (k + 1/4) / 255 - 1/2, and clamped at -0.9 (real odd) and 0.8 (real
    even), so that no panel value x 255 lies near a rounding tie."""
    g = torch.Generator().manual_seed(20)
    real = torch.randint(0, 256, (8, 3, 2, 3), generator=g)
    k = torch.randint(0, 255, (8, 3, 2, 3), generator=g)
    pick = torch.randint(0, 3, (8, 3, 2, 3), generator=g)
    pred = torch.where(pick == 0, (k.double() + 0.25) / 255 - 0.5,
                       torch.where(pick == 1, -0.9, 0.8))
    real = torch.where(pick == 1, real | 1, torch.where(pick == 2, real & ~1, real))
    return real.to(torch.uint8), pred.float()


def _unit_prediction64(pred: torch.Tensor) -> torch.Tensor:
    return (pred.double() + 0.5).clamp(0.0, 1.0)


def test_side_by_side_shows_real_predicted_and_half_difference_panels() -> None:
    """Each row: real | predicted (+0.5, clamped to [0, 1]) | (predicted - real + 1) / 2, as
    (T, H, 3W, 3) uint8, every pixel x 255 rounded."""
    real, pred = _frames_and_prediction()
    truth, model = real.double() / 255, _unit_prediction64(pred)
    panels = [truth, model, (model - truth + 1) / 2]
    scaled = torch.cat(panels, -1).permute(0, 2, 3, 1) * 255
    assert ((scaled - scaled.floor() - 0.5).abs() > 0.05).all()  # no ties to round
    strip = open_loop.side_by_side(real, pred)
    assert strip.shape == (8, 2, 9, 3) and strip.dtype == torch.uint8
    assert torch.equal(strip, scaled.round().to(torch.uint8))


@pytest.mark.parametrize("context", [None, 2], ids=["default-5", "2"])
def test_prediction_error_is_the_mean_squared_pixel_error_after_the_context(
        context: int | None) -> None:
    """Mean over the imagined rows (from `context`, default CONTEXT = 5) of the squared
    difference of the clamped prediction and the real frame, both in [0, 1]."""
    real, pred = _frames_and_prediction()
    start = open_loop.CONTEXT if context is None else context
    total, count = 0.0, 0
    for t in range(start, 8):
        for value, p in zip(real[t].flatten().tolist(), pred[t].double().flatten().tolist()):
            total += (min(max(p + 0.5, 0.0), 1.0) - value / 255) ** 2
            count += 1
    got = (open_loop.prediction_error(real, pred) if context is None
           else open_loop.prediction_error(real, pred, context))
    assert got == pytest.approx(total / count, rel=LOSS_REL)


def _linears(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_the_rssm_world_model_takes_every_size_from_its_config() -> None:
    """Non-default sizes everywhere: pixels 32 x 32 through 3 conv layers of depth 8 (8, 16, 32
    channels), states through 3 MLP layers of 24; the Gaussian latent's min std; reward and
    continue heads feat -> hidden -> hidden -> 1 (PlaNet's two hidden layers)."""
    from test_rssm import PIXELS
    cfg = _cfg("planet-debug", "rssm.cnn_depth=8", "rssm.cnn_layers=3", "rssm.mlp_hidden=24",
               "rssm.mlp_layers=3", "rssm.min_std=0.3", "rssm.latent=gaussian").rssm
    pixels = RSSMWorldModel(PIXELS, cfg, image_size=32, termination=True)
    convs = [m for m in pixels.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 8), (8, 16), (16, 32)]
    assert pixels.encoder.embed_dim == 32 * 4 * 4
    ups = [m for m in pixels.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels) for u in ups] == [(32, 16), (16, 8), (8, 3)]
    states = RSSMWorldModel(STATE, cfg, termination=True)
    assert _linears(states.encoder) == [(3, 24), (24, 24), (24, 24), (24, 24)]
    feat = states.rssm.feat_dim
    assert _linears(states.decoder) == [(feat, 24), (24, 24), (24, 24), (24, 3)]
    assert states.rssm.latent.min_std == 0.3
    for head in (states.reward_head, states.continue_head):
        assert _linears(head) == [(feat, cfg.hidden), (cfg.hidden, cfg.hidden), (cfg.hidden, 1)]


def test_the_initial_belief_is_zero_with_a_row_per_sequence() -> None:
    model = RSSMWorldModel(STATE, _cfg("planet-debug", "rssm.latent=gaussian").rssm)
    rssm = model.rssm
    belief = rssm.initial(3)
    assert belief.h.shape == (3, rssm.deter) and belief.s.shape == (3, rssm.latent.size)
    assert belief.stats.shape == (3, rssm.latent.stats_dim)
    assert all(not t.any() for t in (belief.h, belief.s, belief.stats))


def test_frames_are_scaled_to_minus_a_half_to_a_half() -> None:
    from mbrl_ray.world_models.observation_nets import preprocess
    frame = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(preprocess(frame), torch.tensor([-0.5, 51 / 255 - 0.5, 0.5]))
    state = torch.tensor([-3.0, 7.5], dtype=torch.float64)
    assert torch.equal(preprocess(state), state.float())


def test_a_one_layer_elu_mlp_maps_its_hidden_width_to_the_output() -> None:
    from mbrl_ray.world_models.observation_nets import elu_mlp
    assert _linears(elu_mlp(5, 2, 7, 1)) == [(5, 7), (7, 2)]


def test_categorical_draws_keep_every_class_slot_when_the_last_is_never_drawn() -> None:
    """Class 3 holds only unimix's 1 % / 4: the draws miss it, the one-hots keep 4 slots."""
    lat = CategoricalLatent(variables=3, classes=4)
    logits = torch.tensor([[9.0, 0.0, 0.0, -9.0] * 3])
    draw = lat.sample(logits, torch.Generator().manual_seed(0))
    assert draw.shape == (1, 12) and draw.reshape(3, 4)[:, 3].sum() == 0


def test_a_gaussian_latent_from_the_config_keeps_its_min_std() -> None:
    from mbrl_ray.world_models.latents import make_latent
    assert make_latent("gaussian", 4, 32, 0.3).min_std == 0.3
