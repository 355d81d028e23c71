"""Prints, per clip, how the flow baseline changes when its motion is damped where the
previous pair of frames moved differently (jitter) instead of steadily.

    python benchmarks/damped_flow.py VIDEO [VIDEO ...] [--tail 0.2] [--size 96]

The flow baseline carries on the motion from frame t-2 to t-1 (DIS, t-1 -> t-2) at full
speed. Where motion jitters, the next step is as likely to go back as on, and half the
motion is the better guess. Columns, each minus the flow baseline's mean PSNR (dB) over the
clip's last ``--tail``:

- ``half``: every flow halved;
- ``damped``: each pixel's flow times 0.5 + 0.5 * clamp(cos, 0, 1), where cos compares the
  9x9-averaged flow of this pair with that of the pair before (t-2 -> t-3): full motion where
  the two agree, half where they disagree.

Nothing here is used by vidpred; it measures whether the previous pair's motion tells jitter
from steady motion (docs/results.md, "Jitter").
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from torch.nn import functional as F

from vidpred.data import frames_to_tensor, load_videos
from vidpred.evaluation import first_target
from vidpred.flow import base_flows, flow_extrapolation
from vidpred.metrics import psnr

HISTORY = 4  # the default model's input frames: its first target


def damped(flow: torch.Tensor, before: torch.Tensor, window: int = 9) -> torch.Tensor:
    """Returns ``flow`` float32 (B, 2, H, W) scaled per pixel by 0.5 + 0.5 * clamp(cos, 0, 1)
    of its ``window``-averaged self and the previous pair's flow ``before`` (same layout)."""
    a = F.avg_pool2d(flow, window, 1, window // 2)
    b = F.avg_pool2d(before, window, 1, window // 2)
    norms = a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True)
    cos = (a * b).sum(1, keepdim=True) / (norms + 1e-3)  # (B, 1, H, W)
    return flow * (0.5 + 0.5 * cos.clamp(0.0, 1.0))


def clip_scores(path: Path, size: int, tail: float) -> dict[str, float]:
    """Returns the mean PSNR of the flow baseline, and of "half" and "damped" minus it."""
    video = load_videos([path], size, min_frames=HISTORY + 1)[0]
    frames = torch.from_numpy(video.frames)  # uint8 RGB (T, H, W, 3)
    targets = list(range(first_target(len(frames), HISTORY, tail), len(frames)))
    scores: dict[str, list[float]] = {"flow": [], "half": [], "damped": []}
    for i in range(0, len(targets), 16):
        chunk = targets[i : i + 16]
        index = torch.tensor(chunk)
        flow = base_flows(frames, chunk)  # t-1 -> t-2, (B, 2, H, W)
        before = base_flows(frames, [t - 1 for t in chunk])  # t-2 -> t-3
        last, truth = frames_to_tensor(frames[index - 1]), frames_to_tensor(frames[index])
        motions = {"flow": flow, "half": 0.5 * flow, "damped": damped(flow, before)}
        for name, motion in motions.items():
            scores[name] += psnr(flow_extrapolation(last, motion), truth).tolist()
    base = statistics.fmean(scores.pop("flow"))
    return {"flow": base, **{k: statistics.fmean(v) - base for k, v in scores.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--tail", type=float, default=0.2)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args()
    print("| clip | flow (dB) | half | damped |")
    print("|---|---|---|---|")
    for path in args.videos:
        s = clip_scores(path, args.size, args.tail)
        print(f"| {path.stem} | {s['flow']:.2f} | {s['half']:+.2f} | {s['damped']:+.2f} |")


if __name__ == "__main__":
    main()
