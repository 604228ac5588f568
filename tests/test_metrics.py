"""Ray metrics: the Grafana dashboard queries only what the actors export, and they export it."""
import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
import ray

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.distributed import topology
from mbrl_ray.envs import env_kwargs, env_spec
from mbrl_ray.telemetry.metrics import SPECS, prometheus_names

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "dashboards" / "grafana" / "mbrl_ray.json"
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")


def _queried_series() -> set[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [dash["templating"]["list"][1]["definition"]]
    return {name for e in exprs for name in re.findall(r"\bray_mbrl_\w+", e)}


@pytest.mark.unit
def test_dashboard_queries_exactly_the_exported_metrics():
    queried = _queried_series()
    assert queried <= prometheus_names(), queried - prometheus_names()
    used = {HISTOGRAM_SUFFIX.sub("", n) if n.startswith("ray_mbrl_plan") else n for n in queried}
    assert {f"ray_{name}" for name in SPECS} <= used, "a metric no panel shows"


def _scrape() -> str:
    text = ""
    for node in ray.nodes():
        if node["Alive"]:
            url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
            text += urllib.request.urlopen(url, timeout=10).read().decode()
    return text


@pytest.mark.ray
def test_actors_export_every_dashboard_metric(ray_session):
    cfg = apply_overrides(load_preset("debug"), [])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    topo = topology.build(cfg, spec, 0)
    try:
        worker = topo.workers[0]
        ray.get(worker.collect.remote(100))
        ray.get(worker.flush.remote())
        ray.get(topo.learner.fit.remote())
        ray.get(worker.collect.remote(20))  # pulls the new weights: lag and version series
        # The metrics agent exports every few seconds: a scrape may still show the count from
        # before the last collect, so wait for the final value too, not only for every name.
        steps_done = re.compile(
            r'^ray_mbrl_env_steps_total\{[^}]*worker="worker-0"[^}]*\} 1[23]0\.0', re.M)
        missing, counted = _queried_series(), False
        deadline = time.time() + 90
        while (missing or not counted) and time.time() < deadline:
            text = _scrape()
            missing = {n for n in missing if not re.search(rf"^{n}{{", text, re.M)}
            counted = bool(steps_done.search(text))
            time.sleep(2)
        assert not missing, f"not exported: {sorted(missing)}"
        assert counted, "env steps of worker-0 never reached the 120 collected"
    finally:
        for actor in topo.all_actors():
            ray.kill(actor)
