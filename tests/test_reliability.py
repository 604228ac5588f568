"""Nothing lost: broken checkpoints, non-finite values, killed actors, and what a user sees."""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mbrl_ray.cli import main
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.distributed import checkpoint as ckpt
from mbrl_ray.distributed.driver import Driver, checkpoint_interval
from mbrl_ray.finite import check_finite, first_nonfinite, NonFiniteError


def _debug_run(tmp_path, name, overrides=(), resume=False):
    lines = []
    cfg = apply_overrides(load_preset("debug"), list(overrides))
    result = Driver(cfg, tmp_path / name, resume=resume,
                    printer=lambda *a, **k: lines.append(" ".join(map(str, a)))).run()
    return result, lines


def _steps(run_dir, tag):
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def _all_steps(run_dir) -> dict[str, list[int]]:
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


# ---- units: no Ray ---------------------------------------------------------------------------
@pytest.mark.unit
def test_checkpoints_at_least_every_tenth_of_the_steps_by_default():
    cfg = load_preset("pets-pendulum")
    assert cfg.train.checkpoint_every == 0 and checkpoint_interval(cfg) == 500
    assert checkpoint_interval(apply_overrides(cfg, ["train.checkpoint_every=300"])) == 300


@pytest.mark.unit
def test_first_nonfinite_names_the_entry():
    tree = {"a": torch.ones(3), "b": [np.zeros(2), {"c": torch.tensor([1.0, float("nan")])}],
            "steps": torch.tensor([5]), "x": 1.0}
    assert first_nonfinite(tree) == "b.1.c"
    assert first_nonfinite({"ok": torch.ones(2), "n": None}) is None
    with pytest.raises(NonFiniteError, match=r"non-finite loss: v"):
        check_finite({"v": float("inf")}, "loss")


@pytest.mark.unit
def test_a_checkpoint_with_code_in_it_is_refused(tmp_path):
    """learner.pt loads with weights_only=True: a pickled object (which could run code) makes
    the checkpoint unusable instead of being executed."""
    path = tmp_path / "step_000000100"
    path.mkdir()
    np.savez(path / "replay.npz", obs=np.zeros(3))
    torch.save({"agent": {"w": torch.ones(2)}, "version": 1, "x": Exploit()}, path / "learner.pt")
    (path / "counters.json").write_text(json.dumps({"env_steps": 100, "replay": {}}))
    assert "does not load" in ckpt.problem(path)
    torch.save({"agent": {"w": torch.ones(2)}, "version": 1}, path / "learner.pt")
    assert ckpt.problem(path) is None


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.unit
def test_checkpoint_problems_name_the_broken_file(tmp_path):
    path = tmp_path / "run" / "checkpoints" / "step_000000100"
    path.mkdir(parents=True)
    np.savez(path / "replay.npz", obs=np.zeros(1000))
    torch.save({"agent": {"w": torch.ones(2)}, "version": 1}, path / "learner.pt")
    (path / "counters.json").write_text(json.dumps({"env_steps": 100, "replay": {}, "files": {
        "replay.npz": (path / "replay.npz").stat().st_size,
        "learner.pt": (path / "learner.pt").stat().st_size}}))
    assert ckpt.problem(path) is None
    os.truncate(path / "replay.npz", 500)
    assert f"{path / 'replay.npz'} is truncated" in ckpt.problem(path)
    (path / "counters.json").write_text("{not json")
    assert f"{path / 'counters.json'} is unreadable" in ckpt.problem(path)
    warnings = []
    assert ckpt.choose(tmp_path / "run", warnings.append) is None
    assert "step_000000100 is broken" in warnings[0]


