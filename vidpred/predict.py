"""Inference: a trained model plus the settings it was trained with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, model_from_checkpoint
from .data import DataConfig, stack_windows, windows_to_inputs
from .errors import SettingError
from .flow import model_flows, window_flows
from .model import ModelConfig, Motion, STResNet, compose
from .precision import autocast, resolve_device
from .tuning import Arithmetic, arithmetic_for
from .video import max_decoded_bytes


@dataclass
class Predictor:
    """A model ready for inference, with the working size it was trained at.

    ``arithmetic`` (``vidpred.tuning.arithmetic_for``, which a command resolves once) says
    whether the model runs under bf16 autocast and in which layout; without one it is resolved
    from ``precision`` ("auto", "fp32" or "bf16"). Outputs are float32 either way.
    """

    model: STResNet
    model_config: ModelConfig
    data_config: DataConfig
    device: torch.device
    weights: Path | None = None
    precision: str = "auto"
    # The video files and folders the weights were trained on (the checkpoint's "sources"),
    # so that an evaluation can say which of the frames it scores were training frames.
    sources: tuple[str, ...] = ()
    arithmetic: Arithmetic | None = None

    def __post_init__(self):
        if self.arithmetic is None:
            self.arithmetic = arithmetic_for(self.device, self.precision)
        self.bf16 = self.arithmetic.bf16
        self.channels_last = self.arithmetic.channels_last_inference
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "auto",
        precision: str = "auto",
        arithmetic: Arithmetic | None = None,
    ) -> Predictor:
        """Returns a Predictor loaded from a vidpred checkpoint (loaded as data, never as code).

        Raises:
            CheckpointError: the file is not a usable vidpred checkpoint.
        """
        ckpt = load_checkpoint(path)
        dev = resolve_device(device)
        model = model_from_checkpoint(ckpt).to(dev)
        sources = tuple(ckpt.sources)
        config = (ckpt.model_config, ckpt.data_config)
        return cls(model, *config, dev, Path(path), precision, sources, arithmetic)

    def forward(self, inputs: torch.Tensor, flows: torch.Tensor | None = None) -> torch.Tensor:
        """Returns predictions float32 [0, 1] (B, 3, H, W) of stacked inputs (B, 3N, H, W),
        which may still be on the CPU; ``flows`` float32 (B, 2P, H, W) are the model's flows
        (``vidpred.flow.model_flows``, P = ``flow_pairs``), needed by models that start from
        a base flow."""
        inputs, flows = self.model_inputs(inputs, flows)
        with autocast(self.device, self.bf16):
            return self.model(inputs, flows).float()

    def motion(self, inputs: torch.Tensor, flows: torch.Tensor | None = None) -> Motion:
        """Returns the model's prediction as parts (``vidpred.model.Motion``), float32 on the
        model's device, for ``forward``'s arguments: what ``vidpred.native`` resizes to apply
        at another resolution."""
        inputs, flows = self.model_inputs(inputs, flows)
        with autocast(self.device, self.bf16):
            return _float_parts(self.model.motion(inputs, flows))

    def forward_with_motion(
        self, inputs: torch.Tensor, flows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Motion]:
        """Returns ``forward``'s predictions (the same values) together with ``motion``'s
        parts, from one pass of the model: what a render that shows the model's motion
        needs, for half the work of calling both."""
        inputs, flows = self.model_inputs(inputs, flows)
        with autocast(self.device, self.bf16):
            motion = self.model.motion(inputs, flows)
            predicted = compose(inputs[:, -3:], motion).float()  # as STResNet.forward
        return predicted, _float_parts(motion)

    def model_inputs(
        self, inputs: torch.Tensor, flows: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the inputs, and the flows where the model takes them, on its device and
        in its layout: what the model is called with (also by ``vidpred.adapt``)."""
        inputs = self._to_device(inputs)
        if flows is not None:
            flows = self._to_device(flows) if self.uses_flow else None
        return inputs, flows

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda" and batch.device.type == "cpu":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        else:
            batch = batch.to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def check_memory(self, batch: int, horizon: int, height: int, width: int) -> None:
        """Raises VidpredError if model calls on ``batch`` frames of ``height`` x ``width``,
        rolled out ``horizon`` steps (0: one step, no rollout), would need more memory than
        one decoded video may take (``vidpred.video.max_decoded_bytes``).

        The estimate is meant to refuse absurd settings, such as every frame of a long clip
        in one batch, before they allocate. Calibrated on ``vidpred eval`` of 32x16000 frames
        with the default weights (peak RSS growth over the loaded model, batch 1 to 8): within
        15% of what was measured; at 32x64000, batch 8, it says 10.5 GB where the process
        peaked at 7.9 GB RSS (it said 5.3 GB before the last two terms were added).
        """
        config = self.model_config
        channels = 3 * len(self.offsets)
        trunk = config.width * (len(config.branch_offsets())) // (4 if config.stem else 1)
        # float32 inputs and output, and a few live trunk activations, per frame of a call;
        # then what is scored beside them: the real frames as float, the baselines, DIS's
        # flows and warp grids and SSIM's filtered maps, measured at 240 bytes a pixel
        per_call = 4 * height * width * (2 * channels + 6 + 3 * trunk) + 240 * height * width
        # once per call whatever its batch: DIS's buffers for one pair and what the allocator
        # keeps of them, measured at 600 bytes a pixel
        per_batch = 600 * height * width
        # per rollout step: a uint8 frame fed back, float32 predictions (listed, then stacked)
        # and the flow baseline's rollout beside them in eval
        per_step = height * width * (3 + 4 * 3 * 4)
        needed = per_batch + batch * (
            per_call + (self.history + horizon) * 3 * height * width + horizon * per_step
        )
        limit = max_decoded_bytes()
        if needed > limit:
            raise SettingError(
                lambda n: (
                    f"{n('batch_size')} {batch}"
                    + (f" with {n('horizon')} {horizon}" if horizon > 1 else "")
                    + f" at {width}x{height} would take about {needed / 1e9:.1f} GB (the cap "
                    f"is {limit / 1e9:.1f} GB); use a smaller {n('batch_size')}"
                    + (f" or {n('horizon')}" if horizon > 1 else "")
                )
            )

    @property
    def uses_flow(self) -> bool:
        """Whether the model starts from the classical base flow (and needs it as input)."""
        return self.model_config.uses_flow

    @property
    def flow_pairs(self) -> int:
        """How many frame pairs' flows the model takes (``ModelConfig.flow_pairs``)."""
        return self.model_config.flow_pairs

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
        target = [self.history]
        flows = model_flows(tensor, target, self.flow_pairs) if self.uses_flow else None
        pred = self.forward(stack_windows(tensor, target, self.offsets), flows)[0]  # (3, H, W)
        return to_uint8(pred)

    @torch.inference_mode()
    def predict_frames(
        self, frames: torch.Tensor, targets: list[int], batch_size: int = 8
    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """Yields (target indices, inputs (B, 3N, H, W) on the CPU, predictions (B, 3, H, W)),
        one batch at a time.

        Each prediction of frame t uses only real frames before t (t + offsets, offsets < 0).

        Args:
            frames: uint8 RGB (T, H, W, 3) tensor of one video.
            targets: target indices, each >= ``history``.

        Raises:
            VidpredError: a batch would not fit in memory (``check_memory``).
        """
        self.check_memory(min(batch_size, len(targets)), 0, *frames.shape[1:3])
        for i in range(0, len(targets), batch_size):
            chunk = targets[i : i + batch_size]
            inputs = stack_windows(frames, chunk, self.offsets)
            flows = model_flows(frames, chunk, self.flow_pairs) if self.uses_flow else None
            yield chunk, inputs, self.forward(inputs, flows)

    @torch.inference_mode()
    def rollout(
        self, frames: torch.Tensor, origins: list[int], horizon: int, batch_size: int = 8
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Yields (origins, predictions float [0, 1] (B, horizon, 3, H, W)) in batches.

        Prediction k - 1 of origin o is frame o + k predicted from the real frames up to o
        only: each step's input takes real frames where they are <= o and the model's own
        earlier predictions after that. A prediction is rounded to uint8, as a frame of a
        video would be, before it is fed back; the yielded predictions are the model's raw
        outputs, so step 1 is exactly the one-step prediction of ``predict_frames``.

        Args:
            frames: uint8 RGB (T, H, W, 3) tensor of one video; frames after an origin are
                never read for that origin's rollout.
            origins: indices of the last real frame of each rollout, each >= ``history`` - 1.
            horizon: N, how many steps to predict from each origin.

        Raises:
            VidpredError: a batch of rollouts would not fit in memory (``check_memory``).
        """
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        self.check_memory(min(batch_size, len(origins)), horizon, *frames.shape[1:3])
        history = self.history
        if origins and not history - 1 <= min(origins) <= max(origins) < len(frames):
            raise ValueError(
                f"origins must be in [{history - 1}, {len(frames) - 1}] (the model needs "
                f"{history} real frames), got {min(origins)}..{max(origins)}"
            )
        for i in range(0, len(origins), batch_size):
            chunk = origins[i : i + batch_size]
            # Per origin o, the real frames o-history+1 .. o, then one slot per step; frame
            # o+k sits at position history-1+k. Slicing up to o+1 is what guarantees that
            # no real frame after the origin is ever seen.
            buffer = torch.stack([frames[o - history + 1 : o + 1] for o in chunk]).to(self.device)
            slots = buffer.new_zeros((len(chunk), horizon, *buffer.shape[2:]))
            buffer = torch.cat([buffer, slots], 1)  # (B, history + horizon, H, W, 3) uint8
            preds = []
            for k in range(1, horizon + 1):
                position = history - 1 + k
                inputs = windows_to_inputs(buffer[:, [position + o for o in self.offsets]])
                flows = None
                if self.uses_flow:  # from frames position-1, -2 (, -3), real or predicted
                    flows = window_flows(buffer, position, self.flow_pairs)
                pred = self.forward(inputs, flows)  # (B, 3, H, W)
                if k < horizon:  # fed back into the next step's input
                    buffer[:, position] = quantize(pred)
                preds.append(pred)
            yield chunk, torch.stack(preds, 1)  # (B, horizon, 3, H, W)

    @torch.inference_mode()
    def extend(self, frames: torch.Tensor, steps: int) -> Iterator[torch.Tensor]:
        """Yields, one at a time, the predictions float [0, 1] (3, H, W) of the ``steps``
        frames after the last of ``frames``: the same values as
        ``rollout(frames, [T - 1], steps)``, without holding them.

        Only the last ``history`` frames (real, then the model's own, rounded to uint8) are
        kept, so memory does not grow with ``steps``: the caller streams each prediction on
        (to a video writer) and drops it.

        Args:
            frames: uint8 RGB (T, H, W, 3) tensor of one video, T >= ``history``.
            steps: how many frames to predict past the end.
        """
        for pred, _ in self.extend_with_motion(frames, steps):
            yield pred

    @torch.inference_mode()
    def extend_with_motion(
        self, frames: torch.Tensor, steps: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """``extend``, yielding with each prediction the flow float (2, H, W) the model
        warped the previous frame along (None for a residual-head model)."""
        history = self.history
        if len(frames) < history:
            raise ValueError(f"need at least {history} frames, got {len(frames)}")
        # (1, history, H, W, 3) uint8; the frame being predicted sits one past its end.
        recent = frames[len(frames) - history :].to(self.device)[None]
        picks = [history + o for o in self.offsets]
        for k in range(steps):
            inputs = windows_to_inputs(recent[:, picks])
            flows = None
            if self.uses_flow:  # from the newest frames, real or predicted
                flows = window_flows(recent, history, self.flow_pairs)
            motion = self.motion(inputs, flows)
            # (1, 3, H, W): as forward() computes it, the parts composed
            pred = compose(windows_to_inputs(recent[:, -1:]).to(motion.residual.device), motion)
            if k + 1 < steps:  # fed back into the next step's input
                recent = torch.cat([recent[:, 1:], quantize(pred)[:, None]], 1)
            yield pred[0], None if motion.flow is None else motion.flow[0]


def quantize(frames: torch.Tensor) -> torch.Tensor:
    """float [0, 1] (..., 3, H, W) -> uint8 RGB (..., H, W, 3) on the same device."""
    return frames.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).movedim(-3, -1)


def to_uint8(frame: torch.Tensor) -> np.ndarray:
    """float [0, 1] (3, H, W) -> uint8 RGB (H, W, 3)."""
    return quantize(frame).cpu().numpy()


def _float_parts(motion: Motion) -> Motion:
    """Returns ``motion`` with every part float32 (autocast may leave them bf16)."""
    return Motion(
        **{name: None if part is None else part.float() for name, part in vars(motion).items()}
    )
