"""Where render's time goes, stage by stage, on the bench's clip (generated shapes, 640x360,
30 fps, working size 96) and a freshly initialised default model (default precision unless
--precision).

    python benchmarks/render_breakdown.py [--reps 3] [--frames 96] [--precision auto|fp32|bf16]

Each repetition runs ``vidpred.render`` end to end (decoding the clip, no cache, as
``vidpred bench``), then drives the same steps that render chains (``vidpred.rendering``:
``truth_frames`` is rollout -> with_baselines -> score -> compose_truth, then the mp4
writer) one at a time over the same clip, timing each. Repetitions alternate so that a slow
spell of a busy machine hits every row alike. Rows (median over the repetitions, in ms per
shown frame and as a share of the end-to-end render):
- decode: ``read_video`` of the clip at the working size; from the decode cache:
  ``read_video_cached`` of the clip already cached (what render reads by default);
- inference: ``Predictor.rollout`` (one step: the model alone);
- baselines: ``with_baselines`` (the real frames and the flow baseline);
- metrics: ``score`` (PSNR, SSIM and MAE of the model and both baselines);
- compositing: ``compose_truth`` (panels, captions, readouts, upscaling);
- H.264 encoding: ``Mp4Writer.write`` of every frame, then ``finish`` (ffmpeg ends and the
  file is decoded once to check it);
- stages: the sum of the stages above, without the cache row;
- render: ``vidpred.render`` itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from vidpred.bench import CLIP_FPS
from vidpred.cache import read_video_cached
from vidpred.data import DataConfig
from vidpred.encoding import Mp4Writer, write_mp4
from vidpred.metrics import MetricAccumulator
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.rendering import (
    RENDER_METHODS,
    RenderSettings,
    compose_truth,
    first_shown_frame,
    render,
    score,
    with_baselines,
)
from vidpred.synthetic import generate
from vidpred.video import read_video
from vidpred.video_options import VideoOptions

STAGES = ("decode", "inference", "baselines", "metrics", "compositing", "H.264 encoding")


class Stopwatch:
    """Adds up the seconds spent in each named block."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


def time_stages(
    clip: Path, predictor: Predictor, out: Path, cache_dir: Path
) -> tuple[dict[str, float], int]:
    """Returns (seconds in each stage, frames shown) of one render of ``clip``, its steps
    called one at a time as ``vidpred.rendering.render`` chains them (default settings)."""
    watch, settings = Stopwatch(), RenderSettings()
    size = predictor.data_config.size
    with watch("decode"):
        video = read_video(clip, size)
    with watch("from the decode cache"):
        read_video_cached(clip, size, cache_dir)
    frames = torch.from_numpy(video.frames)  # uint8 RGB (T, H, W, 3)
    first = first_shown_frame(clip, len(frames), predictor.history, settings)
    origins = [t - settings.horizon for t in range(first, len(frames))]
    metrics = {m: MetricAccumulator() for m in RENDER_METHODS}
    rollouts = predictor.rollout(frames, origins, settings.horizon)
    with Mp4Writer(out, video.fps) as writer:
        while True:
            with watch("inference"):
                rollout = next(rollouts, None)
            if rollout is None:
                break
            chunk, preds = rollout
            with watch("baselines"):
                batch = with_baselines(frames, chunk, preds[:, -1], settings.horizon)
            with watch("metrics"):
                scores = score(batch, metrics)
            with watch("compositing"):
                images = compose_truth(batch, scores, len(frames), settings)
            with watch("H.264 encoding"):
                for image in images:
                    writer.write(image)
        with watch("H.264 encoding"):
            writer.finish()
    return dict(watch.seconds), len(origins)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vidpred-render-breakdown-"))
    clip = write_mp4(tmp / "clip.mp4", generate("shapes", args.frames, 360, 640, seed=1), CLIP_FPS)
    model_config, data_config = ModelConfig(), DataConfig()
    predictor = Predictor(
        STResNet(model_config).eval(),
        model_config,
        data_config,
        torch.device("cpu"),
        precision=args.precision,
    )
    cache_dir = tmp / "cache"
    render(
        clip, predictor, tmp / "warm.mp4", video_options=VideoOptions(cache_dir=cache_dir)
    )  # warm-up; fills the cache
    runs: dict[str, list[float]] = defaultdict(list)  # ms per shown frame, one per repetition
    for _ in range(args.reps):
        start = time.perf_counter()
        render(
            clip, predictor, tmp / "out.mp4", force=True, video_options=VideoOptions(cache=False)
        )
        render_s = time.perf_counter() - start
        seconds, shown = time_stages(clip, predictor, tmp / "stages.mp4", cache_dir)
        seconds["stages"] = sum(seconds[name] for name in STAGES)
        seconds["render"] = render_s
        for name, value in seconds.items():
            runs[name].append(1000 * value / shown)
    rows = [*STAGES, "from the decode cache", "stages", "render"]
    whole = statistics.median(runs["render"])
    print(f"{shown} frames shown per render; ms per shown frame, median of {args.reps}")
    print(f"{'row':24s} {'ms/frame':>9s} {'frames/s':>9s} {'/ render':>9s}   runs")
    for name in rows:
        median = statistics.median(runs[name])
        each = " ".join(f"{v:.1f}" for v in runs[name])
        print(f"{name:24s} {median:9.2f} {1000 / median:9.1f} {median / whole:9.0%}   {each}")


if __name__ == "__main__":
    main()
