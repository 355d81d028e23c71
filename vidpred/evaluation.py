"""Next-frame metrics of a model next to the trivial baselines: one step, and N-step rollouts."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .adapt import AdaptConfig, Adapter, adapting, frames_per_call, predict_adapting
from .cache import release_pages
from .cadence import HISTORY
from .data import frames_to_tensor, load_videos, validation_start
from .errors import SettingError
from .flow import flow_rollout, predict_flow
from .gate import FlowGate
from .metrics import MetricAccumulator, linear_extrapolation, mean_of
from .native import (
    RESOLUTIONS,
    NativeClip,
    decode_pairs,
    motionless,
    native_frame_size,
)
from .predict import Predictor
from .video import Segment
from .video_options import VideoOptions

METHODS = ("model", "copy_last", "linear", "flow")


def first_target(num_frames: int, history: int, tail: float) -> int:
    """Returns the first evaluated target index: the tail's start, but never before the model
    (and linear extrapolation, which needs two frames) have their inputs."""
    return max(history, 2, math.floor(num_frames * (1.0 - tail)))


def first_horizon_target(num_frames: int, history: int, tail: float, horizon: int) -> int:
    """Returns the first target of an N-step rollout evaluation: as ``first_target``, but
    late enough that its origin t-N still has the model's inputs (and linear's two frames)."""
    return max(math.floor(num_frames * (1.0 - tail)), horizon + max(history - 1, 1))


def needed_frames(history: int, horizon: int | None) -> int:
    """Returns how many frames a video needs to be evaluated: one target after the model's
    inputs and linear's two frames, and with ``horizon`` one N-step target.

    Raises:
        ValueError: ``horizon`` is below 1.
    """
    needed = max(history, 2) + 1
    if horizon is not None:
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        needed = max(needed, horizon + max(history - 1, 1) + 1)
    return needed


def evaluate_one_step(
    frames: torch.Tensor,
    predictor: Predictor,
    targets: list[int],
    batch_size: int = 8,
    after_chunk: Callable[[], None] | None = None,
    gate: FlowGate | None = None,
    adapter: Adapter | None = None,
) -> dict[str, Any]:
    """Returns the one-step metrics {"model", "copy_last", "linear", "flow"} on ``targets``;
    with ``gate``, "model" is what the gate shows, and "model_ungated" and "gate" (its
    ``summary``) are added.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
        targets: target indices, each >= ``first_target``.
        after_chunk: called after each batch of targets is scored.
        gate: a new gate for this clip; it first watches the targets just before the first
            (``gate_warmup``), so that the first scored frames are gated as in a render.
        adapter: a new Adapter for this clip (``vidpred.adapt``): the model then predicts
            every target from the clip's first, in order, and learns from each batch once
            it is scored, so the scored targets are predicted by weights trained on the
            clip's frames before them.
    """
    acc = {m: MetricAccumulator() for m in (*METHODS, "model_ungated")}
    watched = gate_warmup(targets[0], predictor.history, gate)
    if adapter is not None:
        watched = list(range(max(predictor.history, 2), targets[0]))
    if gate is not None:
        watch_cadence(gate, frames, watched[0] if watched else targets[0])
    batches = predict_adapting(predictor, frames, watched + targets, adapter, batch_size)
    for chunk, _inputs, pred in batches:
        index = torch.tensor(chunk)
        # Baselines come from the real frames, independent of the model's input layout.
        truth, last, previous = (
            frames_to_tensor(frames[index - lag]).to(pred.device) for lag in (0, 1, 2)
        )  # each (B, 3, H, W)
        flow = predict_flow(frames, chunk).to(pred.device)
        scored = index >= targets[0]  # the watched targets come first
        _add_batch(acc, gate, scored, pred, truth, last, previous, flow)
        if after_chunk:
            after_chunk()
    return _scores(acc, gate)


def _add_batch(
    acc: dict[str, MetricAccumulator],
    gate: FlowGate | None,
    scored: torch.Tensor,
    model: torch.Tensor,
    truth: torch.Tensor,
    last: torch.Tensor,
    previous: torch.Tensor,
    flow: torch.Tensor,
    steps: int = 1,
) -> None:
    """Scores one batch of consecutive targets into ``acc``: the model (through ``gate``),
    copy-last, linear extrapolation and the flow baseline, on the frames ``scored`` (bool
    (B,)) marks; the gate watches the others, which come first.

    Args:
        model, truth, last, previous, flow: float [0, 1] (B, 3, H, W): the model's
            prediction, frames t, t-k and t-k-1, and the flow baseline's prediction, all
            made ``steps`` (k) frames before t.
    """
    # ``last`` is frame t-k: the gate follows the cadence of repeats with it one step ahead
    # only (FlowGate.choose).
    if gate is not None and not scored.all():
        watched = ~scored
        gate.choose(model[watched], flow[watched], truth[watched], last[watched], show=False)
    if not scored.any():
        return
    model, truth, last, previous, flow = (t[scored] for t in (model, truth, last, previous, flow))
    if gate is not None:
        acc["model_ungated"].add(model, truth)
        model = gate.choose(model, flow, truth, last)
    acc["model"].add(model, truth)
    acc["copy_last"].add(last, truth)
    acc["linear"].add(linear_extrapolation(last, previous, steps), truth)
    acc["flow"].add(flow, truth)


def gate_warmup(first: int, history: int, gate: FlowGate | None) -> list[int]:
    """Returns the targets before ``first`` that ``gate`` watches before the scored ones: up
    to its window, from the first target that has the model's inputs (none without a gate)."""
    if gate is None:
        return []
    return list(range(max(history, 2, first - gate.window), first))


