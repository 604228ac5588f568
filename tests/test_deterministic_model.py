"""MBMF's delta network (world_models/deterministic.py) against computations written here: the
standardised targets and their mean squared error, the step back in raw units, and planning
returns through rollout_returns over a horizon > 1 with a discount, from two observations."""
import pytest
import torch

from mbrl_ray.world_models.base import rollout_returns
from mbrl_ray.world_models.deterministic import DeltaMLP, DeltaRollout, fit

pytestmark = pytest.mark.unit

OBS, ACT = 3, 2


def _batch(n: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, OBS, generator=g) * 2 + 1
    action = torch.rand(n, ACT, generator=g) * 2 - 1
    next_obs = obs + 0.3 * torch.cat([action, action[:, :1]], -1) + 0.1
    reward = -(obs ** 2).sum(-1) + action[:, 0]
    return {"obs": obs, "action": action, "next_obs": next_obs, "reward": reward}


def _model() -> DeltaMLP:
    torch.manual_seed(0)
    model = DeltaMLP(OBS, ACT, hidden=16, layers=2)
    model.fit_normalizers(_batch())
    return model


@torch.no_grad()
def _net64(model: DeltaMLP, x: torch.Tensor) -> torch.Tensor:
    """The MLP by hand in float64: ReLU hidden layers, a plain last layer."""
    linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    h = x.double()
    for i, m in enumerate(linears):
        h = h @ m.weight.double().T + m.bias.double()
        h = h.clamp(min=0) if i < len(linears) - 1 else h
    return h


def _predict64(model: DeltaMLP, obs: torch.Tensor, action: torch.Tensor):
    """(s', r) in raw units: standardise (s, a) by the batch's mean and std (unbiased), the
    network, then undo the target standardisation and add the delta to s."""
    data = _batch()
    inputs = torch.cat([data["obs"], data["action"]], -1).double()
    targets = torch.cat([data["next_obs"] - data["obs"], data["reward"][:, None]], -1).double()
    x = (torch.cat([obs, action], -1).double() - inputs.mean(0)) / inputs.std(0)
    out = _net64(model, x) * targets.std(0) + targets.mean(0)
    return obs.double() + out[..., :OBS], out[..., OBS]


def test_step_is_the_state_plus_the_unstandardised_delta_and_reward():
    model = _model()
    obs, action = torch.randn(5, OBS), torch.rand(5, ACT)
    next_obs, reward = model.step(obs, action)
    want_obs, want_reward = _predict64(model, obs, action)
    assert torch.allclose(next_obs.double(), want_obs, atol=1e-5)
    assert torch.allclose(reward.double(), want_reward, atol=1e-5)


def test_loss_is_the_mean_squared_error_of_the_standardised_targets():
    model, batch = _model(), _batch(n=20, seed=1)
    loss, logs = model.loss(batch)
    data = _batch()
    inputs = torch.cat([data["obs"], data["action"]], -1).double()
    targets = torch.cat([data["next_obs"] - data["obs"], data["reward"][:, None]], -1).double()
    x = (torch.cat([batch["obs"], batch["action"]], -1).double() - inputs.mean(0)) / inputs.std(0)
    y = (torch.cat([batch["next_obs"] - batch["obs"], batch["reward"][:, None]], -1).double()
         - targets.mean(0)) / targets.std(0)
    want = float(((_net64(model, x) - y) ** 2).mean())
    assert abs(loss.item() - want) < 1e-5 * max(1.0, want)
    assert logs == {"model_mse": pytest.approx(want, rel=1e-5)}


def test_planning_returns_sum_discounted_rewards_along_each_candidates_trajectory():
    """Two observations, three candidates of horizon 4, discount 0.9: the sum over t of
    0.9^t r(s_t, a_t) with s_{t+1} the model's step, walked here one row at a time."""
    model = _model()
    obs = torch.randn(2, OBS)
    actions = torch.rand(2, 3, 4, ACT) * 2 - 1
    values = rollout_returns(DeltaRollout(model, obs), actions, discount=0.9)
    assert values.shape == (2, 3)
    for b in range(2):
        for n in range(3):
            state, total = obs[b:b + 1], 0.0
            for t in range(4):
                state, reward = _predict64(model, state.float(), actions[b, n, t][None])
                total += 0.9 ** t * float(reward)
            assert abs(float(values[b, n]) - total) < 1e-4 * max(1.0, abs(total))


def test_a_few_hundred_steps_learn_a_linear_system():
    model = DeltaMLP(OBS, ACT, hidden=32, layers=2)
    batch = _batch(n=512, seed=2)
    model.fit_normalizers(batch)
    first, _ = model.loss(batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05 * first.item()


def test_a_fit_refits_the_standardisation_and_takes_every_row_once_per_epoch():
    """3 epochs over 10 rows in minibatches of 4: 3 x 3 steps of sizes 4, 4, 2; each epoch
    a fresh order covering every row once; the statistics are the rows' own; the returned
    loss is the last epoch's row-weighted mean."""
    model = DeltaMLP(OBS, ACT, hidden=8, layers=1)
    batch = _batch(n=10, seed=3)
    seen, losses, real_loss = [], [], model.loss

    def recording(rows):
        loss, logs = real_loss(rows)
        seen.append(rows["obs"][:, 0].tolist())
        losses.append((float(loss), len(rows["obs"])))
        return loss, logs

    model.loss = recording
    steps = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    optimizer.step = lambda real=optimizer.step: steps.append(1) or real()
    last = fit(model, optimizer, batch, epochs=3, batch_size=4,
               generator=torch.Generator().manual_seed(0))
    assert len(steps) == 9 and [len(s) for s in seen] == [4, 4, 2] * 3
    rows = sorted(batch["obs"][:, 0].tolist())
    epochs = [sum(seen[3 * e:3 * e + 3], []) for e in range(3)]
    assert all(sorted(e) == rows for e in epochs) and epochs[0] != epochs[1]
    inputs = torch.cat([batch["obs"], batch["action"]], -1)
    assert torch.allclose(model.in_norm.mean, inputs.mean(0))
    assert torch.allclose(model.in_norm.std, inputs.std(0))
    targets = torch.cat([batch["next_obs"] - batch["obs"], batch["reward"][:, None]], -1)
    assert torch.allclose(model.out_norm.mean, targets.mean(0))
    want = sum(loss * n for loss, n in losses[-3:]) / 10
    assert abs(last - want) < 1e-6 * max(1.0, want)
