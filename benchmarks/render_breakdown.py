"""Where render's time goes: render frames/s with one stage at a time taken out, next to
model-only inference, on the bench's clip (generated shapes, 640x360, 30 fps, working size
96) and a freshly initialised default model (default precision unless --precision).

    python benchmarks/render_breakdown.py [--reps 3] [--frames 96] [--precision auto|fp32|bf16]

Rows (median frames/s over the repetitions, which run alternated so that a slow spell of a
busy machine hits every row alike):
- inference: ``Predictor.predict_frames`` on frames already in memory (the bench's number);
- render: ``vidpred.render`` end to end, decoding the clip (no cache), as ``vidpred bench``;
- without SSIM / without compositing / without H.264 encoding: the same render with that
  stage replaced by a no-op (SSIM returns zeros, compositing returns one fixed frame, the
  encoder discards frames), to read off what each stage costs;
- from the decode cache: the same render reading an already cached clip.
The no-op rows exist only here, by patching module attributes; the product never skips them.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vidpred.bench import CLIP_FPS, inference_fps
from vidpred.data import DataConfig
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.synthetic import generate
from vidpred.video import read_video, write_mp4

# The modules, not the functions that vidpred/__init__ exports under the same names.
render_module = importlib.import_module("vidpred.rendering")
metrics_module = importlib.import_module("vidpred.metrics")


class DiscardingWriter:
    """Stands in for Mp4Writer: counts frames, encodes nothing."""

    def __init__(self, *args, **kwargs):
        self.frames_written = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, frame):
        self.frames_written += 1


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
        STResNet(model_config).eval(), model_config, data_config, torch.device("cpu"),
        precision=args.precision,
    )
    frames = read_video(clip, data_config.size).frames
    shown = len(frames) - predictor.history
    one_frame = render_module.compose_frame(
        render_module.frame_panels(
            render_module.DEFAULT_PANELS, predicted=frames[0], copy=frames[0], actual=frames[1],
            when="1 step ahead", psnr_model=0.0, psnr_copy=0.0,
        ),
        2,
    )
    # (row, {module attribute to patch: stand-in}, read through the decode cache)
    rows = [
        ("render", {}, False),
        ("without SSIM", {(metrics_module, "ssim"): lambda p, t: torch.zeros(len(p))}, False),
        ("without compositing",
         {(render_module, "compose_frame"): lambda p, s=1: one_frame}, False),
        ("without H.264 encoding", {(render_module, "Mp4Writer"): DiscardingWriter}, False),
        ("from the decode cache", {}, True),
    ]
    cache_dir = tmp / "cache"
    render_module.render(clip, predictor, tmp / "warm.mp4", cache_dir=cache_dir)  # warm-up
    fps: dict[str, list[float]] = {"inference": []}
    for _ in range(args.reps):
        fps["inference"].append(inference_fps(predictor, frames, 8)[0])
        for name, patches, cached in rows:
            originals = {key: getattr(*key) for key in patches}
            for (module, attr), stand_in in patches.items():
                setattr(module, attr, stand_in)
            try:
                start = time.perf_counter()
                render_module.render(
                    clip, predictor, tmp / "out.mp4", cache=cached, cache_dir=cache_dir, force=True
                )
                fps.setdefault(name, []).append(shown / (time.perf_counter() - start))
            finally:
                for (module, attr), original in originals.items():
                    setattr(module, attr, original)
    infer = statistics.median(fps["inference"])
    print(f"{'row':26s} {'frames/s':>9s} {'/ inference':>12s}   runs")
    for name, values in fps.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.0f}" for v in values)
        print(f"{name:26s} {median:9.1f} {median / infer:12.0%}   {runs}")


if __name__ == "__main__":
    main()
