"""The reports that pool benches' per-seed results: which runs are paired, what is averaged,
and which timings are comparable."""
import argparse
import csv
import math
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from mbrl_ray.config import load_preset

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _module(name: str):
    sys.path.insert(0, str(BENCH))  # lst_frozen_pool imports lst_figure3 as its script would
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


pool = _module("lst_frozen_pool")
summary = _module("dreamer_vs_rllib_summary")


def _episodes(folder: Path, lst_minus_mpc: list[float]) -> None:
    folder.mkdir()
    with open(folder / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stage", "rule", "episode", "return", "steps", "ess", "gap"])
        for i, d in enumerate(lst_minus_mpc):
            w.writerow([2000, "SMCP-MPC", i, 100.0 + i, 100, "", ""])
            w.writerow([2000, "SMCP-LST", i, 100.0 + i + d, 100, 0.5, 0.4])


def _cells(table: str, start: str) -> list[str]:
    line = next(x for x in table.splitlines() if x.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def test_frozen_pool_pairs_episodes_by_index_and_pools_only_confirmatory_seeds(tmp_path):
    _episodes(tmp_path / "s0", [100.0] * 4)  # the discovery seed: left out of the pooled rows
    _episodes(tmp_path / "s1", [10.0, 10.0, 10.0, 10.0])
    _episodes(tmp_path / "s2", [30.0, 30.0, 30.0, 30.0])
    data = pool.load([f"{s}={tmp_path / f's{s}'}" for s in range(3)])
    table = pool.table(data, confirm=[1, 2])
    assert _cells(table, "| 2000 | SMCP-LST - SMCP-MPC | 0 |")[3:5] == ["4", "+100.0"]
    fixed = _cells(table, "| 2000 | SMCP-LST - SMCP-MPC | 1, 2: fixed effects")
    assert fixed[3:5] == ["8", "+20.0"]  # 4 + 4 episodes, not seed 0's
    random = _cells(table, "| 2000 | SMCP-LST - SMCP-MPC | 1, 2: random effects")
    lo, hi = (float(x) for x in random[5].split(","))
    # two seed means 10 and 30: t(0.975, 1) * 10 / sqrt(2) * sqrt(2) = 127.06 either side
    assert random[4] == "+20.0" and lo == pytest.approx(20 - 127.06, abs=0.1)
    assert hi == pytest.approx(20 + 127.06, abs=0.1)


def _run(folder: Path, name: str, seed: int, evals, wall: float, train: float | None,
         **counted) -> None:
    run = {"name": "ours" if name == "ours" else "rllib DreamerV3 (XS)", "params": 1,
           "env_steps": 1000, "wall_s": wall, "updates": 50, "updates_per_s": 0.5,
           "evals": [[s, v] for s, v in evals], **counted}
    if train is not None:
        run["train_s"] = train
    (folder / f"{name}-seed{seed}.json").write_text(json.dumps(run))


def test_dreamer_summary_compares_whole_runs_only_where_both_were_timed_whole(tmp_path):
    _run(tmp_path, "ours", 0, [(500, 50.0), (1000, 90.0)], wall=100.0, train=None)
    _run(tmp_path, "rllib", 0, [(500, 40.0), (1000, 60.0)], wall=50.0, train=None)  # old: train
    _run(tmp_path, "ours", 1, [(500, 70.0), (1000, 110.0)], wall=100.0, train=None)
    _run(tmp_path, "rllib", 1, [(500, 40.0), (1000, 80.0)], wall=125.0, train=100.0)
    runs = summary.load(tmp_path)
    table = "\n".join(summary.paired_table(runs))
    assert _cells(table, "| eval return at 1,000")[1:4] == ["100.0 ± 127.1", "70.0 ± 127.1",
                                                            "+30.0 ± 0.0"]
    assert _cells(table, "| curve area")[3] == "+25.0 ± 63.5"  # seed diffs 20 and 30
    ratio = _cells(table, "| env steps/s ratio")  # seed 1 only: 10 / 8
    assert "(seeds 1)" in ratio[0] and ratio[3].startswith("1.250")
    per_seed = "\n".join(summary.per_seed_table(runs))
    assert _cells(per_seed, "| 0 | rllib")[2:4] == ["—", "20.00"]  # old run: training only
    assert _cells(per_seed, "| 1 | rllib")[2:4] == ["8.00", "10.00"]


def test_dreamer_summary_pairs_the_counted_work_and_shows_a_dash_where_a_run_lacks_it(tmp_path):
    """Rows per post-warm-up env step and seconds per update, as per-seed ratios (issue 44);
    the most updates an evaluation lagged; runs recorded before these fields show a dash."""
    _run(tmp_path, "ours", 0, [(500, 1.0)], wall=100.0, train=None, updates=40,
         rows_per_step_after_warmup=63.0, updates_behind_at_evals=[[500, 2.0], [1000, 5.0]])
    _run(tmp_path, "rllib", 0, [(500, 1.0)], wall=120.0, train=100.0, updates=60,
         rows_per_step_after_warmup=60.0, updates_behind_at_evals=[[500, 0.0]])
    _run(tmp_path, "ours", 1, [(500, 1.0)], wall=90.0, train=None, updates=45,
         rows_per_step_after_warmup=66.0, updates_behind_at_evals=[])
    _run(tmp_path, "rllib", 1, [(500, 1.0)], wall=60.0, train=50.0, updates=50,
         rows_per_step_after_warmup=60.0, updates_behind_at_evals=[[500, 0.0]])
    _run(tmp_path, "ours", 2, [(500, 1.0)], wall=90.0, train=None)  # before the fields
    _run(tmp_path, "rllib", 2, [(500, 1.0)], wall=60.0, train=50.0)
    runs = summary.load(tmp_path)
    per_seed = "\n".join(summary.per_seed_table(runs))
    assert _cells(per_seed, "| 0 | ours")[6:8] == ["63.00", "5.00"]
    assert _cells(per_seed, "| 1 | ours")[6:8] == ["66.00", "0.00"]  # none behind
    assert _cells(per_seed, "| 2 | ours")[6:8] == ["—", "—"]
    table = "\n".join(summary.paired_table(runs))
    rows = _cells(table, "| rows replayed per env step after warm-up")
    assert "(seeds 0, 1)" in rows[0] and rows[3].startswith("1.075 ± ")  # 1.05 and 1.10
    # seconds per update: ours 100/40, 90/45; RLlib 120/60, 60/50 -> 1.25 and 1/0.6 = 1.667
    per_update = _cells(table, "| seconds per update ratio")
    assert "(seeds 0, 1, 2)" in per_update[0]
    assert float(per_update[3].split(" ± ")[0]) == pytest.approx((1.25 + 2 / 1.2 + 1.5) / 3,
                                                                 abs=1e-3)


def test_dreamer_summary_refuses_a_folder_that_mixes_tasks(tmp_path):
    _run(tmp_path, "ours", 0, [(500, 1.0)], wall=1.0, train=None, task="dmc:cartpole-swingup",
         action_repeat=2)
    _run(tmp_path, "rllib", 0, [(500, 1.0)], wall=1.0, train=1.0, task="InvertedPendulum-v5",
         action_repeat=1)
    with pytest.raises(SystemExit, match="different settings"):
        summary.setting(summary.load(tmp_path))


def test_dreamer_summary_refuses_a_folder_that_mixes_sizes(tmp_path):
    """Runs recorded before --size are XS: a mini run beside them is another setting."""
    _run(tmp_path, "ours", 0, [(500, 1.0)], wall=1.0, train=None)
    _run(tmp_path, "rllib", 0, [(500, 1.0)], wall=1.0, train=1.0, size="mini")
    with pytest.raises(SystemExit, match="different settings"):
        summary.setting(summary.load(tmp_path))
    (tmp_path / "rllib-seed0.json").unlink()
    _run(tmp_path, "rllib", 0, [(500, 1.0)], wall=1.0, train=1.0, size="XS")
    assert summary.setting(summary.load(tmp_path)) == (dreamer.TASK, dreamer.REPEAT)


def test_dreamer_bench_mini_matches_the_cpu_preset_and_counts_its_own_rows():
    """--size mini: our side at the dreamer-pendulum preset's widths, sequences, horizon and
    rates; rows per post-warm-up step from its own B x T (16 x 32), not XS's (16 x 64)."""
    args = argparse.Namespace(task="InvertedPendulum-v5", action_repeat=1, size="mini",
                              steps=8000, seed=0, ratio=256.0, eval_every=1000,
                              eval_episodes=5, device="cpu")
    ours = dict(o.split("=", 1) for o in dreamer.our_overrides(args))
    preset = load_preset("dreamer-pendulum")
    for key in ("deter", "hidden", "mlp_hidden", "stoch", "classes", "batch_size", "seq_len",
                "lr"):
        assert float(ours[f"rssm.{key}"]) == getattr(preset.rssm, key), key
    for key in ("horizon", "hidden", "actor_lr", "critic_lr"):
        assert float(ours[f"dreamer.{key}"]) == getattr(preset.dreamer, key), key
    assert ours["train.random_steps"] == "512" and ours["train.pretrain_updates"] == "0"
    # 4,000 updates x 512 rows over the 7,488 steps after the 512 warm-up steps
    assert dreamer.rows_per_step_after_warmup(4000, 8000, "mini") == pytest.approx(273.5, 1e-3)


frozen = _module("lst_frozen")


def test_frozen_table_redrawn_from_csv_matches_the_pooled_row_of_the_same_episodes(tmp_path):
    """One row's interval is a function of its episodes only: lst_frozen's table and the pooled
    report show the same numbers for the same training seed."""
    _episodes(tmp_path / "s0", [5.0, -3.0, 12.0, 0.5, 7.0])
    rows, rules = frozen.read_episodes(tmp_path / "s0" / "episodes.csv")
    assert rules == ["SMCP-MPC", "SMCP-LST"]
    own = _cells(frozen.table(rows, rules), "| 2000 | SMCP-LST |")
    pooled = _cells(pool.table(pool.load([f"0={tmp_path / 's0'}"]), confirm=[]), "| 2000 |")
    assert own[3] == f"{pooled[4]} ({pooled[5]})" and own[4] == pooled[6]


def test_frozen_refuses_to_replace_an_earlier_runs_episodes(tmp_path, monkeypatch):
    _episodes(tmp_path / "old", [1.0, 2.0])
    before = (tmp_path / "old" / "episodes.csv").read_bytes()
    monkeypatch.setattr(sys, "argv", ["lst_frozen.py", "--out", str(tmp_path / "old")])
    with pytest.raises(SystemExit, match="episodes.csv from an earlier run"):
        frozen.main()
    assert (tmp_path / "old" / "episodes.csv").read_bytes() == before


figure3 = _module("lst_figure3")
dreamer = _module("dreamer_vs_rllib")


def test_figure3_refuses_to_truncate_an_earlier_runs_curves(tmp_path, monkeypatch):
    out = tmp_path / "cut"
    out.mkdir()
    (out / "curves.csv").write_text("method,env,seed,env_step,eval_return\nSAC,R,0,500,1.0\n")
    before = (out / "curves.csv").read_bytes()
    # --seeds 0: were the refusal gone, the run would end at once with the file truncated
    monkeypatch.setattr(sys, "argv", ["lst_figure3.py", "--out", str(out), "--seeds", "0"])
    with pytest.raises(SystemExit, match="curves.csv from an earlier run"):
        figure3.main()
    assert (out / "curves.csv").read_bytes() == before


def test_dreamer_bench_refuses_to_replace_a_measured_seed(tmp_path, monkeypatch):
    _run(tmp_path, "rllib", 3, [(500, 40.0)], wall=50.0, train=40.0)
    before = (tmp_path / "rllib-seed3.json").read_bytes()
    monkeypatch.setattr(sys, "argv", ["dreamer_vs_rllib.py", "--seed", "3", "--out",
                                      str(tmp_path)])
    with pytest.raises(SystemExit, match="rllib-seed3.json already measured"):
        dreamer.main()
    assert (tmp_path / "rllib-seed3.json").read_bytes() == before


vs_mbrl_lib = _module("vs_mbrl_lib")
vs_summary = _module("vs_mbrl_lib_summary")


def test_vs_mbrl_lib_bins_episodes_by_the_round_they_end_in():
    """Per round of 250 env steps with an episode ending in it: the mean return and the
    seconds from launch to the last such episode's end; rounds without one are left out."""
    episodes = [(30, 5.0, 101.0), (250, 7.0, 102.0), (260, 40.0, 105.0), (480, 60.0, 109.0),
                (900, 100.0, 120.0)]
    assert vs_mbrl_lib.rounds(episodes, 100.0, 250) == [
        (250, 6.0, 2.0), (500, 50.0, 9.0), (1000, 100.0, 20.0)]


def test_vs_mbrl_lib_summary_pairs_seeds_and_carries_the_last_round_forward(tmp_path):
    def run(side, seed, rounds, plan_ms=10.0):
        (tmp_path / f"{side}-seed{seed}.json").write_text(json.dumps(
            {"side": side, "seed": seed, "wall_s": 100.0, "plan_ms": plan_ms,
             "rounds": rounds, "settings": {}}))

    run("mbrl-lib", 0, [[250, 10.0, 5.0], [750, 300.0, 30.0]], plan_ms=30.0)
    run("mbrl-lib", 1, [[250, 20.0, 6.0]], plan_ms=20.0)
    run("ours", 0, [[500, 250.0, 12.0]])
    run("ours", 2, [[250, 900.0, 3.0]])  # no mbrl-lib seed 2: never paired
    runs = vs_summary.load(tmp_path)
    assert list(runs) == ["mbrl-lib", "ours"]
    assert vs_summary.return_by(runs["mbrl-lib"][0], 500) == 10.0
    assert vs_summary.return_by(runs["mbrl-lib"][0], 1000) == 300.0
    assert vs_summary.seconds_to(runs["mbrl-lib"][0], 200.0) == 30.0
    mine, theirs = vs_summary.paired(runs, "ours", lambda r: vs_summary.return_by(r, 1000))
    assert mine.tolist() == [250.0] and theirs.tolist() == [300.0]
    assert "- ours: planning 3.00× mbrl-lib's speed per action (n=1, paired)" in \
        vs_summary.ratio_lines(runs, "pets")


def test_vs_mbrl_lib_summary_reports_mbpo_updates_as_ours_over_theirs(tmp_path):
    """MBPO runs carry each side's SAC-update count in place of planning time: the ratio is
    ours / mbrl-lib's (work done), not theirs / ours (speed)."""
    for side, seed, updates in (("mbrl-lib", 0, 400), ("mbrl-lib", 1, 500), ("ours", 0, 440),
                                ("ours", 1, 600)):
        (tmp_path / f"{side}-seed{seed}.json").write_text(json.dumps(
            {"side": side, "seed": seed, "wall_s": 100.0, "sac_updates": updates,
             "rounds": [[500, 30.0, 9.0]], "settings": {"algo": "mbpo"}}))
    runs = vs_summary.load(tmp_path)
    lines = vs_summary.ratio_lines(runs, "mbpo")
    assert lines[0].startswith("- ours: 1.15 ± ") and "× mbrl-lib's SAC updates (n=2" in lines[0]
    assert "| ours | 100 ± 0 | 520 ± " in "\n".join(vs_summary.timing_table(runs, "SAC updates"))


def test_vs_mbrl_lib_refuses_to_replace_a_measured_seed(tmp_path, monkeypatch):
    (tmp_path / "ours-seed4.json").write_text("{}")
    monkeypatch.setattr(sys, "argv", ["vs_mbrl_lib.py", "--seeds", "4", "--sides", "ours",
                                      "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="ours-seed4.json already measured"):
        vs_mbrl_lib.main()
    assert (tmp_path / "ours-seed4.json").read_text() == "{}"


def test_mbmf_vs_ppo_target_is_ppos_last_three_and_the_ratio_uses_first_reaches(tmp_path):
    bench = _module("mbmf_vs_ppo")
    runs = {"ppo": {0: {"evals": [[5000, -900], [10000, -400], [15000, -300], [20000, -500],
                                  [25000, -100]]},
                    1: {"evals": [[5000, -1000], [10000, -800], [15000, -600], [20000, -600]]}},
            "mbmf": {0: {"evals": [[600, -800], [1200, -250], [1800, -200]]},
                     1: {"evals": [[600, -700], [1200, -300]]}},
            "mpc": {0: {"evals": [[600, -800], [1800, -290]]},
                    1: {"evals": [[600, -650], [1200, -900]]}}}
    text = bench.summarise(runs, tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| 0 ") or
            line.startswith("| 1 ")]
    # seed 0: R = mean(-300, -500, -100) = -300; PPO first >= R at 15000, MBMF at 1200
    assert rows[0].split("|")[2:7] == [" -300 ", " 15000 ", " 1200 ", " 1800 ", " 12.5x "]
    # seed 1: R = -667; PPO first at 15000 (-600), MBMF at 1200, MPC at 600 (-650)
    assert rows[1].split("|")[2:7] == [" -667 ", " 15000 ", " 1200 ", " 600 ", " 12.5x "]
    assert "geometric mean 12.5x" in text
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert math.isnan(bench.first_reach([[600, -900]], -300.0))


def test_gps_vs_sac_counts_a_seed_solved_only_when_its_worst_condition_is(tmp_path):
    bench = _module("gps_vs_sac")

    def run(distances, final):
        return {"distances": distances, "evals": [[1000, -9.0], [2000, final]], "seconds": 60}

    runs = {"gps": {0: run([0.01, 0.02, 0.049, 0.0], -2.0), 1: run([0.01, 0.3, 0.0, 0.0], -4.0)},
            "gps-supervised": {0: run([0.05, 0.0, 0.0, 0.0], -2.5),
                               1: run([0.01, 0.01, 0.01, 0.01], -2.1)},
            "gps-model": {0: run([0.06, 0.0, 0.0, 0.0], -2.5), 1: run([0.0, 0.0, 0.0, 0.0], -1.5),
                          2: run([0.0, 0.0, 0.0, 0.0], -1.5)},  # seed 2: only this arm ran it
            "sac": {0: run([0.03, 0.03, 0.03, 0.03], -3.0), 1: run([0.04, 0.0, 0.0, 0.0], -2.0)}}
    text = bench.summarise(runs, 0.05, 2000, tmp_path)
    pooled = {line.split("|")[1].strip(): line.split("|")[2].strip()
              for line in text.splitlines() if line.startswith("| gps") or
              line.startswith("| sac")}
    assert pooled == {"gps": "1 / 2", "gps-supervised": "1 / 2", "gps-model": "1 / 2",
                      "sac": "2 / 2"}
    assert "| gps | 1 | 0.010 0.300 0.000 0.000 | 0.300 | no |" in text
    # paired final returns, GPS minus SAC: (-2 - -3) and (-4 - -2): mean -0.5
    assert "minus SAC: -0.50" in text
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_pilco_bench_counts_the_first_trial_under_the_threshold(tmp_path):
    """Trials to success: the first trial (1-based, the random one counted) whose end distance
    is below the threshold; the last 3 trials' successes beside it; a seed never below counts
    as unsolved."""
    from types import SimpleNamespace
    bench = _module("pilco_cartpole")

    def run(distances):
        return {"pilco_trial_end_distance": {str(k + 1): d for k, d in enumerate(distances)},
                "fit_seconds": [30.0, 40.0], "seconds": 500.0}

    runs = {0: run([3.0, 1.0, 0.05, 2.0, 0.01]), 1: run([3.0, 0.2, 0.1, 0.3, 0.5])}
    assert bench.trials_to_success(runs[0], 0.1) == 3
    assert bench.trials_to_success(runs[1], 0.1) is None  # 0.1 itself is not below
    args = SimpleNamespace(trials=5, threshold=0.1, out=tmp_path, preset="pilco-cartpole-swingup")
    text = bench.summarise(runs, args)
    assert "| 0 | 3 | 7.5 | 2 / 3 |" in text and "| 1 | none | - | 0 / 3 |" in text
    assert "Seeds solved within 5 trials: 1 / 2" in text and "# pilco-cartpole-swingup: 2 seeds" in text
    assert (tmp_path / "trials.png").stat().st_size > 0


def test_sparse_gp_bench_states_each_sparse_row_as_a_ratio_of_the_exact_at_its_size():
    from types import SimpleNamespace
    bench = _module("pilco_sparse_gp")
    rows = [{"n": 500, "model": "exact", "fit_s": 4.0, "rollout_s": 2.0, "rmse": [0.1, 0.3],
             "predicted_cost": 24.0},
            {"n": 500, "model": "FITC M=100", "fit_s": 1.0, "rollout_s": 0.5, "rmse": [0.2, 0.4],
             "predicted_cost": 23.5, "cost_gap": 0.5},
            {"n": 1000, "model": "exact", "fit_s": 10.0, "rollout_s": 8.0, "rmse": [0.1, 0.1],
             "predicted_cost": 24.0}]
    text = bench.summarise(rows, SimpleNamespace(threads=2))
    assert "| 500 | FITC M=100 | 1.0 (0.25x) | 0.50 (0.25x) | 0.3000 | 23.50 | 0.50 |" in text
    assert "| 1000 | exact | 10.0 | 8.00 | 0.1000 | 24.00 | - |" in text


def test_deep_pilco_checks_tabulate_each_model_and_search():
    from types import SimpleNamespace
    search = _module("deep_pilco_search_check")
    rows = [{"search": "lbfgs", "trial": 3, "predicted": 22.34, "actual": 19.04,
             "end_distance": 0.987, "seconds": 17.6}]
    text = search.summarise(rows, SimpleNamespace(seed=0, particles=50))
    assert "| lbfgs | 3 | 22.3 | 19.0 | 0.99 | 18 |" in text and "50 fixed particles" in text
    model = _module("deep_pilco_model_check")
    net = {"fit_s": 2.4, "predicted": 21.26, "dropout_rmse": [0.5, 0.25],
           "dropout_spread": [0.06, 0.07], "gp_rmse": [0.01, 0.02]}
    rounds = [{"trial": 5, "transitions": 100, "actual_cost": 6.91, "gp_predicted": 7.08,
               "gp_mean_particles": 7.0, "dropout_1000": net}]
    text = model.summarise(rounds, SimpleNamespace(seed=0, model_steps=[1000]))
    assert "| 5 | 100 | 6.9 | 7.1 | 7.0 | GP | - | 0.010 0.020 | - | - |" in text
    assert ("| 5 | 100 | 6.9 | 7.1 | 7.0 | dropout, 1000 Adam steps | 21.3 | 0.500 0.250 | "
            "0.060 0.070 | 2 |") in text


def test_pilco_compare_tabulates_each_method_and_draws_both_panels(tmp_path):
    """Per method: seeds solved, trials to success (median, range), the interaction time at
    the median, the median seconds per fit; an unsolved method says so."""
    import json
    bench = _module("pilco_compare")

    def write(folder, seed, distances, fits):
        folder.mkdir(exist_ok=True)
        (folder / f"seed{seed}.json").write_text(json.dumps({
            "seed": seed, "fit_seconds": fits,
            "pilco_trial_end_distance": {str(k + 1): d for k, d in enumerate(distances)}}))

    write(tmp_path / "a", 0, [3.0, 0.05, 0.01], [10.0, 20.0, 30.0])
    write(tmp_path / "a", 1, [3.0, 1.0, 0.02], [30.0, 40.0, 50.0])
    write(tmp_path / "b", 0, [3.0, 2.0, 1.0], [5.0, 6.0, 7.0])
    a, b = bench.load(tmp_path / "a"), bench.load(tmp_path / "b")
    assert bench.row("A", a, 0.1) == "| A | 2 / 2 | 2.5 (2-3) | 6.2 s | 30 |"
    assert bench.row("B", b, 0.1) == "| B | 0 / 1 | - | - | 6 |"
    bench.figure({"A": a, "B": b}, 0.1, tmp_path / "compare.png")
    assert (tmp_path / "compare.png").stat().st_size > 0


vs_dcmpc = _module("vs_dcmpc_authors")
vs_dcmpc_summary = _module("vs_dcmpc_authors_summary")


@pytest.mark.parametrize("size", ["cpu", "paper"])
def test_vs_dcmpc_authors_gives_both_sides_the_same_settings(size):
    """Each shared number reaches both command lines: the authors count the policy's
    sequences among num_samples and their noise decay and random phase in 500-step episodes;
    ours validates against the size's preset with the authors' quirks switched on."""
    from mbrl_ray.config import apply_overrides
    from mbrl_ray.distributed.preflight import check_eval_lag

    a = argparse.Namespace(steps=6000, eval_every=1000, eval_episodes=4, device="cpu")
    s = vs_dcmpc.SIZES[size]
    theirs = dict(o.split("=", 1) for o in vs_dcmpc.authors_overrides(s, a, 3, Path("/r")))
    cfg = apply_overrides(load_preset(s["preset"]), vs_dcmpc.our_overrides(s, a, 3))
    d, p, t = cfg.dcmpc, cfg.planner, cfg.train
    assert theirs["agent.latent_dim"] == str(d.latent_dim)
    assert theirs["agent.enc_mlp_dims"] == f"[{d.encoder_hidden}]"
    assert theirs["agent.mlp_dims"] == f"[{d.hidden_size},{d.hidden_size}]"
    assert theirs["agent.batch_size"] == str(d.batch_size)
    assert int(theirs["agent.num_samples"]) == p.population + p.prior_samples
    assert theirs["agent.num_pi_trajs"] == str(p.prior_samples)
    assert theirs["agent.num_elites"] == str(p.num_elites)
    assert theirs["agent.iterations"] == str(p.iterations)
    assert int(theirs["agent.exploration_noise_num_steps"]) * 500 == d.explore_decay_updates
    assert int(theirs["random_episodes"]) * 500 == t.random_steps == t.pretrain_updates
    assert int(theirs["num_episodes"]) * 500 == t.steps == 6000
    assert int(theirs["eval_every_episodes"]) * 500 == t.eval_every
    assert theirs["num_eval_episodes"] == str(t.eval_episodes) and t.eval_wait
    assert t.samples_per_insert == d.batch_size * (d.horizon + 1)  # one update per step
    check_eval_lag(cfg, t.samples_per_insert)  # evaluations wait for the updates due
    assert t.eval_max_lag == 0 and t.spi_error_buffer <= 20 * t.samples_per_insert
    assert (d.one_step_discount, d.prior_noise, d.explore_decay_from, d.reward_range) == (
        "one", "shared", "pretrain_end", [0.0, 2.0])
    assert theirs["seed"] == "3" == str(t.seed)


def test_vs_dcmpc_authors_summary_pairs_seeds_and_times_runs_at_the_shared_points(tmp_path):
    def run(side, seed, returns, wall):
        evals = [[1000 * (i + 1), r, 10.0 * (i + 1), None, 30.0] for i, r in enumerate(returns)]
        if side == "authors":  # theirs also evaluate before training, and the last twice
            evals = [[0, 20.0, 1.0, [20.0], 50.0], *evals,
                     [2000, returns[-1] + 10.0, 30.0, None, 50.0]]
        (tmp_path / f"{side}-seed{seed}.json").write_text(json.dumps(
            {"side": side, "seed": seed, "wall_s": wall, "agent_steps": 2000,
             "eval_s": sum(e[4] for e in evals), "updates": 6000, "evals": evals,
             "settings": {"steps": 2000, "eval_every": 1000}}))

    # their points at 2,000: (200 + 210) / 2 = 205 and (300 + 310) / 2 = 305; their runs
    # less the two extra evaluations (100 s): 400 and 800 s, 200 and 400 ms per agent step
    run("authors", 0, [100.0, 200.0], wall=500.0)
    run("authors", 1, [150.0, 300.0], wall=900.0)
    run("ours", 0, [130.0, 260.0], wall=200.0)  # 100 ms per agent step: 0.5x
    run("ours", 1, [150.0, 320.0], wall=400.0)  # 200: 0.5x
    run("ours", 2, [900.0, 900.0], wall=1.0)    # no authors' seed 2: never paired
    runs = vs_dcmpc_summary.load(tmp_path)
    assert list(runs) == ["authors", "ours"]
    table = "\n".join(vs_dcmpc_summary.returns_table(runs, [1000, 2000]))
    assert _cells(table, "| 1,000 (2,000)")[3] == "15 ± 191 (n=2)"  # diffs 30, 0
    assert _cells(table, "| 2,000 (4,000)")[3].startswith("35 ± ")  # diffs 55, 15
    assert _cells(table, "| mean over the points")[3].startswith("25 ± ")  # 42.5, 7.5
    costs = "\n".join(vs_dcmpc_summary.cost_table(runs, [1000, 2000]))
    assert "shared evaluation points: ours 0.50 ± 0.00× the authors' (n=2, paired)" in costs
    assert _cells(costs, "| authors (n=2)")[2:4] == ["4, 160 ± 0", "300 ± 1271"]


def test_vs_dcmpc_authors_needs_the_checkout_and_keeps_measured_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["vs_dcmpc_authors.py", "--reference-dir",
                                      str(tmp_path / "none"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        vs_dcmpc.main()
    (tmp_path / "ours-seed1.json").write_text("{}")
    monkeypatch.setattr(sys, "argv", ["vs_dcmpc_authors.py", "--seeds", "1", "--sides", "ours",
                                      "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="ours-seed1.json already measured"):
        vs_dcmpc.main()
    assert (tmp_path / "ours-seed1.json").read_text() == "{}"
