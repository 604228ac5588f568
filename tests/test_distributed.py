"""The real topology on the session's local Ray, driven by the debug preset (dummy env)."""
import re

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.distributed import checkpoint as ckpt
from mbrl_ray.distributed.driver import Driver
from mbrl_ray.replay import StreamStorage

pytestmark = pytest.mark.ray

REQUIRED_TAGS = {
    "charts/episodic_return", "eval/episodic_return", "losses/model_nll", "losses/model_val_mse",
    "perf/env_steps_per_s", "perf/plan_ms", "replay/size", "replay/samples_per_insert",
    "params/version_lag",
}
# Random play on the dummy env averages about 0 (best of 200 episodes: 33); the optimum is ~49.
DUMMY_THRESHOLD = 35.0


def _run(tmp_path, name, overrides=(), resume=False, faults=None):
    cfg = apply_overrides(load_preset("debug"), list(overrides))
    lines = []
    result = Driver(cfg, tmp_path / name, resume=resume, faults=faults,
                    printer=lambda *a, **k: lines.append(" ".join(map(str, a)))).run()
    return result, lines


def _scalars(run_dir, tag):
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


SUCCESS_REGEX = "^(eval|charts)/success$"  # only envs that report success write these
OPEN_LOOP_REGEX = "^eval/open_loop_error$"  # only pixel world models, on filmed evaluations


def _check_custom_scalars(acc: EventAccumulator,
                          optional=(SUCCESS_REGEX, OPEN_LOOP_REGEX)) -> None:
    """The run wrote the layout; it groups charts/, eval/, losses/, perf/, replay/, and every
    chart's regex (but the optional ones) matches a tag the run wrote."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    config = acc.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    layout = layout_pb2.Layout.FromString(config)
    assert [c.title for c in layout.category] == ["charts", "eval", "losses", "perf", "replay"]
    tags = acc.Tags()["scalars"]
    for chart in (ch for c in layout.category for ch in c.chart):
        for regex in set(chart.multiline.tag) - set(optional):
            assert any(re.search(regex, tag) for tag in tags), (chart.title, regex)


def test_sync_run_learns_and_writes_tensorboard(ray_session, tmp_path):
    result, lines = _run(tmp_path, "sync")
    assert result.env_steps == 1200
    assert result.final_eval_return >= DUMMY_THRESHOLD
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    assert REQUIRED_TAGS <= set(acc.Tags()["scalars"])
    _check_custom_scalars(acc)
    assert {p.name for p in result.run_dir.iterdir()} == {"config.yaml", "tb", "checkpoints",
                                                         "result.json", ".lock"}
    assert (result.run_dir / ".lock").read_text() == ""  # released: no holder named
    assert any("steps/s" in line and "left" in line for line in lines)


@pytest.mark.parametrize("overrides", [
    ["agent.name=mbpo", "sac.hidden_size=64", "mbpo.updates_per_step=2",
     "mbpo.rollouts_per_step=20", "mbpo.retain_steps=200"],
    ["planner.name=smcp", "planner.posterior=lst", "sac.hidden_size=64",
     "sac.updates_per_fit=100"],
], ids=["mbpo", "smcp-lst"])
def test_mbpo_and_smcp_lst_run_through_the_topology(overrides, ray_session, tmp_path):
    """Workers build these agents from config, act with the published weights, and the
    learner's MBPO / SAC losses reach TensorBoard."""
    result, _ = _run(tmp_path, overrides[0].split("=")[1], overrides + ["train.steps=600"])
    assert result.env_steps == 600 and np.isfinite(result.final_eval_return)
    assert _scalars(result.run_dir, "losses/sac_critic_loss")
    assert _scalars(result.run_dir, "eval/episodic_return")


def test_metaworld_run_logs_success_and_evaluation_videos(ray_session, tmp_path):
    """A Meta-World task through the topology: info['success'] reaches eval/success and
    charts/success; each evaluation is filmed (train.video_every=1) as an animated GIF."""
    import io

    from PIL import Image

    from mbrl_ray.envs import make_env
    from mbrl_ray.telemetry.video import shown_frames

    result, _ = _run(tmp_path, "mw", [
        "env.id=metaworld:reach", "env.max_episode_steps=100", "train.steps=400",
        "train.eval_every=200", "train.eval_episodes=1", "train.video_every=1",
        "train.video_size=48", "train.checkpoint_every=400"])
    acc = EventAccumulator(str(result.run_dir / "tb"), size_guidance={"images": 0})
    acc.Reload()
    _check_custom_scalars(acc, optional=(OPEN_LOOP_REGEX,))
    success = [e.value for e in acc.Scalars("eval/success")]
    assert len(success) >= 2 and all(v in (0.0, 1.0) for v in success)  # at 200 (400) and last
    assert acc.Scalars("charts/success")
    videos = acc.Images("eval/video")
    assert len(videos) == len(success)
    gif = videos[-1].encoded_image_string
    image = Image.open(io.BytesIO(gif))
    assert image.format == "GIF" and image.size == (48, 48)
    fps = make_env("metaworld:reach").metadata["render_fps"]
    assert shown_frames(gif, fps) == 100  # one frame per step of the 100-step episode


