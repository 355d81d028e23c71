"""The classical optical-flow baseline, and the base flow of flow-started models.

Definition (also in the README, "Metrics"): on working-size uint8 RGB frames, convert t-1
and t-2 to grayscale (``cv2.COLOR_RGB2GRAY``), compute OpenCV's DIS optical flow with
``DISOPTICAL_FLOW_PRESET_MEDIUM`` from t-1 to t-2 (``calc(gray[t-1], gray[t-2])``: for each
pixel p of t-1, where it was in t-2), and predict frame t as frame t-1 sampled at
``p + flow(p)`` (bilinear, edges replicated). That is constant velocity: the pixel at p in t
is assumed to come from where the same motion puts it in t-1. No training.

On frames with a side under ``MIN_FLOW_SIDE`` (20) pixels DIS is not called (OpenCV rejects
some such sizes and crashes the process on others): the flow is zero and the baseline equals
copy-last.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from .warping import warp

log = logging.getLogger(__name__)

# DIS is only called on frames whose shorter side is at least this; smaller frames get zero
# flow. OpenCV 5.1.0, DISOPTICAL_FLOW_PRESET_MEDIUM, probed one (H, W) at a time in a child
# process (a crash is a segfault, SIGSEGV, that no try can catch), on random and on flat
# frames alike (the outcome does not depend on the content):
#   H < 8 or W < 8, or both sides < 12: cv2.error ("width or height >= 12" and others)
#   H 8-11,  W 40-159:  segfault      H 8-11,  W >= 320: cv2.error
#   H 12-15, W 40-319:  segfault      H 12-15, W >= 320: cv2.error
#   H >= 16 (W 8-5000), and W 8-24 with H up to 5000: computed, no crash.
# The crash comes from the pyramid: when the coarsest level a frame allows (from its shorter
# side over the 8 px patch) is finer than the preset's finest scale (1), OpenCV re-picks patch
# size and scales from the *width* alone, and some widths pick levels too coarse for a short
# frame. With setFinestScale(0) no size crashed; with the ULTRAFAST preset (finest scale 2)
# H 16 crashed too (W 80-319). So the safe side depends on these settings: 16 for this one,
# taken with a margin, since another OpenCV build may draw the line elsewhere.
MIN_FLOW_SIDE = 20


# Recent flows by the content of their two frames: render and eval ask for the same pair
# twice (the model's base flow and the flow baseline), and DIS is the costly part of both.
MEMO_BYTES = 32 * 2**20
_memo: OrderedDict[bytes, np.ndarray] = OrderedDict()
_memo_lock = threading.Lock()
_memo_bytes = 0


def dis_flow(last: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Returns float32 (H, W, 2) flow (dx, dy) in pixels from ``last`` to ``previous``
    (read-only: it may be shared with other callers).

    Args:
        last: uint8 RGB (H, W, 3), frame t-1.
        previous: uint8 RGB (H, W, 3), frame t-2.
    """
    h, w = last.shape[:2]
    if min(h, w) < MIN_FLOW_SIDE:
        return np.zeros((h, w, 2), np.float32)
    last, previous = np.ascontiguousarray(last), np.ascontiguousarray(previous)
    digest = hashlib.blake2b(digest_size=16)
    for frame in (last, previous):
        digest.update(str(frame.shape).encode())
        digest.update(frame.data)
    key = digest.digest()
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    flow = _compute_dis(last, previous)
    flow.flags.writeable = False
    global _memo_bytes
    with _memo_lock:
        if key not in _memo:
            _memo[key] = flow
            _memo_bytes += flow.nbytes
        while _memo_bytes > MEMO_BYTES and len(_memo) > 1:
            _memo_bytes -= _memo.popitem(last=False)[1].nbytes
    return flow


def _compute_dis(last: np.ndarray, previous: np.ndarray) -> np.ndarray:
    gray_last = cv2.cvtColor(last, cv2.COLOR_RGB2GRAY)
    gray_previous = cv2.cvtColor(previous, cv2.COLOR_RGB2GRAY)
    # A new instance per pair: a reused one carries state from its previous calls (the same
    # pair gave flows up to 2.3 px apart, OpenCV 5.0), and the baseline must be a function of
    # the two frames alone. Creating it costs about 1 ms at 96x172.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    try:
        return dis.calc(gray_last, gray_previous, None)
    except cv2.error as e:
        # A size or build that DIS refuses all the same: no flow, as for a small frame.
        log.debug("DIS refused %dx%d frames (%s); using zero flow", *last.shape[1::-1], e)
        return np.zeros((*last.shape[:2], 2), np.float32)


