"""Soak: a long async run with every actor's resident memory sampled each minute (not in CI).

    .venv/bin/python bench/soak.py --minutes 60 [--preset pets-pendulum]

Runs the preset with train.schedule=async on a local Ray for the given wall time (the step budget
is set far beyond it; the run is abandoned when the time is up), samples the resident set size
(VmRSS) of the driver and of every `ray::<Actor>` process each --every seconds, and writes
`bench/results/soak-<preset>.csv`, a figure `soak-<preset>.png` (needs the `bench` extra) and the
least-squares slope of each process's RSS over the second half of the run, in MiB per hour
(the first half holds the replay filling up and allocators warming)."""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
ACTORS = ("ReplayActor", "ParameterServer", "Learner", "RolloutWorker")


def ray_processes(raylet: int) -> dict[int, str]:
    """pid -> actor class for every live `ray::<Actor>...` process started by this run's
    raylet (other Ray instances on the machine are not counted)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent != raylet:
            continue
        for actor in ACTORS:
            if title.startswith(f"ray::{actor}"):
                found[int(entry.name)] = actor
    return found


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def slope_per_hour(minutes: np.ndarray, mib: np.ndarray) -> float:
    half = minutes >= minutes.max() / 2
    if half.sum() < 2:
        return float("nan")
    return float(np.polyfit(minutes[half], mib[half], 1)[0] * 60)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in sorted({r["process"] for r in rows}):
        pts = [(r["minute"], r["rss_mib"]) for r in rows if r["process"] == key]
        ax.plot(*zip(*pts), marker=".", label=key)
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--every", type=float, default=60, help="seconds between samples")
    parser.add_argument("--preset", default="pets-pendulum")
    args = parser.parse_args()

    import ray

    from mbrl_ray.config import apply_overrides, load_preset
    from mbrl_ray.distributed.driver import Driver

    cfg = apply_overrides(load_preset(args.preset), [
        "train.schedule=async", "train.steps=100000000", "train.eval_every=5000"])
    run_dir = Path(tempfile.mkdtemp(prefix="soak-")) / "run"
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    driver = Driver(cfg, run_dir, printer=lambda *a, **k: None)
    threading.Thread(target=driver.run, daemon=True).start()

    rows, t0 = [], time.monotonic()
    names: dict[int, str] = {}
    while (minute := (time.monotonic() - t0) / 60) <= args.minutes:
        for pid, actor in sorted(ray_processes(raylet).items()):
            names.setdefault(pid, f"{actor} (pid {pid})")
            mib = rss_mib(pid)
            if mib is not None:
                rows.append({"minute": round(minute, 2), "process": names[pid], "rss_mib": mib})
        rows.append({"minute": round(minute, 2), "process": "driver",
                     "rss_mib": rss_mib(os.getpid())})
        steps = driver.counters["env_steps"]
        print(f"{minute:6.1f} min  {steps} env steps  "
              f"{sum(r['rss_mib'] for r in rows if r['minute'] == round(minute, 2)):.0f} MiB "
              "in all", flush=True)
        time.sleep(args.every)

    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"soak-{args.preset}"
    with open(f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["minute", "process", "rss_mib"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"soak: {args.preset}, async, {args.minutes:g} min, "
             f"{driver.counters['env_steps']} env steps, "
             f"{driver.counters['worker_restarts']} worker restarts; "
             "RSS slope over the second half (MiB per hour):"]
    for key in sorted({r["process"] for r in rows}):
        pts = np.array([(r["minute"], r["rss_mib"]) for r in rows if r["process"] == key])
        lines.append(f"  {key:32s} start {pts[0, 1]:7.1f}  end {pts[-1, 1]:7.1f}  "
                     f"slope {slope_per_hour(pts[:, 0], pts[:, 1]):+7.1f}")
    Path(f"{stem}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        plot(rows, Path(f"{stem}.png"), f"{args.preset} async soak: resident memory per process")
    except ImportError:
        print("matplotlib missing (pip install matplotlib): no figure", file=sys.stderr)
    sys.stdout.flush()
    os._exit(0)  # the run is abandoned mid-flight on purpose


if __name__ == "__main__":
    main()
