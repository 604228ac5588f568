"""Encoders and decoders of observations for the RSSM: convolutional for uint8 frames
(PlaNet's 32-64-128-256 channels, kernel 4, stride 2; padded so that each layer halves the
image exactly and any size divisible by 2^layers works), MLPs for state vectors.

v3 (DreamerV3): every hidden layer normalised (LayerNorm over features, or over channels at
each pixel) then SiLU, in place of ELU; the state encoder reads symlog(obs), and the state
decoder's output is read in symlog space by the world model's loss."""
from __future__ import annotations

import torch
from torch import nn

from mbrl_ray.nn import silu_mlp
from mbrl_ray.world_models.symlog import symlog


def preprocess(obs: torch.Tensor, bits: int = 8,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 frames -> float in [-0.5, 0.5]; state vectors -> float32 as they are.
    bits < 8 (PlaNet: 5): frames reduced to `bits` bits, then dequantised by uniform noise
    within each bin drawn from `generator` (training), or by its mean without one (acting)."""
    if obs.dtype != torch.uint8:
        return obs.float()
    if bits >= 8:
        return obs.float() / 255.0 - 0.5
    bins = 2 ** bits
    level = torch.floor(obs.float() / 2 ** (8 - bits))
    noise = (0.5 if generator is None else
             torch.rand(level.shape, device=level.device, generator=generator))
    return (level + noise) / bins - 0.5


def elu_mlp(inp: int, out: int, hidden: int, layers: int) -> nn.Sequential:
    dims = [inp] + [hidden] * layers
    body = [m for i, o in zip(dims, dims[1:]) for m in (nn.Linear(i, o), nn.ELU())]
    return nn.Sequential(*body, nn.Linear(dims[-1], out))


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of (N, C, H, W) maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _conv_activation(channels: int, v3: bool) -> list[nn.Module]:
    return [ChannelNorm(channels), nn.SiLU()] if v3 else [nn.ELU()]


class ConvEncoder(nn.Module):
    """(..., 3, S, S) -> (..., embed_dim)."""

    def __init__(self, image_size: int, depth: int = 32, layers: int = 4, v3: bool = False
                 ) -> None:
        super().__init__()
        chans = [3] + [depth * 2 ** i for i in range(layers)]
        self.net = nn.Sequential(*[m for i, o in zip(chans, chans[1:])
                                   for m in (nn.Conv2d(i, o, 4, 2, 1),
                                             *_conv_activation(o, v3))])
        self.embed_dim = chans[-1] * (image_size // 2 ** layers) ** 2

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[:-3]
        return self.net(obs.reshape(-1, *obs.shape[-3:])).reshape(*lead, -1)


class ConvDecoder(nn.Module):
    """(..., feat_dim) -> the mean frame (..., 3, S, S) in the preprocessed scale."""

    def __init__(self, feat_dim: int, image_size: int, depth: int = 32, layers: int = 4,
                 v3: bool = False) -> None:
        super().__init__()
        chans = [depth * 2 ** i for i in reversed(range(layers))] + [3]
        self.start = (chans[0], image_size // 2 ** layers, image_size // 2 ** layers)
        self.linear = nn.Linear(feat_dim, chans[0] * self.start[1] * self.start[2])
        ups = []
        for i, (a, b) in enumerate(zip(chans, chans[1:])):
            ups.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
            if i < layers - 1:
                ups.extend(_conv_activation(b, v3))
        self.net = nn.Sequential(*ups)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        lead = feat.shape[:-1]
        x = self.linear(feat.reshape(-1, feat.shape[-1])).reshape(-1, *self.start)
        x = self.net(x)
        return x.reshape(*lead, *x.shape[1:])


def _mlp(inp: int, out: int, hidden: int, layers: int, v3: bool) -> nn.Sequential:
    return (silu_mlp if v3 else elu_mlp)(inp, out, hidden, layers)


class MLPEncoder(nn.Module):
    def __init__(self, obs_dim: int, hidden: int = 200, layers: int = 2, v3: bool = False
                 ) -> None:
        super().__init__()
        self.net = _mlp(obs_dim, hidden, hidden, layers, v3)
        self.embed_dim, self.v3 = hidden, v3

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(symlog(obs) if self.v3 else obs)


class MLPDecoder(nn.Module):
    def __init__(self, feat_dim: int, obs_dim: int, hidden: int = 200, layers: int = 2,
                 v3: bool = False) -> None:
        super().__init__()
        self.net = _mlp(feat_dim, obs_dim, hidden, layers, v3)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.net(feat)

