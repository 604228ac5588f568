"""Nothing lost: broken checkpoints, non-finite values, killed actors, and what a user sees."""
import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

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


COUNTERS = {"env_steps": 100, "rounds": 1, "evals": 0, "resumes": 0, "worker_restarts": 0,
            "learner_restarts": 0, "replay": {"steps": 100}}


def _checkpoint(run_dir, step=100, agent=None, extra=None):
    """A committed checkpoint as the driver writes one (through ckpt.commit)."""
    path = ckpt.new_checkpoint_dir(run_dir, step)
    np.savez(path / "replay.npz", obs=np.arange(1000.0))
    torch.save({"agent": {"w": torch.ones(2)} if agent is None else agent, "version": 1,
                **(extra or {})}, path / "learner.pt")
    return ckpt.commit(path, {**COUNTERS, "env_steps": step})


@pytest.mark.unit
def test_a_checkpoint_with_code_in_it_is_refused(tmp_path):
    """learner.pt loads with weights_only=True: a pickled object (which could run code) makes
    the checkpoint unusable instead of being executed."""
    path = _checkpoint(tmp_path, extra={"x": Exploit()})
    assert "does not load" in ckpt.problem(path)
    assert ckpt.problem(_checkpoint(tmp_path, step=200)) is None


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.unit
def test_checkpoint_problems_name_the_broken_file(tmp_path):
    path = _checkpoint(tmp_path / "run")
    assert ckpt.problem(path) is None
    os.truncate(path / "replay.npz", 500)
    assert f"{path / 'replay.npz'} is truncated" in ckpt.problem(path)
    (path / "counters.json").write_text("{not json")
    assert f"{path / 'counters.json'} is unreadable" in ckpt.problem(path)
    warnings = []
    assert ckpt.choose(tmp_path / "run", warnings.append) is None
    assert "step_000000100 is broken" in warnings[0]


def _flip_a_byte(file, at):
    data = bytearray(file.read_bytes())
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.mark.unit
def test_bytes_flipped_at_the_same_size_are_found(tmp_path):
    """Issue 45 (3): a replay.npz with flipped bytes passed the size check and crashed every
    resume with BadZipFile. The commit's SHA-256 finds it; an older checkpoint (sizes only)
    has its archive's CRCs read."""
    path = _checkpoint(tmp_path)
    _flip_a_byte(path / "replay.npz", 200)  # inside the array's data, not the zip headers
    assert ckpt.problem(path) == (f"{path / 'replay.npz'} is corrupt: its SHA-256 differs "
                                  "from the one written at commit")
    counters = ckpt.read_counters(path)
    counters["files"] = {name: entry["bytes"] for name, entry in counters["files"].items()}
    (path / "counters.json").write_text(json.dumps(counters))
    assert ckpt.problem(path) == f"{path / 'replay.npz'} is corrupt: bad CRC in obs.npy"


@pytest.mark.unit
@pytest.mark.parametrize("key, value, words", [
    ("replay", None, "replay is None, not a mapping with steps >= 0"),
    ("replay", {"steps": -1}, "replay is {'steps': -1}"),
    ("env_steps", "100", "env_steps is '100', not a count >= 0"),
    ("evals", True, "evals is True"),
    ("files", {"learner.pt": 1}, "not an entry for each of learner.pt, replay.npz"),
])
def test_counters_are_checked_against_their_schema(tmp_path, key, value, words):
    path = _checkpoint(tmp_path)
    counters = {**ckpt.read_counters(path), key: value}
    (path / "counters.json").write_text(json.dumps(counters))
    found = ckpt.problem(path)
    assert found.startswith(f"{path / 'counters.json'} is not valid: ") and words in found


@pytest.mark.unit
def test_a_learner_state_holding_nan_is_refused(tmp_path):
    path = _checkpoint(tmp_path, agent={"model": {"w": torch.tensor([1.0, float("nan")])}})
    assert ckpt.problem(path) == f"{path / 'learner.pt'} holds a non-finite value in model.w"


