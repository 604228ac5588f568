"""Actor and critic modules shared by agents: SAC's actor and twin Q, a Q ensemble on batched
layers, and the SAC learner."""
from mbrl_ray.critics.nets import Actor, DeterministicActor, QEnsemble, TwinQ
from mbrl_ray.critics.sac import SoftActorCritic

__all__ = ["Actor", "DeterministicActor", "QEnsemble", "SoftActorCritic", "TwinQ"]
