"""Predictions at the clip's own resolution from a model that runs at its working size.

A warp-head model predicts *motion*: a flow in pixels, a blend weight and a residual
(``vidpred.model.Motion``). Scaling the working-size prediction up only blurs it (at native
size it scored below copy-last); the motion, resized and applied to the full-resolution last
frame, keeps every native pixel that merely moves sharp. Only the residual, which is smooth,
comes from the working size.

Layouts: frames float [0, 1] (B, 3, H, W); flows float (B, 2, H, W), (dx, dy) in pixels.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .model import Motion, compose


def resize_motion(motion: Motion, size: tuple[int, int]) -> Motion:
    """Returns ``motion`` resized to ``size`` (H, W): bilinear for every part, and the flow's
    (dx, dy) scaled by the change of width and of height, so it is in pixels of the new size.
    """
    h, w = motion.residual.shape[-2:]
    if (h, w) == tuple(size):
        return motion

    def resized(part: torch.Tensor | None) -> torch.Tensor | None:
        if part is None:
            return None
        return F.interpolate(part, size=size, mode="bilinear", align_corners=False)

    flow = resized(motion.flow)
    if flow is not None:
        scale = torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype, device=flow.device)
        flow = flow * scale.view(1, 2, 1, 1)
    return Motion(residual=resized(motion.residual), flow=flow, blend=resized(motion.blend))


def apply_motion(last: torch.Tensor, motion: Motion) -> torch.Tensor:
    """Returns the prediction at ``last``'s resolution, float [0, 1] (B, 3, H, W): ``motion``
    (at any resolution) resized to it and applied to ``last`` (B, 3, H, W)."""
    return compose(last, resize_motion(motion, tuple(last.shape[-2:])))


def native_size(height: int, width: int, max_short_side: int | None) -> tuple[int, int]:
    """Returns (H, W) to render a clip of ``height`` x ``width`` at: its own size, or scaled
    down (aspect kept, both even for H.264) so its shorter side is at most ``max_short_side``
    (None: no cap)."""
    short = min(height, width)
    if max_short_side is None or short <= max_short_side:
        return height - height % 2, width - width % 2
    factor = max_short_side / short
    h, w = round(height * factor), round(width * factor)
    return max(2, h - h % 2), max(2, w - w % 2)