# ---- whole runs on the session's Ray ---------------------------------------------------------
@pytest.mark.ray
def test_resume_falls_back_past_a_truncated_checkpoint_and_keeps_tensorboard(
        ray_session, tmp_path, capsys):
    first, _ = _debug_run(tmp_path, "run")  # a checkpoint every round (120 steps due), 2 kept
    run = first.run_dir
    assert [p.name for p in ckpt.committed(run)] == ["step_000001000", "step_000001200"]
    evals_before = _steps(run, "eval/episodic_return")
    assert evals_before[-1] == 1200  # the final evaluation
    newest = run / "checkpoints" / "step_000001200" / "learner.pt"
    os.truncate(newest, newest.stat().st_size // 2)

    code = main(["resume", str(run), "--steps", "1400"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "checkpoint step_000001200 is broken" in out.err and str(newest) in out.err
    assert (run / "checkpoints" / "step_000001200.broken" / "learner.pt").exists()  # kept
    steps = _all_steps(run)
    for tag, seen in steps.items():  # one point per step and tag, across both runs
        assert len(seen) == len(set(seen)), (tag, seen)
    assert steps["eval/episodic_return"][-1] == 1400
    assert 1000 in steps["charts/episodic_return"]  # logged before the fallback's step: kept
    assert json.loads((run / "result.json").read_text())["env_steps"] == 1400


@pytest.mark.ray
def test_resume_keeps_the_points_logged_at_the_checkpoint_step(ray_session, tmp_path):
    first, _ = _debug_run(tmp_path, "run", ["train.steps=600"])
    before = _all_steps(first.run_dir)
    assert 600 in before["eval/episodic_return"]  # the final evaluation, at the checkpoint step
    _debug_run(tmp_path, "run", ["train.steps=800"], resume=True)
    after = _all_steps(first.run_dir)
    for tag, seen in before.items():
        assert [s for s in after[tag] if s <= 600] == seen, tag
    assert after["eval/episodic_return"][-1] == 800


@pytest.mark.ray
def test_a_resume_without_any_usable_checkpoint_changes_nothing(ray_session, tmp_path, capsys):
    first, _ = _debug_run(tmp_path, "run", ["train.steps=400"])
    run = first.run_dir
    for path in ckpt.committed(run):
        (path / "counters.json").write_text("garbage")
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["resume", str(run), "--steps", "600"]) == 2
    err = capsys.readouterr().err
    assert "no usable checkpoint" in err and "counters.json is unreadable" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files


@pytest.mark.ray
def test_the_final_evaluation_runs_once(ray_session, tmp_path):
    result, _ = _debug_run(tmp_path, "run")  # eval_every=600 of 1200 steps
    counters = ckpt.read_counters(ckpt.latest(result.run_dir))
    assert counters["evals"] == 2  # at 600 and the final one at 1200


@pytest.mark.ray
def test_a_non_finite_loss_stops_the_run_clearly(ray_session, tmp_path, capsys):
    """model.lr=1e6 drives the ensemble to NaN: the run stops with exit 1 naming the quantity
    and the last good checkpoint; no NaN reaches a checkpoint; result.json is valid JSON."""
    run = tmp_path / "run"
    code = main(["train", "debug", "model.lr=1e6", "train.checkpoint_every=200",
                 "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "non-finite" in err and "run stopped at env step" in err and "checkpoint" in err
    result = json.loads((run / "result.json").read_text())  # strict JSON: no bare NaN
    assert result["stopped"].startswith("run stopped")
    for path in ckpt.committed(run):
        state = torch.load(path / "learner.pt", weights_only=True)
        assert first_nonfinite(state) is None, path


@pytest.mark.ray
def test_chaos_workers_killed_every_few_seconds_and_the_learner_once(ray_session, tmp_path):
    """A rollout worker is killed every 4 s and the learner once, mid-run: the run completes,
    the replay holds exactly the env steps reported, and every TensorBoard step appears once
    per tag."""
    import ray

    cfg = apply_overrides(load_preset("debug"), ["workers.num=2", "workers.num_cpus=0.25",
                                                  "workers.max_restarts=50",
                                                  "train.steps=1600"])
    lines = []
    driver = Driver(cfg, tmp_path / "run",
                    printer=lambda *a, **k: lines.append(" ".join(map(str, a))))
    kills = {"workers": 0, "learner": 0}
    stop = threading.Event()

    def chaos():
        while not hasattr(driver, "topo") and not stop.is_set():
            time.sleep(0.2)
        start = time.monotonic()
        while not stop.wait(4.0):
            worker = driver.topo.workers[kills["workers"] % len(driver.topo.workers)]
            ray.kill(worker, no_restart=False)
            kills["workers"] += 1
            if not kills["learner"] and time.monotonic() - start > 8:
                ray.kill(driver.topo.learner)
                kills["learner"] += 1

    thread = threading.Thread(target=chaos, daemon=True)
    thread.start()
    try:
        result = driver.run()
    finally:
        stop.set()
        thread.join()
    assert kills["learner"] == 1 and kills["workers"] >= 3, kills
    assert result.env_steps == 1600
    assert result.learner_restarts == 1, lines
    assert result.worker_restarts >= 1, lines
    saved = ckpt.read_counters(ckpt.latest(result.run_dir))
    assert saved["replay"]["steps"] == result.env_steps
    steps = _all_steps(result.run_dir)
    for tag, seen in steps.items():
        assert len(seen) == len(set(seen)) and seen == sorted(seen), (tag, seen)
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    assert acc.Scalars("faults/learner_restarts")[-1].value == 1


@pytest.mark.ray
def test_first_screen_has_no_errors_or_warnings_of_ours(tmp_path):
    """A user's run, in a process of its own: no Ray error about actor restarts that could fail
    (constructor arguments in the object store), no deprecation warning from our Ray calls."""
    env = {**os.environ}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "mbrl_ray.cli", "train", "debug", "--steps",
                           "400", "--run-dir", str(tmp_path / "run")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    screen = done.stdout + done.stderr
    for bad in ("constructor arguments in the object store", "Deprecat", "Traceback", " E "):
        assert bad not in screen, screen
    assert "planning: cem" in done.stdout and "GFLOP per action" in done.stdout


@pytest.mark.ray
def test_a_worker_keeps_its_weights_when_their_publisher_died(ray_session):
    """The learner publishes weights (it owns their object) and dies: a worker that pulls them
    afterwards keeps acting on what it holds instead of failing its collect."""
    import ray

    from mbrl_ray.distributed.param_server import ParameterServer
    from mbrl_ray.distributed.replay_actor import ReplayActor
    from mbrl_ray.distributed.rollout_worker import RolloutWorker
    from mbrl_ray.config import to_dict
    from mbrl_ray.envs import env_spec

    @ray.remote(num_cpus=0)
    class Publisher:  # stands in for the learner: the owner of the weights' object
        def put(self, params, version):
            ray.get(params.publish.remote(version, [ray.put({"dead": "owner"})]))

    cfg = load_preset("debug")
    spec = env_spec(cfg.env.id)
    names = ("test-owner-replay", "test-owner-params")
    replay = ReplayActor.options(name=names[0]).remote(1000, spec, 0)
    params = ParameterServer.options(name=names[1]).remote()
    worker = RolloutWorker.options(num_cpus=0).remote("w0", to_dict(cfg), spec, *names, seed=1)
    publisher = Publisher.remote()
    ray.get(publisher.put.remote(params, 5))
    ray.kill(publisher)
    time.sleep(1.0)
    assert ray.get(worker.sync_weights.remote()) == 0  # still the weights it had
    result = ray.get(worker.collect.remote(10))
    assert result["steps"] >= 10 and result["version"] == 0
    for actor in (worker, params, replay):
        ray.kill(actor)