def watch_cadence(gate: FlowGate, frames: torch.Tensor, first: int, batch_size: int = 64) -> None:
    """Teaches ``gate`` the cadence of repeated frames (``vidpred.cadence``) from the
    ``HISTORY`` frames before ``first``, the first frame it watches with predictions: as a
    render, which shows every frame from the clip's start, would know it at ``first``.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
    """
    for start in range(max(2, first - HISTORY), first, batch_size):
        index = torch.arange(start, min(start + batch_size, first))
        last, truth = frames_to_tensor(frames[index - 1]), frames_to_tensor(frames[index])
        gate.watch_repeats(last, truth, predict_flow(frames, index.tolist()))


def _scores(acc: dict[str, MetricAccumulator], gate: FlowGate | None) -> dict[str, Any]:
    """Returns the summaries of METHODS, and with a gate of the ungated model and the gate."""
    scores: dict[str, Any] = {m: acc[m].summary() for m in METHODS}
    if gate is not None:
        scores["model_ungated"] = acc["model_ungated"].summary()
        scores["gate"] = gate.summary()
    return scores


def evaluate_native(
    path: Path,
    predictor: Predictor,
    first: int,
    size: int,
    max_side: int | None,
    batch_size: int = 8,
    gate: FlowGate | None = None,
) -> tuple[dict[str, Any], tuple[int, int]]:
    """Returns (``evaluate_one_step``'s metrics at the clip's own size, that size (H, W)):
    targets t >= ``first`` of the clip at ``path``, streamed (``vidpred.native``). The model
    runs at working ``size`` and its motion is applied to the full-size frames; copy-last,
    linear extrapolation and the flow baseline (DIS computed at native size) are computed on
    the full-size frames. ``max_side`` caps the shorter side (None: no cap). ``gate`` as
    in ``evaluate_one_step``, on the full-size frames."""
    acc = {m: MetricAccumulator() for m in (*METHODS, "model_ungated")}
    frame_hw = native_frame_size(path, max_side)
    predictor.check_memory(batch_size, 0, *frame_hw)
    watched = gate_warmup(first, predictor.history, gate)
    start = watched[0] if watched else first
    # The gate learns the cadence of repeats before ``start`` from the frames the stream
    # reads past.
    stream = NativeClip(
        predictor, decode_pairs(path, size, max_side), batch_size, repeats_before=gate is not None
    )
    for batch in stream.batches(start):
        if gate is not None and stream.repeated_before:
            gate.cadence.observe(stream.repeated_before)
            stream.repeated_before.clear()
        scored = torch.tensor(batch.targets) >= first  # the watched targets come first
        parts = (batch.model, batch.truth, batch.last, batch.previous, batch.flow)
        _add_batch(acc, gate, scored, *parts)
    return _scores(acc, gate), frame_hw


