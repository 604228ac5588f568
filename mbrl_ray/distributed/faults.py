"""How a run that cannot go on says so: RunStopped, and the cause of an actor's death read
out of Ray's error text."""
from __future__ import annotations

import re


class RunStopped(RuntimeError):
    """The run stopped on a fault it cannot go on from; the message says why and what is saved.
    learner_failed: the learner kept dying, also when started from the newest checkpoint."""

    def __init__(self, message: str, learner_failed: bool = False) -> None:
        super().__init__(message)
        self.learner_failed = learner_failed


def actor_error_cause(err: Exception) -> str:
    """The last `SomeError: text` line of an actor's error (Ray wraps the actor's traceback in
    its own text), else the error's type."""
    lines = [line.strip() for line in str(err).splitlines()]
    causes = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b.*:", line)
              and not line.startswith(("ray.exceptions.", "ActorDiedError", "RayActorError"))]
    return causes[-1][:300] if causes else type(err).__name__
