"""Per-frame quality metrics on float [0, 1] RGB frames, and their summaries.

Definitions (also in the README):
- MSE, MAE: mean squared / absolute error per pixel and channel, on [0, 1] RGB.
- PSNR: 10 * log10(1 / MSE) per frame, then averaged over frames. MSE is floored at 1e-10,
  so an exact prediction scores 100 dB instead of infinity.
- SSIM: Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01)^2,
  C2 = (0.03)^2 for data range 1, computed per channel over the valid region, averaged.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from .stages import stage

MSE_FLOOR = 1e-10  # caps PSNR at 100 dB
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2

# The training losses (vidpred.losses.compute_loss), named here, beside the metrics they
# match, so that checkpoint validation can check a stored one without importing the trainer.
LOSSES = ("l1", "mse", "huber", "l1_grad")


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns per-frame MSE (B,) of float [0, 1] (B, 3, H, W) frames."""
    return (pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3))


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns per-frame MAE (B,) of float [0, 1] (B, 3, H, W) frames."""
    return (pred.float() - target.float()).abs().mean(dim=(1, 2, 3))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns per-frame PSNR in dB (B,) of float [0, 1] (B, 3, H, W) frames."""
    return psnr_of_mse(mse(pred, target))


def psnr_of_mse(frame_mse: torch.Tensor) -> torch.Tensor:
    """Returns PSNR in dB of per-frame MSE on [0, 1] (floored at MSE_FLOOR: 100 dB at most)."""
    return 10.0 * torch.log10(1.0 / frame_mse.clamp_min(MSE_FLOOR))


@functools.lru_cache(maxsize=16)
def _gaussian_blur_matrix(n: int, size: int, sigma: float) -> torch.Tensor:
    """Returns the (n - size + 1, n) matrix whose product with a length-n signal is its
    'valid' convolution with a normalised Gaussian of ``size`` taps (cached: every batch of
    a video asks for the same ones; callers must not modify it)."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    out = n - size + 1
    offsets = torch.arange(n)[None, :] - torch.arange(out)[:, None]  # (out, n): column - row
    inside = (offsets >= 0) & (offsets < size)
    return torch.where(inside, g[offsets.clamp(0, size - 1)], torch.zeros(()))


def _blur_cpu(stats: torch.Tensor, size: int) -> torch.Tensor:
    """Returns the 'valid' Gaussian blur (``size`` taps, SSIM_SIGMA) of float32 CPU images
    (..., H, W): (..., H - size + 1, W - size + 1), one OpenCV separable filter per image."""
    taps = _gaussian_taps(size, SSIM_SIGMA)
    images = stats.contiguous().numpy().reshape(-1, *stats.shape[-2:])
    margin, (h, w) = size // 2, stats.shape[-2:]
    out = np.empty((len(images), h - size + 1, w - size + 1), np.float32)
    for i, image in enumerate(images):
        # Zero borders, then only the interior, where the window fits whole, is kept.
        blurred = cv2.sepFilter2D(image, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_CONSTANT)
        out[i] = blurred[margin : h - size + 1 + margin, margin : w - size + 1 + margin]
    return torch.from_numpy(out).view(*stats.shape[:-2], *out.shape[-2:])


@functools.lru_cache(maxsize=16)
def _gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """The normalised Gaussian of ``_gaussian_blur_matrix``, float32 (size,)."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return (g / g.sum()).numpy()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns per-frame SSIM (B,) of float [0, 1] (B, 3, H, W) frames."""
    pred, target = pred.float(), target.float()
    h, w = pred.shape[-2:]
    size = min(SSIM_WINDOW, h, w)  # tiny frames: shrink the window
    # The Gaussian window is separable. On a CPU, OpenCV's separable filter blurs each
    # statistic 6x faster than banded matrices at 96x128 and 15-22x faster at 640x480 and
    # 1280x720 (the same values within 3e-7); on a GPU, rows @ x @ cols^T with banded
    # matrices blurs all five statistics in one call.
    stats = torch.stack([pred, target, pred * pred, target * target, pred * target])
    if stats.device.type == "cpu":
        mu_p, mu_t, pp, tt, pt = _blur_cpu(stats, size)  # each (B, 3, h', w')
    else:
        rows = _gaussian_blur_matrix(h, size, SSIM_SIGMA).to(pred.device)
        cols = _gaussian_blur_matrix(w, size, SSIM_SIGMA).to(pred.device)
        mu_p, mu_t, pp, tt, pt = rows @ stats @ cols.T
    var_p = pp - mu_p**2
    var_t = tt - mu_t**2
    cov = pt - mu_p * mu_t
    ssim_map = ((2 * mu_p * mu_t + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_p**2 + mu_t**2 + SSIM_C1) * (var_p + var_t + SSIM_C2)
    )
    return ssim_map.mean(dim=(1, 2, 3))


