"""The agent contract (agents/base.py) kept by every agent on CPU, without Ray, as the learner
and the rollout workers use it: random acting from the seed until weights arrive; a worker that
loads the learner's weights acts from them alone (two workers of one seed agree, whatever torch's
global generator holds); the explore flag; a checkpoint that continues training exactly where it
left off. tests/test_gpu.py runs the same agents on CUDA."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mbrl_ray.agents import AGENTS, AgentLearner, make_actor, make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs.batch import EnvBatch, StreamRows
from mbrl_ray.envs import env_kwargs, env_spec
from mbrl_ray.finite import check_finite
from mbrl_ray.replay import StreamStorage, all_transitions, sample

pytestmark = pytest.mark.unit

DUMMY = ["env.id=dummy"]
SMALL_FIT = ["model.max_epochs=3", "sac.updates_per_fit=5"]
CASES = {  # id: (preset, overrides): every agent, PETS with each use of its SAC
    "pets-cem": ("debug", SMALL_FIT),
    "pets-value-prior": ("debug", SMALL_FIT + ["planner.value_weight=1.0",
                                               "planner.prior_samples=4",
                                               "planner.prior_weight=0.1"]),
    "pets-smcp-lst": ("smcp-lst-pendulum", DUMMY + SMALL_FIT),
    "sac": ("sac-pendulum", DUMMY),
    "mbpo": ("mbpo-pendulum", DUMMY + SMALL_FIT + ["mbpo.updates_per_step=1",
                                                   "mbpo.rollouts_per_step=2"]),
    "dcmpc": ("dcmpc-debug", []),
    "planet": ("planet-debug", []),
    "dreamer": ("dreamer-debug", []),
    "dreamer-v1": ("dreamer-debug", ["dreamer.version=v1", "rssm.latent=gaussian",
                                    "rssm.explore_noise=0.3"]),
    "dreamer-pixels": ("dreamer-debug", ["env.obs=pixels", "env.image_size=32",
                                         "rssm.cnn_depth=8", "rssm.cnn_layers=3"]),
    "mb-mpc": ("mb-mpc-pendulum", DUMMY + ["delta.epochs=2", "planner.population=50"]),
    "mbmf": ("mbmf-pendulum", DUMMY + ["delta.epochs=2", "planner.population=50",
                                       "mbmf.imitate_from=0", "train.random_steps=0",
                                       "mbmf.epochs=2"]),
    "gps": ("gps-reacher", DUMMY + ["env.conditions=2", "gps.policy_steps=5"]),
    "gps-supervised": ("gps-reacher", DUMMY + ["env.conditions=2", "gps.policy_steps=5",
                                               "gps.policy_step=supervised"]),
    "gps-model": ("gps-reacher", DUMMY + ["env.conditions=2", "gps.policy_steps=5",
                                          "gps.dynamics=model", "delta.hidden_size=16",
                                          "delta.epochs=2", "planner.horizon=4",
                                          "planner.population=20", "planner.num_elites=4",
                                          "planner.iterations=2", "gps.ilqr_iterations=2"]),
    "pilco": ("pilco-cartpole-swingup", ["pilco.basis=8", "pilco.policy_iterations=3",
                                         "pilco.gp_iterations=5", "pilco.horizon=4"]),
    "pilco-sparse": ("pilco-cartpole-swingup", ["pilco.basis=8", "pilco.policy_iterations=3",
                                                "pilco.gp_iterations=5", "pilco.horizon=4",
                                                "pilco.inducing=20"]),
    "deep-pilco": ("deep-pilco-cartpole-swingup", ["pilco.basis=8", "pilco.horizon=4",
                                                   "deep_pilco.model_steps=5",
                                                   "deep_pilco.policy_steps=3",
                                                   "deep_pilco.hidden_size=16"]),
    "deep-pilco-reinforce": ("deep-pilco-cartpole-swingup", [
        "pilco.basis=8", "pilco.horizon=4", "deep_pilco.model_steps=5",
        "deep_pilco.policy_steps=3", "deep_pilco.hidden_size=16",
        "deep_pilco.policy_gradient=reinforce"]),
    "mb-mpc-async": ("mb-mpc-pendulum", DUMMY + ["train.schedule=async", "delta.batch_size=64",
                                                 "planner.population=50"]),
}
STEPS = 100  # random env steps per env collected into replay
ENVS = 3


def _setup(case: str):
    preset, overrides = CASES[case]
    cfg = apply_overrides(load_preset(preset), overrides)
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    return cfg, spec


def _replay(cfg, spec) -> StreamStorage:
    """Real rows of dummy envs stepped at random, as a rollout worker writes them."""
    store = StreamStorage(ENVS * (STEPS + 1), spec)
    batch, rows = EnvBatch(cfg.env, ENVS, seed=0), StreamRows(spec, ENVS, STEPS)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        batch.step(rng.uniform(-1, 1, (ENVS, spec.act_dim)).astype(np.float32), rows)
    for key, segment in rows.segments(list(range(ENVS))):
        store.add(segment, key)
    batch.close()
    return store


def _train(agent, store: StreamStorage, rounds: int = 2, seed: int = 1) -> list[dict]:
    """Sync fits or async updates (after refreshing statistics) as the learner runs them; the
    batches from a generator of `seed`."""
    rng = np.random.default_rng(seed)
    logs = []
    for _ in range(rounds):
        if agent.cfg.train.schedule == "sync":
            logs.append(agent.fit(all_transitions(store), store.written))
            continue
        if agent.refresh_rows:
            agent.refresh(all_transitions(store))
        batch = {k: torch.as_tensor(v) for k, v in sample(store, agent.batch_spec, rng).items()}
        logs.append(agent.update(batch))
    return logs


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from _tensors(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from _tensors(value)


def _trees_equal(a, b) -> bool:
    ta, tb = list(_tensors(a)), list(_tensors(b))
    return len(ta) == len(tb) > 0 and all(torch.equal(x, y) for x, y in zip(ta, tb))


def _act(agent, obs: np.ndarray, explore: bool = True, steps: int = 2) -> np.ndarray:
    """Actions after `steps` calls, each carrying the state the last one left (a warm start,
    an RSSM belief); the first env's episode restarts in between."""
    state = agent.initial_state(len(obs))
    for _ in range(steps):
        actions, state = agent.act(obs, state, explore)
        state = agent.reset_state(state, np.array([True] + [False] * (len(obs) - 1)))
    return actions


