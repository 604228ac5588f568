"""Ray metrics exported by the actors (Prometheus format, through each node's Ray metrics agent).

Prometheus sees every name below with Ray's `ray_` prefix (histograms add `_bucket`, `_sum`,
`_count`). `dashboards/grafana/mbrl_ray.json` queries exactly these names; a test checks both.
Metrics are created inside the actor that records them (Ray requires that).
"""
from __future__ import annotations

from ray.util import metrics

PLAN_MS_BOUNDARIES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]

# name -> (kind, description, tag keys)
SPECS: dict[str, tuple[type, str, tuple[str, ...]]] = {
    "mbrl_env_steps_total": (metrics.Counter, "env steps taken by a rollout worker", ("worker",)),
    "mbrl_env_steps_per_s": (metrics.Gauge, "env steps per second of a rollout worker's last "
                             "chunk, planning included", ("worker",)),
    "mbrl_plan_latency_ms": (metrics.Histogram, "time of one batched planning call", ("worker",)),
    "mbrl_params_version": (metrics.Gauge, "newest weight version on the parameter server", ()),
    "mbrl_params_version_lag": (metrics.Gauge, "versions a worker's weights are behind the "
                                "parameter server", ("worker",)),
    "mbrl_replay_size": (metrics.Gauge, "transitions held in replay", ()),
    "mbrl_replay_samples_per_insert": (metrics.Gauge, "samples drawn per inserted transition "
                                       "(async schedule; 0 when no limiter)", ()),
    "mbrl_learner_updates_total": (metrics.Counter, "model fits (sync) or gradient steps "
                                   "(async) of the learner", ()),
}


def prometheus_names() -> set[str]:
    """The series names a Prometheus scrape shows for SPECS."""
    names = set()
    for name, (kind, _, _) in SPECS.items():
        if kind is metrics.Histogram:
            names |= {f"ray_{name}_bucket", f"ray_{name}_sum", f"ray_{name}_count"}
        else:
            names.add(f"ray_{name}")
    return names


def make(name: str):
    """Create one metric of SPECS (call inside the actor that records it)."""
    kind, description, tags = SPECS[name]
    kwargs = {"boundaries": PLAN_MS_BOUNDARIES} if kind is metrics.Histogram else {}
    return kind(name, description=description, tag_keys=tags, **kwargs)
