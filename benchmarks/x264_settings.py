"""Encoder CPU time, file size and fidelity of x264 settings on real render frames: the
measurement behind the settings in vidpred.encoding.X264_OPTIONS.

    python benchmarks/x264_settings.py [--reps 3]

The frames are default three-panel renders (scale 2, 1040x232) of a generated "shapes" and a
generated "natural" clip (93 frames each) with the shipped weights, composed once and kept in
memory; each setting encodes all of them at imageio's quality 8 (as render does). Printed per
setting: the encoder process's CPU time per frame (median over the repetitions), the mp4's
size, and the PSNR of the decoded frames against the frames sent in (RGB, 8-bit).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import torch

from vidpred.encoding import X264_OPTIONS
from vidpred.panels import DEFAULT_PANELS, compose_frame, frame_panels
from vidpred.predict import Predictor, quantize
from vidpred.synthetic import generate
from vidpred.video import read_video

SETTINGS = {
    "veryfast preset (before)": ["-preset", "veryfast"],
    "ultrafast preset": ["-preset", "ultrafast"],
    "veryfast, subme 0, diamond search, no partitions": [
        "-preset",
        "veryfast",
        "-x264-params",
        "subme=0:me=dia:partitions=none",
    ],
    "ultrafast + CABAC, 3 B-frames, mbtree, deblock": [
        "-preset",
        "ultrafast",
        "-x264-params",
        "cabac=1:bframes=3:mbtree=1:rc-lookahead=10:deblock=1",
    ],
    "vidpred.encoding.X264_OPTIONS (now)": X264_OPTIONS,
}


def render_frames(weights: str) -> list[np.ndarray]:
    """Returns uint8 RGB (232, 1040, 3) render frames of two generated clips."""
    predictor = Predictor.from_checkpoint(weights, "cpu")
    frames_out = []
    for kind, seed in (("shapes", 1), ("natural", 2)):
        clip = generate(kind, 97, 360, 640, seed=seed)
        frames = np.stack([cv2.resize(f, (172, 96), interpolation=cv2.INTER_AREA) for f in clip])
        origins = list(range(predictor.history - 1, len(frames) - 1))
        for chunk, preds in predictor.rollout(torch.from_numpy(frames), origins, 1):
            for o, shown in zip(chunk, quantize(preds[:, 0]).numpy(), strict=True):
                frames_out.append(
                    compose_frame(
                        frame_panels(
                            DEFAULT_PANELS,
                            predicted=shown,
                            copy=frames[o],
                            actual=frames[o + 1],
                            when="1 step ahead",
                            psnr_model=30.0,
                            psnr_copy=29.0,
                            frame_text=f"frame {o + 2}/{len(frames)}",
                        ),
                        2,
                    )
                )
    return frames_out


def encode(frames: list[np.ndarray], path: Path, options: list[str]) -> float:
    """Encodes the frames as render does; returns the encoder's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=30,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=8,
        macro_block_size=1,
        output_params=["-movflags", "+faststart", *options],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for frame in frames:
        writer.send(frame)
    writer.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--weights", default="weights/default.pt")
    args = parser.parse_args()
    frames = render_frames(args.weights)
    sent = np.stack(frames).astype(np.float32)
    out = Path(tempfile.mkdtemp(prefix="vidpred-x264-")) / "out.mp4"
    print(f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}")
    print(f"{'setting':52s} {'CPU ms/frame':>12s} {'KiB':>6s} {'PSNR dB':>8s}")
    for name, options in SETTINGS.items():
        cpu = statistics.median(encode(frames, out, options) for _ in range(args.reps))
        mse = np.mean((read_video(out).frames.astype(np.float32) - sent) ** 2)
        psnr = 10 * np.log10(255.0**2 / mse)
        print(
            f"{name:52s} {1000 * cpu / len(frames):12.2f} {out.stat().st_size // 1024:6d} "
            f"{psnr:8.2f}"
        )


if __name__ == "__main__":
    main()
