"""The learning-rate schedule and the weight average the checkpoints hold."""

from __future__ import annotations

import copy
import math
import typing

import torch

if typing.TYPE_CHECKING:
    from .train_config import TrainConfig


def lr_factor(step: int, progress: float, config: TrainConfig) -> float:
    """Returns the multiplier of the base lr: linear warm-up, then a cosine down to
    min_lr_fraction."""
    warmup = min(1.0, (step + 1) / max(1, config.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return warmup * (config.min_lr_fraction + (1.0 - config.min_lr_fraction) * cosine)


class WeightAverage:
    """An exponential moving average of a model's weights and buffers, in a copy of it.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) over the n updates so far, so the
    average follows the fast early changes instead of remembering the initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        averaged = list(self.model.state_dict().values())
        current = list(model.state_dict().values())
        pairs = list(zip(averaged, current, strict=True))
        floats = [(a, b) for a, b in pairs if a.is_floating_point()]
        torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], 1.0 - decay)
        for a, b in pairs:
            if not a.is_floating_point():  # counters such as BN's num_batches_tracked
                a.copy_(b)
