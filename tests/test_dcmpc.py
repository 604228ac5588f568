"""DC-MPC's pieces against closed forms and hand-built cases, and DC-MPC through the topology."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mbrl_ray.agents import DCMPCAgent, make_agent
from mbrl_ray.agents.dcmpc import nstep_target_parts
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.critics.td3 import TD3Critics
from mbrl_ray.envs import EnvSpec
from mbrl_ray.world_models.dcwm import DCWM
from mbrl_ray.world_models.fsq import FSQ, cross_entropy, gumbel_softmax_straight_through

SPEC = EnvSpec.state(4, 1)


def _cfg(*overrides):
    return apply_overrides(load_preset("dcmpc-debug"), list(overrides))


# ---- FSQ --------------------------------------------------------------------------------------
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


def test_gradient_flows_through_the_straight_through_rounding():
    fsq = FSQ([5, 3])
    z = torch.randn(64, 2, requires_grad=True)
    fsq(z).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    (fsq.bound(z2) / fsq.half_width).sum().backward()  # the same without rounding
    assert torch.allclose(z.grad, z2.grad) and (z.grad.abs() > 0).all()


def test_expected_code_is_the_codebook_mean_under_uniform_logits():
    fsq = FSQ([5, 3])
    expected = fsq.expected(torch.zeros(7, fsq.size))
    assert torch.allclose(expected, fsq.codebook.mean(0).expand(7, -1), atol=1e-6)
    peaked = torch.full((fsq.size,), -1e4)
    peaked[11] = 0
    assert torch.allclose(fsq.expected(peaked), fsq.codebook[11])


def test_cross_entropy_and_softmax_helpers_match_torch():
    logits = torch.randn(6, 9, 15)
    target = torch.randint(0, 15, (6, 9))
    ours = cross_entropy(logits, target)
    theirs = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
    assert torch.allclose(ours.flatten(), theirs, atol=1e-5)


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


# ---- world model ------------------------------------------------------------------------------
def _model(seed=0):
    from mbrl_ray import seeding
    return seeding.init_weights(DCWM(4, 1, 6, [5, 3], 32, 32, 2), seeding.init_generator(seed))


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


def test_update_hands_model_and_critics_the_right_rows():
    """Row t+1 holds the action and reward of the transition t -> t+1: the model gets rows
    1..H of actions and rewards, the critic the first transition; steps after a new episode
    starts are masked."""
    agent = make_agent(SPEC, _cfg("dcmpc.nstep=1"), seed=0)
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
                    weight=weight)
        return {}

    agent.model.loss, agent.critics.update = loss, critic_update
    agent.update(batch)
    assert torch.equal(seen["action"][0, :, 0], torch.arange(1, length) / 10)
    assert torch.equal(seen["reward"][0], torch.arange(1, length) * 10.0)
    assert seen["valid"][0].all()
    assert seen["valid"][1].tolist() == [True, True, False, False, False]
    assert torch.equal(seen["critic_action"][:, 0], torch.full((b,), 0.1))
    assert torch.equal(seen["critic_reward"], torch.full((b,), 10.0))
    assert torch.allclose(seen["discount"], torch.full((b,), 0.99))


# ---- n-step targets and the TD3 critics -------------------------------------------------------
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


def _critics(**overrides):
    cfg = _cfg(*(f"dcmpc.{k}={v}" for k, v in overrides.items()))
    return TD3Critics(3, 1, cfg.dcmpc, torch.device("cpu"), seed=0)


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


def test_target_action_is_smoothed_by_clipped_noise():
    critics = _critics(policy_noise=100.0, noise_clip=0.3)
    seen = []
    critics.q_target.min_of_two = lambda z, a, g: seen.append(a) or torch.zeros(len(a))
    z = torch.randn(256, 3)
    critics.target(torch.zeros(256), torch.ones(256), z)
    offset = seen[0] - critics.actor_target(z).detach()
    assert (offset.abs() <= 0.3 + 1e-6).all() and (seen[0].abs() <= 1).all()
    # noise of std 100 almost always lands beyond the clip
    assert ((offset.abs() - 0.3).abs() < 1e-5).float().mean() > 0.9


def test_actor_steps_every_second_critic_step():
    critics = _critics(actor_every=2)
    z, a = torch.randn(32, 3), torch.rand(32, 1) * 2 - 1
    args = (z, a, torch.randn(32), torch.full((32,), 0.99), torch.randn(32, 3), torch.ones(32))
    before = [p.clone() for p in critics.actor.parameters()]
    first = critics.update(*args)
    assert "dcmpc_actor_loss" not in first
    assert all(torch.equal(b, p) for b, p in zip(before, critics.actor.parameters()))
    q_before = [p.clone() for p in critics.q.parameters()]
    critics.q_opt.step = lambda: None  # from here on only the actor's step may move weights
    assert "dcmpc_actor_loss" in critics.update(*args)
    assert not all(torch.equal(b, p) for b, p in zip(before, critics.actor.parameters()))
    assert all(torch.equal(b, p) for b, p in zip(q_before, critics.q.parameters()))


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


def test_mppi_on_expected_codes_picks_the_better_of_two_actions():
    cfg = _cfg("planner.prior_samples=0", "planner.horizon=3")
    agent = DCMPCAgent(SPEC, cfg, trainable=False)
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


def test_exploration_noise_decays_and_only_applies_when_exploring():
    cfg = _cfg("dcmpc.explore_std_start=1.0", "dcmpc.explore_std_end=0.1",
               "dcmpc.explore_decay_updates=100")
    agent = make_agent(SPEC, cfg, trainable=False)
    assert agent.explore_std == 1.0
    agent.updates = 50
    assert abs(agent.explore_std - 0.55) < 1e-9
    agent.updates = 10_000
    assert abs(agent.explore_std - 0.1) < 1e-9


def test_weights_and_state_round_trip():
    cfg = _cfg()
    learner = make_agent(SPEC, cfg, seed=3)
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
    worker = make_agent(SPEC, cfg, seed=9, trainable=False)
    worker.load_inference_weights(learner.inference_weights())
    obs = rng.normal(size=(2, 4)).astype(np.float32)
    assert torch.equal(worker.model.encode(torch.as_tensor(obs)),
                       learner.model.encode(torch.as_tensor(obs)))
    copy = make_agent(SPEC, cfg, seed=5)
    copy.load_state_dict(learner.state_dict())
    assert copy.updates == 1 and torch.equal(copy.critics.q.head.weight,
                                             learner.critics.q.head.weight)


def test_same_seed_same_initial_weights():
    a, b = make_agent(SPEC, _cfg(), seed=4), make_agent(SPEC, _cfg(), seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


# ---- through the topology ---------------------------------------------------------------------
@pytest.mark.ray
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


def test_fast_mish_matches_torch_in_value_and_gradient():
    from mbrl_ray.critics.nets import mish

    x = torch.linspace(-40, 40, 4001, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(mish(x), F.mish(x), atol=1e-12)
    (grad,) = torch.autograd.grad(mish(x).sum(), x)
    (expected,) = torch.autograd.grad(F.mish(x).sum(), x)
    assert torch.allclose(grad, expected, atol=1e-10)
    xf = torch.linspace(-40, 40, 4001)
    assert torch.allclose(mish(xf), F.mish(xf), atol=2e-6)
