"""The `ray job submit` path of the README (jobs/submit.sh), against a head started (and
stopped) by this test."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_debug_job_via_ray_job_submit(tmp_path, monkeypatch):
    temp_dir = tempfile.mkdtemp(prefix="mbrl-head-")
    port, dash, agent, client = _free_port(), _free_port(), _free_port(), _free_port()
    # Ray 2.60 turns token authentication on by default; this head listens on loopback only.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    # --block keeps the head in this process group, so the test stops only its own head.
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--temp-dir={temp_dir}",
         "--include-dashboard=true", f"--dashboard-agent-listen-port={agent}",
         f"--ray-client-server-port={client}"],  # the session's Ray holds the default ports
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{dash}"
    try:
        _wait_for_dashboard(address, env)
        job_id = f"mbrl-debug-{os.getpid()}"
        run_dir = tmp_path / job_id
        # The README's path: jobs/submit.sh -> ray job submit with jobs/runtime_env.yaml.
        env.update(RAY_ADDRESS=address, RUN_ROOT=str(tmp_path), JOB_ID=job_id)
        command = ["bash", str(ROOT / "jobs" / "submit.sh"), "debug", "--steps", "600"]
        deadline = time.time() + 300
        while True:  # the head answers before its job agent is up
            submit = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
            if "No available agent" not in submit.stdout + submit.stderr or time.time() > deadline:
                break
            time.sleep(2)
        assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        client = JobSubmissionClient(address)
        assert client.get_job_status(job_id) == JobStatus.SUCCEEDED
        assert "final evaluation return" in submit.stdout
        assert (run_dir / "result.json").exists() and any((run_dir / "tb").iterdir())
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
