"""A still of a pixel world model's open-loop prediction from a run's TensorBoard log, for
pages that cannot play TensorBoard's GIFs (docs/results.md): chosen rows of an `eval/open_loop`
strip (real | imagined | difference; the first 5 rows observed, the rest imagined from the actions).

    .venv/bin/python bench/open_loop_sheet.py RUN_DIR --name planet-cartpole-swingup-cpu \
        [--step 15000] [--rows 0 4 8 12 20 30 49]

Writes `bench/results/<name>-open-loop.png` (needs the `bench` extra) and prints the run's
`eval/open_loop_error` points.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from mbrl_ray.world_models.open_loop import CONTEXT

RESULTS = Path(__file__).parent / "results"


def strips(run_dir: Path) -> tuple[dict[int, bytes], list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    gifs = {e.step: e.encoded_image_string for e in acc.Images("eval/open_loop")}
    errors = [(e.step, e.value) for e in acc.Scalars("eval/open_loop_error")]
    return gifs, errors


def frames(gif: bytes, rows: list[int]) -> list[np.ndarray]:
    from PIL import Image

    image = Image.open(io.BytesIO(gif))
    out = []
    for row in rows:
        image.seek(min(row, image.n_frames - 1))
        out.append(np.asarray(image.convert("RGB")))
    return out


def figure(path: Path, images: list[np.ndarray], rows: list[int], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(4.8, 1.75 * len(rows)))
    width = images[0].shape[1] // 3
    for ax, image, row in zip(axes, images, rows):
        ax.imshow(image, interpolation="nearest")
        ax.set_yticks([])
        ax.set_xticks([width / 2, 3 * width / 2, 5 * width / 2])
        ax.set_xticklabels(["real", "imagined" if row >= CONTEXT else "reconstructed",
                            "difference"], fontsize=8)
        kind = "observed" if row < CONTEXT else f"{row - CONTEXT + 1} steps open loop"
        ax.set_ylabel(f"row {row}\n({kind})", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--step", type=int, help="the evaluation's step (default: the last)")
    parser.add_argument("--rows", type=int, nargs="+", default=[0, 4, 8, 12, 20, 30, 49])
    args = parser.parse_args()
    gifs, errors = strips(args.run)
    if not gifs:
        raise SystemExit(f"{args.run}: no eval/open_loop images (a pixel RSSM run with "
                         "train.video_every > 0 writes them)")
    step = args.step if args.step is not None else max(gifs)
    if step not in gifs:
        raise SystemExit(f"--step {step}: open-loop strips exist at {sorted(gifs)}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.name}-open-loop.png"
    figure(out, frames(gifs[step], args.rows), args.rows,
           f"{args.name}: open-loop prediction at agent step {step:,}")
    print(out)
    print("eval/open_loop_error:", ", ".join(f"{s}: {v:.4f}" for s, v in errors))


if __name__ == "__main__":
    main()
