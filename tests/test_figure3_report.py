"""The Figure-3 bench's report: asynchronous evaluations land on different steps per seed, so
curves are held between evaluations and averaged on one grid."""
import csv
import importlib.util
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.unit

_SPEC = importlib.util.spec_from_file_location(
    "lst_figure3", Path(__file__).resolve().parents[1] / "bench" / "lst_figure3.py")
fig3 = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fig3)


def test_held_reads_the_latest_evaluation_not_the_final_one():
    curve = [(500, 10.0), (1000, 200.0), (2250, 50.0), (3000, 1000.0)]
    assert fig3.held(curve, 400) == 10.0
    assert fig3.held(curve, 2000) == 200.0  # before: the final 1000 filled the gap
    assert fig3.held(curve, 2500) == 50.0
    assert fig3.held(curve, 3000) == 1000.0


def test_report_from_csv_averages_on_the_common_grid(tmp_path):
    rows = [("CEM-MPC", 0, 1000, 100.0), ("CEM-MPC", 0, 2000, 300.0),
            ("CEM-MPC", 1, 1000, 200.0), ("CEM-MPC", 1, 2250, 500.0),
            ("SAC", 0, 1000, 5.0), ("SAC", 0, 2000, 7.0)]
    path = tmp_path / "curves.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "env", "seed", "env_step", "eval_return"])
        w.writerows((m, "Reacher-v5", s, step, v) for m, s, step, v in rows)
    curves = fig3.read_curves([path])
    assert sorted(curves) == [("CEM-MPC", "Reacher-v5"), ("SAC", "Reacher-v5")]
    fig3.report(curves, tmp_path)
    table = (tmp_path / "table.md").read_text()
    # finals 300 and 500; grid 1000/2000/2250: seed 0 holds 100, 300, 300 (233), seed 1 200, 200, 500 (300)
    assert "| CEM-MPC | 400 ± 100 | 267 ± 33 |" in table
    assert "| SAC | 7 ± 0 | 6 ± 0 |" in table
    assert Image.open(tmp_path / "figure3.png").size[0] > 0
