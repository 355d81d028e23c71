"""``vidpred bench``: where the time goes on this machine, in one run.

Measures, on a clip it generates itself (bouncing shapes, 640x360 at 30 fps):
- the fp32 matmul peak (2048x2048, best of warmed-up repetitions), the ceiling to compare
  training against, and the bf16 peak where bf16 autocast is the default (vidpred.precision);
  training and inference are then measured in both precisions;
- the default model's training FLOPs per sample, counted by ``FlopCounterMode`` on one
  forward + backward (not estimated from layer shapes);
- training samples/s through the real trainer and loader (decode cache warm, as every epoch
  after the first decode sees it) and through a bare loop over batches already in memory;
- decode frames/s of raw OpenCV, of the reader (resize + RGB) and of the decode cache;
- render frames/s end to end (decode, predict, compose, encode) and model-only inference
  frames/s on frames already in memory;
- peak resident memory of this process.

Timed loops report the median step (or the best repetition) after warm-up, so a busy
machine shifts the numbers less than a mean would; numbers from a busy machine are still
only a rough guide.
"""

from __future__ import annotations

import logging
import math
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from .cache import read_video_cached
from .data import DataConfig, WindowDataset, load_flows, load_videos
from .model import ModelConfig, STResNet
from .precision import resolve_device, to_device_float, use_bf16, use_channels_last
from .predict import Predictor
from .rendering import render
from .synthetic import generate
from .training import TrainConfig, train
from .video import read_video, write_mp4

log = logging.getLogger(__name__)

CLIP_FPS = 30.0  # the real-time bar render is compared against


@dataclass(frozen=True)
class BenchSizes:
    """How big each measurement is; ``FULL`` takes about a minute on a quiet 2-core CPU."""

    matmul: int  # side of the square fp32 matmul
    matmul_reps: int  # timed repetitions after warm-up (best is kept)
    clip_hw: tuple[int, int]  # generated clip, (H, W) before resizing
    clip_frames: int  # frames of the training/decoding clip
    render_frames: int  # frames of the (shorter) render clip
    render_reps: int  # inference and render runs, alternated (medians are reported)
    model: ModelConfig
    data: DataConfig
    batch_size: int
    warmup_steps: int  # untimed training steps before each timed run
    timed_steps: int


