import pytest

from mbrl_ray.config import (ConfigError, apply_overrides, from_dict, list_presets, load_preset,
                             to_dict, validate)

pytestmark = pytest.mark.unit


def test_presets_load_and_validate():
    names = list_presets()
    assert {"debug", "pets-pendulum", "pets-halfcheetah"} <= set(names)
    for name in names:
        cfg = validate(load_preset(name))
        assert cfg.preset == name and names[name]


def test_halfcheetah_preset_is_paper_size():
    cfg = load_preset("pets-halfcheetah")
    m, p = cfg.model, cfg.planner
    assert (m.ensemble_size, m.num_layers, m.hidden_size, m.particles) == (5, 4, 200, 20)
    assert (p.population, p.num_elites, p.iterations, p.horizon) == (500, 50, 5, 30)
    assert m.propagation == "ts_inf"


def test_overrides_are_typed_and_round_trip():
    cfg = apply_overrides(load_preset("debug"), ["planner.horizon=20", "planner.alpha=0",
                                                 "env.id=Reacher-v5", "train.schedule=async"])
    assert cfg.planner.horizon == 20 and cfg.planner.alpha == 0.0
    assert isinstance(cfg.planner.alpha, float)
    assert from_dict(to_dict(cfg)) == cfg
    # YAML 1.1 reads exponents without a dot as strings; float keys take them all the same
    changed = apply_overrides(cfg, ["model.lr=2e-3", "sac.lr=3E-4"])
    assert changed.model.lr == 2e-3 and changed.sac.lr == 3e-4
    assert cfg.model.lr != 2e-3 and cfg.planner.horizon == 20  # the input is left as it was


@pytest.mark.parametrize("override, words", [
    ("planner.horizn=3", ["planner.horizn", "planner.horizon"]),
    ("plannr.horizon=3", ["plannr", "planner"]),
    ("planner.horizon=ten", ["planner.horizon", "'ten'", "int"]),
    ("planner.horizon", ["key.sub=value"]),
])
def test_bad_overrides_name_key_and_value(override, words):
    with pytest.raises(ConfigError) as err:
        apply_overrides(load_preset("debug"), [override])
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("override, words", [
    ("workers.num=0", ["workers.num=0", "positive"]),
    ("planner.population=-5", ["planner.population=-5", "positive"]),
    ("model.holdout=1.5", ["model.holdout=1.5"]),
    ("model.propagation=ts2", ["model.propagation='ts2'", "ts1, ts_inf"]),
    ("model.num_elites=9", ["model.num_elites=9", "model.ensemble_size"]),
    ("learner.device=gpu0", ["learner.device='gpu0'", "cuda:N"]),
])
def test_validation_names_key_value_and_allowed(override, words):
    cfg = apply_overrides(load_preset("debug"), [override])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    for word in words:
        assert word in str(err.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError) as err:
        load_preset("pets-pendulm")
    assert "pets-pendulum" in str(err.value)
