"""`mbrl-ray compare` (issue 46) on real TensorBoard logs written by the runs' own logger: the
table's means, intervals and paired differences against a hand computation, a resumed run read
as TensorBoard shows it, the figure, and bad input refused with one line."""
from __future__ import annotations

import hashlib
import math
import re

import pytest

from mbrl_ray.cli import main
from mbrl_ray.compare import load_groups, paired_difference, snap_to_grid, table
from mbrl_ray.config import ConfigError, apply_overrides, load_preset
from mbrl_ray.run_dir import save_config
from mbrl_ray.telemetry.tensorboard import TBLogger

pytestmark = pytest.mark.unit
TAG = "eval/episodic_return"
T975 = {1: 12.706204736174707, 2: 4.302652729911275}  # Student t, 97.5% quantile, by dof
# preset -> seed -> {step: return}; pets seed 2 and sac seed 3 have no partner
RUNS = {
    "pets-pendulum": {0: {100: -900.0, 200: -400.0, 300: -150.0},
                      1: {100: -1100.0, 200: -600.0, 300: -120.0},
                      2: {100: -1000.0, 200: -350.0, 300: -200.0}},
    "sac-pendulum": {0: {100: -1200.0, 200: -700.0, 300: -300.0},
                     1: {100: -1000.0, 200: -800.0},  # stopped before step 300
                     3: {100: -1300.0, 200: -900.0, 300: -100.0}},
}


def _write_run(path, preset, seed, curve, every=100, steps=None):
    """A run dir as a run leaves it: its config (evaluating every `every` steps up to the
    curve's last step) and TensorBoard events written by the runs' own logger."""
    overrides = [f"train.seed={seed}", f"train.eval_every={every}", f"train.steps={steps or max(curve)}"]
    save_config(apply_overrides(load_preset(preset), overrides), path)
    tb = TBLogger(path / "tb")
    for step, value in curve.items():
        tb.scalars({TAG: value, "charts/episodic_return": value / 2}, step)
    tb.close()


@pytest.fixture
def runs(tmp_path):
    paths = []
    for preset, seeds in RUNS.items():
        for seed, curve in seeds.items():
            paths.append(tmp_path / f"{preset}-{seed}")
            _write_run(paths[-1], preset, seed, curve)
    return paths


def _hand_mean_and_half(values):
    n = len(values)
    mean = 0.0
    for v in values:
        mean += v / n
    var = 0.0
    for v in values:
        var += (v - mean) ** 2 / (n - 1)
    return mean, T975[n - 1] * math.sqrt(var / n)


def test_table_means_intervals_and_paired_differences_by_hand(runs):
    pets, sac = load_groups(runs, TAG, "preset")
    assert [pets.label, sac.label] == ["pets-pendulum", "sac-pendulum"]
    assert pets.common_steps() == [100, 200, 300] and sac.common_steps() == [100, 200]
    text = table([pets, sac], TAG)
    rows = {line.split()[0]: line for line in text.splitlines()[2:]}
    cells = {step: re.split(r"\s{2,}", row.strip()) for step, row in rows.items()}
    for step in (100, 200, 300):
        mean, half = _hand_mean_and_half([RUNS["pets-pendulum"][s][step] for s in (0, 1, 2)])
        assert f"{mean:.2f} ± {half:.2f} (n 3)" in rows[str(step)]
    mean, half = _hand_mean_and_half([-1200.0, -1000.0, -1300.0])
    assert f"{mean:.2f} ± {half:.2f} (n 3)" in rows["100"]
    assert cells["300"][2] == "-"  # not every sac run reached step 300
    # sac - pets over seeds 0 and 1, the only seeds both ran
    diffs = [RUNS["sac-pendulum"][s][200] - RUNS["pets-pendulum"][s][200] for s in (0, 1)]
    mean, half = _hand_mean_and_half(diffs)
    assert paired_difference(sac, pets, 200) == pytest.approx((mean, half, 2), rel=1e-12)
    assert f"{mean:+.2f} ± {half:.2f} (n 2)" in rows["200"]
    diff300 = RUNS["sac-pendulum"][0][300] - RUNS["pets-pendulum"][0][300]
    assert rows["300"].endswith(f"{diff300:+.2f} (n 1)")  # one pair: no interval


def test_grouping_by_seed_and_by_a_config_key(runs):
    by_seed = load_groups(runs, TAG, "seed")
    assert [g.label for g in by_seed] == ["seed 0", "seed 1", "seed 2", "seed 3"]
    assert [len(g.runs) for g in by_seed] == [2, 2, 1, 1]
    by_agent = load_groups(runs, TAG, "agent.name")
    assert [g.label for g in by_agent] == ["agent.name=pets", "agent.name=sac"]


