"""Where a native render's time goes, stage by stage, now and as it was before issue 24.

    python benchmarks/native_stages.py [--reps 3] [--precision fp32|bf16|auto]

Renders `vidpred bench`'s native clip (generated "natural", 640x480, 48 frames, an untrained
default model, which computes what a trained one does) with the stage timers of
`vidpred.stages` on, in two configurations, alternated so that a busy spell hits both:
- **now**: the defaults;
- **before**: the render as it was: the warps by integer gathers (`vidpred.warping`'s
  differentiable path), no read-ahead thread, SSIM on every 4th frame.
Printed: frames/s (median of the repetitions) and, per stage, milliseconds of work per
shown frame (median). Stages on the read-ahead thread overlap the others, so their sum can
exceed the wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

import vidpred.native
import vidpred.rendering
import vidpred.warping
from vidpred.bench import FULL
from vidpred.encoding import write_mp4
from vidpred.model import STResNet
from vidpred.predict import Predictor
from vidpred.rendering import render
from vidpred.stages import recording
from vidpred.synthetic import generate
from vidpred.video_options import VideoOptions


@contextlib.contextmanager
def as_before():
    """The render's code paths before issue 24."""
    gather_only = mock.patch.object(vidpred.warping, "_remap_applies", lambda *_: False)
    no_read_ahead = mock.patch.object(
        vidpred.native.NativeClip, "__init__", _without_read_ahead(vidpred.native.NativeClip)
    )
    ssim_every_4 = mock.patch.object(vidpred.rendering, "RENDER_SSIM_EVERY", 4)
    with gather_only, no_read_ahead, ssim_every_4:
        yield


def _without_read_ahead(cls):
    original = cls.__init__

    def init(self, predictor, pairs, batch_size=8, read_ahead=True):
        original(self, predictor, pairs, batch_size, read_ahead=False)

    return init


def one_render(clip: Path, predictor: Predictor, out: Path, frames: int) -> dict[str, float]:
    start = time.perf_counter()
    with recording() as seconds:
        render(clip, predictor, out, force=True, video_options=VideoOptions(cache=False))
    shown = frames - predictor.history
    result = {name: 1000 * s / shown for name, s in seconds.items()}
    result["frames/s"] = shown / (time.perf_counter() - start)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidpred-stages-"))
    frames = FULL.render_frames
    clip = write_mp4(work / "native.mp4", generate("natural", frames, *FULL.native_hw, seed=1), 30)
    model = STResNet(FULL.model).eval()
    predictor = Predictor(
        model, FULL.model, FULL.data, torch.device("cpu"), precision=args.precision
    )
    runs: dict[str, list[dict[str, float]]] = {"before": [], "now": []}
    one_render(clip, predictor, work / "warm.mp4", frames)  # first-call costs out of the way
    for _ in range(args.reps):
        with as_before():
            runs["before"].append(one_render(clip, predictor, work / "b.mp4", frames))
        runs["now"].append(one_render(clip, predictor, work / "n.mp4", frames))
    names = sorted({k for r in runs["now"] + runs["before"] for k in r} - {"frames/s"})

    def median(kind: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in runs[kind])

    print(
        f"{FULL.native_hw[1]}x{FULL.native_hw[0]}, {frames} frames, {args.precision}, "
        f"{torch.get_num_threads()} torch threads, median of {args.reps}"
    )
    print("| stage, ms of work per frame | before | now |")
    print("|---|---|---|")
    for name in sorted(names, key=lambda n: -median("before", n)):
        print(f"| {name} | {median('before', name):.1f} | {median('now', name):.1f} |")
    print(
        f"| **frames/s** | {median('before', 'frames/s'):.2f} | {median('now', 'frames/s'):.2f} |"
    )


if __name__ == "__main__":
    main()
