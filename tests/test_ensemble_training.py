"""Fitting the ensemble (world_models/ensemble_training.py), found open by mutation testing
(issue 39): the early-stopping rule (a member counts as improved when its validation error drops by
more than 1 % of its best; patience counts epochs without any member improving), each member's
best weights kept and the shared ones taken from the last epoch, elites, the holdout split, the
epoch's mean NLL, seeded draws, the normalisers' statistics, and the config's keys.

The early-stopping tests script the validation scores and let an epoch's "training" add 1 to
every tensor of the model, so that each tensor's value tells which epoch it was kept from; the
expected outcome is computed here from the rule as stated above."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.world_models import ProbabilisticEnsemble, ensemble_training
from mbrl_ray.world_models.ensemble_training import (ensemble_from_config, fit_ensemble,
                                                      fit_from_config, fit_normalizers,
                                                      to_tensors)

pytestmark = pytest.mark.unit

IMPROVEMENT = 0.01  # the rule's relative improvement (mbrl-lib's and MBPO's)
TOL = 1e-5  # float32 statistics against float64 numpy


def _data(n: int, obs_dim: int = 3, act_dim: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    action = rng.uniform(-1, 1, (n, act_dim)).astype(np.float32)
    return {"obs": obs, "action": action,
            "reward": (obs[:, 0] + 2 * action[:, 1] + 0.5).astype(np.float32),
            "next_obs": (obs + 0.3 * action[:, :1] + 0.1).astype(np.float32),
            "terminated": np.zeros(n, dtype=bool)}


def _model(members: int = 3) -> tuple[ProbabilisticEnsemble, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, members=members, hidden=8, layers=2, termination=False)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


# ---- the early-stopping rule, scripted ---------------------------------------------------------
def _expected(scores: list[list[float]], patience: int, max_epochs: int):
    """(best per member, the epoch each member's kept weights come from, epochs run, the last
    epoch in which any member improved: the shared tensors' epoch)."""
    best, kept, stale, epoch = list(scores[0]), [0] * len(scores[0]), 0, 0
    last = 0
    for epoch in range(1, max_epochs + 1):
        improved = [(b - s) / max(abs(b), 1e-12) > IMPROVEMENT for b, s in zip(best, scores[epoch])]
        if not any(improved):
            stale += 1
            if stale >= patience:
                break
            continue
        stale, last = 0, epoch
        for e, up in enumerate(improved):
            if up:
                best[e], kept[e] = scores[epoch][e], epoch
    return best, kept, epoch, last


class Scripted:
    """Replaces one epoch of training (every tensor + 1, NLL = the epoch) and the validation
    error (the next row of `scores`); records what they were handed."""

    def __init__(self, scores: list[list[float]]) -> None:
        self.scores, self.val_rows, self.train_rows, self.start = iter(scores), [], [], None

    def val_mse(self, model, val) -> torch.Tensor:
        self.val_rows.append(len(val["reward"]))
        return torch.tensor(next(self.scores), dtype=torch.float32)

    def train_epoch(self, model, optimizer, train, member_rows, batch_size, generator) -> float:
        if self.start is None:
            self.start = {k: v.clone() for k, v in model.state_dict().items()}
        self.train_rows.append((len(train["reward"]), tuple(member_rows.shape)))
        with torch.no_grad():
            for value in model.state_dict().values():
                value += 1
        return float(len(self.train_rows))


def _scripted_fit(monkeypatch, scores, *, members: int = 3, n: int = 40, holdout: float = 0.25,
                  patience: int = 3, max_epochs: int = 20, num_elites: int = 2):
    script = Scripted(scores)
    monkeypatch.setattr(ensemble_training, "member_val_mse", script.val_mse)
    monkeypatch.setattr(ensemble_training, "_train_epoch", script.train_epoch)
    model, opt = _model(members)
    result = fit_ensemble(model, opt, _data(n), num_elites=num_elites, batch_size=8,
                          holdout=holdout, patience=patience, max_epochs=max_epochs,
                          generator=torch.Generator().manual_seed(0))
    return model, result, script


def _epoch_of(model, script, key: str) -> torch.Tensor:
    """Per member (dim 0) or shared: which epoch the tensor's value comes from."""
    return (model.state_dict()[key] - script.start[key]).round()


MEMBER_KEYS = ("body.0.weight", "body.1.bias", "head.weight")
SHARED_KEYS = ("max_logvar", "min_logvar", "in_norm.mean", "out_norm.std")

SCORES = [[10.0, 10.0, 10.0],
          [5.0, 9.96, 10.0],   # member 0 improves; member 1 by 0.4 %: not enough
          [6.0, 9.95, 10.0],   # nobody (stale 1)
          [4.0, 9.95, 10.0],   # member 0 again
          [4.5, 9.0, 9.8],     # members 1 (10 %) and 2 (2 %)
          [4.2, 9.0, 9.75],    # nobody (member 2 by 0.5 %)
          [4.0, 8.95, 9.8],    # nobody
          [4.1, 9.0, 9.9],     # nobody: third stale epoch, patience 3 stops here
          [1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.2, 0.2, 0.2]]  # reached only past the stop


def test_early_stopping_keeps_each_members_best_epoch_and_stops_after_patience(monkeypatch):
    model, result, script = _scripted_fit(monkeypatch, SCORES)
    best, kept, epochs, last = _expected(SCORES, patience=3, max_epochs=20)
    assert result.epochs == epochs == 7 and result.train_nll == 7.0
    for key in MEMBER_KEYS:
        epoch = _epoch_of(model, script, key)
        assert [int(epoch[e].unique().item()) for e in range(3)] == kept == [3, 4, 4], key
    for key in SHARED_KEYS:  # not per member: of the last epoch in which any member improved
        assert (_epoch_of(model, script, key) == last).all() and last == 4, key
    elites = sorted(np.argsort(best, kind="stable")[:2].tolist())
    assert result.elites == elites == [0, 1]
    assert result.val_mse == pytest.approx(np.mean([best[e] for e in elites]))


def test_improvement_is_relative_to_the_best_even_below_one_and_strictly_over_one_percent(
        monkeypatch):
    """Member 0 goes from 0.5 to 0.493: 1.4 % of its best (an absolute 0.007 would be 0.7 %);
    member 1 from 100 to 99: exactly 1 %, not more, so not an improvement."""
    scores = [[0.5, 100.0, 8.0], [0.493, 99.0, 8.0]] + [[0.493, 99.0, 8.0]] * 3
    model, result, script = _scripted_fit(monkeypatch, scores, patience=3)
    best, kept, epochs, _ = _expected(scores, patience=3, max_epochs=20)
    assert kept == [1, 0, 0] and result.epochs == epochs == 4
    for key in MEMBER_KEYS:
        epoch = _epoch_of(model, script, key)
        assert [int(epoch[e].unique().item()) for e in range(3)] == kept, key


def test_patience_counts_from_the_first_epoch_when_nothing_ever_improves(monkeypatch):
    scores = [[3.0, 2.0, 1.0]] * 8
    model, result, script = _scripted_fit(monkeypatch, scores, patience=3)
    assert result.epochs == 3
    assert (_epoch_of(model, script, "head.weight") == 0).all()  # the weights it started with
    assert result.elites == [1, 2] and result.val_mse == pytest.approx(1.5)


def test_the_holdout_split_and_what_too_little_data_means(monkeypatch):
    """n >= 10: int(n x holdout) rows validate, the rest train (n = 10 included); below that
    nothing is held out, every epoch runs, the last weights stay and there is no val_mse."""
    _, _, script = _scripted_fit(monkeypatch, [[1.0, 1.0, 1.0]] * 5, n=40, patience=3)
    assert set(script.val_rows) == {10} and script.train_rows[0] == (30, (3, 30))
    _, _, script = _scripted_fit(monkeypatch, [[1.0, 1.0, 1.0]] * 5, n=10, patience=3)
    assert set(script.val_rows) == {2} and script.train_rows[0] == (8, (3, 8))
    model, result, script = _scripted_fit(monkeypatch, [], n=9, max_epochs=4)
    assert script.val_rows == [] and script.train_rows == [(9, (3, 9))] * 4
    assert result.epochs == 4 and result.val_mse is None and result.train_nll == 4.0
    assert (_epoch_of(model, script, "head.weight") == 4).all()
    assert result.elites == [0, 1]


def test_no_epochs_leave_the_model_untrained():
    model, opt = _model()
    before = {k: v.clone() for k, v in model.state_dict().items() if "norm" not in k}
    result = fit_ensemble(model, opt, _data(40), num_elites=2, batch_size=8, holdout=0.25,
                          patience=3, max_epochs=0, generator=torch.Generator().manual_seed(0))
    assert result.epochs == 0 and np.isnan(result.train_nll)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


# ---- the real epoch ------------------------------------------------------------------------------
@pytest.mark.parametrize("rows, steps", [(100, 4), (20, 1)])
def test_the_reported_nll_is_the_mean_over_the_last_epochs_minibatches(rows, steps):
    """Minibatches of 32: 100 rows take four steps (the last of 4 rows), 20 rows one."""
    model, opt = _model()
    nlls, loss = [], model.loss

    def recording_loss(*args):
        out = loss(*args)
        nlls.append(float(out[1].detach()))
        return out

    model.loss = recording_loss
    result = fit_ensemble(model, opt, _data(rows), num_elites=2, batch_size=32, holdout=0.0,
                          patience=3, max_epochs=2, generator=torch.Generator().manual_seed(0))
    assert len(nlls) == 2 * steps
    assert result.train_nll == pytest.approx(np.mean(nlls[steps:]), rel=1e-6)


def test_a_fit_draws_only_from_its_generator():
    runs = []
    for global_seed in (0, 1):
        model, opt = _model()
        torch.manual_seed(global_seed)
        result = fit_ensemble(model, opt, _data(60), num_elites=2, batch_size=16, holdout=0.2,
                              patience=2, max_epochs=3,
                              generator=torch.Generator().manual_seed(5))
        runs.append((result, [v.clone() for v in model.state_dict().values()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_bootstrap_is_the_default_and_can_draw_every_row(monkeypatch):
    """PETS's bootstrap by default; a draw with replacement reaches row 0 too (5 rows, 8
    members: each member's sample is recorded from the rows it is handed)."""
    assert inspect.signature(fit_ensemble).parameters["bootstrap"].default is True
    drawn = []
    real = ensemble_training._member_rows

    def recording(*args):
        rows = real(*args)
        drawn.append(rows)
        return rows

    monkeypatch.setattr(ensemble_training, "_member_rows", recording)
    model, opt = _model(members=8)
    fit_ensemble(model, opt, _data(5), num_elites=2, batch_size=8, holdout=0.0, patience=1,
                 max_epochs=1, generator=torch.Generator().manual_seed(0))
    rows = drawn[0]
    assert rows.shape == (8, 5) and set(rows.flatten().tolist()) == set(range(5))
    assert any(len(set(r.tolist())) < 5 for r in rows)  # with replacement


# ---- inputs and statistics -----------------------------------------------------------------------
def test_to_tensors_copies_numpy_and_keeps_tensors():
    """Ray hands out read-only numpy arrays: they are copied; tensors are used as they are."""
    data = _data(6)
    tensors = to_tensors(data, torch.device("cpu"))
    data["obs"][0, 0] = 99.0
    assert tensors["obs"][0, 0] != 99.0
    given = {k: torch.as_tensor(v) for k, v in _data(6).items()}
    same = to_tensors(given, torch.device("cpu"))
    assert all(same[k].data_ptr() == given[k].data_ptr() for k in given)


def test_normalisers_fit_inputs_and_targets():
    """Inputs [obs, action]; targets [next_obs - obs, reward]; sample std (n - 1)."""
    model, _ = _model()
    data = _data(50)
    fit_normalizers(model, to_tensors(data, torch.device("cpu")))
    x = np.concatenate([data["obs"], data["action"]], 1).astype(np.float64)
    y = np.concatenate([data["next_obs"] - data["obs"], data["reward"][:, None]], 1)
    for norm, values in ((model.in_norm, x), (model.out_norm, y.astype(np.float64))):
        np.testing.assert_allclose(norm.mean.numpy(), values.mean(0), atol=TOL)
        np.testing.assert_allclose(norm.std.numpy(), values.std(0, ddof=1), rtol=TOL)


# ---- the config's keys ---------------------------------------------------------------------
def test_the_ensemble_and_its_optimiser_from_the_config():
    cfg = apply_overrides(load_preset("debug"), ["model.ensemble_size=4", "model.hidden_size=12",
                                                 "model.num_layers=3", "model.lr=0.002",
                                                 "model.weight_decay=0.0003"]).model
    model, opt = ensemble_from_config(cfg, 3, 2, torch.device("cpu"), seed=1)
    assert model.members == 4 and model.state_dict()["body.2.weight"].shape == (4, 12, 12)
    assert "body.3.weight" not in model.state_dict()
    assert opt.param_groups[0]["lr"] == 0.002 and opt.param_groups[0]["weight_decay"] == 0.0003
    again, _ = ensemble_from_config(cfg, 3, 2, torch.device("cpu"), seed=1)
    other, none = ensemble_from_config(cfg, 3, 2, torch.device("cpu"), trainable=False, seed=2)
    assert torch.equal(model.head.weight, again.head.weight)
    assert not torch.equal(model.head.weight, other.head.weight) and none is None
    default, _ = ensemble_from_config(cfg, 3, 2, torch.device("cpu"))
    zero, _ = ensemble_from_config(cfg, 3, 2, torch.device("cpu"), seed=0)
    assert torch.equal(default.head.weight, zero.head.weight)
    assert cfg.termination and model.termination and len(model.term) == 3
    cfg.termination = False
    without, _ = ensemble_from_config(cfg, 3, 2, torch.device("cpu"))
    assert not without.termination and len(without.term) == 0


def test_fit_from_config_passes_every_key(monkeypatch):
    cfg = apply_overrides(load_preset("debug"), ["model.num_elites=2", "model.batch_size=17",
                                                 "model.holdout=0.3", "model.patience=4",
                                                 "model.max_epochs=9",
                                                 "model.bootstrap=false"]).model
    seen = {}
    monkeypatch.setattr(ensemble_training, "fit_ensemble",
                        lambda model, opt, data, **kw: seen.update(kw, model=model, optimizer=opt,
                                                                   data=data))
    generator = torch.Generator()
    fit_from_config(cfg, "model", "optimizer", "data", generator)
    assert seen == {"num_elites": 2, "batch_size": 17, "holdout": 0.3, "patience": 4,
                    "max_epochs": 9, "generator": generator, "bootstrap": False,
                    "model": "model", "optimizer": "optimizer", "data": "data"}
