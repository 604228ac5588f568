"""Issue 45: the networks' memory, counted on the meta device before any actor starts, is what
the agents really allocate; a config whose networks cannot fit this machine is refused naming
the keys that size them, before anything is written."""
from __future__ import annotations

import pytest

from mbrl_ray.agents import agent_class, make_actor, make_learner
from mbrl_ray.config import ConfigError, apply_overrides, list_presets, load_preset
from mbrl_ray.config.machine import local_memory_bytes
from mbrl_ray.distributed.network_memory import (ADAM_COPIES, _reachable, agent_network_bytes,
                                                 network_bytes)
from mbrl_ray.distributed import preflight as preflight_module
from mbrl_ray.distributed.preflight import check_network_memory
from mbrl_ray.envs import env_kwargs, env_spec
from mbrl_ray.replay.storage import bytes_per_row
from mbrl_ray.world_models.ensemble import TERM_HIDDEN
from tests.test_agent_contract import CASES, _replay, _setup, _train

pytestmark = pytest.mark.unit
FLOAT = 4  # bytes of a float32


@pytest.mark.parametrize("case", list(CASES))
def test_the_meta_count_is_what_a_cpu_build_allocates(case):
    cfg, spec = _setup(case)
    for learner, make in ((True, make_learner), (False, make_actor)):
        real = network_bytes(make(spec, cfg, "cpu", seed=0))
        assert agent_network_bytes(cfg, spec, learner) == real
        assert (real.stepped > 0) == learner
    worker, learner = (agent_network_bytes(cfg, spec, role) for role in (False, True))
    assert learner.held > 0 and worker.held <= learner.held  # the bound preflight counts


def test_the_ensembles_count_by_hand():
    """PETS on the debug preset (no SAC): E members of in -> H -> H -> 2(obs + 1) layers, the
    termination head obs -> 64 -> 64 -> 1 and the log-variance bounds, stepped; held beside
    them, two standardisers and the members' validation errors."""
    cfg = load_preset("debug")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    e, h, o, a = cfg.model.ensemble_size, cfg.model.hidden_size, spec.obs_dim, spec.act_dim
    assert cfg.model.num_layers == 2 and cfg.model.termination
    t = TERM_HIDDEN
    weights = e * ((o + a) * h + h + h * h + h + h * 2 * (o + 1) + 2 * (o + 1)
                   + o * t + t + t * t + t + t + 1) + 2 * (o + 1)
    fixed = 2 * (o + a) + 2 * (o + 1) + e
    counted = agent_network_bytes(cfg, spec, learner=True)
    assert counted.stepped == FLOAT * weights
    assert counted.held == FLOAT * (weights + fixed)
    assert counted.training == FLOAT * (weights + fixed + 3 * weights)


@pytest.mark.parametrize("case", ["pets-value-prior", "dcmpc", "dreamer"])
def test_adams_two_moments_per_stepped_parameter_after_training(case):
    """ADAM_COPIES counts a gradient and two moments: after real updates on CPU, the moments
    the optimisers hold are twice the stepped bytes."""
    cfg, spec = _setup(case)
    agent = make_learner(spec, cfg, "cpu", seed=0)
    _train(agent, _replay(cfg, spec))
    _, optimizers = _reachable(agent)
    moments = sum(s[k].nbytes for o in optimizers for s in o.state.values()
                  for k in ("exp_avg", "exp_avg_sq"))
    assert ADAM_COPIES == 3 and moments == 2 * network_bytes(agent).stepped


def test_networks_too_large_for_this_machine_are_refused_naming_their_keys():
    cfg = apply_overrides(load_preset("debug"), ["model.hidden_size=16384",
                                                 "model.num_layers=64",
                                                 "model.ensemble_size=100"])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    with pytest.raises(ConfigError) as err:  # preflight's check of a local run's networks
        check_network_memory(cfg, spec, agent_class(cfg).size_keys)
    message = str(err.value)
    # 63 hidden-to-hidden layers of 100 members dominate; the learner holds them 4 times
    # (weights, gradients, two moments), the worker and the evaluator once each.
    per_layer = 100 * (16384 * 16384 + 16384) * FLOAT
    need = float(message.split("the networks need ")[1].split(" GiB")[0].replace(",", ""))
    assert 6 * 63 * per_layer / 2**30 < need < 6 * 64 * per_layer / 2**30
    have = 0.8 * local_memory_bytes() - cfg.train.replay_capacity * bytes_per_row(spec)
    assert f"the {have / 2**30:,.1f} GiB left of 80% of this machine's memory" in message
    for key in ("model.ensemble_size=100", "model.hidden_size=16384", "model.num_layers=64",
                "workers.num=1"):
        assert key in message


@pytest.mark.parametrize("preset", sorted(list_presets()))
def test_every_presets_networks_and_replay_fit_a_16_gib_machine(preset, monkeypatch):
    """The paper-size pixel presets are the close ones (about 11.5 GiB of replay)."""
    monkeypatch.setattr(preflight_module, "local_memory_bytes", lambda: 16 * 2**30)
    cfg = load_preset(preset)
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    assert check_network_memory(cfg, spec, agent_class(cfg).size_keys) is None


def test_a_replay_that_leaves_no_room_is_named_too(monkeypatch):
    """A replay that takes all but 1,000 bytes of the share: the refusal names its key too."""
    monkeypatch.setattr(preflight_module, "local_memory_bytes", lambda: 2**30)
    cfg = load_preset("debug")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    rows = (int(0.8 * 2**30) - 1000) // bytes_per_row(spec)
    cfg = apply_overrides(cfg, [f"train.replay_capacity={rows}"])
    with pytest.raises(ConfigError, match=r"lower model\.ensemble_size=3, .*workers\.num=1, "
                                          rf"train\.replay_capacity={rows}"):
        check_network_memory(cfg, spec, agent_class(cfg).size_keys)
