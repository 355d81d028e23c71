"""Validation during training: PSNR of the model, copy-last and the flow baseline on the held-out
targets, on full frames, as render and eval run the model."""

from __future__ import annotations

import torch

from .data import WindowDataset, stack_windows
from .flow import flow_extrapolation
from .metrics import copy_last, psnr
from .model import STResNet
from .precision import autocast


@torch.inference_mode()
def validate(
    model: STResNet,
    data: WindowDataset,
    device: torch.device,
    limit: int,
    batch_size: int = 8,
    bf16: bool = False,
) -> dict[str, float]:
    """Returns mean validation PSNR on full frames of the model (in eval mode, under bf16
    autocast if ``bf16``, as render and eval run it), of copy-last and of the flow baseline."""
    windows = data.val_subset(limit)
    if not windows:
        return {}
    was_training = model.training
    model.eval()
    scores: dict[str, list[float]] = {"val_psnr": [], "val_psnr_copy_last": [], "val_psnr_flow": []}
    by_video: dict[int, list[int]] = {}
    for v, t in windows:
        by_video.setdefault(v, []).append(t)
    for v, targets in by_video.items():
        frames = data.frames[v]
        for i in range(0, len(targets), batch_size):
            chunk = targets[i : i + batch_size]
            inputs = stack_windows(frames, chunk, data.offsets).to(device)
            # (B, 2P, H, W): the model's flows; the first pair is the flow baseline's
            flows = data.base_flows(v, chunk, max(model.config.flow_pairs, 1)).to(device)
            truth = frames[chunk].permute(0, 3, 1, 2).float().div(255.0).to(device)  # (B, 3, H, W)
            with autocast(device, bf16):
                pred = model(inputs, flows if model.config.uses_flow else None).float()
            scores["val_psnr"] += psnr(pred, truth).tolist()
            scores["val_psnr_copy_last"] += psnr(copy_last(inputs), truth).tolist()
            flow_pred = flow_extrapolation(copy_last(inputs), flows[:, :2])
            scores["val_psnr_flow"] += psnr(flow_pred, truth).tolist()
            data.release_pages()  # full frames: a validation pass would keep them all
    model.train(was_training)
    return {
        **{k: sum(v) / len(v) for k, v in scores.items()},
        "val_targets": len(scores["val_psnr"]),
    }