def pair_flows(
    last: torch.Tensor | np.ndarray, previous: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """Returns float32 (B, 2, H, W) flows from each ``last`` frame to its ``previous`` frame.

    Args:
        last, previous: uint8 RGB (B, H, W, 3), on any device (the flow is computed on the CPU).
    """
    last, previous = (torch.as_tensor(f).cpu().numpy() for f in (last, previous))
    flows = np.stack([dis_flow(a, b) for a, b in zip(last, previous, strict=True)])  # (B, H, W, 2)
    return torch.from_numpy(flows).permute(0, 3, 1, 2).contiguous()


def base_flows(frames: torch.Tensor | np.ndarray, targets: list[int]) -> torch.Tensor:
    """Returns float32 (B, 2, H, W): for each target t, the flow from frame t-1 to t-2
    (zero where t < 2, which has no two past frames).

    Args:
        frames: uint8 RGB (T, H, W, 3).
    """
    frames = torch.as_tensor(frames)
    h, w = frames.shape[1:3]
    out = torch.zeros((len(targets), 2, h, w))
    moving = [i for i, t in enumerate(targets) if t >= 2]
    if moving:
        index = torch.tensor([targets[i] for i in moving])
        out[moving] = pair_flows(frames[index - 1], frames[index - 2])
    return out


def model_flows(frames: torch.Tensor | np.ndarray, targets: list[int], pairs: int) -> torch.Tensor:
    """Returns float32 (B, 2 * pairs, H, W), what a flow-started model takes for each target
    t: channels 2j, 2j + 1 are the flow from frame t-1-j to t-2-j (``base_flows`` of target
    t-j; zero where that has no two past frames). ``pairs`` is the model's
    ``ModelConfig.flow_pairs``: 1 is the base flow alone, 2 adds the pair before it (the
    damped start, ``damping``).

    Args:
        frames: uint8 RGB (T, H, W, 3).
    """
    return torch.cat([base_flows(frames, [t - j for t in targets]) for j in range(pairs)], 1)


def window_flows(frames: torch.Tensor, position: int, pairs: int) -> torch.Tensor:
    """``model_flows`` for one target ``position`` of a batch of frame windows: float32
    (B, 2 * pairs, H, W) from uint8 RGB (B, T, H, W, 3) ``frames`` (real or predicted, on
    any device), each flow from frame position-1-j to position-2-j."""
    newest_first = range(position - 1, position - 1 - pairs, -1)
    return torch.cat([pair_flows(frames[:, p], frames[:, p - 1]) for p in newest_first], 1)


# The damped start averages each flow over this many pixels square before comparing
# directions: single pixels' DIS flow is too noisy to say which way a region moves.
DAMPING_WINDOW = 9


def damping(flow: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    """Returns the damped start's scale of ``flow`` per pixel, float32 (B, 1, H, W) in
    [0.5, 1]: 0.5 + 0.5 * the cosine between the locally averaged (``DAMPING_WINDOW``) flow
    of the last pair, t-1 -> t-2, and of the pair before, t-2 -> t-3 (``before``), clamped to
    [0, 1]. Motion that keeps its direction keeps its speed; motion that turned or stopped
    (hand-held jitter, where constant velocity overshoots) is halved, and zero flow on either
    side counts as turned.

    Args:
        flow, before: float (B, 2, H, W), (dx, dy) in pixels.
    """
    window, pad = DAMPING_WINDOW, DAMPING_WINDOW // 2
    # Zero padding shrinks the averages near the border, which the cosine does not see.
    a, b = (F.avg_pool2d(f.float(), window, 1, pad) for f in (flow, before))
    norms = a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True)
    # + 1e-3 px^2: near-zero flows give a cosine near 0 instead of a division by zero.
    cosine = (a * b).sum(1, keepdim=True) / (norms + 1e-3)
    return 0.5 + 0.5 * cosine.clamp(0.0, 1.0)


def iter_video_flows(frames: np.ndarray) -> Iterator[np.ndarray]:
    """Yields float32 (H, W, 2) for t = 0 .. T-1: the base flow for target t (``base_flows``),
    one at a time, so a long video's flows can go to disk without all being in memory.

    Args:
        frames: uint8 RGB (T, H, W, 3).
    """
    t, h, w = frames.shape[:3]
    zero = np.zeros((h, w, 2), np.float32)
    for i in range(t):
        yield zero if i < 2 else dis_flow(frames[i - 1], frames[i - 2])


def video_flows(frames: np.ndarray) -> np.ndarray:
    """Returns float32 (T, H, W, 2): entry t is the base flow for target t (``base_flows``),
    what the trainer reads instead of computing flow every epoch.

    Args:
        frames: uint8 RGB (T, H, W, 3).
    """
    out = np.empty((*frames.shape[:3], 2), np.float32)
    for i, flow in enumerate(iter_video_flows(frames)):
        out[i] = flow
    return out


def flow_extrapolation(last: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Returns the flow baseline's prediction float [0, 1] (B, 3, H, W): ``last`` (float
    [0, 1] (B, 3, H, W), frame t-1) sampled at p + flow(p), flow float32 (B, 2, H, W)."""
    return warp(last.float(), flow.to(last.device))


def predict_flow(frames: torch.Tensor | np.ndarray, targets: list[int]) -> torch.Tensor:
    """Returns the flow baseline's predictions float [0, 1] (B, 3, H, W) of ``targets``
    from uint8 RGB (T, H, W, 3) frames."""
    frames = torch.as_tensor(frames)
    index = torch.tensor(targets)
    last = frames[index - 1].permute(0, 3, 1, 2).float().div_(255.0)
    return flow_extrapolation(last, base_flows(frames, targets))


def flow_rollout(
    frames: torch.Tensor | np.ndarray, origins: list[int], horizon: int
) -> torch.Tensor:
    """Returns the flow baseline carried ``horizon`` steps: float [0, 1] (B, horizon, 3, H, W).

    Like the model's rollout, it is applied to its own predictions: step k of origin o
    predicts frame o+k from frames o+k-1 and o+k-2, where those after o are its own earlier
    predictions rounded to uint8. Only real frames up to o are read.

    Args:
        frames: uint8 RGB (T, H, W, 3).
        origins: indices of the last real frame of each rollout, each >= 1.
    """
    frames = torch.as_tensor(frames)
    index = torch.tensor(origins)
    previous, last = frames[index - 1], frames[index]  # uint8 RGB (B, H, W, 3)
    preds = []
    for _ in range(horizon):
        pred = flow_extrapolation(
            last.permute(0, 3, 1, 2).float().div(255.0), pair_flows(last, previous)
        )
        preds.append(pred)
        previous, last = (
            last,
            pred.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1),
        )
    return torch.stack(preds, 1)


def flow_baseline(frames: torch.Tensor, origins: list[int], horizon: int) -> torch.Tensor:
    """Returns the flow baseline carried ``horizon`` steps from each origin o, the way the
    model's rollout is: predictions float [0, 1] (B, horizon, 3, H, W) of frames o+1 .. o+N
    made from the real frames up to o only (this module).

    An origin 0 has no earlier frame to measure motion against (possible only for a model
    with history 1): like ``vidpred.flow.base_flows`` there, the flow is zero, so the
    baseline is frame 0 at every step.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
        origins: indices of the last real frame of each rollout, each >= 0.
    """
    if horizon == 1:  # the one-step baseline (it has the zero flow at target 1 built in)
        return predict_flow(frames, [o + 1 for o in origins])[:, None]
    if min(origins) >= 1:
        return flow_rollout(frames, origins, horizon)
    first = frames[origins].permute(0, 3, 1, 2).float().div(255.0)  # (B, 3, H, W)
    out = first[:, None].repeat(1, horizon, 1, 1, 1)
    moving = [i for i, o in enumerate(origins) if o >= 1]
    if moving:
        out[moving] = flow_rollout(frames, [origins[i] for i in moving], horizon)
    return out


def flow_extension(frames: torch.Tensor, steps: int) -> Iterator[np.ndarray]:
    """Yields, one at a time, the flow baseline's uint8 RGB (H, W, 3) frames past the end of
    ``frames`` (uint8 RGB (T, H, W, 3)): ``flow_baseline(frames, [T - 1], steps)[0]``,
    rounded, without holding them."""
    if len(frames) < 2:  # no motion before frame 0: the baseline repeats it (flow_baseline)
        for _ in range(steps):
            yield frames[-1].numpy()
        return
    previous, last = frames[-2:-1], frames[-1:]  # uint8 RGB (1, H, W, 3)
    for _ in range(steps):
        pred = flow_extrapolation(
            last.permute(0, 3, 1, 2).float().div(255.0), pair_flows(last, previous)
        )
        # fed back rounded to uint8 RGB (1, H, W, 3), as flow_rollout does
        previous, last = (
            last,
            pred.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1),
        )
        yield last[0].numpy()
