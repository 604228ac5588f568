"""The Figure-3 bench's report: asynchronous evaluations land on different steps per seed, so
a run's curve area is the time-average of its own curve, whatever steps other runs hit."""
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


def test_curve_area_is_the_time_average_of_the_interpolated_curve():
    curve = [(500, 10.0), (1000, 200.0), (2250, 50.0), (3000, 1000.0)]
    # 0-500 flat at 10, then trapezoids: 5000 + 52500 + 156250 + 393750 over 3000 steps
    assert fig3.area(curve) == pytest.approx(607500 / 3000)
    assert list(fig3.at(curve, [250, 750, 3500])) == [10.0, 105.0, 1000.0]


def _write(path, rows, env="Reacher-v5"):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "env", "seed", "env_step", "eval_return"])
        w.writerows((m, env, s, step, v) for m, s, step, v in rows)


def test_report_from_csv_gives_each_run_its_own_area(tmp_path):
    rows = [("CEM-MPC", 0, 1000, 100.0), ("CEM-MPC", 0, 2000, 300.0),
            ("CEM-MPC", 1, 1000, 200.0), ("CEM-MPC", 1, 2250, 500.0),
            ("SAC", 0, 1000, 5.0), ("SAC", 0, 2000, 7.0)]
    _write(tmp_path / "curves.csv", rows)
    curves = fig3.read_curves([tmp_path / "curves.csv"])
    assert sorted(curves) == [("CEM-MPC", "Reacher-v5"), ("SAC", "Reacher-v5")]
    fig3.report(curves, tmp_path)
    table = (tmp_path / "table.md").read_text()
    # finals 300 and 500; areas (100 * 1000 + 200 * 1000) / 2000 = 150 and
    # (200 * 1000 + 350 * 1250) / 2250 = 283; the bootstrap interval of two values spans them
    assert "| CEM-MPC | 400 [300, 500] (n=2) | 217 [150, 283] |" in table
    assert "| SAC | 7 [7, 7] (n=1) | 6 [6, 6] |" in table


def test_lst_arms_are_compared_with_their_mpc_arm_on_paired_seeds(tmp_path):
    """Seeds 0..5 of CEM-LST sit 50 above CEM-MPC's on every seed (and seed 6 ran only for
    MPC): the paired difference is +50 on 6 seeds, its interval a point, the sign-flip p 2/64."""
    rows = []
    for seed in range(7):
        rows += [("CEM-MPC", seed, 1000, 10.0 * seed), ("CEM-MPC", seed, 2000, 20.0 * seed)]
        if seed < 6:
            rows += [("CEM-LST", seed, 1000, 10.0 * seed + 50), ("CEM-LST", seed, 2000,
                                                                 20.0 * seed + 50)]
    _write(tmp_path / "curves.csv", rows, env="InvertedPendulum-v5")
    table = fig3.table(fig3.read_curves([tmp_path / "curves.csv"]), ["InvertedPendulum-v5"],
                       ["CEM-MPC", "CEM-LST"])
    for measure in ("curve area", "final"):
        line = next(x for x in table.splitlines()
                    if x.startswith(f"| CEM-LST - CEM-MPC | InvertedPendulum-v5 | {measure} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[3:5] == ["6", "+50.0 [+50.0, +50.0]"]
        assert abs(float(cells[5]) - 2 / 64) < 0.01 and cells[6] == "0"  # LST below on none


def test_a_rows_cells_do_not_depend_on_the_other_methods_in_the_csv(tmp_path):
    """Adding a method (drawn earlier, evaluated at other steps) leaves another method's areas
    and intervals as they were."""
    rows = [("CEM-MPC", s, step, float((s * 37) % 11) * step / 100) for s in range(6)
            for step in (1000, 2000)]
    _write(tmp_path / "a.csv", rows)
    _write(tmp_path / "b.csv", rows + [("CEM-LST", s, step, float(s)) for s in range(6)
                                       for step in (250, 1250, 2000)])
    line = lambda f: next(x for x in fig3.table(fig3.read_curves([tmp_path / f]), ["Reacher-v5"],
                                                ["CEM-LST", "CEM-MPC"]).splitlines()
                          if x.startswith("| CEM-MPC |"))
    assert line("a.csv") == line("b.csv")


def test_figure_is_drawn_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    _write(tmp_path / "curves.csv", [("CEM-MPC", s, step, step / 10.0 + s)
                                     for s in range(3) for step in (500, 1000)])
    fig3.report(fig3.read_curves([tmp_path / "curves.csv"]), tmp_path)
    assert Image.open(tmp_path / "figure3.png").size[0] > 0


@pytest.mark.parametrize("size", ["cpu", "mid", "paper"])
def test_every_arm_gets_the_same_random_steps_and_evaluations_and_a_valid_config(size):
    from argparse import Namespace

    from mbrl_ray.config import apply_overrides, load_preset, validate

    args = Namespace(steps=5000, eval_every=500, eval_episodes=10, random_steps=250, size=size,
                     eval_wait=size == "mid")
    for method, preset in fig3.METHODS.items():
        for env in fig3.ENVS:
            cfg = validate(apply_overrides(load_preset(preset),
                                           fig3.overrides(method, env, 3, args)))
            assert (cfg.train.random_steps, cfg.train.eval_episodes, cfg.train.seed) == (250, 10, 3)
            assert cfg.train.eval_wait == (size == "mid")
            if size == "paper" and method != "SAC":
                assert (cfg.model.hidden_size, cfg.model.particles, cfg.planner.horizon,
                        cfg.planner.value_weight) == (200, 20, 30, 0.0)
            if size == "mid" and method != "SAC":  # every candidate scored by every member
                assert cfg.model.particles % cfg.model.ensemble_size == 0
                assert (cfg.model.bootstrap, cfg.planner.value_weight) == (True, 0.0)


def test_y_limits_follow_the_bands_clipped_to_the_data():
    curves = {("CEM-MPC", "E"): {0: [(500, 40.0), (3000, 1000.0)], 1: [(500, 60.0), (3000, 100.0)]}}
    lo, hi = fig3.y_limits(curves, "E", [45.0, 200.0])  # narrow bands: one seed's 1,000 ignored
    assert (lo, hi) == pytest.approx((45.0 - 7.75, 200.0 + 7.75))
    lo, hi = fig3.y_limits(curves, "E", [-5000.0, 5000.0])  # a wide t band: the data's range
    assert (lo, hi) == pytest.approx((40.0 - 48.0, 1000.0 + 48.0))