@pytest.fixture(scope="module", params=list(CASES))
def trained(request):
    """(case, cfg, spec, store, learner trained two rounds)."""
    cfg, spec = _setup(request.param)
    store = _replay(cfg, spec)
    learner = make_learner(spec, cfg, seed=0)
    for logs in _train(learner, store):
        check_finite(logs, f"{request.param} logs")
    return request.param, cfg, spec, store, learner


@pytest.mark.parametrize("case", list(CASES))
def test_an_agent_without_weights_acts_uniformly_at_random_from_its_seed(case):
    cfg, spec = _setup(case)
    obs = np.zeros((4, *spec.obs_shape), dtype=np.float32)
    for make in (make_learner, make_actor):
        agent = make(spec, cfg, seed=7)
        assert make is make_actor or agent.inference_weights() is None
        actions, _ = agent.act(obs, agent.initial_state(4))
        expected = np.random.default_rng(7).uniform(-1, 1, (4, spec.act_dim)).astype(np.float32)
        assert actions.dtype == np.float32 and np.array_equal(actions, expected)


def test_workers_act_from_the_learners_weights_alone(trained):
    """Weights on CPU; two workers of one seed that load them act alike under different global
    torch seeds, within [-1, 1], and unlike an untrained worker; weights None sends a worker
    back to random acting."""
    case, cfg, spec, store, learner = trained
    weights = learner.inference_weights()
    assert weights is not None and {t.device.type for t in _tensors(weights)} == {"cpu"}
    obs = np.stack([store.data["obs"][i] for i in range(3)])
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        worker = make_actor(spec, cfg, seed=3)
        worker.load_inference_weights(copy.deepcopy(weights))
        runs.append(_act(worker, obs))
    assert np.array_equal(runs[0], runs[1])
    assert runs[0].dtype == np.float32 and np.abs(runs[0]).max() <= 1.0
    random = _act(make_actor(spec, cfg, seed=3), obs)
    assert not np.allclose(runs[0], random)
    worker.load_inference_weights(None)
    assert np.array_equal(_act(worker, obs, steps=1), _act(
        make_actor(spec, cfg, seed=3), obs, steps=1))


def test_the_explore_flag(trained):
    """Exploring adds the agent's noise (a policy sample, DC-MPC's and the RSSM agents'
    Gaussian noise); PETS and MB-MPC act on their plan either way, PILCO on its deterministic
    policy."""
    case, cfg, spec, store, learner = trained
    obs = np.stack([store.data["obs"][i] for i in range(3)])
    acted = {}
    for explore in (True, False):
        worker = make_actor(spec, cfg, seed=3)
        worker.load_inference_weights(copy.deepcopy(learner.inference_weights()))
        acted[explore] = _act(worker, obs, explore)
    if case.startswith(("pets", "mb-mpc", "pilco", "deep-pilco")):
        assert np.array_equal(acted[True], acted[False])
    else:
        assert not np.allclose(acted[True], acted[False])


def test_a_checkpoint_continues_training_exactly(trained):
    """A learner of another seed loading the state dict (through a serialised copy, as a
    checkpoint) holds the same weights and, trained on the same batches, logs and ends as the
    original does. MBPO regenerates its model rollouts after a resume: its state only."""
    case, cfg, spec, store, learner = trained
    import io

    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    buffer.seek(0)
    resumed = make_learner(spec, cfg, seed=11)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert _trees_equal(resumed.inference_weights(), learner.inference_weights())
    if case == "mbpo":
        assert _trees_equal(resumed.state_dict(), learner.state_dict())
        return
    twin = copy.deepcopy(learner)
    assert _train(resumed, store, seed=2) == _train(twin, store, seed=2)
    assert _trees_equal(resumed.state_dict(), twin.state_dict())


