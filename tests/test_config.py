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


def test_a_preset_with_a_base_is_its_base_with_the_stated_keys_over_it():
    """dcmpc-mw-reach states only env.id over dcmpc-mw-push, which states its differences over
    dcmpc-walker-walk: a section's unstated keys (env.action_repeat) come from below."""
    reach = to_dict(load_preset("dcmpc-mw-reach"))
    push = apply_overrides(load_preset("dcmpc-mw-push"), ["env.id=metaworld:reach"])
    walker = apply_overrides(load_preset("dcmpc-walker-walk"), [
        "env.id=metaworld:reach", "env.max_episode_steps=200", "dcmpc.nstep=3",
        "dcmpc.explore_std_end=0.05", "train.random_steps=1000", "train.pretrain_updates=1000"])
    for below in (push, walker):
        below.preset = "dcmpc-mw-reach"
        assert reach == to_dict(below)
    assert reach["env"]["action_repeat"] == 2 and reach["dcmpc"]["latent_dim"] == 512


@pytest.mark.parametrize("files, words", [
    ({"a": "base: nothing-here\n"}, ["preset 'a': base='nothing-here' is not a preset",
                                     "allowed: a"]),
    ({"a": "base: b\n", "b": "base: a\n"}, ["preset 'b': base='a' makes a cycle (a -> b -> a)"]),
    ({"a": "base: a\n"}, ["preset 'a': base='a' makes a cycle (a -> a)"]),
    ({"a": "base: b\nenv: {nope: 1}\n", "b": "env: {id: debug}\n"}, ["unknown key 'env.nope'"]),
])
def test_a_bad_base_is_refused_naming_the_preset_and_the_chain(tmp_path, monkeypatch, files,
                                                                words):
    from mbrl_ray.config import loading

    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(f"description: {name}\n{text}")
    monkeypatch.setattr(loading, "preset_dir", lambda: tmp_path)
    with pytest.raises(ConfigError) as err:
        load_preset("a")
    for word in words:
        assert word in str(err.value)


def test_a_base_preset_deep_merges_and_keeps_the_variants_description(tmp_path, monkeypatch):
    from mbrl_ray.config import loading

    (tmp_path / "b.yaml").write_text("description: the base\nenv: {id: debug, action_repeat: 3}\n"
                                     "train: {steps: 700, eval_every: 100}\n")
    (tmp_path / "a.yaml").write_text("description: the variant\nbase: b\n"
                                     "train: {steps: 900}\n")
    monkeypatch.setattr(loading, "preset_dir", lambda: tmp_path)
    cfg = load_preset("a")
    assert (cfg.env.id, cfg.env.action_repeat, cfg.train.steps, cfg.train.eval_every) == (
        "debug", 3, 900, 100)
    assert cfg.preset == "a" and list_presets() == {"a": "the variant", "b": "the base"}