def evaluate_horizon(
    frames: torch.Tensor,
    predictor: Predictor,
    targets: list[int],
    horizon: int,
    batch_size: int = 8,
    after_chunk: Callable[[], None] | None = None,
    gate_window: int = 0,
) -> list[dict[str, Any]]:
    """Returns per-step metrics [{"step", "model", "copy_last", "linear", "flow"}] of N-step
    rollouts.

    Every step k = 1..N is scored on the same ``targets``: the prediction of t made from the
    real frames up to t-k only, next to copy-last (frame t-k), linear extrapolation from
    frames t-k-1, t-k carried k steps, and the flow baseline applied k times to its own
    predictions (``vidpred.flow.flow_rollout``).

    With ``gate_window``, each step k has its own gate (``FlowGate(steps=k)``) between the
    model's and the flow's k-step rollouts, which first watches the rollouts before the
    targets; "model" is then what it shows, and each step also has "model_ungated" and "gate".

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
        targets: consecutive target indices, each >= ``first_horizon_target``.
        after_chunk: called after each batch of origins is scored.
        gate_window: the gates' window in frames; 0: no gate.
    """
    methods = (*METHODS, "model_ungated") if gate_window else METHODS
    acc = [{m: MetricAccumulator() for m in methods} for _ in range(horizon)]
    gates = [FlowGate(gate_window, steps=k) for k in range(1, horizon + 1)] if gate_window else []
    first, end = targets[0], targets[-1]
    # One rollout per origin serves every step: origin o scores step k at target o+k. With
    # gates, earlier origins let every step's gate know ``gate_window`` of its differences
    # (each known k frames after its origin) before the first target.
    start = first - horizon
    if gates:
        start = max(max(predictor.history - 1, 1), first - 2 * horizon - gate_window + 1)
        # Step 1 is a one-step prediction: its gate follows the cadence of repeated frames,
        # learned as evaluate_one_step's is from the frames before the first it watches.
        watch_cadence(gates[0], frames, start + 1)
    for chunk, preds in predictor.rollout(frames, list(range(start, end)), horizon, batch_size):
        origin = torch.tensor(chunk)
        last, previous = (frames_to_tensor(frames[origin - lag]).to(preds.device) for lag in (0, 1))
        flow = flow_rollout(frames, chunk, horizon).to(preds.device)  # (B, N, 3, H, W)
        for k in range(1, horizon + 1):
            # Targets before the first are only watched (by a gate; without one, skipped).
            keep = [i for i, o in enumerate(chunk) if o + k <= end and (gates or o + k >= first)]
            if not keep:
                continue
            truth = frames_to_tensor(frames[origin[keep] + k]).to(preds.device)  # (B, 3, H, W)
            _add_batch(
                acc[k - 1],
                gates[k - 1] if gates else None,
                origin[keep] + k >= first,
                preds[keep, k - 1],
                truth,
                last[keep],
                previous[keep],
                flow[keep, k - 1],
                steps=k,
            )
        if after_chunk:
            after_chunk()
    return [{"step": k + 1, **_scores(a, gates[k] if gates else None)} for k, a in enumerate(acc)]