# ---- pieces the contract above leaves open ---------------------------------------------------
def test_pets_async_update_steps_each_member_on_its_slice_and_picks_elites_by_ema_error():
    """The async update: the batch holds E x batch_size rows, member e's slice the e-th; each
    member's error on its slice (before the step) moves the EMA of member errors by 0.05, the
    elites are the num_elites smallest EMAs, the ensemble takes one Adam step on the NLL loss,
    and the SAC critic gets the first sac.batch_size rows."""
    from mbrl_ray.world_models.ensemble_training import to_tensors
    cfg = apply_overrides(load_preset("debug"), SMALL_FIT + [
        "train.schedule=async", "model.ensemble_size=4", "model.num_elites=2",
        "model.batch_size=5", "planner.value_weight=1.0", "sac.batch_size=7"])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, seed=0)
    assert agent.batch_spec.size == 20 and agent.batch_spec.keys.startswith("model.ensemble")
    store = _replay(cfg, spec)
    agent.refresh(all_transitions(store))
    batch = sample(store, agent.batch_spec, np.random.default_rng(3))
    agent.member_error = torch.tensor([0.5, 0.1, 0.3, 0.2])
    before = copy.deepcopy(agent.model)
    sac_seen = []
    agent.sac.update = lambda rows: sac_seen.append(rows) or {"sac": 1.0}
    logs = agent.update(batch)

    d = to_tensors(batch, "cpu")
    errors = []
    with torch.no_grad():
        for e in range(4):
            rows = slice(5 * e, 5 * e + 5)
            obs, act = d["obs"][rows], d["action"][rows]
            mean, _ = before(obs[None].expand(4, -1, -1), act[None].expand(4, -1, -1))
            target = before.targets(obs, d["reward"][rows], d["next_obs"][rows])
            errors.append(float(((mean[e] - target) ** 2).mean()))
    want = [0.95 * m + 0.05 * err for m, err in zip([0.5, 0.1, 0.3, 0.2], errors)]
    assert agent.member_error.tolist() == pytest.approx(want, rel=1e-5)
    assert agent.elites == sorted(np.argsort(want)[:2].tolist())
    assert logs["model_val_mse"] == pytest.approx(np.mean(errors), rel=1e-5)
    assert logs["sac"] == 1.0 and len(sac_seen[0]["obs"]) == 7
    assert np.array_equal(sac_seen[0]["obs"], batch["obs"][:7])
    # one Adam step on the loss of those slices: the first step of Adam moves each weight by
    # about lr against its gradient's sign
    loss, nll, _ = before.loss(*(v.reshape(4, 5, *v.shape[1:]) for v in (
        d["obs"], d["action"], d["reward"], d["next_obs"], d["terminated"])))
    loss.backward()
    step = agent.model.head.weight.detach() - before.head.weight.detach()
    grad = before.head.weight.grad
    moved = grad.abs() > 1e-6
    assert torch.equal(torch.sign(step[moved]), -torch.sign(grad[moved]))
    assert step[moved].abs().max() == pytest.approx(cfg.model.lr, rel=1e-3)
    assert logs["model_nll"] == pytest.approx(float(nll.detach()), rel=1e-5)
    assert agent._plan_stale  # the planning copy of the elites is remade when next needed


def test_mbpo_trains_in_sync_rounds_only():
    cfg, spec = _setup("mbpo")
    agent = make_learner(spec, cfg, seed=0)
    with pytest.raises(NotImplementedError,
                       match=r"^MBPO trains in sync rounds \(fit\), not on single batches$"):
        agent.update({})
    assert agent.schedules == ("sync",)
    agent.seen = 123  # real steps branched from: a resumed MBPO goes on from there
    other = make_learner(spec, cfg, seed=1)
    other.load_state_dict(agent.state_dict())
    assert other.seen == 123


def test_async_only_agents_have_no_full_data_fit():
    cfg, spec = _setup("dcmpc")
    with pytest.raises(NotImplementedError, match="^DCMPCLearner has no full-data fit$"):
        make_learner(spec, cfg, seed=0).fit({}, 0)


def test_an_rssm_agent_films_open_loop_predictions_only_from_pixels_once_trained():
    """None for state observations, before weights, or with no row past the context; else
    real | imagined | difference and the error, as world_models/open_loop computes them."""
    from mbrl_ray.envs.spec import EnvSpec
    from mbrl_ray.world_models import open_loop
    pixels = EnvSpec((3, 32, 32), "uint8", 2)
    cfg = apply_overrides(load_preset("planet-debug"), ["env.image_size=32"])
    agent = make_learner(pixels, cfg, seed=0)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (open_loop.CONTEXT + 3, 3, 32, 32)).astype(np.uint8)
    actions = rng.uniform(-1, 1, (len(obs), 2)).astype(np.float32)
    assert agent.open_loop_video(obs, actions) is None  # no weights yet
    agent.fitted = True
    assert agent.open_loop_video(obs[:open_loop.CONTEXT], actions[:open_loop.CONTEXT]) is None
    strip, error = agent.open_loop_video(obs, actions)
    real = torch.as_tensor(obs)
    predicted = open_loop.open_loop(agent.model, real, torch.as_tensor(actions))
    assert np.array_equal(strip, open_loop.side_by_side(real, predicted).numpy())
    assert error == open_loop.prediction_error(real, predicted)
    cfg, spec = _setup("planet")
    states = make_learner(spec, cfg, seed=0)
    states.fitted = True
    assert states.open_loop_video(np.zeros((8, *spec.obs_shape), np.float32),
                                  np.zeros((8, spec.act_dim), np.float32)) is None


