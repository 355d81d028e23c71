"""Next-frame PSNR at each clip's own resolution: which way of applying a working-size model
to native frames measures best (vidpred.native).

For every 3rd target of the last 20% of each clip, all at native size (shorter side capped by
--max-side), it prints the mean PSNR of:
- copy-last, and the flow baseline with DIS computed at native size;
- upscaled: the model's working-size prediction, resized (bicubic);
- model flow: the model's motion (flow, blend, residual) resized and applied to the native
  last frame;
- native base: the same, but the flow is DIS at native size plus the model's correction to
  its working-size base flow, resized (flow-start models only).

    python benchmarks/native_quality.py --weights weights/default.pt CLIP [CLIP ...]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from torch.nn import functional as F

from vidpred.data import frames_to_tensor, stack_windows
from vidpred.flow import base_flows, flow_extrapolation, model_flows
from vidpred.metrics import psnr
from vidpred.model import compose, start_flow
from vidpred.native import apply_motion, native_short_side, native_start, resize_motion
from vidpred.predict import Predictor
from vidpred.video import Decoder, read_video


def native_frames(path: str, max_side: int | None) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) at the clip's own size, shorter side capped."""
    with Decoder(path) as probe:
        h, w = probe.source_size
    return read_video(path, native_short_side(h, w, max_side)).frames


def score(predictor: Predictor, path: str, max_side: int | None) -> dict[str, float]:
    native = torch.from_numpy(native_frames(path, max_side))
    small = torch.from_numpy(read_video(path, predictor.data_config.size).frames)
    count = min(len(native), len(small))
    targets = list(range(max(predictor.history, int(count * 0.8)), count, 3))
    size = tuple(native.shape[1:3])
    results: dict[str, list[float]] = {}

    def add(name: str, pred: torch.Tensor, truth: torch.Tensor) -> None:
        results.setdefault(name, []).extend(psnr(pred.clamp(0, 1), truth).tolist())

    for i in range(0, len(targets), 4):
        chunk = targets[i : i + 4]
        index = torch.tensor(chunk)
        truth, last = frames_to_tensor(native[index]), frames_to_tensor(native[index - 1])
        native_base = base_flows(native, chunk)  # DIS at native size, t-1 -> t-2
        add("copy-last", last, truth)
        add("flow (DIS native)", flow_extrapolation(last, native_base), truth)
        inputs = stack_windows(small, chunk, predictor.offsets)
        config, pairs = predictor.model_config, predictor.flow_pairs
        base = model_flows(small, chunk, pairs) if pairs else None
        with torch.inference_mode():
            motion = predictor.model.motion(inputs, base)
        small_pred = compose(frames_to_tensor(small[index - 1]), motion)
        add("upscaled", F.interpolate(small_pred, size=size, mode="bicubic"), truth)
        add("model flow", apply_motion(last, motion), truth)
        if base is not None:
            start, scale = start_flow(config, base)
            big = resize_motion(motion, size)
            correction = resize_motion(
                type(motion)(residual=motion.residual, flow=motion.flow - start), size
            ).flow
            big.flow = native_start(native_base, scale) + correction
            add("native base", compose(last, big), truth)
    return {name: statistics.fmean(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--weights", default="weights/default.pt")
    parser.add_argument("--max-side", type=int, default=None, help="cap on the shorter side")
    args = parser.parse_args()
    predictor = Predictor.from_checkpoint(args.weights, "cpu", "fp32")
    predictor.model.eval()
    for clip in args.clips:
        row = score(predictor, clip, args.max_side)
        print(clip, "  ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
