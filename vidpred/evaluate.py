"""One-step next-frame metrics of a model next to the trivial baselines."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .data import frames_to_tensor, load_videos
from .metrics import MetricAccumulator, linear_extrapolation, mean_of
from .predict import Predictor

METHODS = ("model", "copy_last", "linear")


def first_target(num_frames: int, history: int, tail: float) -> int:
    """Returns the first evaluated target index: the tail's start, but never before the model
    (and linear extrapolation, which needs two frames) have their inputs."""
    return max(history, 2, math.floor(num_frames * (1.0 - tail)))


def evaluate(
    paths: list[str | Path],
    predictor: Predictor,
    *,
    tail: float = 1.0,
    size: int | None = None,
    batch_size: int = 8,
    on_video: Callable[[str, int], None] | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Returns metrics of the model, copy-last and linear extrapolation on every video.

    Args:
        paths: video files or folders.
        predictor: the model to evaluate.
        tail: evaluate only targets with index >= floor(T * (1 - tail)); 1.0 = all.
        size: working size (shorter side); None = the checkpoint's.
        batch_size: frames predicted per model call.
        on_video: called with (path, number of targets) as each video starts.
        cache: read videos through the decode cache (``vidpred.cache``).
        cache_dir: the cache folder; None = the default.

    Returns:
        {"weights", "size", "tail", "videos": [{"path", "targets", "model", "copy_last",
        "linear"}], "mean": {"model", "copy_last", "linear"}}; each method's value is
        {"mse", "mae", "psnr", "ssim", "psnr_median"}.
    """
    size = size or predictor.data_config.size
    history = predictor.history
    videos = load_videos(
        list(paths), size, min_frames=max(history, 2) + 1, cache=cache, cache_dir=cache_dir
    )
    results = []
    for video in videos:
        frames = torch.from_numpy(video.frames)  # uint8 RGB (T, H, W, 3)
        targets = list(range(first_target(video.num_frames, history, tail), video.num_frames))
        if on_video:
            on_video(str(video.path), len(targets))
        acc = {m: MetricAccumulator() for m in METHODS}
        for chunk, _inputs, pred in predictor.predict_frames(frames, targets, batch_size):
            index = torch.tensor(chunk)
            # Baselines come from the real frames, independent of the model's input layout.
            truth, last, previous = (
                frames_to_tensor(frames[index - lag]).to(pred.device) for lag in (0, 1, 2)
            )  # each (B, 3, H, W)
            acc["model"].add(pred, truth)
            acc["copy_last"].add(last, truth)
            acc["linear"].add(linear_extrapolation(last, previous), truth)
        if not targets:
            continue
        results.append(
            {"path": str(video.path), "targets": len(targets), **{m: acc[m].summary() for m in METHODS}}
        )
    return {
        "weights": str(predictor.weights) if predictor.weights else None,
        "size": size,
        "tail": tail,
        "videos": results,
        "mean": {m: mean_of([r[m] for r in results]) for m in METHODS},
    }
