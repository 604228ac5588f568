"""The config sections of the state-space algorithms: the world models (`model`: the ensemble;
`delta`: MBMF's network), the planners (`planner`), the critics and policies (`sac`, `mbpo`,
`mbmf`), each field documented in place with its bound, and each section's cross-key rules in
its `check(cfg)`. The latent world models' sections are in `latent_models.py`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mbrl_ray.config.fields import ConfigError, doc

if TYPE_CHECKING:
    from mbrl_ray.config.schema import Config


@dataclass
class ModelConfig:
    ensemble_size: int = doc(5, "members of the probabilistic ensemble (E)",
                             bound="count", upper=100)
    num_elites: int = doc(5, "members used for planning, chosen by validation loss", bound="count")
    hidden_size: int = doc(200, "width of each hidden layer", bound="count", upper=16_384)
    num_layers: int = doc(4, "hidden layers per member", bound="count", upper=64)
    lr: float = doc(1e-3, "Adam learning rate", bound="> 0")
    weight_decay: float = doc(5e-5, "L2 weight decay", bound=">= 0")
    batch_size: int = doc(256, "minibatch size per member", bound="count", upper=1_000_000)
    holdout: float = doc(0.2, "fraction of data held out for validation and early stopping",
                         bound="(0, 1)")
    patience: int = doc(5, "epochs without >1% validation improvement before stopping",
                        bound="count")
    max_epochs: int = doc(50, "upper bound on epochs per fit (sync schedule)", bound="count")
    propagation: str = doc("ts_inf", "particle propagation", choices=("ts1", "ts_inf"))
    particles: int = doc(20, "particles per action sequence (P)", bound="count", upper=1_000)
    termination: bool = doc(True, "learn p(terminated | s') and plan with it (planet, "
                            "dreamer: the RSSM's continue head); off for envs that never end")
    bootstrap: bool = doc(True, "sync fits: each member trains on its own sample of the rows "
                          "drawn with replacement (PETS); false: its own shuffle of all rows")

    def check(self, cfg: Config) -> None:
        if self.num_elites > self.ensemble_size:
            raise ConfigError(f"model.num_elites={self.num_elites} exceeds "
                              f"model.ensemble_size={self.ensemble_size}")


@dataclass
class PlannerConfig:
    name: str = doc("cem", "planner: cem (PETS), icem (coloured noise, decaying population, "
                    "kept elites), mppi (score-weighted refit, TD-MPC2), rs (random shooting), "
                    "smcp (sequential Monte Carlo with the SAC policy as proposal and its soft "
                    "value in the weights; population = particles)",
                    choices=("cem", "icem", "mppi", "rs", "smcp"))
    posterior: str = doc("mpc", "cem and smcp: act as MPC (elite mean / a surviving particle's "
                         "first action) or sample the action from the LST posterior (Eq. 4: "
                         "candidates reweighted by the model's transition density to the "
                         "optimal trajectories' next states; CEM-LST, SMCP-LST)",
                         choices=("mpc", "lst"))
    resampling: str = doc("systematic", "smcp: resampling after every step",
                          choices=("systematic", "multinomial"))
    warm_start: bool = doc(True, "cem, icem, mppi, rs: start each action's plan from the "
                           "last plan shifted by one step; false: from the initial "
                           "distribution every step (PlaNet)")
    horizon: int = doc(30, "planning horizon (H)", bound="count", upper=1_000)
    population: int = doc(500, "action sequences sampled per iteration",
                          bound="count", upper=100_000)
    num_elites: int = doc(50, "elites refitted per iteration", bound="count")
    iterations: int = doc(5, "refinement iterations per action (rs: batches of samples)",
                          bound="count", upper=100)
    alpha: float = doc(0.1, "momentum: weight of the previous mean/std in each refit",
                       bound="[0, 1]")
    init_std: float = doc(0.5, "initial std of the sampling distribution, actions in [-1, 1]",
                          bound="> 0")
    execute: str = doc("mean", "cem: act on the final elite mean (PETS paper) or the best "
                       "sequence sampled (mbrl-lib; robust when elites split between modes)",
                       choices=("mean", "best"))
    noise_beta: float = doc(2.0, "icem: exponent of the coloured noise's 1/f^beta spectrum "
                            "(0: white)", bound=">= 0")
    population_decay: float = doc(1.25, "icem: population divided by this each iteration")
    keep_elites: float = doc(0.3, "icem: fraction of elites kept into the next iteration and "
                             "the next step", bound="[0, 1]")
    temperature: float = doc(0.5, "mppi: elites weighted by exp(temperature x (value - max))",
                             bound="> 0")
    min_std: float = doc(0.05, "mppi: lower bound of the sampling std; smcp-lst: of the "
                         "Gaussian fitted to each sweep's weighted first actions")
    sweeps: int = doc(1, "smcp with posterior lst: K sweeps of the LST paper's Algorithm 1 "
                      "(sweep k > 1 draws first actions from a Gaussian fitted to sweep k-1's "
                      "LST posterior); 1: one sweep from the proposal", bound="count", upper=100)
    max_std: float = doc(2.0, "mppi: upper bound and initial sampling std")
    discount: float = doc(1.0, "discount of predicted rewards along the horizon", bound="[0, 1]")
    value_weight: float = doc(0.0, "weight of a learned terminal value at the horizon, "
                              "V(s_H) = min of a SAC critic's twin Q at its actor's mean action, "
                              "trained on the same replay (sac.* keys); 0: off, PETS as in the "
                              "paper. (dcmpc always closes its plans with its own critics)",
                              bound=">= 0")
    prior_samples: int = doc(0, "action prior: sequences of the agent's prior policy (PETS: "
                             "the SAC actor trained for the terminal value; DC-MPC: its actor) "
                             "rolled through the model, mixed into every planner iteration's "
                             "samples; 0: off", bound=">= 0")
    prior_weight: float = doc(0.0, "Marino & Yue's Eq. 8 action term: adds prior_weight x "
                              "sum_t discount^t [log p(a_t | s_t) - log q(a_t)] to each "
                              "sequence's value, p the action prior (PETS: the SAC actor, "
                              "trained on the same replay), q the planner's sampling Gaussian "
                              "(cem, icem, mppi); 0: off", bound=">= 0")
    prior_init: bool = doc(False, "cem, icem, mppi: start each action's first iteration from "
                           "the Gaussian fitted to the prior's sequences (planner.prior_samples) "
                           "instead of the warm start")
    info_weight: float = doc(0.0, "weight of the information term added to the planning "
                             "objective per step: +1 is Marino & Yue's Eq. 10 (the information "
                             "between the model's latent and the predicted transition is "
                             "rewarded); negative penalises it (toward states the members "
                             "agree on); 0: off. Costs E extra member passes per step")
    info_term: str = doc("mi", "the information term: mi (mutual information between ensemble "
                         "member and predicted (state change, reward), from the mixture "
                         "density) or std (a proxy: std of the members' mean state change)",
                         choices=("mi", "std"))

    def check(self, cfg: Config) -> None:
        if self.num_elites > self.population:
            raise ConfigError(f"planner.num_elites={self.num_elites} exceeds "
                              f"planner.population={self.population}")
        if self.name in ("cem", "icem", "mppi") and self.num_elites < 2:
            raise ConfigError(f"planner.num_elites={self.num_elites} leaves the {self.name} "
                              "refit's standard deviation undefined; use at least 2")
        if self.posterior == "lst" and self.name not in ("cem", "smcp"):
            raise ConfigError(f"planner.posterior='lst' needs planner.name cem or smcp, "
                              f"not {self.name!r}")
        if self.sweeps > 1 and (self.name, self.posterior) != ("smcp", "lst"):
            raise ConfigError(f"planner.sweeps={self.sweeps} needs planner.name=smcp with "
                              f"planner.posterior=lst, not {self.name!r} with "
                              f"{self.posterior!r}; other planners iterate by planner.iterations")
        self._check_action_prior(cfg)
        if not self.warm_start and self.name == "smcp":
            raise ConfigError("planner.warm_start=false applies to the sequence planners (cem, "
                              "icem, mppi, rs), not planner.name='smcp', whose particles carry "
                              "no plan between steps to restart")
        if self.population_decay < 1:
            raise ConfigError(f"planner.population_decay={self.population_decay!r} must be >= 1")
        if not 0 < self.min_std <= self.max_std:
            raise ConfigError(f"planner.min_std={self.min_std!r} and planner.max_std="
                              f"{self.max_std!r} must satisfy 0 < min_std <= max_std")

    def _check_action_prior(self, cfg: Config) -> None:
        if self.prior_weight > 0 and self.name not in ("cem", "icem", "mppi"):
            raise ConfigError(f"planner.prior_weight={self.prior_weight} needs a Gaussian "
                              f"sampler (planner.name cem, icem or mppi), not {self.name!r}")
        if self.prior_weight > 0 and cfg.agent.name != "pets":
            raise ConfigError(f"planner.prior_weight={self.prior_weight} needs agent.name=pets "
                              f"(a stochastic action prior), not {cfg.agent.name!r}")
        if self.prior_init and self.prior_samples < 2:
            raise ConfigError(f"planner.prior_init=true fits a Gaussian to the prior's "
                              f"sequences: planner.prior_samples={self.prior_samples} must be "
                              "at least 2")


@dataclass
class SACConfig:
    hidden_size: int = doc(256, "width of the actor's and critics' hidden layers",
                           bound="count", upper=16_384)
    num_layers: int = doc(2, "hidden layers of the actor and of each critic",
                          bound="count", upper=64)
    lr: float = doc(3e-4, "Adam learning rate of actor, critics and temperature", bound="> 0")
    batch_size: int = doc(256, "minibatch per gradient step", bound="count", upper=1_000_000)
    gamma: float = doc(0.99, "discount", bound="[0, 1]")
    tau: float = doc(0.005, "Polyak rate of the target critics", bound="(0, 1)")
    init_alpha: float = doc(1.0, "initial entropy temperature (tuned towards -|A| nats)",
                            bound="> 0")
    updates_per_fit: int = doc(250, "gradient steps per round (sync schedule)", bound="count")
    consolidation: float = doc(0.0, "weight of -log pi(a | s) of the actions in replay (those "
                               "the planner executed) in the actor's loss: the inference view's "
                               "consolidation of plans into the prior policy; 0: off",
                               bound=">= 0")


@dataclass
class DeltaConfig:
    """MBMF's deterministic delta network (world_models/deterministic.py) and its fit; the
    paper: 2 hidden layers of 500 ReLU units, Adam 1e-3, batch 512."""
    hidden_size: int = doc(500, "width of each hidden layer", bound="count", upper=16_384)
    num_layers: int = doc(2, "hidden layers", bound="count", upper=64)
    lr: float = doc(1e-3, "Adam learning rate", bound="> 0")
    batch_size: int = doc(512, "minibatch size", bound="count", upper=1_000_000)
    epochs: int = doc(60, "passes over all transitions held at every fit (sync schedule)",
                      bound="count", upper=100_000)

    def check(self, cfg: Config) -> None:
        p = cfg.planner
        if cfg.agent.name in ("mb-mpc", "mbmf") and (p.name == "smcp" or p.posterior != "mpc" or any(
                (p.value_weight, p.prior_weight, p.prior_samples, p.info_weight))):
            raise ConfigError(
                f"agent.name={cfg.agent.name!r} plans with a sequence planner (rs as the paper, cem, "
                f"icem, mppi) on its model alone: planner.posterior='mpc' and no critic or "
                f"information terms, not planner.name={p.name!r}, posterior={p.posterior!r}, "
                f"value_weight={p.value_weight}, prior_weight={p.prior_weight}, "
                f"prior_samples={p.prior_samples}, info_weight={p.info_weight}")


@dataclass
class MBMFConfig:
    """MBMF's imitation phase (agents/mbmf.py): the MPC expert imitated into a Gaussian MLP
    policy by DAgger; the paper's policy: 2 hidden layers of 64 tanh units."""
    imitate_from: int = doc(3000, "env steps of MPC acting (the model-based phase) before the "
                            "policy acts and DAgger labels the states it visits", bound=">= 0")
    hidden_size: int = doc(64, "width of the policy's hidden layers", bound="count",
                           upper=16_384)
    num_layers: int = doc(2, "hidden layers of the policy", bound="count", upper=64)
    lr: float = doc(1e-3, "Adam learning rate of the policy", bound="> 0")
    batch_size: int = doc(256, "minibatch of labelled states", bound="count", upper=1_000_000)
    epochs: int = doc(20, "passes over every labelled state at each fit", bound="count",
                      upper=100_000)
    std: float = doc(0.1, "std of the policy's Gaussian noise on actions when exploring "
                     "(the DAgger rollouts); evaluation acts on its mean", bound=">= 0")
    label_chunk: int = doc(256, "states planned for at once when the expert labels",
                           bound="count", upper=1_000_000)
    finetune_steps: int = doc(0, "env steps of the third phase after training: RLlib's PPO "
                              "fine-tunes the imitation policy (`mbrl-ray finetune`); 0: none",
                              bound=">= 0")
    ppo_batch: int = doc(1000, "PPO: env steps per iteration (train batch)", bound="count",
                         upper=10_000_000)
    ppo_minibatch: int = doc(128, "PPO: minibatch size", bound="count", upper=1_000_000)
    ppo_epochs: int = doc(10, "PPO: passes over each train batch", bound="count", upper=1_000)
    ppo_lr: float = doc(3e-4, "PPO: Adam learning rate of policy, log std and value",
                        bound="> 0")
    ppo_gamma: float = doc(0.99, "PPO: discount", bound="[0, 1]")
    ppo_lambda: float = doc(0.95, "PPO: GAE lambda", bound="[0, 1]")

    def check(self, cfg: Config) -> None:
        if cfg.agent.name != "mbmf":
            return
        if cfg.train.schedule != "sync":
            raise ConfigError(f"agent.name='mbmf' runs on train.schedule sync (its expert "
                              f"labels whole rounds), not {cfg.train.schedule!r}")
        if self.imitate_from < cfg.train.random_steps:
            raise ConfigError(f"mbmf.imitate_from={self.imitate_from} is below "
                              f"train.random_steps={cfg.train.random_steps}: the policy "
                              "imitates the MPC expert, which acts only after the random steps")


@dataclass
class MBPOConfig:
    rollouts_per_step: int = doc(400, "model rollouts branched from replay states per new env step",
                                 bound="count")
    rollout_length_start: int = doc(1, "rollout length until schedule_start_steps", bound="count")
    rollout_length_end: int = doc(1, "rollout length from schedule_end_steps (linear in between)",
                                  bound="count")
    schedule_start_steps: int = doc(20_000, "env steps where the rollout length starts to grow",
                                    bound=">= 0")
    schedule_end_steps: int = doc(100_000, "env steps where it reaches rollout_length_end",
                                  bound=">= 0")
    updates_per_step: int = doc(20, "SAC gradient steps per new env step", bound="count")
    real_ratio: float = doc(0.05, "fraction of each SAC batch drawn from real transitions",
                            bound="[0, 1]")
    retain_steps: int = doc(1000, "model rollouts of this many env steps are kept (FIFO)",
                            bound="count")
