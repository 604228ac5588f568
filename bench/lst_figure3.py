"""The LST paper's Figure 3: early-training learning curves of CEM-MPC, CEM-LST, SMCP-MPC,
SMCP-LST and SAC on InvertedPendulum-v5, Reacher-v5 and HalfCheetah-v5, paired seeds (every
method runs the same seeds), each run through the real topology (local Ray). Writes curves.csv,
table.md (final return and curve area, the time-average of a run's curve, mean with a 95%
bootstrap interval over seeds; each LST arm against its MPC arm: the paired difference of
curve areas with its interval and a sign-flip test) and figure3.png (matplotlib, the `bench`
extra: mean and 95% band) to --out.

Method = preset with env.id swapped: CEM-MPC pets-pendulum, CEM-LST cem-lst-pendulum,
SMCP-MPC smcp-pendulum, SMCP-LST smcp-lst-pendulum, SAC sac-pendulum. Every arm gets the same
random steps (--random-steps) and evaluation episodes per point (--eval-episodes).
--size cpu keeps the presets' CPU sizes (5 x 3x64 members, population 100, 2 particles, horizon
5, a SAC critic's terminal value); --size paper takes the PETS sizes of the paper's experiment
(bootstrapped 5 x 4x200 members, CEM 500 x 50 elites x 5 iterations, 20 TS-inf particles,
horizon 30, no critic; SMCP with 2,500 particles, a number not checked against Piche et al.,
who are not among our seeds), a cluster job; --size mid keeps the paper's structure at sizes
2 cores can run (MID below), the CPU cut. Reacher and HalfCheetah
never terminate, so their models learn no termination head. The full CPU grid takes hours on 2
cores; --envs / --methods / --seeds / --steps cut it down.

Usage: .venv/bin/python bench/lst_figure3.py [--envs InvertedPendulum-v5] [--seeds 10]
       [--steps 5000] [--eval-every 500] [--eval-episodes 10] [--size cpu|mid|paper]
       [--out bench/results/figure3]
       .venv/bin/python bench/lst_figure3.py --from-csv A/curves.csv B/curves.csv --out C
       (redraws the table and plot of several partial grids together)
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

METHODS = {"CEM-MPC": "pets-pendulum", "CEM-LST": "cem-lst-pendulum",
           "SMCP-MPC": "smcp-pendulum", "SMCP-LST": "smcp-lst-pendulum", "SAC": "sac-pendulum"}
ENVS = ("InvertedPendulum-v5", "Reacher-v5", "HalfCheetah-v5")
NEVER_TERMINATE = {"Reacher-v5", "HalfCheetah-v5"}
COLOURS = {"CEM-MPC": "#1f77b4", "CEM-LST": "#7fb3e0", "SMCP-MPC": "#d62728",
           "SMCP-LST": "#f2958f", "SAC": "#2ca02c"}
PAIRS = (("CEM-LST", "CEM-MPC"), ("SMCP-LST", "SMCP-MPC"))
# The paper's experiment: bootstrapped members, TS-inf, CEM with 5 iterations, undiscounted, no
# terminal value; PAPER adds its PETS sizes (model and CEM as handful-of-trials). SMCP's particle
# count is an assumption (Piche et al. are not among our seeds).
STRUCTURE = ["model.ensemble_size=5", "model.num_elites=5", "model.propagation=ts_inf",
             "model.bootstrap=true", "planner.iterations=5", "planner.discount=1.0",
             "planner.value_weight=0"]
PAPER = STRUCTURE + ["model.hidden_size=200", "model.num_layers=4", "model.particles=20",
                     "planner.population=500", "planner.num_elites=50", "planner.horizon=30"]
PAPER_SMCP = ["planner.population=2500", "planner.horizon=30"]
# The same structure at sizes 2 CPU cores can run (the CPU cut): one particle per member (every
# candidate is scored by all five, where the CPU presets' 2 particles see two), 5 x 3x128
# members, CEM 100 x 10 elites over horizon 10: 25,000 model rows per action, 1/60 of the
# paper's 1.5 million.
MID = STRUCTURE + ["model.hidden_size=128", "model.num_layers=3", "model.particles=5",
                   "planner.population=100", "planner.num_elites=10", "planner.horizon=10"]
MID_SMCP = ["planner.population=500", "planner.horizon=10"]


def overrides(method: str, env: str, seed: int, args) -> list[str]:
    """The run's config on top of its preset: env, budget, seed, evaluation, equal random steps
    across arms, and the paper's sizes when asked."""
    out = [f"env.id={env}", f"train.steps={args.steps}", f"train.seed={seed}",
           f"train.eval_every={args.eval_every}", f"train.eval_episodes={args.eval_episodes}",
           f"train.random_steps={args.random_steps}", f"train.checkpoint_every={args.steps}",
           f"train.eval_wait={str(args.eval_wait).lower()}"]
    if env in NEVER_TERMINATE and method != "SAC":
        out.append("model.termination=false")
    if args.size != "cpu" and method != "SAC":
        base, smcp = (PAPER, PAPER_SMCP) if args.size == "paper" else (MID, MID_SMCP)
        out += base + (smcp if method.startswith("SMCP") else [])
    return out


