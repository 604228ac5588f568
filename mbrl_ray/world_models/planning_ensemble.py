"""An inference-only view of a ProbabilisticEnsemble, built for the planner's hot loop.

Same function as `ProbabilisticEnsemble.step`, computed with fewer passes over memory:
- the input and output normalisers are folded into the first and last layers;
- every layer's bias rides inside its matmul as an extra input column of ones (torch.baddbmm
  would first copy the broadcast bias into the whole output: a full extra pass per layer);
- activations live in buffers reused across steps (fresh large tensors page-fault on every
  step here) and SiLU writes straight into the next layer's input buffer;
- on CPU, from PER_MEMBER_ROWS rows per member, oneDNN's linear with SiLU in its epilogue,
  one member at a time (1.15-1.44x per CEM call at PETS HalfCheetah size: docs/operations.md,
  issue 17).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mbrl_ray.world_models.ensemble import ProbabilisticEnsemble
from mbrl_ray.world_models.information import member_spread, mutual_information


# Rows per member from which one matmul per member beats one batched matmul: torch.bmm splits
# the E members over the threads (5 over 2 threads: 3 + 2), mm threads within each member.
PER_MEMBER_ROWS = 512

# oneDNN's linear with SiLU fused into its epilogue (CPU only): each member's rows go through
# all layers in turn, so its activations stay in cache, and SiLU never makes its own pass.
ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _matmul(x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    if x.shape[1] < PER_MEMBER_ROWS:
        return torch.bmm(x, weight, out=out)
    for e in range(x.shape[0]):
        torch.mm(x[e], weight[e], out=out[e])
    return out


def _with_bias_row(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(E, in, out) and (E, 1, out) -> (E, in + 1, out): multiplies an input ending in a 1."""
    return torch.cat([weight, bias], 1).contiguous()


def _fold_input(weight, bias, mean, std):
    """Fold x -> (x - mean) / std into a layer: returns weight' and bias' for raw x."""
    w = weight / std[None, :, None]
    b = bias - ((mean / std) @ weight).unsqueeze(1)
    return w, b