@pytest.mark.parametrize("case, batch", [
    ("sac", "BatchSpec('transitions', 13, keys='sac.batch_size')"),
    ("pets-cem", "BatchSpec('transitions', 12, keys='model.ensemble_size x model.batch_size')"),
    ("dcmpc", "BatchSpec('sequences', 9, length=5, boundaries=True, "
              "keys='dcmpc.batch_size x (dcmpc.horizon + 1)')"),
    ("planet", "BatchSpec('sequences', 6, length=11, boundaries=True, "
               "keys='rssm.batch_size x rssm.seq_len')"),
    ("dreamer", "BatchSpec('sequences', 6, length=11, boundaries=True, "
                "keys='rssm.batch_size x rssm.seq_len')"),
])
def test_each_agent_asks_for_the_batch_its_config_sizes(case, batch):
    """Sizes away from every default; `keys` names them in the replay's refusals."""
    from mbrl_ray.agents import agent_class
    from mbrl_ray.replay import BatchSpec  # noqa: F401 - the expected values name it
    cfg, _ = _setup(case)
    cfg = apply_overrides(cfg, ["sac.batch_size=13", "model.ensemble_size=3",
                                "model.num_elites=3", "model.batch_size=4",
                                "dcmpc.batch_size=9", "dcmpc.horizon=4", "dcmpc.nstep=1",
                                "rssm.batch_size=6", "rssm.seq_len=11"])
    assert agent_class(cfg).batch_spec_for(cfg) == eval(batch)


def test_an_agent_refuses_observations_it_cannot_act_on_naming_them():
    from mbrl_ray.config import ConfigError
    from mbrl_ray.envs.spec import EnvSpec
    cfg, _ = _setup("dcmpc")
    pixels = EnvSpec((3, 64, 64), "uint8", 1)
    with pytest.raises(ConfigError) as err:
        make_learner(pixels, cfg).check_config(cfg, pixels)
    assert str(err.value) == ("agent.name='dcmpc' acts on state observations, but "
                              "env.id='dummy' with env.obs='state' gives pixels (3, 64, 64)")


def test_dreamers_explore_flag_samples_the_actor_or_takes_its_mode():
    cfg, spec = _setup("dreamer")
    agent = make_learner(spec, cfg, seed=0)
    belief = agent.model.rssm.initial(4)
    belief = type(belief)(torch.randn(belief.h.shape, generator=torch.Generator().manual_seed(1)),
                          belief.s, belief.stats)
    sampled = [agent.policy_action(belief, {}, explore=True)[0] for _ in range(2)]
    modes = [agent.policy_action(belief, {}, explore=False)[0] for _ in range(2)]
    assert not torch.equal(sampled[0], sampled[1]) and torch.equal(modes[0], modes[1])


def test_pets_without_a_critic_updates_its_model_alone():
    cfg = apply_overrides(load_preset("debug"), SMALL_FIT + ["train.schedule=async"])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, seed=0)
    store = _replay(cfg, spec)
    agent.refresh(all_transitions(store))
    logs = agent.update(sample(store, agent.batch_spec, np.random.default_rng(0)))
    assert agent.sac is None and set(logs) == {"model_nll", "model_val_mse"}


@pytest.mark.parametrize("case", ["dcmpc", "planet", "dreamer"])
def test_a_worker_counts_the_learners_updates_from_its_weights(case):
    """The update count travels with the weights (DC-MPC's exploration std decays with it)."""
    cfg, spec = _setup(case)
    learner = make_learner(spec, cfg, seed=0)
    _train(learner, _replay(cfg, spec), rounds=3)
    worker = make_actor(spec, cfg, seed=1)
    worker.load_inference_weights(copy.deepcopy(learner.inference_weights()))
    assert worker.updates == learner.updates == 3


@pytest.mark.parametrize("case", list(CASES))
def test_the_acting_part_holds_no_training(case):
    """A worker's agent is the acting part alone: no update, fit, weights to publish or state
    to save; the learner's is a subclass of it (it acts as a worker does, for evaluation)."""
    cfg, spec = _setup(case)
    worker, learner = make_actor(spec, cfg, seed=0), make_learner(spec, cfg, seed=0)
    assert not isinstance(worker, AgentLearner) and isinstance(learner, type(worker))
    for name in ("update", "fit", "refresh", "inference_weights", "state_dict",
                 "load_state_dict", "batch_spec"):
        assert not hasattr(worker, name) and hasattr(learner, name), name


def test_every_registered_agent_has_a_contract_case():
    names = {_setup(case)[0].agent.name for case in CASES}
    assert names == set(AGENTS)


@pytest.mark.parametrize("case", list(CASES))
def test_a_worker_builds_no_optimiser(case):
    """Workers act: none of their components holds an optimiser (nor steps a parameter)."""
    from mbrl_ray.distributed.network_memory import _reachable, network_bytes
    cfg, spec = _setup(case)
    worker = make_actor(spec, cfg, seed=0)
    assert _reachable(worker)[1] == [] and network_bytes(worker).stepped == 0
    learner = make_learner(spec, cfg, seed=0)
    assert network_bytes(learner).stepped > 0


