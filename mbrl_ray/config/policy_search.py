"""The config section of guided policy search (`gps`, agents/gps.py): local time-varying
linear-Gaussian controllers improved by KL-bounded LQR steps on dynamics fitted to each round,
and a neural policy trained on their samples."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mbrl_ray.config.fields import ConfigError, doc

if TYPE_CHECKING:
    from mbrl_ray.config.schema import Config


@dataclass
class GPSConfig:
    policy_step: str = doc("importance", "how the neural policy learns from the local "
                           "controllers' samples: importance (Levine & Koltun 2013: the "
                           "importance-sampled return of every sample so far, with the "
                           "log-normaliser regulariser) or supervised (Levine et al. 2015/16: "
                           "regression onto the newest controllers' actions, weighted by "
                           "their precision)", choices=("importance", "supervised"))
    kl_step: float = doc(1.0, "KL bound of each local controller's step to the one that "
                         "sampled the round, per time step (the bound is kl_step x T)",
                         bound="> 0")
    adapt_step: bool = doc(False, "scale each condition's KL bound by the ratio of the last "
                           "step's predicted to actual improvement (Levine & Abbeel 2014's "
                           "rule, multiplier in [0.01, 10]); false: gps.kl_step throughout")
    action_limits: bool = doc(False, "control-limited steps: each controller's mean action "
                              "at the samples' mean state stays in [-1, 1] (a box QP per step, "
                              "the clamped dimensions without feedback; Tassa et al. 2014); "
                              "false: unconstrained LQR, actions clipped by the env")
    dynamics: str = doc("local", "what the local controllers are optimised on: local "
                        "(Levine & Abbeel 2014: time-varying linear-Gaussian fits to each "
                        "round's samples, a KL-bounded LQR step) or model (a delta network "
                        "fitted to every transition held, delta.* keys: receding-horizon MPC "
                        "with the planner.* planner, then iLQR, from each start; the 2013 "
                        "paper planned with DDP on the simulator)", choices=("local", "model"))
    ilqr_iterations: int = doc(20, "model: iLQR iterations per condition and round from the "
                               "MPC trajectory", bound=">= 0", upper=100_000)
    sample_std: float = doc(0.1, "model: std of the Gaussian noise the controllers sample "
                            "with around the plan and its feedback", bound="> 0")
    prior_strength: float = doc(1.0, "pseudo-count of the dynamics prior (one Gaussian over "
                                "all steps of the condition's samples in the round) in each "
                                "step's fit", bound=">= 0")
    hidden_size: int = doc(64, "width of the policy's hidden layers", bound="count",
                           upper=16_384)
    num_layers: int = doc(2, "hidden layers of the policy (tanh units)", bound="count",
                          upper=64)
    lr: float = doc(1e-3, "Adam learning rate of the policy", bound="> 0")
    policy_steps: int = doc(500, "Adam steps of the policy per round (full batch for "
                            "importance, minibatches of batch_size for supervised)",
                            bound="count", upper=1_000_000)
    batch_size: int = doc(256, "supervised: minibatch of sampled states", bound="count",
                          upper=1_000_000)
    regularizer: float = doc(0.01, "importance: weight w_r of sum_t log Z_t (keeps the policy "
                             "on the samples)", bound=">= 0")
    importance_rounds: int = doc(3, "importance: rounds of samples kept per condition (the "
                                 "newest), each with the controller that drew it",
                                 bound="count", upper=1_000)
    policy_std: float = doc(0.2, "importance: initial std of the policy's Gaussian (learned)",
                            bound="> 0")

    def check(self, cfg: Config) -> None:
        if cfg.agent.name != "gps":
            return
        from mbrl_ray.task_costs import COSTS
        if cfg.env.id not in COSTS:
            raise ConfigError(f"agent.name='gps' needs the task's cost, written for env.id "
                              f"{', '.join(sorted(COSTS))}; not env.id={cfg.env.id!r}")
        if cfg.env.conditions < 1:
            raise ConfigError(f"agent.name='gps' trains local controllers per initial state: "
                              f"env.conditions must be >= 1, not {cfg.env.conditions}")
        if cfg.env.max_episode_steps < 1:
            raise ConfigError("agent.name='gps' needs a fixed episode length: set "
                              f"env.max_episode_steps >= 1, not {cfg.env.max_episode_steps}")
        if cfg.train.schedule != "sync":
            raise ConfigError(f"agent.name='gps' runs on train.schedule sync (each round is "
                              f"whole episodes of every condition), not {cfg.train.schedule!r}")
        horizon = cfg.env.max_episode_steps // cfg.env.action_repeat
        unit = cfg.workers.num * cfg.workers.envs_per_worker * horizon
        for key in ("random_steps", "steps_per_round"):
            value = getattr(cfg.train, key)
            if value % unit:
                raise ConfigError(
                    f"train.{key}={value} must be a multiple of workers.num x "
                    f"workers.envs_per_worker x episode steps = {unit}, so that every env "
                    "plays whole episodes in a round")


@dataclass
class PILCOConfig:
    """PILCO (agents/pilco.py): GP dynamics, moment-matched rollouts, an RBF policy improved by
    gradients of its predicted cost; one trial (episode) per round."""
    basis: int = doc(50, "RBF policy: basis functions (the authors' cart-pole: 50)",
                     bound="count", upper=10_000)
    policy_iterations: int = doc(100, "L-BFGS iterations of the policy per trial",
                                 bound="count", upper=100_000)
    gp_iterations: int = doc(100, "L-BFGS iterations of the GP hyperparameters per trial",
                             bound="count", upper=100_000)
    horizon: int = doc(0, "steps the predicted cost sums over; 0: the trial's length "
                       "(env.max_episode_steps)", bound=">= 0", upper=10_000)
    inducing: int = doc(300, "once the data holds more transitions than this, the GP is "
                        "the sparse FITC approximation with this many learned inducing inputs "
                        "(the authors' cart-pole: 300); 0: the exact GP always",
                        bound=">= 0", upper=100_000)

    def check(self, cfg: Config) -> None:
        if cfg.agent.name == "pilco":
            self.check_task(cfg)

    @staticmethod
    def check_task(cfg: Config) -> None:
        """What PILCO and Deep PILCO need: a task written in moments, whole trials."""
        from mbrl_ray.moment_tasks import TASK_IDS
        name = cfg.agent.name
        if cfg.env.id not in TASK_IDS:
            raise ConfigError(f"agent.name={name!r} needs the task's state layout and cost, "
                              f"written for env.id {', '.join(TASK_IDS)}; not "
                              f"env.id={cfg.env.id!r}")
        if cfg.train.schedule != "sync":
            raise ConfigError(f"agent.name={name!r} runs on train.schedule sync (a trial, "
                              f"then the model and policy fits), not {cfg.train.schedule!r}")
        if cfg.env.max_episode_steps < 1:
            raise ConfigError(f"agent.name={name!r} needs a fixed trial length: set "
                              f"env.max_episode_steps >= 1, not {cfg.env.max_episode_steps}")


@dataclass
class DeepPILCOConfig:
    """Deep PILCO (agents/deep_pilco.py): PILCO with a dropout network as dynamics, particles
    for the moments and Adam on the pathwise gradient. The task, trials and RBF policy are
    PILCO's (pilco.basis, pilco.horizon)."""
    particles: int = doc(10, "particles per rollout, each with its own dropout mask",
                         bound="count", upper=100_000)
    hidden_size: int = doc(200, "width of the dynamics network's hidden layers",
                           bound="count", upper=16_384)
    num_layers: int = doc(2, "hidden layers of the dynamics network", bound="count", upper=64)
    dropout: float = doc(0.05, "dropout rate of the dynamics network, kept when predicting",
                         bound="(0, 1)")
    model_steps: int = doc(1000, "Adam steps of the dynamics per trial", bound="count",
                           upper=10_000_000)
    model_batch: int = doc(100, "minibatch of transitions per dynamics step", bound="count",
                           upper=1_000_000)
    model_lr: float = doc(1e-3, "Adam learning rate of the dynamics", bound="> 0")
    weight_decay: float = doc(1e-4, "weight decay of the dynamics (the dropout posterior's "
                              "prior term)", bound=">= 0")
    policy_steps: int = doc(500, "Adam steps of the policy per trial (their draws: "
                            "deep_pilco.resample_every)", bound="count", upper=10_000_000)
    policy_lr: float = doc(1e-2, "Adam learning rate of the policy", bound="> 0")
    resample_every: int = doc(0, "policy steps that share one set of masks, start draws and "
                              "noise (common random numbers, as PEGASUS and prob_mbrl's "
                              "MC-PILCO fix them); 0: fresh draws at every step",
                              bound=">= 0", upper=10_000_000)
    policy_clip: float = doc(0.0, "largest norm of the policy's gradient per step (0: not "
                             "clipped)", bound=">= 0")
    policy_gradient: str = doc("pathwise", "the policy step's gradient: pathwise (the "
                               "paper's, through the moment-matched particles) or reinforce (the "
                               "lecture's label: likelihood ratio of Gaussian exploration "
                               "actions, particles kept apart, no gradient through the model)",
                               choices=("pathwise", "reinforce"))
    reinforce_std: float = doc(0.1, "reinforce: std of the exploration noise on the policy's "
                               "actions (actions span [-1, 1])", bound="> 0")

    def check(self, cfg: Config) -> None:
        if cfg.agent.name == "deep-pilco":
            if self.particles < 2:
                raise ConfigError(f"deep_pilco.particles={self.particles}: the particles' "
                                  "covariance (and reinforce's baseline) needs >= 2")
            cfg.pilco.check_task(cfg)