FULL = BenchSizes(
    matmul=2048,
    matmul_reps=5,
    clip_hw=(360, 640),
    clip_frames=120,
    render_frames=48,
    render_reps=3,
    model=ModelConfig(),
    data=DataConfig(),
    batch_size=TrainConfig(steps=1).batch_size,
    warmup_steps=2,
    timed_steps=8,
)
# Seconds, for a test of the plumbing: every number is computed, none is meaningful.
QUICK = BenchSizes(
    matmul=256,
    matmul_reps=2,
    clip_hw=(72, 128),
    clip_frames=30,
    render_frames=12,
    render_reps=1,
    # the FLOP formula test's model
    model=ModelConfig(width=8, depth=1, stem=False, head="residual", batch_norm=False),
    data=DataConfig(size=32, crop=16),
    batch_size=4,
    warmup_steps=1,
    timed_steps=2,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(
    device: torch.device, n: int = 2048, reps: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """Returns the best GFLOP/s of an n x n matmul in ``dtype`` over ``reps`` runs after two
    warm-ups."""
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    best = math.inf
    for i in range(reps + 2):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        if i >= 2:
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def train_flops_per_sample(model_config: ModelConfig, crop: int, batch_size: int = 2) -> float:
    """Returns the FLOPs of one training sample (forward + backward, L1 loss), counted."""
    model = STResNet(model_config)
    x = torch.rand(batch_size, 3 * len(model_config.input_offsets()), crop, crop)
    y = torch.rand(batch_size, 3, crop, crop)
    flows = torch.randn(batch_size, 2, crop, crop) if model_config.uses_flow else None
    with FlopCounterMode(display=False) as counter:
        F.l1_loss(model(x, flows), y).backward()
    return counter.get_total_flops() / batch_size


def train_memory_samples_per_s(
    data: WindowDataset,
    model_config: ModelConfig,
    batch_size: int,
    device: torch.device,
    *,
    warmup: int,
    timed: int,
    bf16: bool,
    compile_model: bool = False,
) -> float:
    """Returns samples/s of a bare training loop over batches already on the device.

    The step is the trainer's (AdamW, L1, gradient clipping, bf16 autocast where asked,
    channels-last where the trainer uses it), without its loader, schedule or bookkeeping:
    the compute-only reference.
    """
    torch.manual_seed(0)
    model = STResNet(model_config).to(device).train()
    channels_last = use_channels_last(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_model else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    plan = data.epoch_plan(0, 0)
    steps = min(warmup + timed, data.steps_per_epoch(batch_size))
    batches = []
    for s in range(steps):
        inputs, targets = data.train_batch_uint8(plan, s, batch_size)
        flows = None
        if model_config.uses_flow:
            flows = data.train_batch_flows(plan, s, batch_size).to(device)
        inputs, targets = (to_device_float(t, device, channels_last) for t in (inputs, targets))
        batches.append((inputs, targets, flows))
    times = []
    for inputs, targets, flows in batches:
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.l1_loss(net(inputs, flows).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss.item()
        times.append(time.perf_counter() - t0)
    return batch_size / statistics.median(times[warmup:] or times)


def train_loader_samples_per_s(
    data: WindowDataset,
    model_config: ModelConfig,
    data_config: DataConfig,
    batch_size: int,
    device: str,
    out: Path,
    *,
    warmup: int,
    timed: int,
    compile_model: bool = False,
) -> float:
    """Returns samples/s of the real trainer (``train``) reading batches through the loader.

    Time per step is taken between consecutive ``on_step`` calls, so it includes building
    the batch, the copy to the device, the schedule and the bookkeeping.
    """
    stamps: list[float] = []
    steps = min(warmup + timed, data.steps_per_epoch(batch_size))
    config = TrainConfig(steps=steps, batch_size=batch_size, device=device, val_max=2)
    train(
        data,
        model_config,
        data_config,
        config,
        out,
        on_step=lambda _: stamps.append(time.perf_counter()),
        compile_model=compile_model,
    )
    steps_s = np.diff(stamps)[max(0, warmup - 1) :]
    return batch_size / float(np.median(steps_s))


def decode_fps(clip: Path, size: int, cache_dir: Path, reps: int = 2) -> dict[str, float]:
    """Returns frames/s of raw OpenCV decoding, of the reader, and of a warm decode cache."""

    def raw() -> int:
        capture = cv2.VideoCapture(str(clip))
        count = 0
        while capture.read()[0]:
            count += 1
        capture.release()
        return count

    def reader() -> int:
        return read_video(clip, size).num_frames

    def cached() -> int:
        # Materialise every frame: mapping alone costs nothing and would flatter the cache.
        return len(np.array(read_video_cached(clip, size, cache_dir).frames))

    read_video_cached(clip, size, cache_dir)  # fill the cache (a first decode, untimed)
    out = {}
    for name, fn in (("opencv", raw), ("reader", reader), ("cache", cached)):
        best = math.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            frames = fn()
            best = min(best, time.perf_counter() - t0)
        out[f"decode_fps_{name}"] = frames / best
    return out


def loader_ms_per_batch(data: WindowDataset, batch_size: int, device: torch.device) -> float:
    """Returns the median milliseconds to build one training batch and put it on the device."""
    plan = data.epoch_plan(1, 0)
    times = []
    for step in range(data.steps_per_epoch(batch_size)):
        t0 = time.perf_counter()
        for t in data.train_batch_uint8(plan, step, batch_size):
            to_device_float(t, device, device.type == "cuda")
        if data.flows is not None:
            data.train_batch_flows(plan, step, batch_size).to(device)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


class CpuClock:
    """Wall time, this process's CPU time (all its threads) and its finished children's CPU
    time (the H.264 encoder) since it was made."""

    def __init__(self):
        self._start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter(), time.process_time(), children.ru_utime + children.ru_stime

    def read(self) -> tuple[float, float, float]:
        """Returns (wall s, own CPU s, children's CPU s) elapsed."""
        return tuple(b - a for a, b in zip(self._start, self._now(), strict=True))


def inference_fps(
    predictor: Predictor, frames: np.ndarray, batch_size: int
) -> tuple[float, float]:
    """Returns (frames/s, CPU ms/frame of this process) of batched model inference on
    frames already in memory."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames))
    targets = list(range(predictor.history, len(tensor)))
    for _ in predictor.predict_frames(tensor, targets[:batch_size], batch_size):  # warm-up
        pass
    _sync(predictor.device)
    clock = CpuClock()
    for _ in predictor.predict_frames(tensor, targets, batch_size):
        pass
    _sync(predictor.device)
    wall, own, _ = clock.read()
    return len(targets) / wall, 1000 * own / len(targets)


def peak_rss_mb() -> float:
    """Returns this process's peak resident memory in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import sys

    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def run_bench(
    *,
    quick: bool = False,
    device: str = "auto",
    compile_model: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Returns every measurement as a flat dict of numbers (see the module docstring).

    Args:
        quick: tiny sizes, for testing the plumbing in seconds; the numbers mean nothing.
        device: auto | cpu | cuda.
        compile_model: train through ``torch.compile`` in both training measurements.
        on_stage: called with a short description as each measurement starts.
    """
    sizes = QUICK if quick else FULL
    dev = resolve_device(device)
    stage = on_stage or (lambda _: None)
    result: dict[str, Any] = {"device": str(dev), "quick": quick, "compile": compile_model}
    with tempfile.TemporaryDirectory(prefix="vidpred-bench-") as tmp:
        tmp = Path(tmp)
        cache_dir = tmp / "cache"

        # bf16 autocast is what training and inference use by default where it is fast
        # (vidpred.precision); fp32 is measured beside it, as the reference.
        bf16 = use_bf16("auto", dev)
        result["bf16"] = bf16
        stage("fp32 matmul peak")
        result["matmul_gflops"] = matmul_gflops(dev, sizes.matmul, sizes.matmul_reps)
        if bf16:
            stage("bf16 matmul peak")
            result["matmul_gflops_bf16"] = matmul_gflops(
                dev, sizes.matmul, sizes.matmul_reps, torch.bfloat16
            )

        stage("counting training FLOPs")
        result["train_flops_per_sample"] = train_flops_per_sample(sizes.model, sizes.data.crop)

        stage("generating the clip")
        h, w = sizes.clip_hw
        clip = write_mp4(
            tmp / "clip.mp4", generate("shapes", sizes.clip_frames, h, w, seed=0), CLIP_FPS
        )
        render_clip = write_mp4(
            tmp / "render.mp4", generate("shapes", sizes.render_frames, h, w, seed=1), CLIP_FPS
        )

        stage("decoding")
        result.update(decode_fps(clip, sizes.data.size, cache_dir))

        videos = load_videos(clip, sizes.data.size, sizes.model.history + 1, cache_dir=cache_dir)
        flows = None
        if sizes.model.uses_flow:  # from the cache, as `vidpred train` reads them
            flows = load_flows(videos, sizes.data.size, cache_dir=cache_dir)
        data = WindowDataset(videos, sizes.model.input_offsets(), sizes.data, flows)
        # The default precision, then fp32 beside it where the default is bf16.
        runs = [("train_samples_per_s_memory", bf16, "training on in-memory batches")]
        if bf16:
            runs.append(("train_samples_per_s_memory_fp32", False, "in-memory batches, fp32"))
        for key, use_bf16_here, label in runs:
            stage(label)
            result[key] = train_memory_samples_per_s(
                data,
                sizes.model,
                sizes.batch_size,
                dev,
                warmup=sizes.warmup_steps,
                timed=sizes.timed_steps,
                bf16=use_bf16_here,
                compile_model=compile_model,
            )

        stage("training through the loader")
        result["train_samples_per_s_loader"] = train_loader_samples_per_s(
            data,
            sizes.model,
            sizes.data,
            sizes.batch_size,
            device,
            tmp / "bench.pt",
            warmup=sizes.warmup_steps,
            timed=sizes.timed_steps,
            compile_model=compile_model,
        )
        result["loader_ms_per_batch"] = loader_ms_per_batch(data, sizes.batch_size, dev)
        result["loader_vs_memory"] = (
            result["train_samples_per_s_loader"] / result["train_samples_per_s_memory"]
        )
        result["train_gflops"] = (
            result["train_flops_per_sample"] * result["train_samples_per_s_loader"] / 1e9
        )
        result["train_fraction_of_matmul"] = result["train_gflops"] / result["matmul_gflops"]
        if bf16:
            # Like against like: bf16 training against the bf16 peak, fp32 against fp32.
            result["train_fraction_of_matmul_bf16"] = (
                result["train_gflops"] / result["matmul_gflops_bf16"]
            )
            result["train_fp32_fraction_of_matmul"] = (
                result["train_flops_per_sample"]
                * result["train_samples_per_s_memory_fp32"]
                / 1e9
                / result["matmul_gflops"]
            )

        stage("inference and render")
        model = STResNet(sizes.model).eval().to(dev)
        predictor = Predictor(model, sizes.model, sizes.data, dev)
        fp32 = Predictor(model, sizes.model, sizes.data, dev, precision="fp32") if bf16 else None
        frames = read_video(render_clip, sizes.data.size).frames
        targets = len(frames) - predictor.history
        runs = []
        # Alternated, so a slow spell of a busy machine hits both sides of the ratio alike.
        for _ in range(sizes.render_reps):
            fps, cpu_ms = inference_fps(predictor, frames, sizes.batch_size)
            run = {"infer_fps": fps, "infer_cpu_ms_per_frame": cpu_ms}
            if fp32:
                run["infer_fps_fp32"] = inference_fps(fp32, frames, sizes.batch_size)[0]
            _sync(dev)
            cpu = CpuClock()
            render(
                render_clip,
                predictor,
                tmp / "render.pred.mp4",
                cache=False,
                batch_size=sizes.batch_size,
                force=True,
            )
            wall, own, encoder = cpu.read()
            run["render_fps"] = targets / wall
            run["render_vs_infer"] = run["render_fps"] / run["infer_fps"]
            run["render_cpu_ms_per_frame"] = 1000 * own / targets
            run["encode_cpu_ms_per_frame"] = 1000 * encoder / targets
            runs.append(run)
        for key in runs[0]:
            result[key] = statistics.median(run[key] for run in runs)
        result["source_fps"] = CLIP_FPS
        result["working_size"] = list(frames.shape[1:3])
    result["peak_rss_mb"] = peak_rss_mb()
    return result


# (key, label, format) of each number, in the order a person reads them.
REPORT = (
    ("bf16", "bf16 autocast (default precision here)", "{}"),
    ("matmul_gflops", "fp32 matmul peak", "{:.1f} GFLOP/s"),
    ("matmul_gflops_bf16", "bf16 matmul peak", "{:.1f} GFLOP/s"),
    ("train_flops_per_sample", "training FLOPs per sample (counted)", "{:.3g}"),
    ("train_samples_per_s_memory", "training, in-memory batches", "{:.2f} samples/s"),
    ("train_samples_per_s_memory_fp32", "training, in-memory batches, fp32", "{:.2f} samples/s"),
    ("train_samples_per_s_loader", "training, real loader + trainer", "{:.2f} samples/s"),
    ("loader_vs_memory", "  loader / in-memory", "{:.1%}"),
    ("loader_ms_per_batch", "  building one batch", "{:.2f} ms"),
    ("train_gflops", "achieved training throughput", "{:.1f} GFLOP/s"),
    ("train_fraction_of_matmul", "  fraction of the fp32 matmul peak", "{:.1%}"),
    ("train_fraction_of_matmul_bf16", "  fraction of the bf16 matmul peak", "{:.1%}"),
    ("train_fp32_fraction_of_matmul", "  fp32 training (in memory) / fp32 peak", "{:.1%}"),
    ("decode_fps_opencv", "decode, raw OpenCV (native size)", "{:.0f} frames/s"),
    ("decode_fps_reader", "decode, reader (resize + RGB)", "{:.0f} frames/s"),
    ("decode_fps_cache", "decode, cache (memory-mapped)", "{:.0f} frames/s"),
    ("infer_fps", "inference, model only", "{:.1f} frames/s"),
    ("infer_cpu_ms_per_frame", "  inference CPU time", "{:.1f} ms/frame"),
    ("infer_fps_fp32", "inference, model only, fp32", "{:.1f} frames/s"),
    ("render_fps", "render, end to end", "{:.1f} frames/s"),
    ("render_vs_infer", "  render / inference", "{:.1%}"),
    ("render_cpu_ms_per_frame", "  render CPU time, this process", "{:.1f} ms/frame"),
    ("encode_cpu_ms_per_frame", "  render CPU time, H.264 encoder", "{:.1f} ms/frame"),
    ("source_fps", "  source clip fps (real time)", "{:.0f}"),
    ("peak_rss_mb", "peak resident memory", "{:.0f} MB"),
)


def report_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Returns (label, formatted value) for every number present in ``result``."""
    return [(label, fmt.format(result[key])) for key, label, fmt in REPORT if key in result]