def test_async_run_holds_samples_per_insert(ray_session, tmp_path):
    spi, chunk, slack = 4.0, 50, 500
    result, _ = _run(tmp_path, "async", ["train.schedule=async", f"train.samples_per_insert={spi}",
                                         f"train.spi_error_buffer={slack}",
                                         f"train.steps_per_round={chunk}"])
    assert result.env_steps >= 1200
    ratios = [v for _, v in _scalars(result.run_dir, "replay/samples_per_insert")]
    # Logged when a collect returns, while its chunk may still wait at the limiter: the
    # limiter holds spi x inserts - samples within the slack, a chunk and one request (the
    # learner's requests hold 4 batches of 96 rows).
    admitted = 1200 - 200 - chunk
    assert abs(ratios[-1] - spi) <= (slack + spi * chunk + 4 * 96) / admitted, ratios
    assert _scalars(result.run_dir, "losses/model_nll")
    assert np.isfinite(result.final_eval_return)
    limiter = ckpt.read_counters(ckpt.latest(result.run_dir))["replay"]["limiter"]
    assert limiter["inserts"] == 1200  # the final checkpoint keeps the limiter's count


EXACT_EVALS = ["train.schedule=async", "train.steps=400", "train.random_steps=100",
               "train.steps_per_round=10", "train.eval_every=100", "train.eval_episodes=40"]


def test_eval_wait_evaluates_every_due_point(ray_session, tmp_path):
    """Forty evaluation episodes take longer than 100 collected steps: beside training, a point
    falls due while one runs and is skipped or late (seen: 100, 210, 300, 400); with
    train.eval_wait every point is evaluated when due."""
    result, _ = _run(tmp_path, "exact", EXACT_EVALS + ["train.eval_wait=true"])
    steps = [s for s, _ in _scalars(result.run_dir, "eval/episodic_return")]
    assert steps == [100, 200, 300, 400]


LAG_RUN = EXACT_EVALS + ["train.eval_episodes=2", "train.updates_per_round=5",
                         f"train.spi_error_buffer={5 * 3 * 256}", "train.samples_per_insert=64",
                         "model.hidden_size=1024", "model.num_layers=4", "model.batch_size=256",
                         "train.eval_max_lag=0"]


def test_eval_max_lag_holds_each_evaluation_until_the_learner_has_its_updates(ray_session,
                                                                              tmp_path):
    """Each async evaluation logs how far its weights are behind the updates the ratio had
    granted when it was due; with train.eval_max_lag=0 it waits for them (a learner slow
    beside its workers: 64 samples per row, 768-row batches through 4 x 1024 layers; weights
    published every 5 updates, a buffer of 5 updates' rows; without the wait the point at
    200 was 8.3 updates behind). The learner's own update count, kept in its checkpoint,
    times its rows equals the samples it drew. Each point also logs its episodes' seconds."""
    rows = 3 * 256
    result, _ = _run(tmp_path, "lag", LAG_RUN)
    behind = _scalars(result.run_dir, "eval/updates_behind")
    steps = [s for s, _ in _scalars(result.run_dir, "eval/episodic_return")]
    assert [s for s, _ in behind] == steps and steps[0] == 100 and steps[-1] == 400
    assert all(v <= 0 for s, v in behind[:-1]), behind  # the final one waits on nothing
    seconds = _scalars(result.run_dir, "eval/seconds")  # the evaluator's own time per point
    assert [s for s, _ in seconds] == steps and all(v > 0 for _, v in seconds), seconds
    saved = ckpt.latest(result.run_dir)
    learner = torch.load(saved / "learner.pt", map_location="cpu", weights_only=True)
    samples = ckpt.read_counters(saved)["replay"]["limiter"]["samples"]
    assert learner["updates"] * rows == samples > 0


