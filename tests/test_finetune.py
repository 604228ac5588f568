"""MBMF's third phase (mbrl_ray/finetune.py, agents/mbmf_ppo.py): RLlib's PPO starts from
exactly the imitation policy that acted, evaluates it by the runs' protocol, and adds its files
to the run without touching the run's own; bad input is refused before torch or Ray load."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mbrl_ray.config import apply_overrides, load_preset

TINY = ["env.id=dummy", "train.steps=300", "train.random_steps=100", "train.steps_per_round=50",
        "mbmf.imitate_from=200", "delta.epochs=2", "delta.hidden_size=16",
        "planner.population=64", "planner.horizon=4", "train.eval_every=100",
        "train.eval_episodes=2", "mbmf.ppo_batch=100", "mbmf.ppo_minibatch=50",
        "mbmf.ppo_epochs=2", "workers.num=1"]


def _cfg(*overrides):
    return apply_overrides(load_preset("mbmf-pendulum"), TINY + list(overrides))


@pytest.mark.unit
def test_the_ppo_module_starts_from_the_imitation_policy():
    import gymnasium as gym
    from ray.rllib.core.columns import Columns

    from mbrl_ray.agents.mbmf import GaussianPolicy
    from mbrl_ray.agents.mbmf_ppo import PolicyModule, policy_weights

    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2, 16, 2)
    policy.norm.fit(torch.randn(50, 3) * 4 + 1)  # statistics travel with the weights
    box = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    module = PolicyModule(observation_space=box,
                          action_space=gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
                          model_config={"hidden": 16, "layers": 2, "std": 0.1,
                                        "init": policy_weights(policy)})
    obs = torch.randn(7, 3) * 4
    out = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    with torch.no_grad():
        assert torch.allclose(out[:, :2], policy(obs))
    assert torch.allclose(out[:, 2:], torch.full((7, 2), float(np.log(0.1))))
    assert module.compute_values({Columns.OBS: obs}).shape == (7,)


def _digests(run_dir):
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.mark.ray
def test_finetune_adds_its_files_and_starts_from_the_policy_that_acted(ray_session, tmp_path):
    from mbrl_ray import finetune
    from mbrl_ray.agents import make_learner
    from mbrl_ray.distributed.driver import Driver
    from mbrl_ray.envs import env_kwargs, env_spec
    from mbrl_ray.evaluate import Request, choose_checkpoint

    run_dir = tmp_path / "run"
    Driver(_cfg(), run_dir, printer=lambda *a, **k: None).run()
    before = _digests(run_dir)
    cfg = finetune.checked_config(run_dir, 200)
    first = finetune.run(run_dir, cfg, printer=lambda *a, **k: None)
    second = finetune.run(run_dir, cfg, printer=lambda *a, **k: None)
    after = _digests(run_dir)
    assert {k: v for k, v in after.items() if k in before} == before  # the run's files as were
    added = sorted({k.split("/")[0] + "/" + k.split("/")[1] for k in after if k not in before})
    assert added == ["finetune-1/policy.pt", "finetune-1/result.json", "finetune-2/policy.pt",
                     "finetune-2/result.json", "tb/finetune-1", "tb/finetune-2"]
    assert json.loads((run_dir / "finetune-1" / "result.json").read_text()) == json.loads(
        json.dumps(first))
    assert first["start_env_steps"] == 300 and first["finetune_env_steps"] >= 200
    assert [step for step, _ in first["evals"]][0] == 300 and first["evals"][-1][0] >= 500

    # The first evaluation is the checkpoint's own imitation policy on the first stream.
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, torch.device("cpu"), seed=cfg.train.seed)
    choose_checkpoint(Request(run_dir), agent, print)
    assert agent.imitating
    assert finetune.policy_evaluator(agent, cfg)(300) == tuple(first["evals"][0])
    assert second["evals"][0] == first["evals"][0]  # both start from that checkpoint
    saved = torch.load(run_dir / "finetune-1" / "policy.pt", weights_only=True)
    assert set(saved) == set(agent.actor.state_dict()) | {"log_std"}
    assert not torch.equal(saved["net.0.weight"], agent.actor.state_dict()["net.0.weight"])


@pytest.mark.ray
def test_finetune_refuses_a_checkpoint_before_the_policy_acted(ray_session, tmp_path):
    from mbrl_ray import finetune
    from mbrl_ray.config import ConfigError
    from mbrl_ray.distributed.driver import Driver

    run_dir = tmp_path / "run"
    Driver(_cfg("train.steps=200", "mbmf.imitate_from=300"), run_dir,
           printer=lambda *a, **k: None).run()
    before = _digests(run_dir)
    with pytest.raises(ConfigError, match="imitation policy has not taken over"):
        finetune.run(run_dir, finetune.checked_config(run_dir, 100))
    assert _digests(run_dir) == before


@pytest.mark.unit
@pytest.mark.parametrize("case, words", [
    ("not-mbmf", ["agent.name='pets'", "continues an mbmf run"]),
    ("zero-steps", ["--steps 0", "positive"]),
])
def test_finetune_bad_input_exits_2_before_torch_loads(tmp_path, case, words):
    from mbrl_ray.run_dir import save_config

    cfg = load_preset("debug") if case == "not-mbmf" else _cfg()
    save_config(cfg, tmp_path)
    code = ("import sys; from mbrl_ray.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules)); sys.exit(rc)")
    args = [str(tmp_path)] + (["--steps", "0"] if case == "zero-steps" else [])
    proc = subprocess.run([sys.executable, "-c", code, "finetune", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.strip().endswith("[]")
    for word in words:
        assert word in proc.stderr


@pytest.mark.ray
def test_train_runs_the_fine_tuning_phase_when_the_config_asks(ray_session, tmp_path, capsys):
    from mbrl_ray.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", "mbmf-pendulum", "--run-dir", str(run_dir), *TINY,
                 "mbmf.finetune_steps=100"]) == 0
    summary = json.loads((run_dir / "finetune-1" / "result.json").read_text())
    assert summary["start_env_steps"] == 300 and summary["finetune_env_steps"] >= 100
    assert "[finetune" in capsys.readouterr().out
    assert main(["train", "mb-mpc-pendulum", "--run-dir", str(tmp_path / "plain"),
                 *[o for o in TINY if not o.startswith(("mbmf", "train.steps"))],
                 "train.steps=150"]) == 0
    assert not list((tmp_path / "plain").glob("finetune-*"))  # no phase for other agents
