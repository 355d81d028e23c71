"""A classical motion-compensated baseline on the natural-footage protocol: OpenCV Farneback
flow between frames t-2 and t-1, extrapolated one step (frame t-1 warped along it), and the
same blended half-and-half with frame t-1. One-step PSNR on the last 20% of each video.

    python benchmarks/flow_baseline.py /tmp/vidpred-natural/videos
"""

import math
import sys
from pathlib import Path

import cv2
import numpy as np

from vidpred.video import read_video


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    mse = ((pred.astype(np.float64) - target) ** 2).mean() / 255**2
    return 10 * math.log10(1 / max(mse, 1e-10))


def main(folder: str) -> None:
    for path in sorted(Path(folder).glob("*.mp4")):
        frames = read_video(path, 96).frames  # uint8 RGB (T, H, W, 3)
        scores = {"copy_last": [], "flow": [], "blend": []}
        for t in range(math.floor(len(frames) * 0.8), len(frames)):
            older = cv2.cvtColor(frames[t - 2], cv2.COLOR_RGB2GRAY)
            last = cv2.cvtColor(frames[t - 1], cv2.COLOR_RGB2GRAY)
            # For each pixel of t-1, where it was in t-2; constant motion puts the pixel of t
            # at the same offset in t-1.
            flow = cv2.calcOpticalFlowFarneback(last, older, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            gx, gy = np.meshgrid(np.arange(last.shape[1]), np.arange(last.shape[0]))
            warped = cv2.remap(
                frames[t - 1],
                (gx + flow[..., 0]).astype(np.float32),
                (gy + flow[..., 1]).astype(np.float32),
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            scores["copy_last"].append(psnr(frames[t - 1], frames[t]))
            scores["flow"].append(psnr(warped, frames[t]))
            scores["blend"].append(psnr(0.5 * warped + 0.5 * frames[t - 1], frames[t]))
        print(path.name, {k: round(float(np.mean(v)), 2) for k, v in scores.items()})


if __name__ == "__main__":
    main(sys.argv[1])