def evaluate(
    paths: list[str | Path],
    predictor: Predictor,
    *,
    tail: float = 1.0,
    horizon: int | None = None,
    on_video: Callable[[str, int], None] | None = None,
    video_options: VideoOptions | None = None,
    adapt: AdaptConfig | None = None,
) -> dict[str, Any]:
    """Returns metrics of the model, copy-last, linear extrapolation and the flow baseline on
    every video.

    Args:
        paths: video files or folders.
        predictor: the model to evaluate.
        tail: evaluate only targets with index >= floor(T * (1 - tail)); 1.0 = all.
        horizon: N: also score rollouts of 1..N steps at the working size
            (``evaluate_horizon``); videos too short for one are skipped with a warning.
        on_video: called with (path, number of targets) as each video starts.
        video_options: how to read the videos and run the model (``VideoOptions``; default:
            the working size, gated). At native resolution the one-step metrics are at each
            clip's own size (``evaluate_native``; a warp-head model only). With a segment,
            only targets in it (and in its ``tail``) are scored.
        adapt: learn while watching (``vidpred.adapt``): the one-step predictions of each
            clip are made in clip order from its first frames by weights that keep training
            on the frames already seen; each clip starts from the predictor's weights.

    Returns:
        {"weights", "size", "tail", "resolution", "videos": [{"path", "targets",
        "resolution_size" (H, W the metrics were computed at), "model", "copy_last",
        "linear", "flow"}], "mean": {"model", "copy_last", "linear", "flow"}}; each method's
        value is {"mse", "mae", "psnr", "ssim", "psnr_median"}. With a gate, each video and
        the mean also have "model_ungated", and each video "gate" (``FlowGate.summary``).
        With ``horizon``, each video also has "horizon_targets" and "horizon": [{"step": 1,
        "model", "copy_last", "linear", "flow"}, ...], and the result has "horizon": the same
        list averaged over videos. With a gate, every step of the rollouts is gated too (one
        gate per step, ``evaluate_horizon``) and has "model_ungated" (and per video "gate").
    """
    options = video_options or VideoOptions()
    size, resolution = options.size or predictor.data_config.size, options.resolution_or("working")
    batch_size = frames_per_call(options.batch_size, adapt)
    gate, segment = options.gate, options.segment
    check_resolution(resolution, predictor)
    if adapt is not None and (resolution == "native" or horizon is not None):
        raise SettingError(
            lambda n: (
                f"{n('adapt')} scores one-step predictions at the working size: "
                f"leave out {n('horizon')} and {n('resolution')} native"
            )
        )
    history = predictor.history
    needed = needed_frames(history, horizon)
    videos = load_videos(
        list(paths), size, min_frames=needed, cache=options.cache, cache_dir=options.cache_dir
    )
    results = []
    for video in videos:
        frames = torch.from_numpy(video.frames)  # uint8 RGB (T, H, W, 3)
        targets = list(range(first_target(video.num_frames, history, tail), video.num_frames))
        targets = in_segment(targets, segment, video.fps)
        if on_video:
            on_video(str(video.path), len(targets))
        if not targets:
            continue
        # A cached video is a map: drop the pages each batch read, or a pass over a folder
        # would leave all of it resident (they come back from the page cache).
        release = functools.partial(release_pages, video.frames)
        clip_gate = FlowGate(gate) if gate else None
        if resolution == "native":
            scores, frame_hw = evaluate_native(
                video.path, predictor, targets[0], size, options.max_side, batch_size, clip_gate
            )
        else:
            with adapting(predictor, frames, adapt, clip_gate) as adapter:
                scores = evaluate_one_step(
                    frames, predictor, targets, batch_size, release, clip_gate, adapter
                )
                if adapter is not None:
                    scores["adapt"] = adapter.summary()
            frame_hw = video.frames.shape[1:3]
        trained_on = trained_targets(video.path, targets, video.num_frames, predictor)
        where = {"path": str(video.path), "targets": len(targets), "trained_on": trained_on}
        results.append({**where, "resolution_size": list(frame_hw), **scores})
        if horizon is not None:
            first = first_horizon_target(video.num_frames, history, tail, horizon)
            steps = in_segment(list(range(first, video.num_frames)), segment, video.fps)
            results[-1]["horizon_targets"] = len(steps)
            if steps:  # a segment at a video's start may hold no target N steps in
                results[-1]["horizon"] = evaluate_horizon(
                    frames, predictor, steps, horizon, batch_size, release, gate_window=gate
                )
    summary = {
        "weights": str(predictor.weights) if predictor.weights else None,
        "size": size,
        "tail": tail,
        "resolution": resolution,
        "videos": results,
        "mean": {m: mean_of([r[m] for r in results]) for m in METHODS},
        "gate": gate,
        "adapt": dataclasses.asdict(adapt) if adapt else None,
        "segment": segment.describe() if segment else None,
    }
    if gate and results:
        summary["mean"]["model_ungated"] = mean_of([r["model_ungated"] for r in results])
    if horizon is not None:
        summary["horizon"] = mean_horizon(results, horizon)
    return summary


def in_segment(targets: list[int], segment: Segment | None, fps: float) -> list[int]:
    """Returns the ``targets`` (frame indices) inside ``segment`` (all without one)."""
    if segment is None:
        return targets
    start, stop = segment.frame_range(fps)
    return [t for t in targets if t >= start and (stop is None or t < stop)]


def trained_targets(path: Path, targets: list[int], num_frames: int, predictor: Predictor) -> int:
    """Returns how many of ``targets`` of the video at ``path`` (``num_frames`` long) the
    predictor's weights were trained on: none unless the video is one of its training sources
    or lies in one of its source folders, else those before that training's validation part."""
    try:
        video = path.resolve()
        trained = any(
            video == (source := Path(s).resolve()) or source in video.parents
            for s in predictor.sources
        )
    except (OSError, RuntimeError):  # a source that cannot be resolved here
        return 0
    if not trained:
        return 0
    start = validation_start(num_frames, predictor.data_config.val_fraction)
    return sum(t < start for t in targets)


def check_resolution(resolution: str, predictor: Predictor) -> None:
    """Raises ValueError for an unknown ``resolution``, VidpredError for "native" with a
    model that predicts no motion (a residual head)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    if resolution == "native" and (reason := motionless(predictor.model_config)):
        raise SettingError(
            lambda n: f"{n('resolution')} native needs a model with a warp head: {reason}"
        )


def mean_horizon(results: list[dict[str, Any]], horizon: int) -> list[dict[str, Any]]:
    """Returns the per-step rollout metrics of ``evaluate``'s videos averaged over them."""
    results = [r for r in results if "horizon" in r]
    methods = [m for m in (*METHODS, "model_ungated") if results and m in results[0]["horizon"][0]]
    return [
        {"step": k + 1, **{m: mean_of([r["horizon"][k][m] for r in results]) for m in methods}}
        for k in range(horizon)
    ]
