"""``vidpred bench``: where the time goes on this machine, in one run.

Measures, on a clip it generates itself (bouncing shapes, 640x360 at 30 fps):
- the fp32 matmul peak (2048x2048, best of warmed-up repetitions), the ceiling to compare
  training against, and the bf16 peak where bf16 autocast is the default (vidpred.precision);
  training and inference are then measured in both precisions;
- the default model's training FLOPs per sample, counted by ``FlopCounterMode`` on one
  forward + backward (not estimated from layer shapes);
- training samples/s through the real trainer and loader (decode cache warm, as every epoch
  after the first decode sees it), and of the trainer's own step (``train_step``, with its
  optimizer, loss, clipping and weight average) over batches already in memory;
- decode frames/s of raw OpenCV, of the reader (resize + RGB) and of the decode cache;
- render frames/s end to end (decode, predict, compose, encode) at the working size, and
  at a 640x480 clip's own size (``render_native_fps``: the model's motion applied to the
  full-size frames, DIS at 640x480 for it and the flow baseline), and model-only inference
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from .cache import read_video_cached
from .data import DataConfig, WindowDataset, load_flows, load_videos
from .distributed import current_world
from .encoding import write_mp4
from .model import ModelConfig, STResNet
from .precision import describe_machine, resolve_device
from .predict import Predictor
from .rendering import render
from .stages import recording
from .synthetic import generate
from .training import (
    RunState,
    TrainConfig,
    load_batch,
    train,
    train_step,
    wrap_for_training,
)
from .tuning import CPU_BATCH, Arithmetic, arithmetic_for
from .video import read_video
from .video_options import VideoOptions

log = logging.getLogger(__name__)

CLIP_FPS = 30.0  # the real-time bar render is compared against


@dataclass(frozen=True)
class BenchSizes:
    """How big each measurement is; ``FULL`` takes about a minute on a quiet 2-core CPU."""

    matmul: int  # side of the square fp32 matmul
    matmul_reps: int  # timed repetitions after warm-up (best is kept)
    clip_hw: tuple[int, int]  # generated clip, (H, W) before resizing
    clip_frames: int  # frames of the training/decoding clip
    render_frames: int  # frames of the (shorter) render clips
    native_hw: tuple[int, int]  # the clip rendered at its own size, (H, W)
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
    native_hw=(480, 640),
    render_reps=3,
    model=ModelConfig(),
    data=DataConfig(),
    batch_size=CPU_BATCH,  # what `vidpred train` takes on a CPU
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
    native_hw=(64, 96),
    render_reps=1,
    # the FLOP formula test's model
    model=ModelConfig(width=8, depth=1, stem=False, head="residual", norm="none"),
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
    pairs = model_config.flow_pairs
    flows = torch.randn(batch_size, 2 * pairs, crop, crop) if pairs else None
    with FlopCounterMode(display=False) as counter:
        F.l1_loss(model(x, flows), y).backward()
    return counter.get_total_flops() / batch_size


# The working size of a 16:9 clip at the default --size 96: where inference cost is quoted.
INFER_FLOPS_HW = (96, 172)


def inference_flops_per_frame(
    model_config: ModelConfig, hw: tuple[int, int] = INFER_FLOPS_HW
) -> float:
    """Returns the FLOPs of predicting one frame of size ``hw`` (the model's forward pass,
    counted; DIS and the warp are not convolutions and are left out)."""
    model = STResNet(model_config).eval()
    h, w = hw
    x = torch.rand(1, 3 * len(model_config.input_offsets()), h, w)
    pairs = model_config.flow_pairs
    flows = torch.randn(1, 2 * pairs, h, w) if pairs else None
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, flows)
    return counter.get_total_flops()


def _bench_step_config(
    data: WindowDataset, sizes: BenchSizes, device: str, precision: str = "auto"
) -> TrainConfig:
    """Returns the trainer's defaults for the timed steps: warm-up and timed steps within
    one epoch, so no validation falls among them (and only 2 targets at its end)."""
    steps = min(sizes.warmup_steps + sizes.timed_steps, data.steps_per_epoch(sizes.batch_size))
    return TrainConfig(
        steps=steps, batch_size=sizes.batch_size, device=device, precision=precision, val_max=2
    )


def train_memory_samples_per_s(
    data: WindowDataset,
    model_config: ModelConfig,
    config: TrainConfig,
    arithmetic: Arithmetic,
    *,
    warmup: int,
    compile_model: bool = False,
) -> float:
    """Returns samples/s of the trainer's step (``vidpred.training.train_step``) in
    ``arithmetic`` over the
    first ``config.steps`` batches of an epoch, already on the device: the compute-only
    reference, without the loader, schedule or bookkeeping. The first ``warmup`` steps are
    not timed."""
    device = resolve_device(config.device)
    channels_last = arithmetic.channels_last
    run = RunState.start(model_config, config, device, channels_last=channels_last)
    net = wrap_for_training(run.model, device, current_world(), compile_model)
    bf16 = arithmetic.bf16
    plan = data.epoch_plan(config.seed, 0)
    batches = [
        load_batch(
            data,
            plan,
            s,
            config.batch_size,
            device,
            flow_pairs=model_config.flow_pairs,
            channels_last=channels_last,
        )
        for s in range(config.steps)
    ]
    times = []
    for batch in batches:
        _sync(device)
        t0 = time.perf_counter()
        train_step(run, net, batch, config, bf16)  # returns the loss: waits for the device
        times.append(time.perf_counter() - t0)
    return config.batch_size / statistics.median(times[warmup:] or times)


def train_loader_samples_per_s(
    data: WindowDataset,
    model_config: ModelConfig,
    data_config: DataConfig,
    config: TrainConfig,
    out: Path,
    arithmetic: Arithmetic,
    *,
    warmup: int,
    compile_model: bool = False,
) -> float:
    """Returns samples/s of the real trainer (``train``) in ``arithmetic`` reading batches
    through the loader.

    Time per step is taken between consecutive ``on_step`` calls, so it includes building
    the batch, the copy to the device, the schedule and the bookkeeping.
    """
    stamps: list[float] = []
    train(
        data,
        model_config,
        data_config,
        config,
        out,
        on_step=lambda _: stamps.append(time.perf_counter()),
        compile_model=compile_model,
        arithmetic=arithmetic,
    )
    steps_s = np.diff(stamps)[max(0, warmup - 1) :]
    return config.batch_size / float(np.median(steps_s))


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


def loader_ms_per_batch(
    data: WindowDataset,
    batch_size: int,
    device: torch.device,
    channels_last: bool,
    flow_pairs: int = 1,
) -> float:
    """Returns the median milliseconds to build one training batch and put it on the device,
    as the trainer does (``vidpred.training.load_batch``), with ``flow_pairs`` pairs of
    flows where the data has flows."""
    plan = data.epoch_plan(1, 0)
    times = []
    for step in range(data.steps_per_epoch(batch_size)):
        t0 = time.perf_counter()
        load_batch(
            data,
            plan,
            step,
            batch_size,
            device,
            flow_pairs=flow_pairs if data.flows is not None else 0,
            channels_last=channels_last,
        )
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


def inference_fps(predictor: Predictor, frames: np.ndarray, batch_size: int) -> tuple[float, float]:
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


def measure_peaks(device: torch.device, sizes: BenchSizes, bf16: bool) -> dict[str, float]:
    """Returns the fp32 matmul peak, and the bf16 one where bf16 is the default here."""
    result = {"matmul_gflops": matmul_gflops(device, sizes.matmul, sizes.matmul_reps)}
    if bf16:
        result["matmul_gflops_bf16"] = matmul_gflops(
            device, sizes.matmul, sizes.matmul_reps, torch.bfloat16
        )
    return result


def _bench_data(clip: Path, sizes: BenchSizes, cache_dir: Path) -> WindowDataset:
    """Returns the training windows of ``clip``, read as `vidpred train` reads them."""
    videos = load_videos(clip, sizes.data.size, sizes.model.history + 1, cache_dir=cache_dir)
    flows = None
    if sizes.model.uses_flow:  # from the cache, as `vidpred train` reads them
        flows = load_flows(videos, sizes.data.size, cache_dir=cache_dir)
    return WindowDataset(videos, sizes.model.input_offsets(), sizes.data, flows)


def measure_training(
    data: WindowDataset,
    sizes: BenchSizes,
    device: str,
    out: Path,
    *,
    arithmetic: Arithmetic,
    compile_model: bool,
    stage: Callable[[str], None],
    precision: str = "auto",
) -> dict[str, float]:
    """Returns training samples/s of the trainer's step on batches in memory (in the default
    precision, and in fp32 beside it where that is bf16) and of the real trainer through the
    loader, and the loader's milliseconds per batch."""
    config = _bench_step_config(data, sizes, device, precision)
    runs = [("train_samples_per_s_memory", precision, "training on in-memory batches")]
    if arithmetic.bf16:
        runs.append(("train_samples_per_s_memory_fp32", "fp32", "in-memory batches, fp32"))
    result = {}
    for key, precision, label in runs:
        stage(label)
        result[key] = train_memory_samples_per_s(
            data,
            sizes.model,
            replace(config, precision=precision),
            arithmetic if precision == config.precision else replace(arithmetic, bf16=False),
            warmup=sizes.warmup_steps,
            compile_model=compile_model,
        )
    stage("training through the loader")
    result["train_samples_per_s_loader"] = train_loader_samples_per_s(
        data,
        sizes.model,
        sizes.data,
        config,
        out,
        arithmetic,
        warmup=sizes.warmup_steps,
        compile_model=compile_model,
    )
    result["loader_ms_per_batch"] = loader_ms_per_batch(
        data,
        sizes.batch_size,
        resolve_device(device),
        arithmetic.channels_last,
        sizes.model.flow_pairs,
    )
    return result


