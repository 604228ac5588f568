"""Open-loop predictions of an RSSM world model from pixels, shown as Dreamer's video
predictions are: the posterior filters the first `CONTEXT` frames of an episode, then the prior
alone imagines the rest from the actions actually taken, and the decoded frames stand beside the
real ones with their difference. A model that has learnt the dynamics keeps the imagined frames
close to the real ones for many steps; one that only reconstructs drifts at once."""
from __future__ import annotations

import torch

from mbrl_ray.world_models.rssm import Belief

CONTEXT = 5   # Dreamer's: 5 observed frames, then imagination
LENGTH = 50   # rows of an episode shown (Dreamer's 50)


@torch.no_grad()
def open_loop(model, obs: torch.Tensor, actions: torch.Tensor, context: int = CONTEXT
              ) -> torch.Tensor:
    """One episode's first rows, obs (T, C, H, W) uint8 and actions (T, A) (row t's action led
    to o_t; row 0 is the reset) -> predicted frames (T, C, H, W) in the preprocessed scale:
    reconstructions of the first `context` rows, imagination after. Latents at their modes, so
    the prediction needs no generator and is the same every time."""
    is_first = torch.zeros(1, context, dtype=torch.bool, device=obs.device)
    is_first[0, 0] = True
    post, _ = model.observe(obs[None, :context], actions[None, :context], is_first,
                            sample=False)
    feats = [post.feat[0]]
    belief = Belief(post.h[:, -1], post.s[:, -1], post.stats[:, -1])
    for t in range(context, len(obs)):
        belief = model.rssm.img_step(belief, actions[None, t].float(), sample=False)
        feats.append(belief.feat)
    return model.decoder(torch.cat(feats))


def side_by_side(real: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """real (T, C, H, W) uint8, predicted in the preprocessed scale -> (T, H, 3W, 3) uint8
    frames: real | predicted | (predicted - real + 1) / 2 (grey where they agree)."""
    truth, model = _unit(real), _unit_predicted(predicted)
    error = (model - truth + 1.0) / 2.0
    strip = torch.cat([truth, model, error], dim=-1)  # along the width
    return (strip.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8)


def prediction_error(real: torch.Tensor, predicted: torch.Tensor, context: int = CONTEXT
                     ) -> float:
    """Mean squared error per pixel (in [0, 1] units) of the imagined frames (after context)."""
    imagined = _unit_predicted(predicted[context:])
    return float((imagined - _unit(real[context:])).pow(2).mean())


def _unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> [0, 1]."""
    return frames.float() / 255.0


def _unit_predicted(frames: torch.Tensor) -> torch.Tensor:
    """Decoded frames in the preprocessed scale ([-0.5, 0.5]) -> [0, 1], clamped."""
    return (frames + 0.5).clamp(0.0, 1.0)
