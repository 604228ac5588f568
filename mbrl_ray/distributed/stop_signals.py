"""SIGINT (Ctrl-C) and SIGTERM (`ray job stop`, Kubernetes, Slurm) both as KeyboardInterrupt,
which the driver catches to checkpoint and write its result before it exits 128 + the signal's
number.

Why KeyboardInterrupt: a signal handler runs inside whatever call is waiting, often Ray's
ray.get or ray.wait; Ray turns an interrupt there into a plain KeyboardInterrupt (any other
exception becomes a SystemError), so the handler raises that and records which signal came."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """A stop signal ended the run after its checkpoint and result.json (`message` says what
    was saved)."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.message = signum, message
        self.word = "interrupted" if signum == signal.SIGINT else "terminated"
        self.exit_code = 128 + signum


class StopSignals:
    """The first stop signal received within `raising_on_stop_signals` (None: none yet)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def interrupted(self) -> RunInterrupted:
        """The RunInterrupted for the signal that came (SIGINT for a KeyboardInterrupt that
        no signal of ours raised)."""
        return RunInterrupted(self.signum or signal.SIGINT)


@contextmanager
def raising_on_stop_signals() -> Iterator[StopSignals]:
    """Within the block, the first SIGINT or SIGTERM raises KeyboardInterrupt in the main
    thread and later ones are ignored, so that the stop's own checkpoint (bounded in time) is
    not cut short. Outside the main thread (where Python cannot handle signals) only SIGINT's
    default KeyboardInterrupt applies."""
    received = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def on_signal(signum, frame) -> None:
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        received.signum = signum
        raise KeyboardInterrupt

    for s in STOP_SIGNALS:
        signal.signal(s, on_signal)
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
