"""The shared layers (mbrl_ray/nn.py) against computations written here in float64 loops."""
import math

import pytest
import torch
from torch import nn

from mbrl_ray.nn import EnsembleLinear, Mish, mlp, normed_mlp

pytestmark = pytest.mark.unit


def _mish64(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tanh(torch.log1p(torch.exp(x)))


def _linears(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


def _randomise(net: nn.Module) -> None:
    """Non-default parameters everywhere (LayerNorm's 1 and 0 would hide its affine terms)."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)


@pytest.mark.parametrize("layers, shapes", [(3, [(3, 5), (5, 5), (5, 5), (5, 2)]),
                                            (1, [(3, 5), (5, 2)])])
def test_mlp_is_relu_layers_then_a_plain_linear(layers, shapes):
    torch.manual_seed(0)
    net = mlp(3, 2, hidden=5, layers=layers)
    _randomise(net)
    x = torch.randn(7, 3)
    linears = _linears(net)
    assert [(m.in_features, m.out_features) for m in linears] == shapes
    h = x.double()
    for i, m in enumerate(linears):
        h = h @ m.weight.double().T + m.bias.double()
        if i < len(linears) - 1:
            h = h.clamp(min=0)
    assert torch.allclose(net(x).double(), h, atol=1e-5)


def test_normed_mlp_is_linear_layernorm_mish_blocks_then_a_plain_linear():
    torch.manual_seed(0)
    net = normed_mlp(4, 3, hidden=6, layers=2)
    _randomise(net)
    norms = [m for m in net if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 and sum(isinstance(m, Mish) for m in net) == 2
    x = torch.randn(5, 4)
    h = x.double()
    for m, norm in zip(_linears(net), norms):
        h = h @ m.weight.double().T + m.bias.double()
        mean = h.mean(-1, keepdim=True)
        var = ((h - mean) ** 2).mean(-1, keepdim=True)
        h = (h - mean) / torch.sqrt(var + norm.eps) * norm.weight.double() + norm.bias.double()
        h = _mish64(h)
    last = _linears(net)[-1]
    assert (last.in_features, last.out_features) == (6, 3)
    h = h @ last.weight.double().T + last.bias.double()
    assert torch.allclose(net(x).double(), h, atol=1e-5)


def test_ensemble_linear_applies_each_members_own_weights():
    layer = EnsembleLinear(3, 4, 2)
    _randomise(layer)
    x = torch.randn(3, 5, 4)
    out = layer(x)
    assert out.shape == (3, 5, 2)
    for e in range(3):
        for n in range(5):
            for o in range(2):
                want = sum(float(x[e, n, i]) * float(layer.weight[e, i, o]) for i in range(4))
                assert math.isclose(float(out[e, n, o]), want + float(layer.bias[e, 0, o]),
                                    abs_tol=1e-5)


def test_ensemble_linear_init_is_uniform_within_one_over_root_fan_in_from_the_generator():
    layer = EnsembleLinear(4, 9, 50)
    bound = 1 / 3  # 1 / sqrt(9)
    assert torch.all(layer.bias == 0)
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
    assert abs(float(layer.weight.mean())) < 0.05 * bound  # centred, not [0, bound)
    draws = []
    for _ in range(2):
        with torch.no_grad():
            layer.bias.fill_(1.0)
        layer.reset_parameters(torch.Generator().manual_seed(11))
        draws.append(layer.weight.detach().clone())
        assert torch.all(layer.bias == 0)
    assert torch.equal(draws[0], draws[1])
    assert EnsembleLinear.seeded_init