def test_evaluation_steps_snap_to_the_grid_of_eval_every_and_the_last_step():
    """eval_every 1000, 3500 steps: an async run's 1040, 2010 and 3500 land on 1000, 2000 and
    3500; of 2960 and 3010 on one point the nearer stays; 0 leaves the steps as logged."""
    curve = {1040: 1.0, 2010: 2.0, 2960: 3.0, 3010: 4.0, 3500: 5.0}
    assert snap_to_grid(curve, 1000, 3500) == {1000: 1.0, 2000: 2.0, 3000: 4.0, 3500: 5.0}
    assert snap_to_grid({3400: 1.0, 3450: 2.0}, 1000, 3500) == {3500: 2.0}
    assert snap_to_grid(curve, 0, 3500) == curve


def test_async_runs_line_up_on_the_grid(tmp_path):
    """Two runs evaluated a little past the grid, each differently, share every step."""
    paths = []
    for seed, steps in ((0, (320, 610)), (1, (305, 640))):
        paths.append(tmp_path / f"run{seed}")
        _write_run(paths[-1], "debug", seed, {steps[0]: 1.0 + seed, steps[1]: 3.0 + seed},
                   every=300, steps=1200)
    (group,) = load_groups(paths, TAG, "preset")
    assert group.common_steps() == [300, 600] and group.values_at(600) == [3.0, 4.0]
    (group,) = load_groups(paths, "charts/episodic_return", "preset")
    assert group.common_steps() == []  # other tags as logged


def test_a_run_given_twice_is_refused_and_a_seed_run_twice_pairs_as_its_mean(runs, tmp_path):
    with pytest.raises(ConfigError, match="given twice"):
        load_groups([runs[0], runs[1], runs[0]], TAG, "preset")
    again = tmp_path / "sac-pendulum-0-again"
    _write_run(again, "sac-pendulum", 0, {100: -1000.0, 200: -500.0, 300: -100.0})
    pets, sac = load_groups([*runs, again], TAG, "preset")
    seed0 = (RUNS["sac-pendulum"][0][200] + -500.0) / 2 - RUNS["pets-pendulum"][0][200]
    seed1 = RUNS["sac-pendulum"][1][200] - RUNS["pets-pendulum"][1][200]
    assert paired_difference(sac, pets, 200) == pytest.approx(
        (*_hand_mean_and_half([seed0, seed1]), 2), rel=1e-12)


def test_a_resumed_run_is_read_as_tensorboard_shows_it(tmp_path):
    """Points a stopped run logged after its checkpoint are purged; the resumed run's count."""
    run = tmp_path / "run"
    _write_run(run, "pets-pendulum", 0, {100: 1.0, 200: 2.0, 300: 3.0, 400: 4.0})
    tb = TBLogger(run / "tb", resume_step=200)
    tb.scalars({TAG: 30.0}, 300)
    tb.scalars({TAG: 50.0}, 500)
    tb.close()
    (group,) = load_groups([run], TAG, "preset")
    assert group.runs[0].curve == {100: 1.0, 200: 2.0, 300: 30.0, 500: 50.0}


def _digest(paths):
    h = hashlib.sha256()
    for path in paths:
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f).encode() + f.read_bytes())
    return h.hexdigest()


def test_the_cli_prints_the_table_and_draws_the_figure_without_touching_the_runs(
        runs, tmp_path, capsys):
    before = _digest(runs)
    out = tmp_path / "fig.png"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{TAG}: mean ± 95% t interval") and "sac-pendulum - " in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _digest(runs) == before


@pytest.mark.parametrize("args, words", [
    (["{missing}"], ["does not exist", "not a run directory"]),
    (["{run}", "--tag", "eval/retrun"], ["--tag 'eval/retrun'", "it has: charts/episodic_return, "
                                         "eval/episodic_return"]),
    (["{run}", "--by", "planner.nme"], ["--by 'planner.nme'", "config key"]),
    (["{run}", "--by", "planner"], ["--by 'planner'", "config key"]),
    (["{run}", "--out", "{run}/fig.png"], ["lies inside run dir", "outside"]),
    (["{run}", "--out", "fig.jpg"], ["--out 'fig.jpg'", ".png, .pdf, .svg"]),
    (["{run}", "--out", "{missing}/fig.png"], ["does not exist"]),
    (["{empty}"], ["no TensorBoard log"]),
], ids=["missing", "tag", "by", "by-section", "out-inside", "out-suffix", "out-folder", "no-tb"])
def test_bad_input_is_refused_with_one_line(runs, tmp_path, capsys, args, words):
    empty = tmp_path / "empty"
    save_config(load_preset("debug"), empty)
    names = {"run": str(runs[0]), "missing": str(tmp_path / "missing"), "empty": str(empty)}
    assert main(["compare", *(a.format(**names) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err, err
