"""Typed configuration schema: one dataclass per section, every field documented in place.

A run is fully described by one `Config`. Presets (YAML) and dotted overrides
(`planner.horizon=20`) only change values of these fields; `validate()` checks the ranges. The
run's own sections are here; the algorithms' are in `algorithms.py` and `latent_models.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mbrl_ray.config.algorithms import (DeltaConfig, MBMFConfig, MBPOConfig, ModelConfig,
                                        PlannerConfig, SACConfig)
from mbrl_ray.config.latent_models import DCMPCConfig, DreamerConfig, RSSMConfig
from mbrl_ray.config.policy_search import DeepPILCOConfig, GPSConfig, PILCOConfig
from mbrl_ray.config.fields import BOUNDS, ConfigError, doc

__all__ = ["BOUNDS", "Config", "ConfigError", "DCMPCConfig", "DeepPILCOConfig", "DeltaConfig",
           "DreamerConfig", "GPSConfig", "MBMFConfig", "MBPOConfig", "ModelConfig", "PILCOConfig",
           "PlannerConfig", "RSSMConfig", "SACConfig", "doc"]

MAX_SEED = 2**31 - 1  # seeding.py's offsets keep every derived seed below 2**32


@dataclass
class EnvConfig:
    id: str = doc("InvertedPendulum-v5", "environment spec: a Gymnasium id (HalfCheetah-v5), "
                  "dmc:<domain>-<task> (dmc:cheetah-run), metaworld:<task> "
                  "(metaworld:door-open) or 'dummy'")
    max_episode_steps: int = doc(0, "time limit override in the suite's own steps (before "
                                 "action repeat); 0 keeps the env's own limit", bound=">= 0")
    action_repeat: int = doc(1, "each action is applied this many times, rewards summed",
                             bound="count")
    obs: str = doc("state", "observation: flat float32 state, or the rendered frame "
                   "(uint8, 3 x image_size x image_size)", choices=("state", "pixels"))
    image_size: int = doc(64, "side of the rendered frame when env.obs=pixels",
                          bound="count", upper=1_024)
    conditions: int = doc(0, "> 0: every episode starts from one of this many fixed initial "
                          "states (guided policy search's conditions), each env cycling "
                          "through them in turn; 0: the env's own random starts", bound=">= 0",
                          upper=10_000)
    condition_seed: int = doc(0, "condition c is the env's reset with seed condition_seed + c",
                              bound=">= 0")


@dataclass
class AgentConfig:
    name: str = doc("pets", "agent: pets (ensemble + planner), sac (model-free soft "
                    "actor-critic), mbpo (SAC trained on model rollouts branched from replay) "
                    "or dcmpc (discrete codebook world model, TD3-style critics, MPPI on "
                    "expected codes; dcmpc.* keys), planet (RSSM world model, CEM over "
                    "latent action sequences; rssm.* keys) or dreamer (RSSM, actor and critic "
                    "trained in imagination; rssm.* and dreamer.* keys) or mb-mpc (MBMF's "
                    "model-based phase: a deterministic delta network and random-shooting "
                    "MPC; delta.* keys) or mbmf (mb-mpc, then its MPC imitated into a policy "
                    "by DAgger; delta.* and mbmf.* keys) or gps (guided policy search: local "
                    "linear-Gaussian controllers per env.conditions start and a neural policy "
                    "trained on their samples; gps.* keys) or pilco (GP dynamics, moment-"
                    "matched rollouts, an RBF policy by analytic gradients; pilco.* keys) or "
                    "deep-pilco (PILCO with a dropout network and particles; deep_pilco.* "
                    "and pilco.* keys)",
                    choices=("pets", "sac", "mbpo", "dcmpc", "planet", "dreamer", "mb-mpc",
                             "mbmf", "gps", "pilco", "deep-pilco"))


@dataclass
class WorkersConfig:
    num: int = doc(1, "rollout worker actors", bound="count", upper=10_000)
    envs_per_worker: int = doc(1, "environments per worker, planned for in one batched call",
                               bound="count", upper=4_096)
    num_cpus: float = doc(1.0, "CPUs reserved per rollout worker (also its torch threads)",
                          bound=">= 0")
    device: str = doc("cpu", "torch device the workers plan on: auto (cuda if the worker "
                      "sees one), cpu, cuda, cuda:N")
    max_restarts: int = doc(3, "times Ray restarts a dead worker", bound=">= 0", upper=1_000)


@dataclass
class LearnerConfig:
    device: str = doc("auto", "torch device of the learner: auto (cuda if present), cpu, cuda, cuda:N")
    num_cpus: float = doc(1.0, "CPUs reserved for the learner", bound=">= 0")
    num_gpus: float = doc(0.0, "GPUs reserved for the learner (set 1 on a GPU node)", bound=">= 0")
    max_restarts: int = doc(3, "times the driver restarts a dead learner from the newest "
                            "checkpoint (replay and workers go on)", bound=">= 0", upper=1_000)


@dataclass
class TrainConfig:
    steps: int = doc(5000, "env step budget (all workers together)",
                     bound="count", upper=10_000_000_000)
    seed: int = doc(0, "seed of envs, networks, planners and replay sampling (0 .. 2^31-1); "
                    "each actor's offset is in mbrl_ray/seeding.py")
    schedule: str = doc("sync", "sync: collect, fit, broadcast; async: free-running workers",
                        choices=("sync", "async"))
    random_steps: int = doc(250, "steps of uniform random actions before the first model fit",
                            bound=">= 0")
    steps_per_round: int = doc(250, "env steps collected between model fits (sync)", bound="count")
    updates_per_round: int = doc(100, "gradient steps between weight broadcasts (async)",
                                 bound="count")
    samples_per_insert: float = doc(8.0, "async update-to-data ratio: samples drawn per inserted step",
                                    bound="> 0")
    spi_error_buffer: float = doc(2000.0, "slack of the samples-per-insert limiter, in samples",
                                  bound=">= 0")
    pretrain_updates: int = doc(0, "async: learner updates right after the random steps, with "
                                "workers waiting (TD-MPC2 and DC-MPC: as many as random steps)",
                                bound=">= 0")
    replay_capacity: int = doc(1_000_000, "rows kept in replay: one per env step plus one per "
                               "episode start (its first observation)", bound="count")
    eval_every: int = doc(1000, "env steps between evaluations; 0 evaluates only at the end",
                          bound=">= 0")
    eval_episodes: int = doc(1, "episodes per evaluation", bound="count", upper=7_000)
    eval_wait: bool = doc(False, "training waits for each evaluation, so every due point is "
                          "evaluated (exact curves, slower); false: evaluations run beside "
                          "training and a point due while one runs is skipped")
    eval_max_lag: int = doc(-1, "async: an evaluation waits until the published weights are "
                            "at most this many learner updates behind those the "
                            "samples-per-insert ratio has granted (eval/updates_behind logs "
                            "the gap); -1: evaluate the newest weights at once")
    video_every: int = doc(0, "record one evaluation episode as a TensorBoard video every K "
                           "evaluations (eval/video); 0: never", bound=">= 0")
    video_size: int = doc(128, "side of the evaluation video's frames", bound="count", upper=1_024)
    checkpoint_every: int = doc(0, "env steps between checkpoints; 0: every 10% of train.steps; "
                                "one is always written at the end", bound=">= 0")

    def check(self, cfg: Config) -> None:
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"train.seed={self.seed!r} must lie in 0 .. {MAX_SEED}")
        if self.eval_max_lag < -1:
            raise ConfigError(f"train.eval_max_lag={self.eval_max_lag!r} must be >= 0 "
                              "(updates), or -1 (no wait)")


@dataclass
class RayConfig:
    address: str = doc("", "Ray address; empty starts or joins a local Ray (ray job submit sets it)")
    num_cpus: int = doc(0, "CPUs of a local Ray; 0 lets Ray decide", bound=">= 0")
    resource_wait_s: float = doc(0.0, "seconds to wait for an autoscaling cluster to grow to the "
                                 "run's CPUs/GPUs (asked of the autoscaler); 0 fails at once",
                                 bound=">= 0")


@dataclass
class Config:
    preset: str = doc("", "name of the preset this config came from")
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    mbpo: MBPOConfig = field(default_factory=MBPOConfig)
    dcmpc: DCMPCConfig = field(default_factory=DCMPCConfig)
    rssm: RSSMConfig = field(default_factory=RSSMConfig)
    dreamer: DreamerConfig = field(default_factory=DreamerConfig)
    delta: DeltaConfig = field(default_factory=DeltaConfig)
    mbmf: MBMFConfig = field(default_factory=MBMFConfig)
    gps: GPSConfig = field(default_factory=GPSConfig)
    pilco: PILCOConfig = field(default_factory=PILCOConfig)
    deep_pilco: DeepPILCOConfig = field(default_factory=DeepPILCOConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ray: RayConfig = field(default_factory=RayConfig)
