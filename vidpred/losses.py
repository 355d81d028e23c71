"""The training losses (named in vidpred.metrics.LOSSES): what the trainer minimises."""

from __future__ import annotations

import torch
from torch.nn import functional as F

# Huber (smooth L1) switches from quadratic to linear at this error: above compression noise
# (about 1-2 levels of 255), below the errors that motion makes.
HUBER_BETA = 0.02


def compute_loss(name: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns the training loss ``name`` (one of LOSSES) of a prediction, a 0-dim tensor."""
    if name == "l1":
        return F.l1_loss(prediction, target)
    if name == "mse":
        return F.mse_loss(prediction, target)
    if name == "l1_grad":
        # L1 plus L1 of the horizontal and vertical differences (SDC-Net's loss, without
        # its flow smoothness): a blurred edge costs twice, once in each term.
        return F.l1_loss(prediction, target) + F.l1_loss(
            _differences(prediction), _differences(target)
        )
    return F.smooth_l1_loss(prediction, target, beta=HUBER_BETA)


def _differences(images: torch.Tensor) -> torch.Tensor:
    """Returns the neighbour differences of float (B, C, H, W) images, flattened: (B, N)."""
    dx = images[..., :, 1:] - images[..., :, :-1]  # (B, C, H, W-1)
    dy = images[..., 1:, :] - images[..., :-1, :]  # (B, C, H-1, W)
    return torch.cat([dx.flatten(1), dy.flatten(1)], 1)