def training_ratios(result: dict[str, Any]) -> dict[str, float]:
    """Returns how training compares: loader against in-memory batches, and the achieved
    GFLOP/s against the matmul peaks (like against like: bf16 training against the bf16
    peak, fp32 against fp32)."""
    flops = result["train_flops_per_sample"]
    ratios = {
        "loader_vs_memory": (
            result["train_samples_per_s_loader"] / result["train_samples_per_s_memory"]
        ),
        "train_gflops": flops * result["train_samples_per_s_loader"] / 1e9,
    }
    ratios["train_fraction_of_matmul"] = ratios["train_gflops"] / result["matmul_gflops"]
    if "matmul_gflops_bf16" in result:
        ratios["train_fraction_of_matmul_bf16"] = (
            ratios["train_gflops"] / result["matmul_gflops_bf16"]
        )
        fp32_gflops = flops * result["train_samples_per_s_memory_fp32"] / 1e9
        ratios["train_fp32_fraction_of_matmul"] = fp32_gflops / result["matmul_gflops"]
    return ratios


def measure_render(
    clip: Path,
    native_clip: Path,
    sizes: BenchSizes,
    device: torch.device,
    out: Path,
    arithmetic: Arithmetic,
) -> dict[str, Any]:
    """Returns model-only inference and end-to-end render frames/s and CPU ms per frame of
    an untrained default model on ``clip`` at the working size, and render frames/s of
    ``native_clip`` at its own size: the medians of ``sizes.render_reps`` runs."""
    model = STResNet(sizes.model).eval().to(device)
    predictor = Predictor(model, sizes.model, sizes.data, device, arithmetic=arithmetic)
    fp32 = None
    if arithmetic.bf16:
        fp32_arithmetic = replace(arithmetic, bf16=False)
        fp32 = Predictor(model, sizes.model, sizes.data, device, arithmetic=fp32_arithmetic)
    frames = read_video(clip, sizes.data.size).frames
    # Alternated, so a slow spell of a busy machine hits both sides of the ratio alike.
    runs = [
        _render_run(clip, native_clip, predictor, fp32, frames, out, sizes.batch_size)
        for _ in range(sizes.render_reps)
    ]
    result: dict[str, Any] = {
        key: statistics.median(run[key] for run in runs)
        for key in runs[0]
        if key != "native_stage_ms"
    }
    if "native_stage_ms" in runs[0]:
        stages = {name for run in runs for name in run["native_stage_ms"]}
        result["native_stage_ms"] = {
            name: statistics.median(run["native_stage_ms"].get(name, 0.0) for run in runs)
            for name in sorted(stages)
        }
    result["source_fps"] = CLIP_FPS
    result["working_size"] = list(frames.shape[1:3])
    return result