@pytest.mark.long
def test_eval_max_lag_does_not_wait_for_updates_a_killed_learner_lost(ray_session, tmp_path):
    """The learner is killed once at step 250, before the first checkpoint: the ~12 updates'
    samples it drew are counted by the limiter but held by no weights, and the limiter's slack
    (5 updates) cannot make them up. The evaluation due at 300 still runs when the restarted
    learner has what it can reach (not held to the end), that loss counted out of what is
    due."""
    import threading
    import time

    import ray

    cfg = apply_overrides(load_preset("debug"), LAG_RUN + ["train.checkpoint_every=400"])
    driver = Driver(cfg, tmp_path / "killed", printer=lambda *a, **k: None)
    killed = threading.Event()

    def kill_once():
        while not (hasattr(driver, "topo") and driver.counters["env_steps"] >= 250):
            time.sleep(0.05)
        ray.kill(driver.topo.learner)
        killed.set()

    threading.Thread(target=kill_once, daemon=True).start()
    result = driver.run()
    assert killed.is_set() and result.learner_restarts == 1
    behind = _scalars(result.run_dir, "eval/updates_behind")
    assert [s for s, _ in behind] == [100, 200, 300, 400], behind
    assert all(v <= 0 for s, v in behind if s < 400), behind


def test_resume_continues_counters_and_replay(ray_session, tmp_path):
    first, _ = _run(tmp_path, "run", ["train.steps=600"])
    saved = ckpt.latest(first.run_dir)
    assert ckpt.read_counters(saved)["env_steps"] == 600
    before = StreamStorage.load(saved / "replay.npz")
    assert before.steps_inserted == 600
    kept = {k: v[:before.size].copy() for k, v in before.data.items()}
    second, _ = _run(tmp_path, "run", ["train.steps=1000"], resume=True)
    assert second.env_steps == 1000
    after = StreamStorage.load(ckpt.latest(second.run_dir) / "replay.npz")
    assert after.steps_inserted == 1000
    for key, value in kept.items():  # the first run's rows survived the restart
        np.testing.assert_array_equal(after.data[key][:before.size], value)
    # the resumed workers started new streams, each opening with a first row
    new = after.stream[before.size:after.size]
    assert new.min() >= before.next_stream_id
    _, first_rows = np.unique(new, return_index=True)
    assert after.data["is_first"][before.size + first_rows].all()
    sizes = _scalars(second.run_dir, "replay/size")
    assert [s for s in sizes if s[0] > 600][0][1] > before.size


def test_worker_crash_is_survived(ray_session, tmp_path):
    """(With workers.device=auto, which resolves like the learner's: cpu here.)"""
    result, lines = _run(tmp_path, "crash", ["workers.device=auto"],
                         faults={"crash_worker_at_step": 300})
    assert result.worker_restarts == 1
    assert result.env_steps == 1200
    assert any("worker died" in line for line in lines)
    assert np.isfinite(result.final_eval_return)


def test_too_few_cpus_fails_after_the_resource_wait(ray_session):
    """No autoscaler grows the session's 2-CPU Ray: after ray.resource_wait_s the run refuses,
    naming the keys, before any actor starts."""
    import time

    from mbrl_ray.config import ConfigError
    from mbrl_ray.distributed import topology

    cfg = apply_overrides(load_preset("debug"), ["workers.num=8", "workers.num_cpus=1",
                                                 "ray.resource_wait_s=1"])
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"workers\.num .*ray\.resource_wait_s"):
        topology.check_resources(cfg)
    assert time.monotonic() - t0 >= 1.0
    topology.release_resource_request(cfg)


@pytest.mark.parametrize("overrides, words", [
    (["workers.num=64"], ["workers.num x workers.num_cpus + learner.num_cpus = 32.5 CPUs",
                          "the Ray cluster has 2"]),
    (["train.replay_capacity=10000000000"], ["train.replay_capacity=10,000,000,000 rows of 35 "
                                             "bytes need 326.0 GiB", "driver's node"]),
], ids=["cpus", "replay"])
def test_a_joined_clusters_refusal_writes_no_config(ray_session, tmp_path, overrides, words):
    """Issue 45 (5): a cluster's resources and the replay's memory on the driver's node are
    checked once connected, before config.yaml: the run dir stays free for a corrected run."""
    from mbrl_ray.config import ConfigError

    with pytest.raises(ConfigError) as err:
        _run(tmp_path, "run", overrides)
    for word in words:
        assert word in str(err.value)
    assert not (tmp_path / "run" / "config.yaml").exists()
    _run(tmp_path, "run", ["train.steps=200", "train.eval_every=200"])  # the same dir, accepted
