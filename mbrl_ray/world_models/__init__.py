"""World models and their losses."""
from mbrl_ray.world_models.ensemble import ProbabilisticEnsemble
from mbrl_ray.world_models.ensemble_training import FitResult, fit_ensemble
from mbrl_ray.world_models.propagation import expected_returns, policy_sequences

__all__ = ["FitResult", "ProbabilisticEnsemble", "expected_returns",
           "fit_ensemble", "policy_sequences"]
