"""Regenerates the sample videos shipped in samples/ from fixed seeds.

Usage, from the repository root (no install needed):

    python scripts/make_samples.py --out samples

Each sample is 160x128 (W x H), 240 frames at 24 fps, with steady motion of about
1-5 px per frame, so a working next-frame model beats copying the last frame clearly.
For each file it prints its size, how long generating took, and the mean absolute
difference between consecutive frames (0-255 levels), a rough measure of motion.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# Runnable without `pip install -e .`: put the repository root on the path.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from vidpred.synthetic import generate  # noqa: E402
from vidpred.video import write_mp4  # noqa: E402

HEIGHT, WIDTH = 128, 160
NUM_FRAMES = 240
FPS = 24

# file stem -> (generator, seed). Seeds were picked by eye for clear, varied motion; change
# one and the sample changes.
SAMPLES: dict[str, tuple[str, int]] = {
    "shapes": ("shapes", 0),
    "digits": ("digits", 3),
    "pan_zoom": ("pan_zoom", 1),
    "pendulum": ("pendulum", 2),
}


def make_samples(out: Path) -> list[Path]:
    """Returns the paths of the sample mp4s after writing them into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, (name, seed) in SAMPLES.items():
        start = time.perf_counter()
        frames = generate(name, NUM_FRAMES, HEIGHT, WIDTH, seed)  # uint8 RGB (T, H, W, 3)
        seconds = time.perf_counter() - start
        path = write_mp4(out / f"{stem}.mp4", frames, FPS)
        motion = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean()
        print(
            f"{path}: {frames.shape[0]} frames {WIDTH}x{HEIGHT} @ {FPS} fps, "
            f"{path.stat().st_size / 1024:.0f} KiB, generated in {seconds:.2f} s, "
            f"mean |frame[t+1] - frame[t]| = {motion:.2f}"
        )
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "samples", help="output folder")
    args = parser.parse_args()
    make_samples(args.out)


if __name__ == "__main__":
    main()
