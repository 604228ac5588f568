"""Actor and critic modules shared by agents: SAC's actor and twin Q, and the SAC learner."""
from mbrl_ray.critics.nets import Actor, TwinQ, mlp
from mbrl_ray.critics.sac import SoftActorCritic

__all__ = ["Actor", "SoftActorCritic", "TwinQ", "mlp"]
