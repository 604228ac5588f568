"""`mbrl-ray compare RUN_DIR...`: runs' curves from their TensorBoard logs, grouped (by preset,
by seed or by any config key), as the mean and a 95% t interval per group over env steps; a
table at the steps every run of a group logged, with each group's paired difference from the
first group over the seeds both ran; a figure (matplotlib) where --out asks for one.

Evaluation tags' steps (eval/...) are snapped to each run's evaluation grid (multiples of
train.eval_every, and train.steps): an async run evaluates when its evaluator is free and a resumed run restarts at its
replay's step, so their points lie a little past the grid and would otherwise share no step with
other runs. Nothing is written into a run directory; TensorBoard's own reading (purged points of
a resumed run hidden) is what is compared."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from mbrl_ray.config import Config, ConfigError, get_key
from mbrl_ray.run_dir import load_run_config

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


@dataclass
class Run:
    path: Path
    seed: int
    curve: dict[int, float]  # step -> value


@dataclass
class Group:
    label: str
    runs: list[Run] = field(default_factory=list)

    def common_steps(self) -> list[int]:
        return sorted(set.intersection(*(set(r.curve) for r in self.runs)))

    def values_at(self, step: int) -> list[float]:
        return [r.curve[step] for r in self.runs if step in r.curve]

    def by_seed(self, step: int) -> dict[int, float]:
        """{seed: value at step}; a seed run twice in the group counts as the mean of its runs."""
        values: dict[int, list[float]] = {}
        for r in self.runs:
            if step in r.curve:
                values.setdefault(r.seed, []).append(r.curve[step])
        return {seed: sum(v) / len(v) for seed, v in values.items()}


def mean_and_half_width(values: list[float]) -> tuple[float, float]:
    """Mean and the half width of its two-sided 95% Student-t interval (NaN below 2 values)."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def paired_difference(group: Group, base: Group, step: int) -> tuple[float, float, int]:
    """group minus base at `step` over the seeds both logged there: mean, 95% half width, n."""
    mine, theirs = group.by_seed(step), base.by_seed(step)
    diffs = [mine[s] - theirs[s] for s in sorted(mine.keys() & theirs.keys())]
    if not diffs:
        return math.nan, math.nan, 0
    return (*mean_and_half_width(diffs), len(diffs))


def read_curve(run_dir: Path, tag: str) -> dict[int, float]:
    """{step: value} of a scalar tag as TensorBoard shows it (the last value of a step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = run_dir / "tb"
    if not tb.is_dir() or not any(tb.glob("events.out.tfevents.*")):
        raise ConfigError(f"run dir {str(run_dir)!r} has no TensorBoard log (tb/events.*)")
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if tag not in tags:
        raise ConfigError(f"--tag {tag!r}: run dir {str(run_dir)!r} logged no such scalar; "
                          f"it has: {', '.join(sorted(tags)) or 'none'}")
    return {e.step: e.value for e in acc.Scalars(tag)}


def snap_to_grid(curve: dict[int, float], every: int, last: int) -> dict[int, float]:
    """Each step moved to the nearest point of the grid (multiples of `every`, and `last`);
    of two points landing on one grid point the nearer is kept. every 0: as logged."""
    if every <= 0:
        return dict(curve)
    snapped: dict[int, tuple[int, float]] = {}
    for step, value in sorted(curve.items()):
        below = step // every * every
        candidates = [below, below + every] + ([last] if last > 0 else [])
        point = min(candidates, key=lambda g: (abs(step - g), g))
        if point not in snapped or abs(step - point) < abs(snapped[point][0] - point):
            snapped[point] = (step, value)
    return {point: value for point, (_, value) in sorted(snapped.items())}


def group_label(cfg: Config, by: str) -> str:
    """The group of a run: its preset, its seed, or `key=value` of a config key."""
    if by == "preset":
        return cfg.preset or "(no preset)"
    if by == "seed":
        return f"seed {cfg.train.seed}"
    try:
        return f"{by}={get_key(cfg, by)}"
    except ConfigError:
        raise ConfigError(f"--by {by!r} is neither preset, seed nor a config key "
                          "(e.g. planner.name, agent.name)") from None


def load_groups(run_dirs: list[Path], tag: str, by: str) -> list[Group]:
    """Every run read (an eval/ tag snapped to its evaluation grid) and grouped, groups in the order their
    first run was given. A run dir given twice is refused."""
    groups: dict[str, Group] = {}
    seen: dict[Path, Path] = {}
    for path in run_dirs:
        if path.resolve() in seen:
            raise ConfigError(f"run dir {str(path)!r} is given twice (also as "
                              f"{str(seen[path.resolve()])!r})")
        seen[path.resolve()] = path
        cfg = load_run_config(path)
        group = groups.setdefault(group_label(cfg, by), Group(group_label(cfg, by)))
        curve = read_curve(path, tag)
        if tag.startswith("eval/"):
            curve = snap_to_grid(curve, cfg.train.eval_every, cfg.train.steps)
        group.runs.append(Run(path, cfg.train.seed, curve))
    return list(groups.values())


def table(groups: list[Group], tag: str) -> str:
    """One row per step every run of some group logged: each group's mean ± half width (n),
    then each later group's paired difference from the first."""
    base, others = groups[0], groups[1:]
    steps = sorted(set().union(*(g.common_steps() for g in groups)))
    head = ["step", *(f"{g.label} ({len(g.runs)})" for g in groups),
            *(f"{g.label} - {base.label} (paired)" for g in others)]
    rows = [head]
    for step in steps:
        row = [str(step)]
        for g in groups:
            row.append(_cell(*mean_and_half_width(g.values_at(step)), len(g.values_at(step)))
                       if step in g.common_steps() else "-")
        for g in others:
            row.append(_cell(*paired_difference(g, base, step), signed=True))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join([f"{tag}: mean ± 95% t interval (n runs or seed pairs)", *lines])


def _cell(mean: float, half: float, n: int, signed: bool = False) -> str:
    if n == 0:
        return "no common seeds"
    value = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return f"{value} (n 1)" if math.isnan(half) else f"{value} ± {half:.2f} (n {n})"


def check_figure_path(out: Path | None, run_dirs: list[Path]) -> None:
    """--out is a figure file outside every run dir (a run's files are never touched)."""
    if out is None:
        return
    if out.suffix not in FIGURE_SUFFIXES:
        raise ConfigError(f"--out {str(out)!r}: the figure's name must end in "
                          f"{', '.join(FIGURE_SUFFIXES)}")
    for run in run_dirs:
        if out.resolve().is_relative_to(run.resolve()):
            raise ConfigError(f"--out {str(out)!r} lies inside run dir {str(run)!r}; compare "
                              "writes nothing into a run: choose a path outside it")
    if not out.resolve().parent.is_dir():
        raise ConfigError(f"--out {str(out)!r}: folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a folder; name the figure file")


def figure(groups: list[Group], tag: str, out: Path) -> None:
    """Each group's mean over env steps with its 95% band (a band from 2 runs on)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for g in groups:
        steps = g.common_steps()
        stats = [mean_and_half_width(g.values_at(s)) for s in steps]
        mean = [m for m, _ in stats]
        line, = ax.plot(steps, mean, lw=2, marker="o" if len(steps) < 12 else None, ms=4,
                        label=f"{g.label} (mean of {len(g.runs)})")
        if len(g.runs) > 1:
            ax.fill_between(steps, [m - h for m, h in stats], [m + h for m, h in stats],
                            color=line.get_color(), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel(tag)
    ax.set_title(f"{tag}: mean and 95% t interval over runs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
