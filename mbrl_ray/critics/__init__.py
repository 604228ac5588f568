"""Actor and critic modules shared by agents: SAC's actor and twin Q, a Q ensemble on batched
layers, and the SAC learner."""
from mbrl_ray.critics.nets import Actor, QEnsemble, TwinQ, mlp
from mbrl_ray.critics.sac import SoftActorCritic

__all__ = ["Actor", "QEnsemble", "SoftActorCritic", "TwinQ", "mlp"]
