"""`mbrl-ray eval` (issue 46): a run's checkpoint evaluated on Ray actors, reading the run dir
only; its numbers against the run's own final evaluation on the same episode seeds; a checkpoint
of another config refused with one line; a run trained on a GPU evaluated here on CPU. Bad
input: tests/test_bad_input_table.py."""
from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from mbrl_ray.cli import main
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.distributed.driver import Driver
from mbrl_ray.evaluate import Request, run

# SAC evaluates with its actor's mean: no planning noise, so the same weights on the same
# episode seeds give the same returns (up to float32 sums over batches of another size).
SAC_DEBUG = ["agent.name=sac", "sac.hidden_size=32", "train.steps=600", "train.eval_every=300",
             "train.eval_episodes=3"]


@pytest.fixture(scope="module")
def sac_run(ray_session, tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "run"
    cfg = apply_overrides(load_preset("debug"), SAC_DEBUG)
    result = Driver(cfg, path, printer=lambda *a, **k: None).run()
    return path, result


def _digest(path):
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.ray
def test_eval_repeats_the_runs_final_evaluation_and_writes_nothing_into_the_run(
        sac_run, tmp_path):
    path, result = sac_run
    before = _digest(path)
    lines = []
    summary = run(Request(path, episodes=3, out=tmp_path / "out"), printer=lines.append)
    assert summary["checkpoint"] == "step_000000600" and summary["episodes"] == 3
    assert (summary["evaluator_seed"], summary["evaluation_index"]) == (10_000_000, 2)
    assert summary["mean_return"] == pytest.approx(result.final_eval_return, rel=1e-6)
    returns = summary["returns"]
    assert summary["min_return"] == min(returns) and summary["max_return"] == max(returns)
    assert json.loads((tmp_path / "out" / "eval.json").read_text()) == summary
    assert lines[-1].startswith("step_000000600 (600 env steps): return ")
    assert _digest(path) == before
    other = run(Request(path, episodes=3, seed=5), printer=lines.append)
    assert other["returns"] != returns  # another episode stream


@pytest.mark.ray
def test_an_older_checkpoint_and_a_video(sac_run, tmp_path):
    path, _ = sac_run
    summary = run(Request(path, checkpoint=400, episodes=2, video=True, out=tmp_path),
                  printer=lambda *a: None)
    assert summary["checkpoint"] == "step_000000400" and summary["env_steps"] == 400
    assert (tmp_path / "video.gif").read_bytes()[:6] == b"GIF89a"


@pytest.mark.ray
def test_a_checkpoint_of_another_config_is_refused_in_one_line(sac_run, capsys):
    path, _ = sac_run
    code = main(["eval", str(path), "sac.hidden_size=16", "--episodes", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    for words in ("checkpoint step_000000600 cannot be evaluated", "does not fit the run's "
                  "config", "size mismatch", "(nor the 1 before it)"):
        assert words in err, err


@pytest.mark.ray
def test_a_run_trained_on_a_gpu_is_evaluated_on_cpu(sac_run, tmp_path, monkeypatch):
    """The run's config names CUDA devices; this machine shows none (CUDA_VISIBLE_DEVICES
    empty, as on CPU CI): eval acts on CPU."""
    import shutil

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    path, result = sac_run
    copy = tmp_path / "gpu-run"
    shutil.copytree(path, copy)
    raw = yaml.safe_load((copy / "config.yaml").read_text())
    raw["learner"].update(device="cuda", num_gpus=1)
    raw["workers"]["device"] = "cuda"
    (copy / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    summary = run(Request(copy, episodes=3), printer=lambda *a: None)
    assert summary["mean_return"] == pytest.approx(result.final_eval_return, rel=1e-6)
