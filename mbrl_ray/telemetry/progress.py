"""A one-line progress report per round: steps, returns, speed and time left."""
from __future__ import annotations

import time


def _fmt_s(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    def __init__(self, total_steps: int, start_step: int = 0, printer=print) -> None:
        self.total, self.start_step = total_steps, start_step
        self.t0 = time.perf_counter()
        self.printer = printer

    def line(self, step: int, train_return: float | None, eval_return: float | None) -> str:
        elapsed = time.perf_counter() - self.t0
        rate = (step - self.start_step) / elapsed if elapsed > 0 else 0.0
        left = (self.total - step) / rate if rate > 0 else float("nan")
        fmt = lambda x: "   -" if x is None else f"{x:7.1f}"  # noqa: E731
        return (f"[{step:>8d}/{self.total}] return {fmt(train_return)}  eval {fmt(eval_return)}"
                f"  {rate:6.1f} steps/s  elapsed {_fmt_s(elapsed)}  left "
                f"{_fmt_s(left) if left == left else '?'}")

    def report(self, step: int, train_return: float | None, eval_return: float | None) -> None:
        self.printer(self.line(step, train_return, eval_return), flush=True)
