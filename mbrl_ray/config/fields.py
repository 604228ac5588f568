"""What a config field is: `doc` (its default, help, choices, bound and upper), the bounds it
may declare, and the error bad input raises. The sections live in `schema.py` (the run's) and
`algorithms.py`, `latent_models.py` (each algorithm's)."""
from __future__ import annotations

from dataclasses import field


class ConfigError(ValueError):
    """Bad user input: the message names the key, the bad value and what is allowed."""


# A field's `bound` -> (what the refusal says: "KEY=VALUE must ...", whether a value is inside).
BOUNDS = {
    "count": ("be a positive count (>= 1)", lambda v: v >= 1),
    ">= 0": ("be >= 0", lambda v: v >= 0),
    "> 0": ("be > 0", lambda v: v > 0),  # rates, temperatures, standard deviations
    "(0, 1)": ("lie strictly between 0 and 1", lambda v: 0 < v < 1),
    "[0, 1]": ("lie in [0, 1]", lambda v: 0 <= v <= 1),
}


def doc(default, help: str, *, bound: str | None = None, upper: float | None = None, **kw):
    """A dataclass field with a help string shown by `mbrl-ray train --help`; `bound` (a key of
    BOUNDS) and `upper` (the most any run can mean: a typo, an extra digit) are its range.
    Uppers sit far above the papers' sizes: widths 16,384 (DreamerV3's largest is 8,192; a
    16,384-square layer is already 1 GiB), depths 64, a million rows a batch; evaluation episodes
    below seeding.EVAL_STRIDE (7,919), so two evaluations never share an env seed."""
    if bound is not None and bound not in BOUNDS:
        raise ValueError(f"bound={bound!r}; one of {', '.join(BOUNDS)}")
    meta = {"help": help, "bound": bound, "upper": upper, **kw}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)
