"""Bad input: one clear message and exit status 2 before any actor starts."""
import importlib.util
import os
import subprocess
import sys

import pytest
import ray

from mbrl_ray.cli import main

pytestmark = pytest.mark.unit


def _bad(capsys, tmp_path, argv):
    was_up = ray.is_initialized()
    code = main(argv + ["--run-dir", str(tmp_path / "run")] if argv[0] == "train" else argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert ray.is_initialized() == was_up          # no Ray started for bad input
    assert not (tmp_path / "run").exists()         # nothing written
    return err


@pytest.mark.parametrize("argv, words", [
    (["train", "no-such-preset"], ["unknown preset", "'no-such-preset'", "debug"]),
    (["train", "debug", "planner.horizn=3"], ["planner.horizn", "planner.horizon"]),
    (["train", "debug", "workers.num=two"], ["workers.num='two'", "int"]),
    (["train", "debug", "env.id=HalfCheeta-v5"], ["env.id='HalfCheeta-v5'", "HalfCheetah-v5"]),
    (["train", "debug", "workers.num=0"], ["workers.num=0", "positive"]),
    (["train", "debug", "--steps", "-1"], ["train.steps=-1", "positive"]),
    (["train", "debug", "--seed", "-1"], ["train.seed=-1", "0 .. 2147483647"]),
    (["train", "debug", "train.replay_capacity=50"],
     ["train.replay_capacity=50", "below one batch", "model.ensemble_size x model.batch_size"]),
    (["train", "debug", "agent.name=mbpo", "train.schedule=async"],
     ["agent.name='mbpo'", "train.schedule sync", "'async'"]),
    (["train", "debug", "train.schedule=async", "train.spi_error_buffer=10"],
     ["train.spi_error_buffer=10", "model.ensemble_size x model.batch_size = 96 rows: 384"]),
    (["train", "debug", "train.schedule=async", "train.eval_max_lag=3",
      "train.updates_per_round=10", "train.spi_error_buffer=400"],
     ["train.eval_max_lag=3", "4 updates of 96 rows", "must be >= 6"]),
])
def test_bad_input_exits_2_with_clear_message(capsys, tmp_path, argv, words):
    err = _bad(capsys, tmp_path, argv)
    for word in words:
        assert word in err


@pytest.mark.parametrize("module, spec, extra", [("dm_control", "dmc:cheetah-run", "dmc"),
                                                 ("metaworld", "metaworld:reach", "metaworld")])
def test_missing_optional_extra(capsys, tmp_path, monkeypatch, module, spec, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # as on a machine without the extra
                        lambda name, *a: None if name == module else real(name, *a))
    err = _bad(capsys, tmp_path, ["train", "debug", f"env.id={spec}"])
    assert f"mbrl-ray[{extra}]" in err and f"env.id='{spec}'" in err


@pytest.mark.parametrize("override, words", [
    ("env.id=dmc:cheetah-rn", ["unknown dmc task 'cheetah-rn'", "dmc:cheetah-run"]),
    ("env.id=metaworld:door-opn", ["unknown metaworld task", "metaworld:door-open"]),
    ("env.id=dmcc:cheetah-run", ["unknown suite 'dmcc'", "did you mean dmc"]),
    ("env.obs=pixel", ["env.obs='pixel'", "state, pixels"]),
    ("env.obs=pixels", ["env.obs='pixels'", "agent.name='pets'", "state observations",
                        "(3, 64, 64)"]),
    ("env.action_repeat=0", ["env.action_repeat=0", "positive"]),
])
def test_bad_env_input_exits_2(capsys, tmp_path, override, words):
    err = _bad(capsys, tmp_path, ["train", "debug", override])
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("override, words", [
    ("env.obs=pixels", ["agent.name='dcmpc'", "state observations", "(3, 64, 64)"]),
    ("train.schedule=sync", ["agent.name='dcmpc'", "async", "'sync'"]),
    ("train.replay_capacity=4", ["train.replay_capacity=4", "sequence of 6 rows"]),
])
def test_dcmpc_input_it_cannot_run_exits_2(capsys, tmp_path, override, words):
    err = _bad(capsys, tmp_path, ["train", "dcmpc-debug", override])
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("preset", ["planet-debug", "dreamer-debug"])
@pytest.mark.parametrize("overrides, words", [
    (["env.id=CartPole-v1", "env.obs=pixels"], ["env.id='CartPole-v1'", "MuJoCo-based envs"]),
    (["rssm.seq_len=64", "train.replay_capacity=50"],
     ["train.replay_capacity=50", "sequence of 64 rows", "rssm.seq_len"]),
    (["train.schedule=sync"], ["'sync'", "async"]),
])
def test_rssm_agent_input_it_cannot_run_exits_2(capsys, tmp_path, preset, overrides, words):
    err = _bad(capsys, tmp_path, ["train", preset, *overrides])
    for word in words:
        assert word in err, err


def test_sequence_longer_than_the_replay_is_refused():
    """An agent's B x L sequences must fit the replay (the check is the driver's, asked of
    the batch spec)."""
    from mbrl_ray.config import ConfigError, apply_overrides, load_preset
    from mbrl_ray.distributed.preflight import check_batch
    from mbrl_ray.replay import BatchSpec

    cfg = apply_overrides(load_preset("debug"), ["train.replay_capacity=1000"])
    check_batch(cfg, BatchSpec("sequences", 16, length=64, keys="x.batch"))
    with pytest.raises(ConfigError, match=r"train.replay_capacity=1000 cannot hold one "
                                          r"sequence of 5000 rows"):
        check_batch(cfg, BatchSpec("sequences", 16, length=5000, keys="x.batch"))


def test_bad_resume_keeps_saved_run(capsys, tmp_path):
    run = tmp_path / "saved"
    run.mkdir()
    (run / "config.yaml").write_text("env: {id: dummy}\n")
    before = (run / "config.yaml").read_text()
    assert main(["resume", str(run), "--steps", "0"]) == 2
    assert "train.steps=0" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == before
    assert main(["resume", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_presets_and_help_subprocess():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-m", "mbrl_ray.cli", "presets"], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert "pets-pendulum" in out and "debug" in out
    out = subprocess.run([sys.executable, "-m", "mbrl_ray.cli", "train", "--help"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert "planner.horizon" in out and "workers.envs_per_worker" in out
    bad = subprocess.run([sys.executable, "-m", "mbrl_ray.cli", "train", "debug", "x.y=1"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "unknown key 'x.y'" in bad.stderr


def test_only_a_ray_the_run_starts_itself_is_put_on_loopback(monkeypatch):
    """A local run's Ray listens on 127.0.0.1 (tests/test_reliability.py checks the sockets);
    an address or RAY_ADDRESS (a job's cluster) is joined as it is."""
    from mbrl_ray.distributed.loopback import starts_a_new_ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert starts_a_new_ray("local")
    assert not starts_a_new_ray("10.0.0.7:6379")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")
    assert not starts_a_new_ray(None)
    assert starts_a_new_ray("local")
