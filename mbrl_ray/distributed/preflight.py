"""Everything checked and set up before any actor starts: the config, the env, the agent's
needs (asked of its class) and Ray itself."""
from __future__ import annotations

import os

import ray

from mbrl_ray.agents import agent_class
from mbrl_ray.config import Config, ConfigError, check_machine, get_key, validate
from mbrl_ray.envs import EnvSpec, check_env_spec, env_kwargs, env_spec
from mbrl_ray.distributed.learner import BATCHES_PER_REQUEST
from mbrl_ray.distributed.loopback import listen_on_loopback_only, starts_a_new_ray
from mbrl_ray.config.machine import is_local_run, local_gpu_count, local_memory_bytes
from mbrl_ray.distributed.network_memory import agent_network_bytes
from mbrl_ray.replay import BatchSpec
from mbrl_ray.replay.storage import bytes_per_row


def preflight(cfg: Config) -> EnvSpec:
    """Every check that needs no actor: raises ConfigError naming the key and value; returns
    the env's spec."""
    joined = ray.is_initialized()  # a Ray this process joined: its resources are checked later
    check_machine(validate(cfg), ray_running=joined)
    check_env_spec(cfg.env.id, cfg.env.max_episode_steps)
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    check_replay_memory(cfg, spec, ray_running=joined)
    agent = agent_class(cfg)
    agent.check_config(cfg, spec)
    batch = agent.batch_spec_for(cfg)
    check_batch(cfg, batch)
    check_eval_lag(cfg, batch.rows)
    check_network_memory(cfg, spec, agent.size_keys, ray_running=joined)
    return spec


def learner_state_loader(cfg: Config, spec: EnvSpec):
    """load(state): loads a checkpoint's learner state into an agent this config builds (on
    CPU, built once), raising as the learner would on a tensor missing, extra or of another
    shape; a resume checks its checkpoint with it before any actor starts."""
    import torch

    from mbrl_ray.agents import make_learner
    agent = make_learner(spec, cfg, torch.device("cpu"), seed=cfg.train.seed)
    return agent.load_state_dict


