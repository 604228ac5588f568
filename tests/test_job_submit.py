"""The README's `ray job submit` path (jobs/submit.sh, jobs/resume.sh), read from the README
and run against a head started (and stopped) by this test, with token authentication on."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.long]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_cluster_block() -> list[str]:
    """The command lines of the README's "On a Ray cluster" block, comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## On a Ray cluster", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_block_runs_as_written_against_a_token_head(tmp_path):
    """The README's cluster block, line by line as it stands there, against a head started its
    way (token authentication on, Ray's default). Only what the README leaves to the user
    changes: the ports (the session's Ray holds the defaults), the preset (debug), the job id
    (<time>), and HOME (so the head's token file is this test's, not the user's)."""
    lines = readme_cluster_block()
    assert lines[0] == "source .venv/bin/activate" and lines[-1] == "ray stop"
    start, export, auth, submit, follow, stop, resume = lines[1:8]
    assert start == "ray start --head --dashboard-host 127.0.0.1"
    assert auth == "source jobs/ray_auth.sh"
    temp_dir = tempfile.mkdtemp(prefix="mbrl-head-")
    port, dash, agent, client = _free_port(), _free_port(), _free_port(), _free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", HOME=str(home), PATH=f"{BIN}:{env['PATH']}")
    # The token a first local `ray.init()` (the README's first command) leaves behind: with
    # it, `ray start --head` turns token authentication on.
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True,
                   capture_output=True)
    assert (home / ".ray" / "auth_token").exists()
    # --block keeps the head in this process group, so the test stops only its own head.
    head = subprocess.Popen(
        start.split() + ["--block", f"--port={port}", "--num-cpus=2", f"--temp-dir={temp_dir}",
                         f"--dashboard-port={dash}", f"--dashboard-agent-listen-port={agent}",
                         f"--ray-client-server-port={client}"],
        env=env, start_new_session=True, stdout=open(tmp_path / "head.log", "w"),
        stderr=subprocess.STDOUT)
    job_id = f"mbrl-debug-{os.getpid()}"
    run_root = tmp_path / "runs"

    def shell(line: str, timeout: int = 400) -> subprocess.CompletedProcess:
        """One README line in bash, after the README's export line (ports and paths mapped)."""
        exports = export.replace(":8265", f":{dash}").replace("$PWD/runs", str(run_root))
        line = line.replace("pets-pendulum-<time>", f"debug-{os.getpid()}")
        return subprocess.run(["bash", "-c", f"{exports}; {auth}; {line}"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)

    try:
        _wait_for_dashboard(f"http://127.0.0.1:{dash}", {**env, "RAY_AUTH_MODE": "token"})
        bare = subprocess.run([str(BIN / "ray"), "job", "list", "--address",
                               f"http://127.0.0.1:{dash}"], env=env, capture_output=True,
                              text=True)
        assert bare.returncode != 0 and "uthentication" in bare.stderr  # the head wants it
        deadline = time.time() + 300
        while True:  # the head answers before its job agent is up
            out = shell(f"JOB_ID={job_id} " + submit.replace("pets-pendulum", "debug --steps 600"))
            if "No available agent" not in out.stdout + out.stderr or time.time() > deadline:
                break
            time.sleep(2)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        logs = shell(follow)
        assert logs.returncode == 0 and "final evaluation return" in logs.stdout, logs.stderr
        assert re.search(r"\[\s*600/600\]", logs.stdout)  # the progress line
        assert "succeeded" in shell(f"ray job status {job_id}").stdout.lower()
        shell(stop)  # a finished job: stopping it changes nothing, and says so
        assert (run_root / job_id / "result.json").exists()
        resumed = shell(f"JOB_ID=resume-{os.getpid()} " + resume)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert "succeeded" in (resumed.stdout + resumed.stderr).lower()
        assert len(list((run_root / job_id / "checkpoints").glob("step_*"))) >= 1
    finally:
        _stop_head(head, temp_dir)


def _stop_head(head: subprocess.Popen, temp_dir: str) -> None:
    """Stop only this test's head: its process group, then any process naming its temp dir."""
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    subprocess.run(["pkill", "-9", "-f", temp_dir], check=False)  # gcs_server ignores SIGTERM
    shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_dashboard(address: str, env: dict, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        probe = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address],
                               env=env, capture_output=True, text=True)
        if probe.returncode == 0:
            return
        time.sleep(2)
    raise TimeoutError(f"Ray head at {address} did not come up in {timeout_s}s")
