"""A table of bad inputs, each run as a user would (a fresh `mbrl-ray` process): exit 2, one
message naming the key or the file, no Ray session, no torch loaded, an answer in under a
second, and nothing written."""
import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import json, sys, time
t0 = time.perf_counter()
from mbrl_ray.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0,
                  "loaded": [m for m in ("torch", "ray", "gymnasium", "mujoco") if m in sys.modules]}))
"""

TRAIN = [  # (overrides or options after `train debug`, words the message must hold)
    (["planner.horizn=3"], ["planner.horizn", "planner.horizon"]),
    (["train.eval_max_lag=-2"], ["train.eval_max_lag=-2", ">= 0", "-1"]),
    (["workers.num=two"], ["workers.num='two'", "int"]),
    (["workers.num=0"], ["workers.num=0", "positive"]),
    (["--steps", "-1"], ["train.steps=-1", "positive"]),
    (["--steps", "123456789012345678901"], ["train.steps=123456789012345678901", "exceeds"]),
    (["--seed", "-1"], ["train.seed=-1", "0 .. 2147483647"]),
    (["--seed", "18446744073709551616"], ["train.seed=18446744073709551616", "0 .."]),
    (["planner.horizon=100000"], ["planner.horizon=100000", "exceeds 1,000"]),
    (["planner.iterations=1000000"], ["planner.iterations=1000000", "exceeds"]),
    (["model.particles=1000000"], ["model.particles=1000000", "exceeds"]),
    (["planner.population=1000000"], ["planner.population=1000000", "exceeds"]),
    (["model.lr=-1"], ["model.lr=-1.0", "> 0"]),
    (["model.lr=.nan"], ["model.lr=nan", "finite"]),
    (["model.lr=.inf"], ["model.lr=inf", "finite"]),
    (["sac.lr=0"], ["sac.lr=0.0", "> 0"]),
    (["sac.lr=-.inf"], ["sac.lr=-inf", "finite"]),
    (["model.weight_decay=-0.1"], ["model.weight_decay=-0.1", ">= 0"]),
    (["planner.init_std=0"], ["planner.init_std=0.0", "> 0"]),
    (["planner.init_std=-1"], ["planner.init_std=-1.0", "> 0"]),
    (["planner.temperature=.nan"], ["planner.temperature=nan", "finite"]),
    (["planner.value_weight=.inf"], ["planner.value_weight=inf", "finite"]),
    (["planner.min_std=0"], ["planner.min_std=0.0", "0 < min_std"]),
    (["planner.population_decay=0.5"], ["planner.population_decay=0.5", ">= 1"]),
    (["planner.population=1", "planner.num_elites=1"], ["planner.num_elites=1", "undefined"]),
    (["planner.num_elites=0"], ["planner.num_elites=0", "positive"]),
    (["planner.num_elites=100"], ["planner.num_elites=100", "planner.population=64"]),
    (["model.num_elites=9"], ["model.num_elites=9", "model.ensemble_size=3"]),
    (["planner.posterior=lst", "planner.name=mppi"], ["planner.posterior='lst'", "'mppi'"]),
    (["planner.sweeps=3"], ["planner.sweeps=3", "planner.name=smcp", "'cem'"]),
    (["planner.sweeps=0"], ["planner.sweeps=0", "positive"]),
    (["planner.prior_weight=1", "planner.name=smcp"], ["planner.prior_weight=1.0", "'smcp'"]),
    (["planner.prior_init=true"], ["planner.prior_init=true", "planner.prior_samples=0"]),
    (["planner.info_term=entropy"], ["planner.info_term='entropy'", "mi, std"]),
    (["planner.name=foo"], ["planner.name='foo'", "cem, icem"]),
    (["agent.name=dreamr"], ["agent.name='dreamr'", "pets, sac, mbpo", "dreamer"]),
    (["agent.name=planet", "env.obs=pixels", "env.image_size=40"],
     ["env.image_size=40", "rssm.cnn_layers=4", "multiple of 16"]),
    (["agent.name=planet", "planner.name=smcp"], ["agent.name='planet'", "planner.name='smcp'"]),
    (["rssm.kl_balance=1"], ["rssm.kl_balance=1.0", "[0, 1)"]),
    (["rssm.seq_len=0"], ["rssm.seq_len=0", "positive"]),
    (["rssm.latent=vq"], ["rssm.latent='vq'", "gaussian, categorical"]),
    (["dreamer.lam=1.5"], ["dreamer.lam=1.5", "[0, 1]"]),
    (["dreamer.slow_critic_rate=0"], ["dreamer.slow_critic_rate=0.0", "strictly between"]),
    (["env.obs=pixel"], ["env.obs='pixel'", "state, pixels"]),
    (["sac.gamma=1.5"], ["sac.gamma=1.5", "[0, 1]"]),
    (["sac.tau=0"], ["sac.tau=0.0", "strictly between 0 and 1"]),
    (["model.holdout=1"], ["model.holdout=1.0", "strictly between"]),
    (["train.samples_per_insert=0"], ["train.samples_per_insert=0.0", "> 0"]),
    (["train.eval_every=-1"], ["train.eval_every=-1", ">= 0"]),
    (["workers.max_restarts=-1"], ["workers.max_restarts=-1", ">= 0"]),
    (["learner.max_restarts=-2"], ["learner.max_restarts=-2", ">= 0"]),
    (["ray.resource_wait_s=.inf"], ["ray.resource_wait_s=inf", "finite"]),
    (["learner.device=tpu"], ["learner.device='tpu'", "cuda:N"]),
    (["learner.device=cuda"], ["learner.device='cuda'", "0 CUDA GPU"]),
    (["workers.device=cuda:7"], ["workers.device='cuda:7'", "0 CUDA GPU"]),
    (["learner.num_gpus=1"], ["learner.num_gpus=1", "0 CUDA GPU"]),
    (["env.action_repeat=0"], ["env.action_repeat=0", "positive"]),
    (["train.video_size=100000"], ["train.video_size=100000", "exceeds"]),
    (["dcmpc.fsq_levels=[1,3]"], ["dcmpc.fsq_levels=[1, 3]", ">= 2"]),
    (["dcmpc.fsq_levels=[]"], ["dcmpc.fsq_levels=[]", "one or more levels"]),
    (["dcmpc.fsq_levels=5"], ["dcmpc.fsq_levels=5", "list of int"]),
    (["dcmpc.reward_range=[2,0]"], ["dcmpc.reward_range=[2.0, 0.0]", "low < high"]),
    (["dcmpc.reward_range=[1]"], ["dcmpc.reward_range=[1.0]", "[low, high]"]),
    (["dcmpc.explore_decay_from=pretrain"], ["dcmpc.explore_decay_from", "pretrain_end"]),
    (["dcmpc.nstep=6"], ["dcmpc.nstep=6", "dcmpc.horizon=5", "sequences"]),
    (["dcmpc.num_q=1"], ["dcmpc.num_q=1", "at least 2"]),
    (["dcmpc.horizon=5000"], ["dcmpc.horizon=5000", "exceeds"]),
    (["dcmpc.rho=1.5"], ["dcmpc.rho=1.5", "[0, 1]"]),
    (["agent.name=dcmpc", "planner.name=smcp"], ["agent.name='dcmpc'", "planner.name='smcp'"]),
    (["agent.name=mbmf", "train.random_steps=500", "mbmf.imitate_from=100"],
     ["mbmf.imitate_from=100", "train.random_steps=500"]),
    (["agent.name=mbmf", "train.schedule=async"], ["agent.name='mbmf'", "sync"]),
    (["agent.name=gps", "env.id=Hopper-v5"], ["agent.name='gps'", "env.id='Hopper-v5'",
                                              "Reacher-v5"]),
    (["agent.name=gps", "env.id=Reacher-v5", "env.max_episode_steps=50"],
     ["env.conditions must be >= 1", "not 0"]),
    (["agent.name=gps", "env.id=Reacher-v5", "env.conditions=4"],
     ["env.max_episode_steps >= 1", "not 0"]),
    (["agent.name=gps", "env.id=Reacher-v5", "env.conditions=4", "env.max_episode_steps=50",
      "train.steps_per_round=120"], ["train.steps_per_round=120", "multiple of", "= 100"]),
    (["agent.name=gps", "env.id=Reacher-v5", "env.conditions=4", "env.max_episode_steps=50",
      "train.random_steps=150"], ["train.random_steps=150", "multiple of", "= 100"]),
    (["gps.policy_step=reinforce"], ["gps.policy_step", "importance", "supervised"]),
    (["agent.name=pilco", "env.id=Pendulum-v1"], ["agent.name='pilco'", "env.id='Pendulum-v1'",
                                                  "mbrl_ray/CartPoleSwingUp-v0"]),
    (["agent.name=pilco", "env.id=mbrl_ray/CartPoleSwingUp-v0", "train.schedule=async"],
     ["agent.name='pilco'", "sync", "'async'"]),
    (["agent.name=pilco", "env.id=mbrl_ray/CartPoleSwingUp-v0"],
     ["env.max_episode_steps >= 1", "not 0"]),
    (["pilco.basis=0"], ["pilco.basis=0"]),
    (["pilco.inducing=-1"], ["pilco.inducing=-1"]),
    (["agent.name=deep-pilco", "env.id=Pendulum-v1"], ["agent.name='deep-pilco'",
                                                       "env.id='Pendulum-v1'"]),
    (["deep_pilco.dropout=1"], ["deep_pilco.dropout=1", "strictly between 0 and 1"]),
    (["agent.name=deep-pilco", "deep_pilco.particles=1"], ["deep_pilco.particles=1", ">= 2"]),
    (["deep_pilco.policy_gradient=ppo"], ["deep_pilco.policy_gradient", "pathwise",
                                          "reinforce"]),
    (["agent.name=mb-mpc", "planner.value_weight=1"], ["agent.name='mb-mpc'",
                                                        "value_weight=1.0"]),
    (["delta.hidden_size=100000"], ["delta.hidden_size=100000", "exceeds 16,384"]),
    # Issue 45 (5): each of these ran into Ray, a traceback, a wrong message or out of memory.
    (["ray.address=foo"], ["ray.address='foo'", "not a Ray address", "HOST:PORT"]),
    (["ray.address=127.0.0.1:1"], ["ray.address='127.0.0.1:1'", "cannot be reached"]),
    (["ray.address=127.0.0.1:99999"], ["ray.address='127.0.0.1:99999'", "not a Ray address"]),
    (["workers.num=10000"], ["workers.num x workers.num_cpus", "= 5000.5 CPUs", "local Ray has"]),
    (["ray.num_cpus=1", "workers.num_cpus=1"], ["= 1.5 CPUs", "local Ray has 1 (ray.num_cpus)"]),
    (["model.hidden_size=1000000"], ["model.hidden_size=1000000", "exceeds 16,384"]),
    (["rssm.deter=100000"], ["rssm.deter=100000", "exceeds 16,384"]),
    (["sac.num_layers=1000"], ["sac.num_layers=1000", "exceeds 64"]),
    (["dcmpc.fsq_levels=[1000,1000,1000]"], ["dcmpc.fsq_levels=[1000, 1000, 1000]",
                                              "1,000,000,000 codes", "65,536"]),
    (["env.id=dmc:"], ["env.id='dmc:'", "'dmc:<domain>-<task>'"]),
    (["env.id=a b"], ["env.id='a b'", "Gymnasium id"]),
    (["=5"], ["override '=5' has no key"]),
    (["model.lr=[1"], ["model.lr='[1'", "cannot be read"]),
]


def _run(argv: list[str], cwd) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _check(argv, words, tmp_path, loaded=()):
    """loaded: modules the check may import (the env registries)."""
    t0 = time.perf_counter()
    result, err = _run(argv, tmp_path)
    wall = time.perf_counter() - t0
    assert result["code"] == 2, err
    for word in words:
        assert word in err, err
    assert err.count("\n") == 1, err  # one message, no traceback
    assert set(result["loaded"]) <= set(loaded), result  # before torch, Ray (and the envs)
    # Measured ~0.2 s (whole process) on a 2-core machine; the target is under 1 s.
    assert result["seconds"] < 1.0 and wall < 3.0, (result, wall)


@pytest.mark.parametrize("args, words", TRAIN, ids=[" ".join(a) for a, _ in TRAIN])
def test_bad_train_input(args, words, tmp_path):
    run = tmp_path / "run"
    _check(["train", "debug", *args, "--run-dir", str(run)], words, tmp_path)
    assert not run.exists()


UNREGISTERED = [  # issue 45 (5): 2-3 s when the check imported the suites
    ("HalfCheetah-v99", ["not a registered Gymnasium id", "HalfCheetah-v5"]),
    ("dmc:cheetah-runn", ["unknown dmc task 'cheetah-runn'", "dmc:cheetah-run"]),
    ("metaworld:door-openn", ["unknown metaworld task 'door-openn'", "metaworld:door-open"]),
]


@pytest.mark.parametrize("env_id, words", UNREGISTERED, ids=[e for e, _ in UNREGISTERED])
def test_an_unregistered_env_id(env_id, words, tmp_path):
    """Checked against the registries (Gymnasium's, our lists of the suites' tasks) without
    importing a simulator suite, torch or Ray."""
    run = tmp_path / "run"
    _check(["train", "debug", f"env.id={env_id}", "--run-dir", str(run)],
           [f"env.id={env_id!r}", *words], tmp_path, loaded=("gymnasium", "mujoco"))
    assert not run.exists()


def test_unknown_preset(tmp_path):
    _check(["train", "no-such-preset", "--run-dir", str(tmp_path / "r")],
           ["unknown preset", "'no-such-preset'", "debug"], tmp_path)


def test_run_dir_that_cannot_be_written(tmp_path):
    """Issue 45 (5): a read-only --run-dir ran into an OSError traceback. /proc takes no file,
    even from root (for whom permission bits do not hold)."""
    _check(["train", "debug", "--run-dir", "/proc/mbrl-ray-run"],
           ["run dir '/proc/mbrl-ray-run' is not writable", "choose another --run-dir"],
           tmp_path)


def test_run_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("mine")
    _check(["train", "debug", "--run-dir", str(tmp_path / "file")], ["file", "is a file"],
           tmp_path)
    assert (tmp_path / "file").read_text() == "mine"


def test_run_dir_that_holds_a_run_is_never_overwritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name, text in (("config.yaml", "env: {id: dummy}\n"), ("result.json", "{}")):
        (run / name).write_text(text)
    (run / "tb").mkdir()
    _check(["train", "debug", "--run-dir", str(run)], ["already holds a run", "mbrl-ray resume"],
           tmp_path)
    assert (run / "config.yaml").read_text() == "env: {id: dummy}\n"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "result.json", "tb"]


@pytest.mark.parametrize("content, words", [
    ("- a\n- b\n", ["config.yaml", "mapping", "list"]),
    ("env:\n\tid: dummy\n", ["config.yaml", "not valid YAML"]),
    ("planner: {horizn: 3}\n", ["config.yaml", "planner.horizn"]),
    ("model: {lr: -1}\n", ["model.lr=-1.0", "> 0"]),
    ("\xff\xfe", ["config.yaml", "not valid YAML"]),
], ids=["list", "tab", "unknown-key", "bad-value", "binary"])
def test_bad_run_config_on_resume(content, words, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes(content.encode("latin-1"))
    _check(["resume", str(run)], words, tmp_path)
    assert (run / "config.yaml").read_bytes() == content.encode("latin-1")


@pytest.mark.parametrize("make, words", [
    (lambda p: None, ["does not exist", "not a run directory"]),
    (lambda p: p.write_text("x"), ["is a file", "not a run directory"]),
    (lambda p: p.mkdir(), ["no config.yaml", "not a run directory"]),
], ids=["missing", "file", "empty-dir"])
def test_resume_of_what_is_not_a_run(make, words, tmp_path):
    make(tmp_path / "run")
    _check(["resume", str(tmp_path / "run")], words, tmp_path)


@pytest.mark.parametrize("args, words", [
    (["--episodes", "0"], ["--episodes 0", "positive"]),
    (["planner.horizn=3"], ["planner.horizn", "planner.horizon"]),
    (["--out", "{run}/x"], ["lies inside the run dir"]),
    (["--video"], ["--video needs --out"]),
], ids=["episodes", "key", "out-inside", "video-without-out"])
def test_bad_eval_input(args, words, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("env: {id: dummy}\n")
    _check(["eval", str(run), *(a.format(run=run) for a in args)], words, tmp_path)


@pytest.mark.parametrize("args, words", [
    (["{missing}"], ["does not exist", "not a run directory"]),
    (["{run}", "--out", "fig.jpg"], ["--out 'fig.jpg'", ".png, .pdf, .svg"]),
], ids=["missing", "out-suffix"])
def test_bad_compare_input(args, words, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("env: {id: dummy}\n")
    names = {"run": run, "missing": tmp_path / "missing"}
    _check(["compare", *(a.format(**names) for a in args)], words, tmp_path)


def test_resume_with_a_bad_step_budget(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("env: {id: dummy}\n")
    _check(["resume", str(run), "--steps", "0"], ["train.steps=0", "positive"], tmp_path)


def test_a_replay_this_machine_cannot_hold_is_refused_before_anything_starts(tmp_path):
    """Issue 45: a replay of 10^10 rows (35 bytes each on the dummy env: 326 GiB) is refused
    once the env's spec is known (the env loads: not the under-a-second table above), naming
    the key, the memory it needs and the most this machine allows; nothing written."""
    from mbrl_ray.config.machine import local_memory_bytes

    run = tmp_path / "run"
    result, err = _run(["train", "debug", "train.replay_capacity=10000000000", "--run-dir",
                        str(run)], tmp_path)
    assert result["code"] == 2 and err.count("\n") == 1, err
    most = int(0.8 * local_memory_bytes()) // 35
    for words in ("train.replay_capacity=10,000,000,000 rows of 35 bytes need 326.0 GiB",
                  f"train.replay_capacity <= {most:,}"):
        assert words in err, err
    assert not run.exists()


def test_networks_this_machine_cannot_hold_are_refused_before_anything_starts(tmp_path):
    """Issue 45 (5): 64 layers of 16,384 units in 100 members pass every key's bound but need
    about 38,000 GiB; counted on the meta device once the env is known, refused naming the
    keys that size the networks, nothing written."""
    run = tmp_path / "run"
    result, err = _run(["train", "debug", "model.hidden_size=16384", "model.num_layers=64",
                        "model.ensemble_size=100", "--run-dir", str(run)], tmp_path)
    assert result["code"] == 2 and err.count("\n") == 1, err
    for words in ("the networks need 37,80", "weights, targets, gradients and Adam moments",
                  "model.ensemble_size=100, model.hidden_size=16384, model.num_layers=64"):
        assert words in err, err
    assert not run.exists()