@pytest.mark.unit
@pytest.mark.parametrize("override, words", [
    ("model.hidden_size=32", ["size mismatch", "[3, 4, 32]", "[3, 4, 64]"]),
    ("model.num_layers=3", ["Unexpected key(s)", "body.2"]),
    ("model.ensemble_size=5", ["size mismatch"]),
])
def test_a_learner_state_of_another_config_is_refused(tmp_path, override, words):
    """Issue 45 (3): weights of another shape passed the check and killed the learner 4 times.
    The resume loads them into an agent its own config builds, as the learner would."""
    from mbrl_ray.agents import make_learner
    from mbrl_ray.distributed.preflight import learner_state_loader
    from mbrl_ray.envs import env_spec

    cfg = load_preset("debug")
    spec = env_spec(cfg.env.id)
    load = learner_state_loader(cfg, spec)
    own = make_learner(spec, cfg, torch.device("cpu"), seed=1).state_dict()
    assert ckpt.problem(_checkpoint(tmp_path, step=100, agent=own), load) is None
    other = make_learner(spec, apply_overrides(cfg, [override, "model.num_elites=3"]),
                       torch.device("cpu"), seed=1).state_dict()
    path = _checkpoint(tmp_path, step=200, agent=other)
    found = ckpt.problem(path, load)
    assert found.startswith(f"{path / 'learner.pt'} does not fit the run's config ("), found
    for word in words:
        assert word in found, found
    assert ckpt.problem(path) is None  # without a loader: bytes and finiteness only


@pytest.mark.unit
def test_commits_and_set_asides_never_collide(tmp_path):
    """Issue 45 (1): a second commit at the same step renamed the first to `.replaced`, and
    a third found that name taken (Errno 39) and wedged every later resume. Now each commit
    takes a fresh name and each set-aside a free one, however often the same step recurs."""
    first = _checkpoint(tmp_path, step=600)
    (first.with_suffix(".tmp")).mkdir()  # a dead writer's leftover of the same step
    second = _checkpoint(tmp_path, step=600)
    third = _checkpoint(tmp_path, step=600)
    assert [first.name, second.name, third.name] == [
        "step_000000600", "step_000000600_r1", "step_000000600_r2"]
    assert ckpt.committed(tmp_path) == [second, third]  # KEEP = 2 newest, in commit order
    for _ in range(2):  # the newest broken twice over: each set aside under its own name
        ckpt.set_aside_broken(tmp_path, second)
        assert ckpt.committed(tmp_path) == [second]
        newest = _checkpoint(tmp_path, step=600)
    newest.with_suffix(".broken").mkdir()  # its aside name already taken
    ckpt.set_aside_broken(tmp_path, second)
    assert sorted(p.name for p in ckpt.checkpoint_root(tmp_path).iterdir()) == [
        "step_000000600_r1", "step_000000600_r2.broken", "step_000000600_r3.broken",
        "step_000000600_r4.broken", "step_000000600_r4.broken-2"]
    ordered = [_checkpoint(tmp_path, step=s).name for s in (900, 1000)]
    assert [p.name for p in ckpt.committed(tmp_path)] == ordered


@pytest.mark.unit
def test_a_run_dir_has_one_writer_and_a_dead_one_holds_nothing(tmp_path):
    """Issue 45 (2): a second train/resume was accepted while a run was live. The lock is
    refused naming the holder, and a holder killed with SIGKILL leaves no stale lock."""
    from mbrl_ray.config import ConfigError
    from mbrl_ray.run_dir import RunDirLock

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from mbrl_ray.run_dir import RunDirLock; "
        f"lock = RunDirLock(Path({str(tmp_path)!r})); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"is in use by pid {holder.pid} on host "):
            RunDirLock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    lock = RunDirLock(tmp_path)
    with pytest.raises(ConfigError, match=rf"in use by pid {os.getpid()} "):
        RunDirLock(tmp_path)
    lock.release()
    assert (tmp_path / ".lock").read_text() == ""  # no holder named once released
    RunDirLock(tmp_path).release()


# ---- whole runs on the session's Ray ---------------------------------------------------------
@pytest.mark.ray
@pytest.mark.long
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
def test_a_finished_run_resumed_twice_stays_resumable(ray_session, tmp_path, capsys):
    """Issue 45 (1): `train --steps 600; resume; resume` failed the second resume with Errno 39
    and every resume after it. Each resume now commits under a fresh name, and keeps the
    earlier attempts' result.json beside the new one."""
    run = tmp_path / "run"
    assert main(["train", "debug", "--steps", "600", "--run-dir", str(run)]) == 0
    for _ in range(3):
        assert main(["resume", str(run)]) == 0, capsys.readouterr().err
    assert [p.name for p in ckpt.committed(run)] == ["step_000000600_r2", "step_000000600_r3"]
    assert not list(ckpt.checkpoint_root(run).glob("*.tmp"))
    assert sorted(p.name for p in run.glob("result*.json")) == [
        "result-1.json", "result-2.json", "result-3.json", "result.json"]