@pytest.mark.parametrize("case, keys, want", [
    ("dcmpc", ["dcmpc.model_lr=0.0007", "dcmpc.model_weight_decay=0.03"],
     {"lr": 0.0007, "weight_decay": 0.03}),
    ("planet", ["rssm.lr=0.0009", "rssm.eps=0.002"], {"lr": 0.0009, "eps": 0.002}),
    ("dreamer", ["rssm.lr=0.0009", "rssm.eps=0.002"], {"lr": 0.0009, "eps": 0.002}),
])
def test_the_world_models_optimiser_takes_its_settings_from_the_config(case, keys, want):
    cfg, spec = _setup(case)
    agent = make_learner(spec, apply_overrides(cfg, keys), seed=0)
    group = agent.model_opt.param_groups[0]
    assert {k: group[k] for k in want} == want


@pytest.mark.parametrize("case", ["planet", "dreamer"])
def test_an_rssm_agent_learns_continuation_only_where_episodes_can_end(case):
    cfg, spec = _setup(case)
    for termination in (True, False):
        agent = make_learner(spec, apply_overrides(cfg, [f"model.termination={termination}"]))
        assert (agent.model.continue_head is not None) == termination


def test_a_pets_worker_without_a_termination_head_loads_the_learners_weights():
    cfg = apply_overrides(load_preset("debug"), SMALL_FIT + ["model.termination=false"])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    learner = make_learner(spec, cfg, seed=0)
    _train(learner, _replay(cfg, spec), rounds=1)
    worker = make_actor(spec, cfg, seed=1)
    worker.load_inference_weights(copy.deepcopy(learner.inference_weights()))
    assert not worker.plan_model.termination and len(worker.plan_model.term) == 0


@pytest.mark.parametrize("case", ["dreamer", "dreamer-v1"])
def test_dreamers_actor_critic_draws_its_weights_from_the_agents_sac_seed(case):
    from mbrl_ray import seeding
    from mbrl_ray.critics.imagination import ImaginedActorCritic
    from mbrl_ray.critics.imagination_v3 import ImaginedActorCriticV3
    cfg, spec = _setup(case)
    agent = make_learner(spec, cfg, seed=5)
    heads = ImaginedActorCriticV3 if cfg.dreamer.version == "v3" else ImaginedActorCritic
    assert type(agent.behaviour) is heads
    alone = heads(agent.model.rssm.feat_dim, spec.act_dim, cfg.dreamer, torch.device("cpu"),
                  seeding.derive(5, seeding.SAC))
    assert _trees_equal(agent.behaviour.actor.state_dict(), alone.actor.state_dict())


def _pets_planning(overrides, monkeypatch):
    """A fitted PETS (with its SAC fitted) acting once on 3 envs; what its planning objective
    and its MPC policy were handed."""
    from mbrl_ray.agents import pets as pets_module
    cfg = apply_overrides(load_preset("debug"), SMALL_FIT + overrides)
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, seed=0)
    _train(agent, _replay(cfg, spec), rounds=1)
    seen = {}
    real = pets_module.expected_returns

    def recording(model, obs, actions, **kw):
        seen.update(kw)
        return real(model, obs, actions, **kw)

    monkeypatch.setattr(pets_module, "expected_returns", recording)
    plan = agent.policy.planner.plan
    agent.policy.planner.plan = lambda objective, state, generator, prior, **kw: (
        seen.update(prior=prior, density=kw.get("density"), generator_arg=generator)
        or plan(objective, state, generator, prior, **kw))
    agent.act(np.zeros((3, spec.obs_dim), np.float32), agent.initial_state(3))
    return agent, seen