def _render_run(
    clip: Path,
    native_clip: Path,
    predictor: Predictor,
    fp32: Predictor | None,
    frames: np.ndarray,
    out: Path,
    batch_size: int,
) -> dict[str, float]:
    """Returns one run's inference and render numbers (see ``measure_render``)."""
    fps, cpu_ms = inference_fps(predictor, frames, batch_size)
    run = {"infer_fps": fps, "infer_cpu_ms_per_frame": cpu_ms}
    if fp32:
        run["infer_fps_fp32"] = inference_fps(fp32, frames, batch_size)[0]
    _sync(predictor.device)
    cpu = CpuClock()
    render(
        clip,
        predictor,
        out,
        force=True,
        video_options=VideoOptions(resolution="working", cache=False, batch_size=batch_size),
    )
    wall, own, encoder = cpu.read()
    targets = len(frames) - predictor.history
    run["render_fps"] = targets / wall
    run["render_vs_infer"] = run["render_fps"] / run["infer_fps"]
    run["render_cpu_ms_per_frame"] = 1000 * own / targets
    run["encode_cpu_ms_per_frame"] = 1000 * encoder / targets
    if predictor.model_config.head != "warp":  # --quick's model: it renders at working size
        run["render_native_fps"] = run["render_fps"]
        return run
    _sync(predictor.device)
    start = time.perf_counter()
    with recording() as seconds:
        render(
            native_clip,
            predictor,
            out,
            force=True,
            video_options=VideoOptions(cache=False, batch_size=batch_size),
        )
    run["render_native_fps"] = targets / (time.perf_counter() - start)
    run["render_native_vs_infer"] = run["render_native_fps"] / run["infer_fps"]
    # Milliseconds of work per shown frame, by stage (vidpred.stages).
    run["native_stage_ms"] = {name: 1000 * s / targets for name, s in sorted(seconds.items())}
    return run