def _cli(*args) -> subprocess.Popen:
    """mbrl-ray in a process of its own (its own local Ray), output kept in pipes."""
    env = {**os.environ}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "mbrl_ray.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_step(process: subprocess.Popen, step: int) -> None:
    """Read the progress lines until one reports `step` or more env steps."""
    for line in process.stdout:
        if line.startswith("[") and int(line[1:].split("/")[0]) >= step:
            return
    raise AssertionError(f"run ended before env step {step}: {process.wait()}, "
                         f"{process.stderr.read()}")


@pytest.mark.ray
@pytest.mark.long
def test_stop_signals_checkpoint_and_leave_a_result(ray_session, tmp_path, capsys):
    """Issue 45 (2, 4): while a run is live a second writer is refused, naming the holder;
    SIGINT, then (on the resumed run) SIGTERM, each checkpoint at the step reached, write
    result.json saying how the run stopped, print one line and exit 130 / 143; the run then
    resumes to its budget with every TensorBoard point once."""
    import signal

    run = tmp_path / "run"
    process = _cli("train", "debug", "--steps", "1200", "train.checkpoint_every=100000",
                   "--run-dir", run)
    stopped_at = []
    for signum, word, code in ((signal.SIGINT, "interrupted", 130),
                               (signal.SIGTERM, "terminated", 143)):
        _wait_for_step(process, (stopped_at or [0])[-1] + 400)
        assert main(["resume", str(run)]) == 2
        assert f"is in use by pid {process.pid} on host" in capsys.readouterr().err
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
        assert process.returncode == code, err
        saved = ckpt.latest(run)
        step = ckpt.read_counters(saved)["env_steps"]
        stopped_at.append(step)
        assert err.strip().splitlines()[-1] == (
            f"mbrl-ray: run {word} by {signal.Signals(signum).name} at env step {step}: "
            f"checkpoint {saved} saved now; continue with `mbrl-ray resume {run}`")
        assert "Traceback" not in err
        result = json.loads((run / "result.json").read_text())
        assert result["stopped"] == word and result["env_steps"] == step
        process = _cli("resume", run) if word == "interrupted" else None
    assert stopped_at[0] >= 400 and stopped_at[1] >= stopped_at[0] + 400
    assert main(["resume", str(run)]) == 0
    steps = _all_steps(run)
    for tag, seen in steps.items():
        assert len(seen) == len(set(seen)) and seen == sorted(seen), (tag, seen)
    assert steps["eval/episodic_return"][-1] == 1200
    assert json.loads((run / "result.json").read_text())["stopped"] is None


def _descendants(pid: int) -> list[int]:
    """pid and every process below it (its local Ray: GCS, raylet, agents, workers)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += parents.get(tree[-1], [])
    return tree


def _address(hex_ip: str) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in host order); IPv4-mapped as IPv4."""
    raw = bytes.fromhex(hex_ip)
    ip = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def _command(pid: int) -> str | None:
    """The process's name while it lives (not a zombie), else None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return None if fields["State"].strip().startswith("Z") else fields["Name"].strip()


def _wait_until_lost(params, timeout_s: float = 60.0) -> None:
    """Until the parameter server's weights can no longer be fetched (their owner died)."""
    import ray

    ref = ray.get(params.current.remote())[1][0]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(ref, timeout=5)
        except ray.exceptions.ObjectLostError:
            return
        time.sleep(0.1)
    raise AssertionError(f"the dead owner's object was still readable after {timeout_s} s")


