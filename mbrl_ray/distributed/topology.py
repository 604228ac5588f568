"""Builds the actor graph of a run from its config: replay, parameter server, learner,
rollout workers and an evaluation worker. The one place where the graph is wired."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.autoscaler.sdk import request_resources
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from mbrl_ray import seeding
from mbrl_ray.agents import agent_class
from mbrl_ray.config import Config, ConfigError, to_dict
from mbrl_ray.distributed.learner import Learner
from mbrl_ray.distributed.param_server import ParameterServer
from mbrl_ray.distributed.replay_actor import ReplayActor
from mbrl_ray.distributed.rollout_worker import RolloutWorker
from mbrl_ray.envs.spec import EnvSpec

RESOURCE_POLL_S = 5.0


@dataclass
class Topology:
    replay: ray.actor.ActorHandle
    param_server: ray.actor.ActorHandle
    learner: ray.actor.ActorHandle
    workers: list
    evaluator: ray.actor.ActorHandle
    names: tuple[str, str]  # the replay's and the parameter server's actor names

    def all_actors(self) -> list:
        return [self.replay, self.param_server, self.learner, *self.workers, self.evaluator]


def check_resources(cfg: Config) -> None:
    """Fail before any actor starts if the actors cannot all be placed on this cluster. With
    ray.resource_wait_s > 0, first ask the autoscaler for them and wait that long."""
    w, lr = cfg.workers, cfg.learner
    cpus, gpus = w.num * w.num_cpus + lr.num_cpus, lr.num_gpus
    deadline = time.monotonic() + cfg.ray.resource_wait_s
    if cfg.ray.resource_wait_s and not _has(cpus, gpus):
        request_resources(bundles=[{"CPU": w.num_cpus}] * w.num
                          + [{"CPU": lr.num_cpus, **({"GPU": gpus} if gpus else {})}])
    while not _has(cpus, gpus) and time.monotonic() < deadline:
        time.sleep(RESOURCE_POLL_S)
    have = ray.cluster_resources()
    if cpus > have.get("CPU", 0):
        raise ConfigError(f"workers.num x workers.num_cpus + learner.num_cpus = {cpus:g} CPUs, "
                          f"but the Ray cluster has {have.get('CPU', 0):g}; lower them, or let "
                          "an autoscaling cluster grow with ray.resource_wait_s=SECONDS")
    if gpus > have.get("GPU", 0):
        raise ConfigError(f"learner.num_gpus={gpus:g} but the Ray cluster has "
                          f"{have.get('GPU', 0):g} GPUs; set learner.num_gpus=0 to train on CPU")


def release_resource_request(cfg: Config) -> None:
    """End of a run: withdraw check_resources' standing request, so the autoscaler may shrink."""
    if cfg.ray.resource_wait_s:
        request_resources(bundles=[])


def _has(cpus: float, gpus: float) -> bool:
    have = ray.cluster_resources()
    return cpus <= have.get("CPU", 0) and gpus <= have.get("GPU", 0)


def _learner_placement(cfg: Config, here: NodeAffinitySchedulingStrategy):
    """A CPU learner joins the run's state on the driver's node when that node has the CPUs;
    a GPU learner, or one that does not fit there, goes wherever Ray finds room."""
    node = next(n for n in ray.nodes() if n["NodeID"] == here.node_id)
    fits = node["Resources"].get("CPU", 0) >= cfg.learner.num_cpus
    return here if fits and not cfg.learner.num_gpus else None


def build(cfg: Config, spec: EnvSpec, resumes: int, checkpoint: Path | None = None,
          replay_state: dict | None = None, crash_worker_at_step: int = 0) -> Topology:
    """Start every actor, seeded as `mbrl_ray/seeding.py` documents; `resumes` varies the env
    seeds across resumes of one run; replay_state: what the replay's `save` returned beside
    `checkpoint`. crash_worker_at_step: fault injection (tests), worker 0
    dies once at that step."""
    raw = to_dict(cfg)
    t, w = cfg.train, cfg.workers
    limiter = None
    if t.schedule == "async":
        rows = agent_class(cfg).batch_spec_for(cfg).rows
        limiter = {"samples_per_insert": t.samples_per_insert, "min_size": t.random_steps,
                   "error_buffer": t.spi_error_buffer, "owed": t.pretrain_updates * rows,
                   "state": (replay_state or {}).get("limiter")}
    # Replay and parameter server hold the run's state: they stay on the driver's node (the head
    # on a cluster), so that losing a rollout node loses only its workers. (Hard affinity: they
    # reserve no CPU, and Ray's soft affinity spreads such actors anyway.)
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    # Named, so that actors find them by name: no handle is a constructor argument in the object
    # store, where a lost reference would make a restart fail.
    run_id = uuid.uuid4().hex[:12]
    names = (f"mbrl-replay-{run_id}", f"mbrl-params-{run_id}")
    replay = ReplayActor.options(name=names[0], scheduling_strategy=here).remote(
        t.replay_capacity, spec, t.seed + seeding.REPLAY, limiter,
        str(checkpoint / "replay.npz") if checkpoint else None,
        (replay_state or {}).get("rng"))
    param_server = ParameterServer.options(name=names[1], scheduling_strategy=here).remote()
    learner = start_learner(cfg, spec, names, checkpoint)
    # SPREAD: workers go to different nodes while there are nodes with room (best effort).
    workers = [
        RolloutWorker.options(num_cpus=w.num_cpus, max_restarts=w.max_restarts,
                              scheduling_strategy="SPREAD").remote(
            f"worker-{i}", raw, spec, *names,
            seeding.worker_seed(t.seed, i, resumes), crash_worker_at_step if i == 0 else 0)
        for i in range(w.num)]
    # The evaluator reserves no CPU: it runs now and then, beside the others.
    evaluator = RolloutWorker.options(num_cpus=0, max_restarts=w.max_restarts).remote(
        "evaluator", raw, spec, *names, seeding.evaluator_seed(t.seed, resumes))
    return Topology(replay, param_server, learner, workers, evaluator, names)


def start_learner(cfg: Config, spec: EnvSpec, names: tuple[str, str],
                  checkpoint: Path | None) -> ray.actor.ActorHandle:
    """The learner actor, from `checkpoint`'s learner.pt when given (also how the driver
    brings back a learner that died)."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return Learner.options(num_cpus=cfg.learner.num_cpus, num_gpus=cfg.learner.num_gpus,
                           scheduling_strategy=_learner_placement(cfg, here)).remote(
        to_dict(cfg), spec, *names, str(checkpoint / "learner.pt") if checkpoint else None)