def check_eval_lag(cfg: Config, rows: int) -> None:
    """An evaluation held for the learner (train.eval_max_lag) must be one the learner can
    reach: it publishes every updates_per_round updates and may draw at most
    spi_error_buffer samples past those due, so its weights can stay up to
    updates_per_round - spi_error_buffer / rows updates behind."""
    t = cfg.train
    if t.schedule != "async" or t.eval_max_lag < 0:
        return
    ahead = int(t.spi_error_buffer // rows)
    least = t.updates_per_round - ahead
    if t.eval_max_lag < least:
        raise ConfigError(
            f"train.eval_max_lag={t.eval_max_lag}: the learner publishes every "
            f"train.updates_per_round={t.updates_per_round} updates and draws at most "
            f"train.spi_error_buffer={t.spi_error_buffer:g} samples ({ahead} updates of "
            f"{rows} rows) past those due, so its weights may stay {least} updates behind; "
            f"train.eval_max_lag must be >= {least} (or raise train.spi_error_buffer, or -1: "
            "no wait)")


REPLAY_MEMORY_SHARE = 0.8  # of a local run's machine: the rest for the actors' own memory


def check_replay_memory(cfg: Config, spec: EnvSpec, ray_running: bool = False) -> None:
    """A local run's replay (one actor holding train.replay_capacity rows) fits in
    REPLAY_MEMORY_SHARE of this machine's memory. A cluster's is checked once connected
    (check_replay_memory_on_node)."""
    if ray_running or not is_local_run(cfg.ray.address):
        return
    _check_replay_fits(cfg, spec, int(REPLAY_MEMORY_SHARE * local_memory_bytes()),
                       f"{REPLAY_MEMORY_SHARE:.0%} of this machine's memory",
                       "a local run allows", "or join a cluster with ray.address")


def check_replay_memory_on_node(cfg: Config, spec: EnvSpec) -> None:
    """Once connected: the replay actor lives on the driver's node; its rows must fit in the
    memory Ray gives that node's actors (its `memory` resource)."""
    here = ray.get_runtime_context().get_node_id()
    node = next(n for n in ray.nodes() if n["NodeID"] == here)
    where = (f"the memory Ray gives actors on the driver's node {node['NodeManagerAddress']} "
             "(which holds the replay)")
    _check_replay_fits(cfg, spec, int(node["Resources"].get("memory", 0)), where,
                       "this run allows", "or run the driver on a node with more memory")


def _check_replay_fits(cfg: Config, spec: EnvSpec, have: int, where: str, allows: str,
                       instead: str) -> None:
    per_row = bytes_per_row(spec)
    need = cfg.train.replay_capacity * per_row
    if need > have:
        raise ConfigError(
            f"train.replay_capacity={cfg.train.replay_capacity:,} rows of {per_row:,} bytes "
            f"need {need / 2**30:,.1f} GiB, more than {where}: {have / 2**30:,.1f} GiB; "
            f"{allows} train.replay_capacity <= {have // per_row:,}, {instead}")


def check_network_memory(cfg: Config, spec: EnvSpec, size_keys: tuple[str, ...],
                         ray_running: bool = False) -> None:
    """A local run's networks fit beside its replay in REPLAY_MEMORY_SHARE of this machine's
    memory: the learner's weights, targets, gradients and Adam moments (on a GPU learner only
    its checkpoint copy is on the host; the GPU's own memory is not asked, since that would
    start CUDA in the driver), and one inference copy per rollout worker and the evaluator,
    each counted as the learner's networks (a bound: an acting part holds a subset of them, and
    some build their networks only as weights arrive). Counted on the meta device
    (network_memory.py); activations come on top."""
    if ray_running or not is_local_run(cfg.ray.address):
        return
    learner = worker = agent_network_bytes(cfg, spec, learner=True)
    on_gpu = cfg.learner.device.startswith("cuda") or (cfg.learner.device == "auto"
                                                        and local_gpu_count() > 0)
    learner_host = learner.held if on_gpu else learner.training
    copies = cfg.workers.num + 1
    need = learner_host + copies * worker.held
    replay = cfg.train.replay_capacity * bytes_per_row(spec)
    have = int(REPLAY_MEMORY_SHARE * local_memory_bytes()) - replay
    if need > have:
        sized_by = (*size_keys, "workers.num") + (("train.replay_capacity",) if replay > need
                                                  else ())
        keys = ", ".join(f"{k}={get_key(cfg, k)}" for k in sized_by)
        raise ConfigError(
            f"the networks need {need / 2**30:,.1f} GiB (the learner "
            f"{learner_host / 2**30:,.1f} GiB: " + ("its checkpoint copy" if on_gpu else
                                                    "weights, targets, gradients and Adam "
                                                    "moments")
            + f"; {copies} copies of {worker.held / 2**30:,.1f} GiB on the rollout workers and "
            "the evaluator), more "
            f"than the {max(have, 0) / 2**30:,.1f} GiB left of {REPLAY_MEMORY_SHARE:.0%} of "
            f"this machine's memory beside the replay's {replay / 2**30:,.1f} GiB; lower {keys}, "
            "or join a cluster with ray.address")


def check_batch(cfg: Config, batch: BatchSpec) -> None:
    """The replay can hold what one batch needs, and the async limiter can grant it."""
    t = cfg.train
    if batch.kind == "sequences" and batch.length > t.replay_capacity:
        raise ConfigError(f"train.replay_capacity={t.replay_capacity} cannot hold one sequence "
                          f"of {batch.length} rows ({batch.keys or 'the sequence length'})")
    if batch.size > t.replay_capacity:
        raise ConfigError(f"train.replay_capacity={t.replay_capacity} is below one batch: "
                          f"{batch.keys or 'the batch size'} = {batch.size}")
    request = batch.rows * min(BATCHES_PER_REQUEST, t.updates_per_round)
    if t.schedule == "async" and t.spi_error_buffer < request:
        raise ConfigError(f"train.spi_error_buffer={t.spi_error_buffer:g} must be at least one "
                          f"sample request of min({BATCHES_PER_REQUEST}, "
                          f"train.updates_per_round) batches of {batch.keys or 'the batch'} = "
                          f"{batch.rows} rows: {request}")


def init_ray(cfg: Config) -> bool:
    """Join the cluster of `ray job submit` (RAY_ADDRESS) or cfg.ray.address, else start locally.
    Returns whether this process started its own Ray (preflight checked this machine for it)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs = {"num_cpus": cfg.ray.num_cpus} if cfg.ray.num_cpus else {}
    address = cfg.ray.address or None
    started = starts_a_new_ray(address)
    if started:
        listen_on_loopback_only()  # nothing of a local run answers from the network
    ray.init(address=address, log_to_driver=True, **kwargs)
    return started


def describe_planning(cfg: Config, spec: EnvSpec) -> str | None:
    """The agent's line on what each action costs its planner (`Agent.planning_cost`)."""
    return agent_class(cfg).planning_cost(cfg, spec)