class PlanningEnsemble:
    """Call `step(state, action)` on (E, K, ·) tensors; buffers are sized on first use."""

    @torch.no_grad()
    def __init__(self, model: ProbabilisticEnsemble) -> None:
        self.source = model  # weights are copied: rebuild when the model changes
        self.obs_dim, self.act_dim, self.members = model.obs_dim, model.act_dim, model.members
        self.target_dim = model.target_dim
        first = model.body[0]
        w, b = _fold_input(first.weight, first.bias, model.in_norm.mean, model.in_norm.std)
        self.layers = [_with_bias_row(w, b)]
        self.layers += [_with_bias_row(layer.weight, layer.bias) for layer in model.body[1:]]
        out_std, out_mean = model.out_norm.std, model.out_norm.mean
        t = self.target_dim
        head_w, head_b = model.head.weight, model.head.bias
        # Mean columns de-standardised in the layer; logvar columns stay standardised.
        mean_w, mean_b = head_w[..., :t] * out_std, head_b[..., :t] * out_std + out_mean
        self.head = _with_bias_row(torch.cat([mean_w, head_w[..., t:]], -1),
                                   torch.cat([mean_b, head_b[..., t:]], -1))
        self.noise_scale = out_std
        self.max_logvar, self.min_logvar = model.max_logvar, model.min_logvar
        self.term = []
        if model.termination:
            obs_mean = model.in_norm.mean[:self.obs_dim]
            obs_std = model.in_norm.std[:self.obs_dim]
            tw, tb = _fold_input(model.term[0].weight, model.term[0].bias, obs_mean, obs_std)
            self.term = [_with_bias_row(tw, tb)]
            self.term += [_with_bias_row(layer.weight, layer.bias) for layer in model.term[1:]]
        self._buffers: dict[tuple, torch.Tensor] = {}
        self.onednn = ONEDNN
        self._linear: dict[tuple, list] = {}

    def _buffer(self, name: str, rows: int, width: int, like: torch.Tensor,
                ones: bool = True) -> torch.Tensor:
        """(E, rows, width [+ 1 column of ones]), kept between calls."""
        key = (name, rows, width, ones, like.device)
        buf = self._buffers.get(key)
        if buf is None:
            buf = torch.empty(self.members, rows, width + ones, device=like.device)
            if ones:
                buf[..., -1] = 1.0
            self._buffers[key] = buf
        return buf

    def _mlp(self, name: str, x: torch.Tensor, layers: list[torch.Tensor]) -> torch.Tensor:
        """Hidden layers: matmul into a reused buffer, SiLU from it into the next layer's input
        (whose last column stays 1). Returns the last layer's output (fresh: callers keep it)."""
        if self.onednn and x.device.type == "cpu" and x.shape[1] >= PER_MEMBER_ROWS:
            return self._mlp_onednn(x, layers)
        for i, weight in enumerate(layers[:-1]):
            rows, width = x.shape[1], weight.shape[-1]
            h = _matmul(x, weight, self._buffer(f"{name}mm", rows, width, x, ones=False))
            x = self._buffer(f"{name}{i % 2}", rows, width, x)
            torch._C._nn.silu(h, out=x[..., :-1])
        last = layers[-1]
        return _matmul(x, last, x.new_empty(x.shape[0], x.shape[1], last.shape[-1]))

    def _mlp_onednn(self, x: torch.Tensor, layers: list[torch.Tensor]) -> torch.Tensor:
        """As `_mlp`, one member at a time through oneDNN's linear (+ fused SiLU)."""
        key = tuple(id(w) for w in layers)
        if key not in self._linear:  # (E, in + 1, out) -> weights (E, out, in), biases (E, out)
            self._linear[key] = [(w[:, :-1].transpose(1, 2).contiguous(), w[:, -1].contiguous())
                                 for w in layers]
        linear = self._linear[key]
        out = x.new_empty(x.shape[0], x.shape[1], layers[-1].shape[-1])
        for e in range(x.shape[0]):
            h = x[e, :, :-1].contiguous()
            for i, (weight, bias) in enumerate(linear):
                post = "swish" if i < len(linear) - 1 else "none"
                h = torch.ops.mkldnn._linear_pointwise(h, weight[e], bias[e], post, [], "")
            out[e] = h
        return out

    @torch.no_grad()
    def step(self, state: torch.Tensor, action: torch.Tensor,
             generator: torch.Generator | None = None):
        """Sample one transition per row: (E, K, ·) -> next state, reward, P(terminated)."""
        rows, o = state.shape[1], self.obs_dim
        x = self._buffer("in", rows, o + self.act_dim, state)
        x[..., :o] = state
        x[..., o:-1] = action
        out = self._mlp("h", x, self.layers + [self.head])
        mean, logvar = out.split([self.target_dim, self.target_dim], -1)
        logvar = self._bounded(logvar)
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        sample = mean + noise * torch.exp(0.5 * logvar) * self.noise_scale
        next_state = state + sample[..., :o]
        return next_state, sample[..., o], self.termination_prob(next_state)

    @torch.no_grad()
    def information(self, state: torch.Tensor, action: torch.Tensor, kind: str = "mi",
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """As ProbabilisticEnsemble.information: (E, K, ·) -> (E, K), every row through every
        member. The mean columns are de-standardised here; dividing by the targets' std brings
        them back up to a shift common to all members, which neither measure sees."""
        e, k, o = state.shape[0], state.shape[1], self.obs_dim
        rows = e * k
        x = self._buffer("d_in", rows, o + self.act_dim, state)
        x[..., :o] = state.reshape(1, rows, o)
        x[..., o:-1] = action.reshape(1, rows, -1)
        out = self._mlp("d", x, self.layers + [self.head])
        mean = out[..., :self.target_dim] / self.noise_scale
        if kind == "std":
            return member_spread(mean[..., :o]).view(e, k)
        logvar = self._bounded(out[..., self.target_dim:])
        return mutual_information(mean, logvar, generator).view(e, k)

    def _bounded(self, logvar: torch.Tensor) -> torch.Tensor:
        """The soft clamp of the log-variance between the learned bounds (as the module)."""
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        return self.min_logvar + F.softplus(logvar - self.min_logvar)

    @torch.no_grad()
    def member_gaussians(self, state: torch.Tensor, action: torch.Tensor):
        """Every member's Gaussian over the state change at every row: (R, ·) -> mean and
        log-variance (E, R, obs_dim), in the state's own units."""
        rows, o = state.shape[0], self.obs_dim
        x = self._buffer("g_in", rows, o + self.act_dim, state)
        x[..., :o] = state
        x[..., o:-1] = action
        out = self._mlp("g", x, self.layers + [self.head])
        mean, logvar = out[..., :o], out[..., self.target_dim:self.target_dim + o]
        logvar = self.max_logvar[..., :o] - F.softplus(self.max_logvar[..., :o] - logvar)
        logvar = self.min_logvar[..., :o] + F.softplus(logvar - self.min_logvar[..., :o])
        return mean, logvar + 2 * torch.log(self.noise_scale[:o])

    def termination_prob(self, next_state: torch.Tensor) -> torch.Tensor:
        if not self.term:
            return torch.zeros(next_state.shape[:-1], device=next_state.device)
        x = self._buffer("t_in", next_state.shape[1], self.obs_dim, next_state)
        x[..., :-1] = next_state
        return torch.sigmoid(self._mlp("t", x, self.term).squeeze(-1))