def run_cpus(method: str, env: str, seed: int, args) -> float:
    """CPUs a run's actors reserve (rollout workers and learner)."""
    from mbrl_ray.config import apply_overrides, load_preset

    cfg = apply_overrides(load_preset(METHODS[method]), overrides(method, env, seed, args))
    return cfg.workers.num * cfg.workers.num_cpus + cfg.learner.num_cpus


def run(method: str, env: str, seed: int, args):
    """One training run in this process; returns its evaluation curve [(env step, return)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.config import apply_overrides, load_preset
    from mbrl_ray.distributed.driver import Driver

    cfg = apply_overrides(load_preset(METHODS[method]), overrides(method, env, seed, args))
    run_dir = args.out.resolve() / "runs" / f"{method}-{env}-{seed}"
    Driver(cfg, run_dir, printer=lambda *a, **k: None).run()
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars("eval/episodic_return")]


def at(curve, steps) -> np.ndarray:
    """The curve at `steps`: linear between evaluations (asynchronous evaluations land on
    slightly different steps per seed), flat before the first and after the last."""
    x, y = np.array(curve, dtype=np.float64).T
    return np.interp(steps, x, y)


def area(curve) -> float:
    """Curve area: the time-average of the curve over its run, from step 0 to its last (final)
    evaluation, trapezoids between evaluations. A function of this run alone: it does not
    move when other methods' runs, evaluated at other steps, share the csv."""
    x, y = np.array([(0, curve[0][1])] + list(curve), dtype=np.float64).T
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / x[-1])