def test_pets_plans_with_every_planner_setting_of_its_config(monkeypatch):
    """particles, propagation, discount, the information term, the critic's terminal value
    and action prior, each scaled by its weight (all below 1), and the prior's sequences."""
    agent, seen = _pets_planning(
        ["model.particles=3", "model.propagation=ts1", "planner.discount=0.9",
         "planner.info_weight=0.2", "planner.info_term=std", "planner.value_weight=0.7",
         "planner.prior_weight=0.3", "planner.prior_samples=4"], monkeypatch)
    assert {k: seen[k] for k in ("particles", "propagation", "discount", "info_weight",
                                 "info_term", "first_states")} == {
        "particles": 3, "propagation": "ts1", "discount": 0.9, "info_weight": 0.2,
        "info_term": "std", "first_states": False}
    assert seen["generator"] is agent.generator and seen["generator_arg"] is agent.generator
    states = torch.randn(5, agent.spec.obs_dim, generator=torch.Generator().manual_seed(0))
    actions = torch.rand(5, agent.spec.act_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(seen["terminal_value"](states), 0.7 * agent.sac.value(states))
        assert torch.allclose(seen["log_prior"](states, actions),
                              0.3 * agent.sac.actor.log_prob(states, actions))
    assert seen["prior"].shape == (3, 4, agent.cfg.planner.horizon, agent.spec.act_dim)
    assert seen["density"] is None


def test_pets_leaves_out_the_critics_terms_whose_weight_is_zero(monkeypatch):
    """The critic is there (another term uses it); the terms weighted 0 are not built."""
    agent, seen = _pets_planning(["planner.value_weight=0.7", "planner.prior_weight=0",
                                  "planner.prior_samples=0"], monkeypatch)
    assert agent.sac.fitted and seen["terminal_value"] is not None
    assert seen["log_prior"] is None and seen["prior"] is None
    agent, seen = _pets_planning(["planner.value_weight=0", "planner.prior_weight=0.3",
                                  "planner.prior_samples=0"], monkeypatch)
    assert agent.sac.fitted and seen["log_prior"] is not None
    assert seen["terminal_value"] is None and seen["prior"] is None


def test_pets_lst_hands_its_density_to_the_planner(monkeypatch):
    _, seen = _pets_planning(["planner.posterior=lst"], monkeypatch)
    assert callable(seen["density"]) and seen["first_states"] is True


def test_mpc_policy_passes_the_density_only_when_there_is_one():
    from mbrl_ray.agents.mpc import MPCPolicy, Problem
    cfg = load_preset("debug")
    policy = MPCPolicy(cfg.planner, 2)
    calls = []
    policy.planner.plan = lambda objective, plan, generator, prior, **kw: (
        calls.append((objective, prior, kw)) or (torch.zeros(1, 5, 2), plan))
    state = policy.initial_state(1, torch.device("cpu"))
    density, objective, prior = object(), object(), torch.ones(1, 1, 5, 2)
    policy.act(Problem(objective, lambda: prior, density), state, None)
    policy.act(Problem(objective), state, None)
    assert calls == [(objective, prior, {"density": density}), (objective, None, {})]


def test_the_smcp_policy_hands_its_planner_the_problems_model_step_proposal_and_density():
    from mbrl_ray.agents.mpc import Problem, SMCPolicy, make_policy
    cfg = apply_overrides(load_preset("debug"), ["planner.name=smcp"])
    policy = make_policy(cfg.planner, 2)
    assert isinstance(policy, SMCPolicy) and policy.needs_proposal
    assert not make_policy(load_preset("debug").planner, 2).needs_proposal
    calls = []
    policy.planner.plan = lambda *args: calls.append(args) or (torch.ones(1, 2), args[3])
    state = policy.initial_state(1, torch.device("cpu"))
    step, proposal, obs, density, generator = object(), object(), object(), object(), object()
    action, after = policy.act(Problem(None, None, density, obs, step, proposal, 0.3), state,
                               generator)
    assert calls == [(step, proposal, obs, state["plan"], 0.3, generator, density)]
    assert torch.equal(action, torch.ones(1, 2)) and after["plan"] is state["plan"]


def test_a_pets_checkpoint_keeps_its_unfitted_state_and_skips_a_missing_critic():
    cfg = apply_overrides(load_preset("debug"), SMALL_FIT)
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    fresh = make_learner(spec, cfg, seed=0)
    other = make_learner(spec, cfg, seed=1)
    other.load_state_dict(fresh.state_dict())
    assert other.plan_model is None  # not fitted: acts at random still
    with_sac = make_learner(spec, apply_overrides(cfg, ["planner.value_weight=1.0"]), seed=0)
    other.load_state_dict(with_sac.state_dict())  # this config has no critic: its part skipped
    assert other.sac is None


def test_mbpo_logs_the_mean_of_its_sac_updates_in_a_round():
    cfg, spec = _setup("mbpo")
    agent = make_learner(spec, cfg, seed=0)
    store = _replay(cfg, spec)
    calls = []

    def scripted(batch):
        calls.append(len(calls) + 1.0)
        return {"sac_q": calls[-1], "sac_alpha": 0.5}

    agent.sac.update = scripted
    logs = agent.fit(all_transitions(store), store.written)
    assert set(logs) == {"model_nll", "model_val_mse", "model_epochs", "mbpo_rollout_length",
                         "mbpo_model_rows", "mbpo_sac_updates", "sac_q", "sac_alpha"}
    assert logs["mbpo_model_rows"] == agent.model_data.size > 0
    assert len(calls) == cfg.mbpo.updates_per_step * store.written > 1
    assert logs["mbpo_sac_updates"] == len(calls)  # counted as taken, not a mean
    assert logs["sac_q"] == pytest.approx(np.mean(calls))
    assert logs["sac_alpha"] == pytest.approx(0.5)


def test_mbpo_rollout_length_over_a_one_step_schedule():
    """From step 100 to 101 the length goes from 1 to 5: at 101 it is 5 (a span of 1 step)."""
    from mbrl_ray.agents.mbpo import rollout_length
    cfg = apply_overrides(load_preset("mbpo-pendulum"), [
        "mbpo.rollout_length_start=1", "mbpo.rollout_length_end=5",
        "mbpo.schedule_start_steps=100", "mbpo.schedule_end_steps=101"])
    assert [rollout_length(cfg, s) for s in (99, 100, 101, 500)] == [1, 1, 5, 5]


def test_pets_logs_its_fit():
    cfg, spec = _setup("pets-value-prior")
    agent = make_learner(spec, cfg, seed=0)
    logs = agent.fit(all_transitions(_replay(cfg, spec)), ENVS * STEPS)
    assert {"model_nll", "model_val_mse", "model_epochs"} <= set(logs)
    assert logs["model_epochs"] == float(int(logs["model_epochs"])) >= 1


def test_the_planning_cost_line_is_the_planning_agents_own():
    """PETS: population x particles x iterations rollouts and the ensemble's GFLOP per action;
    PlaNet, MB-MPC, DC-MPC: population x iterations rollouts (DC-MPC: and its prior's
    sequences); agents that do not plan: no line."""
    from mbrl_ray.agents import agent_class
    from mbrl_ray.world_models.ensemble import planning_flops

    lines = {}
    for case in ("pets-cem", "planet", "sac", "mbpo", "dcmpc", "dreamer", "mb-mpc"):
        cfg, spec = _setup(case)
        cfg = apply_overrides(cfg, ["planner.population=30", "planner.iterations=3",
                                    "planner.horizon=7", "model.particles=4"])
        lines[case] = agent_class(cfg).planning_cost(cfg, spec)
    cfg, spec = _setup("pets-cem")
    cfg = apply_overrides(cfg, ["planner.population=30", "planner.iterations=3",
                                "planner.horizon=7", "model.particles=4"])
    gflop = planning_flops(cfg, spec.obs_dim, spec.act_dim) / 1e9
    assert lines["pets-cem"] == (
        f"planning: cem, 360 rollouts of 7 steps per action (population x particles x "
        f"iterations), about {gflop:.3g} GFLOP per action per env")
    assert lines["planet"] == ("planning: cem in the RSSM's latent space, 90 imagined rollouts "
                               "of 7 steps per action per env (population x iterations)")
    assert lines["mb-mpc"] == ("planning: rs on the delta network, 90 rollouts of 7 steps per "
                               "action per env (population x iterations)")
    assert lines["dcmpc"] == ("planning: mppi on expected codes, 90 rollouts of 7 steps per "
                              "action per env (population x iterations), 8 of the prior "
                              "policy's sequences mixed in")
    assert [lines[c] for c in ("sac", "mbpo", "dreamer")] == [None] * 3


def test_an_agent_refuses_an_observation_kind_or_schedule_it_cannot_run():
    """The refusal names the agent, what it accepts and what the config gives."""
    from mbrl_ray.agents import agent_class
    from mbrl_ray.config import ConfigError

    cfg, spec = _setup("dcmpc")
    cfg = apply_overrides(cfg, ["train.schedule=sync"])
    with pytest.raises(ConfigError, match="agent.name='dcmpc' runs on train.schedule async, "
                                          "not 'sync'"):
        agent_class(cfg).check_config(cfg, spec)


def test_mb_mpc_async_update_is_one_adam_step_on_the_batch():
    """The logged loss is the batch's before the step; Adam's first step moves each weight by
    lr against its gradient's sign (|m / sqrt(v)| = 1 on step one)."""
    cfg, spec = _setup("mb-mpc-async")
    cfg = apply_overrides(cfg, ["delta.lr=0.01"])
    store = _replay(cfg, spec)
    agent = make_learner(spec, cfg, seed=0)
    agent.refresh(all_transitions(store))
    batch = {k: torch.as_tensor(v)
             for k, v in sample(store, agent.batch_spec, np.random.default_rng(0)).items()}
    before = copy.deepcopy(agent.model)
    loss, _ = before.loss({k: batch[k] for k in ("obs", "action", "reward", "next_obs")})
    loss.backward()
    logs = agent.update(batch)
    assert logs == {"model_mse": pytest.approx(loss.item(), rel=1e-5)} and agent.fitted
    for old, new in zip(before.parameters(), agent.model.parameters()):
        moved = old.grad.abs() > 1e-4
        assert torch.allclose((new - old)[moved], -0.01 * old.grad.sign()[moved], atol=1e-4)
    assert agent.batch_spec.size == 64


def test_mb_mpc_plans_on_the_discounted_rewards_of_its_fitted_delta_network():
    """The objective its planner gets: sum_t 0.9^t r_t along the network's own trajectory of
    each candidate (horizon 3, two envs), walked here one step at a time; the action is the
    planner's first, the same whether exploring or not."""
    cfg, spec = _setup("mb-mpc")
    cfg = apply_overrides(cfg, ["planner.discount=0.9", "planner.horizon=3"])
    agent = make_learner(spec, cfg, seed=0)
    _train(agent, _replay(cfg, spec), rounds=1)
    seen, plan = [], agent.policy.planner.plan
    agent.policy.planner.plan = lambda objective, *args, **kw: (
        seen.append(objective) or plan(objective, *args, **kw))
    obs = np.random.default_rng(0).normal(size=(2, spec.obs_dim)).astype(np.float32)
    agent.act(obs, agent.initial_state(2))
    actions = torch.rand(2, 4, 3, spec.act_dim, generator=torch.Generator().manual_seed(1))
    values = seen[0](actions * 2 - 1)
    with torch.no_grad():
        for b in range(2):
            for n in range(4):
                state, total = torch.as_tensor(obs[b:b + 1]), 0.0
                for t in range(3):
                    state, reward = agent.model.step(state, actions[b, n, t][None] * 2 - 1)
                    total += 0.9 ** t * float(reward)
                assert abs(float(values[b, n]) - total) < 1e-5 * max(1.0, abs(total))


def test_pets_mixes_in_a_single_prior_sequence_when_asked_for_one():
    """planner.prior_samples=1 (and no other use of SAC): SAC is trained and the actor's one
    sequence per env reaches the planner."""
    cfg, spec = _setup("pets-value-prior")
    cfg = apply_overrides(cfg, ["planner.prior_samples=1", "planner.value_weight=0",
                                "planner.prior_weight=0"])
    store = _replay(cfg, spec)
    agent = make_learner(spec, cfg, seed=0)
    _train(agent, store, rounds=1)
    seen = []
    plan = agent.policy.planner.plan

    def spy(objective, state, generator, prior=None, **kw):
        seen.append(prior)
        return plan(objective, state, generator, prior, **kw)

    agent.policy.planner.plan = spy
    obs = np.stack([store.data["obs"][i] for i in range(ENVS)])
    agent.act(obs, agent.initial_state(ENVS), explore=False)
    assert seen[0] is not None and seen[0].shape == (ENVS, 1, cfg.planner.horizon, spec.act_dim)


def _worker_twins(trained):
    """Two identical workers (generators included) holding the learner's weights, and the
    first row of each env's stream as observations."""
    case, cfg, spec, store, learner = trained
    worker = make_actor(spec, cfg, seed=5)
    worker.load_inference_weights(copy.deepcopy(learner.inference_weights()))
    obs = np.stack([store.data["obs"][i] for i in range(ENVS)])
    return worker, copy.deepcopy(worker), obs


def test_acting_explores_unless_told_otherwise(trained):
    """The rollout worker calls act(obs, state): its default is exploring."""
    worker, twin, obs = _worker_twins(trained)
    default, _ = worker.act(obs, worker.initial_state(ENVS))
    exploring, _ = twin.act(obs, twin.initial_state(ENVS), True)
    np.testing.assert_array_equal(default, exploring)


def test_float64_observations_act_as_their_float32_values(trained):
    """Simulators hand out float64 (MuJoCo): an agent acts on them as on float32."""
    worker, twin, obs = _worker_twins(trained)
    single, _ = worker.act(obs.astype(np.float32), worker.initial_state(ENVS), False)
    double, _ = twin.act(obs.astype(np.float64), twin.initial_state(ENVS), False)
    np.testing.assert_array_equal(single, double)


@pytest.mark.parametrize("case", list(CASES))
def test_the_seed_decides_every_network(case):
    """Two learners of one seed hold the same tensors; another seed changes every network's."""
    cfg, spec = _setup(case)
    a, b, c = (make_learner(spec, cfg, seed=s).state_dict() for s in (1, 1, 2))

    def leaves(tree, path=()):
        if isinstance(tree, dict):
            for key, value in tree.items():
                yield from leaves(value, (*path, key))
        elif isinstance(tree, torch.Tensor) and tree.is_floating_point() and tree.numel() > 1:
            yield path, tree

    same, other = dict(leaves(a)), dict(leaves(c))
    assert all(torch.equal(t, dict(leaves(b))[p]) for p, t in same.items())
    weights = [p for p, t in same.items()  # PILCO's RBF network: centres and targets
               if p[-1].endswith(("weight", "centres", "targets")) and t.dim() >= 2
               and t.any()]  # not DreamerV3's zero-initialised outputs
    assert len(weights) >= 2
    assert weights and all(not torch.equal(same[p], other[p]) for p in weights), case


def test_async_pets_publishes_its_current_elites_after_an_update():
    cfg, spec = _setup("pets-cem")
    cfg = apply_overrides(cfg, ["train.schedule=async", "model.ensemble_size=4",
                                "model.num_elites=2"])
    store = _replay(cfg, spec)
    learner = make_learner(spec, cfg, seed=0)
    assert learner.inference_weights() is None
    assert learner.state_dict()["elites"] == [0, 1]  # before any update: the first members
    _train(learner, store, rounds=2)
    published = learner.inference_weights()["model"]
    expected = learner.model.select(learner.elites).state_dict()
    assert published.keys() == expected.keys()
    assert all(torch.equal(published[k], expected[k].cpu()) for k in expected)


def test_smcp_lst_hands_the_planner_the_models_transition_density():
    """posterior=lst: SMCP gets a density of (actions, next states) from the ensemble's
    mixture; posterior=mpc: none."""
    from mbrl_ray.world_models.density import log_mixture_density

    for posterior in ("lst", "mpc"):
        cfg, spec = _setup("pets-smcp-lst")
        cfg = apply_overrides(cfg, [f"planner.posterior={posterior}"])
        store = _replay(cfg, spec)
        agent = make_learner(spec, cfg, seed=0)
        _train(agent, store, rounds=1)
        seen, plan = [], agent.policy.planner.plan
        agent.policy.planner.plan = lambda *args: seen.append(args[-1]) or plan(*args)
        obs = np.stack([store.data["obs"][i] for i in range(ENVS)])
        agent.act(obs, agent.initial_state(ENVS), explore=False)
        if posterior == "mpc":
            assert seen == [None]
            continue
        actions, nxt = torch.rand(ENVS, 5, spec.act_dim), torch.randn(ENVS, 6, spec.obs_dim)
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        assert torch.allclose(seen[0](actions, nxt),
                              log_mixture_density(agent._planning, obs_t, actions, nxt))