def _listening_addresses(pids: list[int]) -> set[str]:
    """Addresses the processes' TCP sockets listen on (/proc/net/tcp{,6}, state 0A)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):
                if (target := os.readlink(fd)).startswith("socket:["):
                    inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state, inode = line.split()[1], line.split()[3], line.split()[9]
            if state == "0A" and inode in inodes:
                found.add(_address(local.split(":")[0]))
    return found


@pytest.mark.ray
@pytest.mark.long
def test_a_driver_killed_twice_before_a_checkpoint_resumes_twice(ray_session, tmp_path):
    """Issue 45 (1, 6): SIGKILL the driver after its first checkpoint, then the resumed driver
    before its next one; the run resumes (twice: to its budget, then once more at the end) with
    no lock, name or leftover .tmp in the way, and every TensorBoard point once. While it ran,
    its Ray listened on loopback only; its workers and raylet are gone within 5 s of the kill."""
    import signal

    run = tmp_path / "run"
    process = _cli("train", "debug", "--steps", "1200", "train.checkpoint_every=400",
                   "--run-dir", run)
    _wait_for_step(process, 600)  # step_000000400 is committed
    tree = _descendants(process.pid)
    assert len(tree) >= 5 and _listening_addresses(tree) == {"127.0.0.1"}
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(5)
    agents = ("ray::Dashboard", "ray::RuntimeEnv")  # linger ~60 s on loopback (operations.md)
    left = [name for pid in tree[1:] if (name := _command(pid)) and not name.startswith(agents)]
    assert not left, left
    process = _cli("resume", run)
    _wait_for_step(process, 600)  # past the resume point, before the checkpoint at 800
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [p.name for p in ckpt.committed(run)] == ["step_000000400"]
    for _ in range(2):
        assert main(["resume", str(run)]) == 0
    assert not list(ckpt.checkpoint_root(run).glob("*.tmp"))
    assert ckpt.read_counters(ckpt.latest(run))["env_steps"] == 1200
    steps = _all_steps(run)
    for tag, seen in steps.items():
        assert len(seen) == len(set(seen)) and seen == sorted(seen), (tag, seen)
    assert steps["eval/episodic_return"][-1] == 1200


@pytest.fixture
def small_disk(tmp_path):
    """A 160 KiB tmpfs: room for a debug run's config and TensorBoard file, not for its first
    checkpoint. Needs root (CI and the dev machines run as root); skipped elsewhere."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.ray
def test_a_full_disk_stops_the_run_with_one_line_and_a_result(ray_session, small_disk, capsys):
    """Issue 45 (4): a full disk ended a run with `basic_ios::clear: iostream error` and a .tmp
    left behind. Now: exit 1, one line naming the cause and the last good checkpoint, no .tmp,
    result.json written."""
    run = small_disk / "run"
    code = main(["train", "debug", "train.checkpoint_every=200", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("mbrl-ray: run stopped at env step 200: ") and "Traceback" not in err
    assert ("No space left on device" in line or "iostream error" in line), line
    assert "The last good checkpoint is none (nothing was saved)" in line
    assert list(ckpt.checkpoint_root(run).iterdir()) == []
    assert json.loads((run / "result.json").read_text())["stopped"] == line.removeprefix(
        "mbrl-ray: ")


@pytest.mark.ray
def test_an_actors_death_is_told_by_its_cause(ray_session):
    """Issue 45 (4): "the learner died 4 times ... ActorDiedError" hid the cause. The stop
    message carries the actor's own exception line, read from Ray's real error."""
    import ray

    from mbrl_ray.distributed.faults import actor_error_cause

    @ray.remote(num_cpus=0, max_restarts=0)
    class Doomed:
        def __init__(self):
            raise MemoryError("can't allocate 12 TB") from ValueError("inner")

        def ping(self):
            return 1

    with pytest.raises(ray.exceptions.RayActorError) as died:
        ray.get(Doomed.remote().ping.remote(), timeout=120)
    assert actor_error_cause(died.value) == "MemoryError: can't allocate 12 TB"


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
@pytest.mark.long
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
    _wait_until_lost(params)  # ray.kill returns at once; Ray frees the object a while later
    assert ray.get(worker.sync_weights.remote()) == 0  # still the weights it had
    result = ray.get(worker.collect.remote(10))
    assert result["steps"] >= 10 and result["version"] == 0
    for actor in (worker, params, replay):
        ray.kill(actor)


@pytest.mark.ray
def test_a_learner_killed_during_the_final_checkpoint_is_saved_again(ray_session, tmp_path):
    """The learner dies while the run's last checkpoint saves: it is restarted and the
    checkpoint taken again, so the newest checkpoint holds every env step the run reports
    (the chaos test above once ended with its newest checkpoint 100 steps behind)."""
    import ray

    class KillAtTheEnd(Driver):
        killed = 0

        def _save_into(self, path, pause_inserts, timeout):
            if not self.killed and self.counters["env_steps"] == self.cfg.train.steps:
                self.killed += 1
                ray.kill(self.topo.learner)
            return super()._save_into(path, pause_inserts, timeout)

    cfg = apply_overrides(load_preset("debug"), ["train.steps=400"])
    driver = KillAtTheEnd(cfg, tmp_path / "run", printer=lambda *a, **k: None)
    result = driver.run()
    assert driver.killed == 1 and result.learner_restarts == 1
    saved = ckpt.read_counters(ckpt.latest(result.run_dir))
    assert saved["env_steps"] == saved["replay"]["steps"] == result.env_steps == 400