def copy_last(inputs: torch.Tensor) -> torch.Tensor:
    """Returns the copy-last-frame baseline for stacked inputs (B, 3N, H, W): their last frame."""
    return inputs[:, -3:]


def linear_extrapolation(
    last: torch.Tensor, previous: torch.Tensor, steps: int = 1
) -> torch.Tensor:
    """Returns clip(x[o] + k * (x[o] - x[o-1]), 0, 1): frame o+k extrapolated linearly from
    frames x[o] (last) and x[o-1] (previous); k = ``steps``, 1 gives clip(2*x[t-1] - x[t-2]).

    Written as (k+1)*last - k*previous so that k = 1 is bit-identical to the one-step formula.
    """
    return ((steps + 1) * last - steps * previous).clamp(0.0, 1.0)


@dataclass
class MetricAccumulator:
    """Collects per-frame metrics and summarises them (mean over frames, PSNR median too).

    ``ssim_every`` = k scores SSIM, the costly metric, on every k-th frame added only (the
    first, the k+1-th, ...); MSE, MAE and PSNR are always on every frame.
    """

    values: dict[str, list[float]] = field(
        default_factory=lambda: {"mse": [], "mae": [], "psnr": [], "ssim": []}
    )
    ssim_every: int = 1

    def add(self, pred: torch.Tensor, target: torch.Tensor) -> list[float]:
        """Adds the frames of float [0, 1] (B, 3, H, W) predictions and targets; returns their
        per-frame PSNR (callers that show it need not compute it again)."""
        diff = pred.float() - target.float()  # one difference for three metrics
        frame_mse = diff.square().mean(dim=(1, 2, 3))
        frame_psnr = psnr_of_mse(frame_mse).tolist()
        # frames of this batch whose index among all frames added is a multiple of ssim_every
        picks = [i for i in range(len(frame_psnr)) if (self.count + i) % self.ssim_every == 0]
        self.values["mse"] += frame_mse.tolist()
        self.values["mae"] += diff.abs_().mean(dim=(1, 2, 3)).tolist()
        self.values["psnr"] += frame_psnr
        with stage("SSIM"):
            if len(picks) == len(frame_psnr):
                self.values["ssim"] += ssim(pred, target).tolist()
            elif picks:
                self.values["ssim"] += ssim(pred[picks], target[picks]).tolist()
        return frame_psnr

    @property
    def count(self) -> int:
        return len(self.values["mse"])

    def summary(self) -> dict[str, float]:
        """Returns {"mse", "mae", "psnr", "ssim"} means over frames, plus "psnr_median"."""
        if not self.count:
            return {k: math.nan for k in ("mse", "mae", "psnr", "ssim", "psnr_median")}
        out = {k: float(sum(v) / len(v)) for k, v in self.values.items()}
        out["psnr_median"] = float(torch.tensor(self.values["psnr"]).median())
        return out


def mean_of(summaries: list[dict[str, float]]) -> dict[str, float]:
    """Returns the key-wise mean of several summaries (e.g. per-video values -> overall)."""
    if not summaries:
        return {}
    return {k: float(sum(s[k] for s in summaries) / len(summaries)) for k in summaries[0]}