def run_bench(
    *,
    quick: bool = False,
    device: str = "auto",
    precision: str = "auto",
    layout: str = "auto",
    compile_model: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Returns every measurement as a flat dict of numbers (see the module docstring).

    Args:
        quick: tiny sizes, for testing the plumbing in seconds; the numbers mean nothing.
        device: auto | cpu | cuda.
        precision: auto | fp32 | bf16, as `vidpred train` takes it: "fp32" on a machine
            with AMX shows what a user without it gets.
        layout: auto | channels-last | contiguous, as `--layout` takes it.
        compile_model: train through ``torch.compile`` in both training measurements.
        on_stage: called with a short description as each measurement starts.
    """
    sizes = QUICK if quick else FULL
    dev = resolve_device(device)
    stage = on_stage or (lambda _: None)
    # bf16 autocast is what training and inference use by default where it is fast
    # (vidpred.precision); fp32 is measured beside it, as the reference.
    arithmetic = arithmetic_for(dev, precision, layout)
    bf16 = arithmetic.bf16
    result: dict[str, Any] = {
        "device": str(dev),
        **describe_machine(dev),
        "quick": quick,
        "compile": compile_model,
        "precision": precision,
        "bf16": bf16,
        "channels_last": arithmetic.channels_last,
        "channels_last_inference": arithmetic.channels_last_inference,
        # samples/s of each arithmetic timed to make that choice ({}: not measured, or
        # --precision and --layout fixed)
        "arithmetic_samples_per_s": arithmetic.timings,
    }
    stage("matmul peaks")
    result.update(measure_peaks(dev, sizes, bf16))
    stage("counting training FLOPs")
    result["train_flops_per_sample"] = train_flops_per_sample(sizes.model, sizes.data.crop)
    result["infer_gflop_per_frame"] = inference_flops_per_frame(sizes.model) / 1e9
    with tempfile.TemporaryDirectory(prefix="vidpred-bench-") as tmp:
        tmp = Path(tmp)
        stage("generating the clips")
        h, w = sizes.clip_hw
        clip = write_mp4(
            tmp / "clip.mp4", generate("shapes", sizes.clip_frames, h, w, seed=0), CLIP_FPS
        )
        render_clip = write_mp4(
            tmp / "render.mp4", generate("shapes", sizes.render_frames, h, w, seed=1), CLIP_FPS
        )
        native_clip = write_mp4(
            tmp / "native.mp4",
            generate("natural", sizes.render_frames, *sizes.native_hw, seed=1),
            CLIP_FPS,
        )
        stage("decoding")
        result.update(decode_fps(clip, sizes.data.size, tmp / "cache"))
        data = _bench_data(clip, sizes, tmp / "cache")
        result.update(
            measure_training(
                data,
                sizes,
                device,
                tmp / "bench.pt",
                arithmetic=arithmetic,
                compile_model=compile_model,
                stage=stage,
                precision=precision,
            )
        )
        result.update(training_ratios(result))
        stage("inference and render")
        result.update(
            measure_render(
                render_clip, native_clip, sizes, dev, tmp / "render.pred.mp4", arithmetic
            )
        )
    result["peak_rss_mb"] = peak_rss_mb()
    return result


# (key, label, format) of each number, in the order a person reads them.
REPORT = (
    ("bf16", "bf16 autocast (default precision here)", "{}"),
    ("matmul_gflops", "fp32 matmul peak", "{:.1f} GFLOP/s"),
    ("matmul_gflops_bf16", "bf16 matmul peak", "{:.1f} GFLOP/s"),
    ("train_flops_per_sample", "training FLOPs per sample (counted)", "{:.3g}"),
    ("infer_gflop_per_frame", "inference GFLOP per 96x172 frame (counted)", "{:.2f}"),
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
    ("render_native_fps", "render at 640x480, the clip's own size", "{:.1f} frames/s"),
    ("render_native_vs_infer", "  native render / inference", "{:.1%}"),
    ("render_vs_infer", "  render / inference", "{:.1%}"),
    ("render_cpu_ms_per_frame", "  render CPU time, this process", "{:.1f} ms/frame"),
    ("encode_cpu_ms_per_frame", "  render CPU time, H.264 encoder", "{:.1f} ms/frame"),
    ("source_fps", "  source clip fps (real time)", "{:.0f}"),
    ("peak_rss_mb", "peak resident memory", "{:.0f} MB"),
)


def report_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Returns (label, formatted value) for every number present in ``result``."""
    rows = [(label, fmt.format(result[key])) for key, label, fmt in REPORT if key in result]
    for name, ms in result.get("native_stage_ms", {}).items():
        rows.append((f"  native render: {name}", f"{ms:.1f} ms/frame"))
    return rows