def env_grid(curves: dict, env: str) -> list[int]:
    """Every step at which any run on `env` was evaluated: the x axis of its panel."""
    return sorted({s for (_, e), runs in curves.items() if e == env
                   for r in runs.values() for s, _ in r})


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, draws: int = 10_000):
    """95% percentile-bootstrap interval of the mean."""
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    means = rng.choice(values, (draws, len(values)), replace=True).mean(1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def data_rng(values: np.ndarray) -> np.random.Generator:
    """A generator seeded by the values it will resample: a row's bootstrap interval and p-value
    are a function of its data alone, the same in every table that shows it, and unmoved by the
    rows (or seeds) drawn before it."""
    return np.random.default_rng(zlib.crc32(np.asarray(values, np.float64).tobytes()))


def paired_stats(diff: np.ndarray) -> tuple[float, float, float, float]:
    """Mean difference, its 95% bootstrap interval and a two-sided sign-flip p-value, drawn from
    the difference's own generator."""
    rng = data_rng(diff)
    lo, hi = bootstrap_interval(diff, rng)
    return float(diff.mean()), lo, hi, sign_flip_p(diff, rng)


def new_axes(size: tuple = (7, 4.2)):
    """(figure, axes) of a headless matplotlib figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def save(fig, path) -> None:
    """Write the figure (tight layout, 120 dpi) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def mean_band(ax, evals_per_seed: list, label: str) -> None:
    """One arm's evaluation curves ([[env step, return], ...] per seed) on their union of
    steps (each seed interpolated): the mean and its 95% t band over seeds."""
    grid = np.array(sorted({step for evals in evals_per_seed for step, _ in evals}), float)
    curves = np.array([np.interp(grid, *np.array(evals).T) for evals in evals_per_seed])
    mean = curves.mean(0)
    half = np.array([t_half_width(c) for c in curves.T])
    ax.plot(grid, mean, label=label)
    ax.fill_between(grid, mean - half, mean + half, alpha=0.2)


def t_half_width(values: np.ndarray) -> np.ndarray:
    """95% t half-width of the mean over axis 0 (nan for fewer than two values)."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return np.full(np.shape(values)[1:], np.nan)
    return stats.t.ppf(0.975, n - 1) * np.std(values, axis=0, ddof=1) / np.sqrt(n)


def sign_flip_p(diff: np.ndarray, rng: np.random.Generator, draws: int = 10_000) -> float:
    """Two-sided p-value of a paired mean difference under random sign flips."""
    flips = rng.choice([-1.0, 1.0], (draws, len(diff)))
    return float((np.abs((flips * diff).mean(1)) >= abs(diff.mean()) - 1e-12).mean())


def summaries(curves: dict, env: str, method: str) -> dict[int, tuple[float, float]]:
    """{seed: (final return, curve area)} of one cell."""
    return {seed: (c[-1][1], area(c))
            for seed, c in curves.get((method, env), {}).items()}


def _cell(values: np.ndarray) -> str:
    lo, hi = bootstrap_interval(values, data_rng(values))
    return f"{values.mean():.0f} [{lo:.0f}, {hi:.0f}]"


def table(curves: dict, envs, methods) -> str:
    """Per method and env: final return and curve area, mean [95% bootstrap interval] over
    seeds (n); then each LST arm against its MPC arm on the seeds both ran, for both measures."""
    lines = ["| method | " + " | ".join(f"{e} final | {e} curve area" for e in envs) + " |",
             "| --- |" + " --- | --- |" * len(envs)]
    for m in methods:
        cells = []
        for e in envs:
            runs = summaries(curves, e, m)
            final = np.array([f for f, _ in runs.values()])
            area = np.array([a for _, a in runs.values()])
            cells += ([_cell(final) + f" (n={len(final)})",
                       _cell(area)] if len(final) else ["", ""])
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + paired_rows(curves, envs))


def paired_rows(curves: dict, envs) -> list[str]:
    """LST - MPC per env and measure on the paired seeds: mean [95% CI], sign-flip p, and on
    how many seeds LST is below."""
    lines = ["| paired | env | measure | seeds | mean difference [95% CI] | p (sign flip) | "
             "LST below |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for lst, mpc in PAIRS:
        for e in envs:
            a, b = summaries(curves, e, lst), summaries(curves, e, mpc)
            seeds = sorted(set(a) & set(b))
            for i, measure in ((1, "curve area"), (0, "final")) if seeds else ():
                diff = np.array([a[s][i] - b[s][i] for s in seeds])
                mean, lo, hi, p = paired_stats(diff)
                lines.append(f"| {lst} - {mpc} | {e} | {measure} | {len(seeds)} | "
                             f"{mean:+.1f} [{lo:+.1f}, {hi:+.1f}] | {p:.3f} | "
                             f"{int((diff < 0).sum())} |")
    return lines


def band(runs: list, grid: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over runs on the grid and the 95% t half-width (0 for one run)."""
    table_ = np.array([at(r, grid) for r in runs])
    return table_.mean(0), np.nan_to_num(t_half_width(table_))


def y_limits(curves: dict, env: str, band_edges: list[float]) -> tuple[float, float]:
    """The bands' extent, clipped to the returns seen (with few seeds a t band passes the data
    by far; one seed's 1,000 need not flatten twenty seeds' means), plus a 5% margin."""
    seen = [v for (_, e), runs in curves.items() if e == env for r in runs.values() for _, v in r]
    lo, hi = max(min(seen), min(band_edges)), min(max(seen), max(band_edges))
    margin = 0.05 * ((hi - lo) or 1.0)
    return lo - margin, hi + margin


def plot(curves: dict, envs, methods, path: Path) -> None:
    """One panel per env: each method's mean evaluation return over seeds with a 95% band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), squeeze=False)
    for ax, env in zip(axes[0], envs):
        grid, edges = env_grid(curves, env), []
        for m in methods:
            runs = list(curves.get((m, env), {}).values())
            if not runs:
                continue
            mean, half = band(runs, grid)
            ax.plot(grid, mean, color=COLOURS[m], lw=2, label=f"{m} ({len(runs)} seeds)")
            ax.fill_between(grid, mean - half, mean + half, color=COLOURS[m], alpha=0.2)
            edges += [(mean - half).min(), (mean + half).max()]
        ax.set_ylim(*y_limits(curves, env, edges))
        ax.set_title(env, fontsize=10)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("LST Figure 3: mean and 95% interval over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envs", nargs="+", default=list(ENVS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run: first .. first+seeds-1")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--random-steps", type=int, default=250, help="the same for every arm")
    ap.add_argument("--eval-wait", action="store_true",
                    help="training waits for each evaluation: every run evaluated at exactly the "
                         "asked steps (slower); default: beside training, a busy evaluator skips")
    ap.add_argument("--size", choices=("cpu", "mid", "paper"), default="cpu")
    ap.add_argument("--address", default="local",
                    help="Ray address: local (a private instance) or auto (the cluster of a "
                         "`ray job submit`)")
    ap.add_argument("--parallel", type=int, default=1,
                    help="runs at a time, each a Ray task placed by SPREAD (a cluster job)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/figure3"))
    ap.add_argument("--from-csv", type=Path, nargs="+",
                    help="redraw table.md and figure3.png from earlier curves.csv files, no runs")
    args = ap.parse_args()
    if args.from_csv:
        args.out.mkdir(parents=True, exist_ok=True)
        return report(read_curves(args.from_csv), args.out)
    if (args.out / "curves.csv").exists():  # hours of runs: a re-run must not truncate them
        raise SystemExit(f"--out {args.out}: holds a curves.csv from an earlier run; choose a "
                         "new folder (merge the two with --from-csv)")
    args.out.mkdir(parents=True, exist_ok=True)
    import ray

    local = args.address == "local"
    ray.init(address=args.address, log_to_driver=False,
             **({"num_cpus": 2 * max(1, args.parallel), "include_dashboard": False,
                 "_temp_dir": tempfile.mkdtemp(prefix="mbrl-fig3-")} if local else {}))
    # seed-major: a cut still holds whole pairs
    grid = [(m, e, s) for e in args.envs
            for s in range(args.first_seed, args.first_seed + args.seeds) for m in args.methods]
    check_parallel_fits(grid, args)
    curves: dict = {}
    with open(args.out / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "env", "seed", "env_step", "eval_return"])
        for (method, env, seed), curve in runs(grid, args):
            curves.setdefault((method, env), {})[seed] = curve
            writer.writerows([method, env, seed, s, v] for s, v in curve)
            f.flush()
            print(f"{method:9s} {env:22s} seed {seed}: "
                  + " ".join(f"{v:.0f}" for _, v in curve), flush=True)
    ray.shutdown()
    report(curves, args.out)


def check_parallel_fits(grid: list[tuple], args) -> None:
    """Exit before any run starts when --parallel runs' actors cannot all fit in the cluster:
    runs that each hold part of what they need would wait on each other forever."""
    if args.parallel <= 1 or not grid:
        return
    import ray

    need = args.parallel * max(run_cpus(*key, args) for key in grid)
    have = ray.cluster_resources().get("CPU", 0)
    if need > have:
        raise SystemExit(f"--parallel {args.parallel} needs {need:g} CPUs for its runs' actors; "
                         f"the Ray cluster has {have:g}")


def runs(grid: list[tuple], args):
    """Yield ((method, env, seed), curve) as runs finish: one after another in this process
    (--parallel 1), or as Ray tasks, at most --parallel at a time, each placed on a node by
    SPREAD; a run's replay, parameter server and CPU learner stay on its task's node, its
    rollout workers spread over the cluster (mbrl_ray/distributed/topology.py). Run dirs stay
    on the node that ran them."""
    if args.parallel <= 1:
        for key in grid:
            yield key, run(*key, args)
        return
    import ray

    remote_run = ray.remote(num_cpus=0, max_retries=0)(run)
    pending, queue = {}, list(grid)
    while queue or pending:
        while queue and len(pending) < args.parallel:
            key = queue.pop(0)
            pending[remote_run.options(scheduling_strategy="SPREAD").remote(*key, args)] = key
        done, _ = ray.wait(list(pending), num_returns=1)
        yield pending.pop(done[0]), ray.get(done[0])


def read_curves(paths: list[Path]) -> dict:
    """{(method, env): {seed: curve}} from curves.csv files written by earlier runs (a seed
    in a later file replaces the same seed in an earlier one)."""
    rows: dict = {}
    for path in paths:
        seen: dict = {}
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                key, seed = (r["method"], r["env"]), int(r["seed"])
                seen.setdefault(key, {}).setdefault(seed, []).append(
                    (int(r["env_step"]), float(r["eval_return"])))
        for key, seeds in seen.items():
            rows.setdefault(key, {}).update(seeds)
    return rows


def report(curves: dict, out: Path) -> None:
    """table.md and figure3.png for the methods and envs present, in the paper's order."""
    envs = [e for e in ENVS if any(k[1] == e for k in curves)]
    methods = [m for m in METHODS if any(k[0] == m for k in curves)]
    text = table(curves, envs, methods)
    (out / "table.md").write_text(text + "\n")
    try:
        plot(curves, envs, methods, out / "figure3.png")
    except ImportError:
        print("matplotlib missing (pip install matplotlib): no figure", file=sys.stderr)
    print(text)


if __name__ == "__main__":
    main()
