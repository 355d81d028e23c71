"""Inference: a trained model plus the settings it was trained with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, model_from_checkpoint
from .data import DataConfig, stack_window
from .model import ModelConfig, STResNet
from .train import resolve_device


@dataclass
class Predictor:
    """A model ready for inference, with the working size it was trained at."""

    model: STResNet
    model_config: ModelConfig
    data_config: DataConfig
    device: torch.device
    weights: Path | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Predictor:
        """Returns a Predictor loaded from a vidpred checkpoint (loaded as data, never as code).

        Raises:
            CheckpointError: the file is not a usable vidpred checkpoint.
        """
        ckpt = load_checkpoint(path)
        dev = resolve_device(device)
        model = model_from_checkpoint(ckpt).to(dev)
        if dev.type == "cuda":
            model.to(memory_format=torch.channels_last)  # cuDNN's fast layout
        return cls(model, ckpt["model_config"], ckpt["data_config"], dev, Path(path))

    @property
    def history(self) -> int:
        """How many past frames a prediction needs (K, or more with period/trend branches)."""
        return self.model_config.history

    @property
    def offsets(self) -> list[int]:
        return self.model_config.input_offsets()

    @torch.inference_mode()
    def predict_next(self, frames: np.ndarray) -> np.ndarray:
        """Returns the predicted next frame, uint8 RGB (H, W, 3), from past frames.

        Args:
            frames: uint8 RGB (T, H, W, 3), oldest first, T >= ``history``; the last
                ``history`` frames are used. H and W must be multiples of 4.
        """
        if len(frames) < self.history:
            raise ValueError(f"need at least {self.history} frames, got {len(frames)}")
        tensor = torch.from_numpy(np.ascontiguousarray(frames[-self.history :]))
        inputs = stack_window(tensor, self.history, self.offsets)[None].to(self.device)
        pred = self.model(inputs)[0]  # (3, H, W) float [0, 1]
        return to_uint8(pred)

    @torch.inference_mode()
    def predict_frames(
        self, frames: torch.Tensor, targets: list[int], batch_size: int = 8
    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """Yields (target indices, inputs (B, 3N, H, W), predictions (B, 3, H, W)) in batches.

        Each prediction of frame t uses only real frames before t (t + offsets, offsets < 0).

        Args:
            frames: uint8 RGB (T, H, W, 3) tensor of one video.
            targets: target indices, each >= ``history``.
        """
        for i in range(0, len(targets), batch_size):
            chunk = targets[i : i + batch_size]
            inputs = torch.stack([stack_window(frames, t, self.offsets) for t in chunk])
            if self.device.type == "cuda":
                inputs = inputs.pin_memory().to(self.device, non_blocking=True)
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            yield chunk, inputs, self.model(inputs).float()


def to_uint8(frame: torch.Tensor) -> np.ndarray:
    """float [0, 1] (3, H, W) -> uint8 RGB (H, W, 3)."""
    return frame.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
