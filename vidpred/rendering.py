"""Side-by-side "actual | predicted | error" videos that play in any browser or player.

Each render also writes a JSON sidecar beside the mp4 (what was rendered, with which
weights, how well it did) that ``vidpred gallery`` reads.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .adapt import AdaptConfig, Adapter, adapting, frames_per_call
from .cache import read_video_cached
from .data import frames_to_tensor, stack_windows
from .encoding import Mp4Writer
from .errors import OutputError, SettingError, VidpredError, shown
from .flow import flow_baseline, flow_extension, flow_extrapolation, model_flows
from .gate import FlowGate
from .metrics import MetricAccumulator
from .native import (
    RESOLUTIONS,
    NativeClip,
    decode_pairs,
    motionless,
    native_frame_size,
)
from .outputs import (
    check_output_path,
    claim_output,
    file_sha256,
)
from .overlap import ahead, overlaps
from .panels import (
    check_render_size,
    compose_frame,
    default_scale,
    frame_panels,
    steps_text,
)
from .predict import Predictor, quantize, to_uint8
from .render_settings import RenderSettings, first_shown_frame, frames_before_first
from .sidecar import (
    finite_or_none,
    gif_path,
    gif_temp,
    read_training_log,
    sidecar_path,
    sidecar_temp,
)
from .stages import stage
from .video import Segment, Video, read_segment, read_video
from .video_options import VideoOptions

log = logging.getLogger(__name__)


def default_render_path(clip: str | Path) -> Path:
    """Returns renders/<clip name>.pred.mp4 under the current folder."""
    return Path("renders") / f"{Path(clip).stem}.pred.mp4"


def check_render_path(out: str | Path) -> Path:
    """Returns ``out`` if it names an mp4, the only container vidpred renders to.

    Raises:
        OutputError: another extension (or none): ffmpeg would guess a container from it,
            or fail, and an H.264 stream in .avi does not play in browsers.
    """
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise OutputError(
            f"{out}: a render is an H.264 mp4; name it .mp4 (its .json and .gif sit beside it)"
        )
    return out


def check_render_outputs(out: Path, gif: bool, *, force: bool, inputs: tuple[Path, ...]) -> None:
    """Raises OutputError unless a render's mp4 ``out``, its sidecar and (with ``gif``) its
    GIF may all be written (``check_output_path``)."""
    for path in [out, sidecar_path(out)] + ([gif_path(out)] if gif else []):
        check_output_path(path, force=force, inputs=inputs)


# The methods a render scores over the frames that have ground truth.
RENDER_METHODS = ("model", "copy_last", "flow")
# A render's sidecar averages SSIM over every 16th frame with ground truth (MSE, MAE and
# PSNR over every frame; the readouts show PSNR only): at 640x480 SSIM of the three methods
# on every 4th frame was the largest stage of a native render (docs/speed.md). `vidpred
# eval` scores SSIM on every frame.
RENDER_SSIM_EVERY = 16


class TruthBatch(NamedTuple):
    """One model batch of shown frames t that have ground truth; tensors float [0, 1]
    (B, 3, H, W), all on the model's device except ``flow`` and ``motion`` (on the CPU)."""

    targets: list[int]  # the frames t shown
    predicted: torch.Tensor  # the model's prediction of t from the real frames up to t - N
    truth: torch.Tensor  # frame t
    copy: torch.Tensor  # frame t - N: the copy-last baseline
    flow: torch.Tensor  # the flow baseline carried N steps from frame t - N
    # The flow the model warped frame t - 1 along, float (B, 2, H, W); only for the motion
    # panel (one-step predictions).
    motion: torch.Tensor | None = None


def with_baselines(
    frames: torch.Tensor, origins: list[int], predicted: torch.Tensor, horizon: int
) -> TruthBatch:
    """Returns the batch of frames o + horizon for each origin o, with the model's
    ``predicted`` frames (float [0, 1] (B, 3, H, W)), the real ones and both baselines.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
    """
    origin = torch.tensor(origins)
    return TruthBatch(
        targets=[o + horizon for o in origins],
        predicted=predicted,
        truth=frames_to_tensor(frames[origin + horizon]).to(predicted.device),
        copy=frames_to_tensor(frames[origin]).to(predicted.device),
        flow=flow_baseline(frames, origins, horizon)[:, -1],
    )


class Scores(NamedTuple):
    """Per-frame PSNR in dB of one TruthBatch."""

    model: list[float]
    copy_last: list[float]
    flow: list[float]


def score(batch: TruthBatch, metrics: dict[str, MetricAccumulator]) -> Scores:
    """Adds a batch to the running ``metrics`` (keyed by RENDER_METHODS); returns the
    PSNR of each of its frames, for the readouts."""
    return Scores(
        model=metrics["model"].add(batch.predicted, batch.truth),
        copy_last=metrics["copy_last"].add(batch.copy, batch.truth),
        flow=metrics["flow"].add(batch.flow.to(batch.truth.device), batch.truth),
    )


def compose_truth(
    batch: TruthBatch, scores: Scores, count: int, settings: RenderSettings
) -> list[np.ndarray]:
    """Returns the output frames, uint8 RGB, of a scored batch: its panels side by side.

    Args:
        count: the clip's number of frames (for the frame numbers).
    """
    names, horizon = settings.panels, settings.horizon
    nothing = [None] * len(batch.targets)

    def uint8(frames: torch.Tensor) -> np.ndarray:  # float [0, 1] (B, 3, H, W) -> (B, H, W, 3)
        return quantize(frames).cpu().numpy()

    predicted, copy, actual = uint8(batch.predicted), uint8(batch.copy), uint8(batch.truth)
    flow = uint8(batch.flow) if "flow" in names else nothing
    motion = nothing if batch.motion is None else batch.motion.permute(0, 2, 3, 1).numpy()
    return [
        compose_frame(
            frame_panels(
                names,
                predicted=predicted[i],
                copy=copy[i],
                actual=actual[i],
                when=f"{steps_text(horizon)} ahead",
                psnr_model=scores.model[i],
                psnr_copy=scores.copy_last[i],
                frame_text=f"frame {settings.frame_offset + t + 1}/{settings.frame_total or count}",
                flow=flow[i],
                psnr_flow=scores.flow[i],
                motion=motion[i],
            ),
            settings.scale,
        )
        for i, t in enumerate(batch.targets)
    ]


def truth_frames(
    predictor: Predictor,
    frames: torch.Tensor,
    targets: list[int],
    settings: RenderSettings,
    metrics: dict[str, MetricAccumulator],
    batch_size: int = 8,
    gate: FlowGate | None = None,
    adapter: Adapter | None = None,
) -> Iterator[list[np.ndarray]]:
    """Yields, one model batch at a time, the output frames of ``targets`` (frames with
    ground truth), scoring them into ``metrics`` on the way. With ``gate`` (``settings.horizon``
    steps ahead, consecutive targets), the predicted panel shows what it chooses.

    The steps, each callable on its own (``benchmarks/render_breakdown.py`` times them):
    ``one_step_batches`` (one-step predictions; with a horizon, ``Predictor.rollout`` then
    ``with_baselines``), ``score``, ``compose_truth``.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
        targets: frames to show, each >= ``first_shown_frame``.
    """
    if settings.horizon == 1:
        batches = one_step_batches(predictor, frames, targets, settings, batch_size, adapter)
    else:
        origins = [t - settings.horizon for t in targets]
        batches = (
            with_baselines(frames, chunk, preds[:, -1], settings.horizon)
            for chunk, preds in predictor.rollout(frames, origins, settings.horizon, batch_size)
        )
    # The next batch is computed while this one is drawn, unless it must wait for the
    # adapter to learn from this one.
    if overlaps(predictor.device) and adapter is None:
        batches = ahead(batches)
    for batch in batches:
        batch = gated(batch, gate)
        yield compose_truth(batch, score(batch, metrics), len(frames), settings)


def gated(batch: TruthBatch, gate: FlowGate | None) -> TruthBatch:
    """Returns ``batch`` with the predictions ``gate`` chooses (``vidpred.gate``), or as it
    is without one."""
    if gate is None:
        return batch
    flow = batch.flow.to(batch.truth.device)
    # The copy panel's frame is t-1 one step ahead (the gate's cadence uses it only then).
    last = batch.copy.to(batch.truth.device)
    return batch._replace(predicted=gate.choose(batch.predicted, flow, batch.truth, last))


def one_step_batches(
    predictor: Predictor,
    frames: torch.Tensor,
    targets: list[int],
    settings: RenderSettings,
    batch_size: int,
    adapter: Adapter | None = None,
) -> Iterator[TruthBatch]:
    """Yields ``targets`` as TruthBatches of one-step predictions: the values
    ``Predictor.rollout`` and ``with_baselines`` give at horizon 1, with each batch's DIS
    flows asked for once and the model run once (chaining those steps, and running the
    model's trunk again for the motion panel, asked for the flows three times, two of them
    served by ``vidpred.flow``'s memo after hashing both frames, and ran the trunk twice).

    With ``adapter`` the model learns from each batch's frames once the caller asks for the
    next batch (``vidpred.adapt``).

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
    """
    predictor.check_memory(min(batch_size, len(targets)), 0, *frames.shape[1:3])
    shows_motion = "motion" in settings.panels
    for i in range(0, len(targets), batch_size):
        chunk = targets[i : i + batch_size]
        inputs = stack_windows(frames, chunk, predictor.offsets)  # float (B, 3N, H, W)
        # (B, 2P, H, W): the model's flows; the first pair, t-1 -> t-2, is also the flow
        # baseline's motion
        flows = model_flows(frames, chunk, max(predictor.flow_pairs, 1))
        with torch.inference_mode():
            if shows_motion:
                predicted, motion = predictor.forward_with_motion(inputs, flows)
            else:
                predicted, motion = predictor.forward(inputs, flows), None
        last = inputs[:, -3:]  # frame t-1, float (B, 3, H, W): the copy-last baseline
        yield TruthBatch(
            targets=chunk,
            predicted=predicted,
            truth=frames_to_tensor(frames[torch.tensor(chunk)]).to(predicted.device),
            copy=last.to(predicted.device),
            flow=flow_extrapolation(last, flows[:, :2]),
            motion=None if motion is None or motion.flow is None else motion.flow.cpu(),
        )
        if adapter is not None:  # the batch has been shown: its frames may teach now
            adapter.learn(chunk, predicted)


def past_end_frames(
    predictor: Predictor, frames: torch.Tensor, settings: RenderSettings
) -> Iterator[list[np.ndarray]]:
    """Yields the ``settings.extend`` output frames past the end of the clip, one per list.

    Their actual panel shows the last real frame greyed; the flow panel, like copy-last's,
    shows the baseline carried on from the last real frame (with no ground truth it is
    computed only to be shown). Both are streamed frame by frame, so memory does not grow
    with ``extend``.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
    """
    names, extend = settings.panels, settings.extend
    flows = flow_extension(frames, extend) if "flow" in names else None
    predictions = (
        (to_uint8(pred), None if motion is None else motion.permute(1, 2, 0).cpu().numpy())
        for pred, motion in predictor.extend_with_motion(frames, extend)
    )
    yield from compose_past_end(predictions, frames[-1].numpy(), flows, settings)


def compose_past_end(
    predictions: Iterable[tuple[np.ndarray, np.ndarray | None]],
    last: np.ndarray,
    flows: Iterator[np.ndarray] | None,
    settings: RenderSettings,
) -> Iterator[list[np.ndarray]]:
    """Yields the output frames past the end, one per list, from the model's
    (prediction uint8 RGB (H, W, 3), its flow float (H, W, 2) or None), the clip's ``last``
    real frame and the flow baseline's frames carried on (``flow_extension``; None without
    a flow panel)."""
    for k, (predicted, motion) in enumerate(predictions, 1):
        yield [
            compose_frame(
                frame_panels(
                    settings.panels,
                    predicted=predicted,
                    copy=last,
                    actual=None,
                    when=f"{steps_text(k)} past end",
                    flow=next(flows) if flows is not None else None,
                    motion=motion,
                ),
                settings.scale,
            )
        ]


def checked_outputs(
    clip: Path, out: str | Path | None, predictor: Predictor, gif: bool, force: bool
) -> tuple[Path, Callable[[], None]]:
    """Returns (the render's path, its output checks, already passed once): ``out``, or
    renders/<clip>.pred.mp4 (its folder made).

    Raises:
        OutputError: as ``check_render_outputs`` and ``check_render_path``.
    """
    if out is None:
        out = default_render_path(clip)
        out.parent.mkdir(parents=True, exist_ok=True)
    out = Path(out)
    inputs = (clip, *filter(None, [predictor.weights]))
    check_outputs = functools.partial(check_render_outputs, out, gif, force=force, inputs=inputs)
    check_outputs()
    check_render_path(out)
    return out, check_outputs


def renders_native(
    clip: Path, predictor: Predictor, settings: RenderSettings, resolution: str
) -> bool:
    """Returns whether a render asked for at ``resolution`` is drawn at native size; warns
    when native was asked for and cannot be (``native_unavailable``).

    Raises:
        VidpredError: an unknown resolution, or the motion panel of a model that has none.
    """
    if resolution not in RESOLUTIONS:
        raise VidpredError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    if "motion" in settings.panels and motionless(predictor.model_config):
        raise SettingError(lambda n: f"{n('panels')} motion needs a model with a warp head")
    if resolution == "native" and (reason := native_unavailable(predictor, settings)):
        log.warning("%s: rendering at the working size: %s", shown(clip), reason)
        return False
    return resolution == "native"


def working_frames(
    predictor: Predictor,
    video: Video,
    first: int,
    settings: RenderSettings,
    metrics: dict[str, MetricAccumulator],
    batch_size: int,
    gate: FlowGate | None = None,
    adapter: Adapter | None = None,
) -> Iterator[list[np.ndarray]]:
    """Yields a working-size render's output frames: those with ground truth from
    ``first`` on (``truth_frames``), then those past the end (``past_end_frames``)."""
    frames = torch.from_numpy(video.frames)  # uint8 RGB (T, H, W, 3)
    targets = list(range(first, video.num_frames))
    yield from truth_frames(
        predictor, frames, targets, settings, metrics, batch_size, gate, adapter
    )
    yield from past_end_frames(predictor, frames, settings)


def native_unavailable(predictor: Predictor, settings: RenderSettings) -> str | None:
    """Returns why ``predictor`` cannot render at native size with ``settings``, or None."""
    if reason := motionless(predictor.model_config):
        return reason
    if settings.horizon > 1:
        return "native renders show one-step predictions (--horizon 1)"
    return None


def native_frames(
    stream: NativeClip,
    first: int,
    count: int,
    settings: RenderSettings,
    metrics: dict[str, MetricAccumulator],
    gate: FlowGate | None = None,
    adapter: Adapter | None = None,
) -> Iterator[list[np.ndarray]]:
    """``working_frames`` at the clip's own size: one batch of output frames at a time from
    ``stream`` (``vidpred.native``), scored into ``metrics`` on the way, then the frames past
    the end (``native_past_end_frames``).

    Args:
        first: the first frame shown (``first_shown_frame``).
        count: the clip's number of frames.
        adapter: learns from each batch once it is drawn (``vidpred.adapt``; it reads the
            clip's working-size frames).
    """
    natives = stream.batches(first)
    # The next batch is computed while this one is drawn, unless it must wait for the
    # adapter to learn from this one.
    if overlaps(stream.predictor.device) and adapter is None:
        natives = ahead(natives)
    for native in natives:
        batch = TruthBatch(
            targets=native.targets,
            predicted=native.model,
            truth=native.truth,
            copy=native.last,
            flow=native.flow,
            motion=native.motion if "motion" in settings.panels else None,
        )
        with stage("gate and scores"):
            batch = gated(batch, gate)
            scores = score(batch, metrics)
        with stage("compositing"):
            composed = compose_truth(batch, scores, count, settings)
        yield composed
        if adapter is not None:
            with stage("adapting"):
                adapter.learn(native.targets)
    yield from native_past_end_frames(stream, settings)


def native_past_end_frames(
    stream: NativeClip, settings: RenderSettings
) -> Iterator[list[np.ndarray]]:
    """``past_end_frames`` at the clip's own size, continuing from the last frames that
    ``stream`` read."""
    if not settings.extend:
        return
    last_two = torch.from_numpy(np.stack(list(stream.native)[-2:]))  # uint8 RGB (2, H, W, 3)
    flows = flow_extension(last_two, settings.extend) if "flow" in settings.panels else None
    yield from compose_past_end(stream.extend(settings.extend), stream.native[-1], flows, settings)


def write_frames(
    writer: Mp4Writer,
    batches: Iterable[list[np.ndarray]],
    total: int,
    on_progress: Callable[[int, int], None] | None = None,
    keep: bool = False,
) -> list[np.ndarray]:
    """Writes batches of uint8 RGB (H, W, 3) frames to ``writer``, calling ``on_progress``
    with (frames done, ``total``) after each batch; returns the frames if ``keep`` (for a
    GIF), else []."""
    kept: list[np.ndarray] = []
    done = 0
    for batch in batches:
        for frame in batch:
            writer.write(frame)
        if keep:
            kept += batch
        done += len(batch)
        if on_progress:
            on_progress(done, total)
    return kept


def render_metadata(
    clip: Path,
    out: Path,
    predictor: Predictor,
    video: Video,
    settings: RenderSettings,
    first: int,
    written: int,
    metrics: dict[str, MetricAccumulator],
    size: tuple[int, int],
    resolution: str,
    *,
    gate: FlowGate | None = None,
    segment: Segment | None = None,
    adapter: Adapter | None = None,
) -> dict[str, Any]:
    """Returns what a render's sidecar records: the settings (with the gate's share of flow
    frames, the x264 CRF and the segment shown), the weights and their training log, and the
    mean metrics over the frames with ground truth (None where not finite)."""
    weights = predictor.weights.resolve() if predictor.weights else None
    return {
        "video": out.name,
        "gif": gif_path(out).name if settings.gif else None,
        "clip": str(clip.resolve()),
        "weights": str(weights) if weights else None,
        "weights_sha256": _sha256_or_none(weights) if weights else None,
        "training_log": read_training_log(weights),
        "frames": written,
        "fps": video.fps,
        "duration_s": written / video.fps,
        "size": list(size),  # (H, W) of each panel
        "resolution": resolution,
        "working_size": list(video.frames.shape[1:3]),
        "scale": settings.scale,
        "panels": list(settings.panels),
        "horizon": settings.horizon,
        "extend": settings.extend,
        "first_frame": first,
        "metrics": {
            "frames": metrics["model"].count,
            "ssim_every": RENDER_SSIM_EVERY,
            **{m: finite_or_none(metrics[m].summary()) for m in RENDER_METHODS},
        },
        "gate": gate.summary() if gate else None,
        "adapt": adapter.summary() if adapter else None,
        "crf": settings.crf,
        "segment": segment.describe() if segment else None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _sha256_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:  # unreadable, gone, or no longer a regular file: not recorded
        return None


def render(
    clip: str | Path,
    predictor: Predictor,
    out: str | Path | None = None,
    settings: RenderSettings | None = None,
    video_options: VideoOptions | None = None,
    *,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    adapt: AdaptConfig | None = None,
) -> Path:
    """Writes an H.264 mp4 of labelled panels (default "actual | predicted | error") for every
    frame t >= K - 1 + horizon, then ``extend`` frames past the end; returns its path.

    Frame t's prediction is made from the real frames up to t - horizon only (its own
    predictions fed back in between); frames past the end from the clip's last K frames, with
    the last real frame greyed as "actual". The video keeps the source's fps. A JSON sidecar
    (``render_metadata``) records the settings, the weights and the mean metrics of the
    model, copy-last and the flow baseline over the frames with ground truth, at the size
    drawn. At ``resolution="native"`` panels are at the clip's own size (shorter side at most
    ``max_side``; None: no cap): the model's motion applied to the full-size frames, streamed
    (``vidpred.native``). Residual-head models and ``horizon`` > 1 fall back to the working
    size, with a warning.

    Args:
        clip: the input video (never modified or overwritten).
        out: output mp4; default renders/<clip>.pred.mp4.
        settings: what to draw and how to encode it (``RenderSettings``; default: actual |
            predicted | error, one step ahead, CRF 18).
        video_options: how to read the clip and run the model (``VideoOptions``; default:
            native resolution, gated). With a segment, the frames its first prediction
            needs before it are read too, and nothing earlier is decoded where the container
            can seek; a segment is not cached.
        force: replace an existing render.
        on_progress: called with (frames done, frames total).
        adapt: learn while watching (``vidpred.adapt``, one-step renders): the model keeps
            training on the frames already shown; the predictor's weights are put back after.

    Raises:
        VideoError: the clip cannot be read.
        VidpredError: the clip is too short, or an option is out of range or unusable with
            this model.
        OutputError: an output exists (without ``force``), is an input, is not named .mp4,
            is being written by another vidpred, or cannot be written (then the previous
            render, sidecar and GIF are left as they were).
    """
    clip = Path(clip)
    settings, options = settings or RenderSettings(), video_options or VideoOptions()
    horizon, extend, gif, segment = settings.horizon, settings.extend, settings.gif, options.segment
    if adapt is not None and horizon > 1:
        raise SettingError(lambda n: f"{n('adapt')} needs {n('horizon')} 1")
    native = renders_native(clip, predictor, settings, options.resolution_or("native"))
    out, check_outputs = checked_outputs(clip, out, predictor, gif, force)
    # One claim covers the mp4, its sidecar and its GIF: a second render to the same --out
    # is refused until this one ends.
    with claim_output(out, check=check_outputs):
        size = options.size or predictor.data_config.size
        batch_size = frames_per_call(options.batch_size, adapt)
        lead = frames_before_first(predictor.history, horizon)  # read before --start
        if segment is not None:
            video, segment_first, clip_frames = read_segment(clip, size, segment, lead)
        elif options.cache:
            video = read_video_cached(clip, size, options.cache_dir)
            segment_first, clip_frames = 0, 0
        else:
            video, segment_first, clip_frames = read_video(clip, size), 0, 0
        first = first_shown_frame(clip, video.num_frames, predictor.history, settings)
        first = max(first, segment_first)
        total = video.num_frames - first + extend
        max_side = options.max_side
        frame_hw = native_frame_size(clip, max_side) if native else video.frames.shape[1:3]
        settings = dataclasses.replace(
            settings,
            scale=settings.scale or default_scale(frame_hw),
            frame_offset=video.offset,
            frame_total=clip_frames or video.offset + video.num_frames,
        )
        check_render_size(clip, frame_hw, len(settings.panels), settings.scale, total, gif)
        metrics = {m: MetricAccumulator(ssim_every=RENDER_SSIM_EVERY) for m in RENDER_METHODS}
        clip_gate = FlowGate(options.gate, steps=horizon) if options.gate else None
        with adapting(predictor, torch.from_numpy(video.frames), adapt, clip_gate) as adapter:
            if native:
                # Estimated at the full size, where the native batches' frames and flows live.
                predictor.check_memory(min(batch_size, max(total, 1)), 0, *frame_hw)
                pairs = decode_pairs(clip, size, max_side, video.offset, video.num_frames)
                stream = NativeClip(predictor, pairs, batch_size)
                batches = native_frames(
                    stream, first, video.num_frames, settings, metrics, clip_gate, adapter
                )
            else:
                batches = working_frames(
                    predictor, video, first, settings, metrics, batch_size, clip_gate, adapter
                )
            with Mp4Writer(out, video.fps, crf=settings.crf) as writer:
                kept = write_frames(writer, batches, total, on_progress, keep=gif)
                written = writer.frames_written
                writer.finish()  # ffmpeg exited 0 and the file decodes to every frame
                shown_at = (frame_hw, "native" if native else "working")
                meta = render_metadata(
                    clip,
                    out,
                    predictor,
                    video,
                    settings,
                    video.offset + first,
                    written,
                    metrics,
                    *shown_at,
                    gate=clip_gate,
                    segment=segment,
                    adapter=adapter,
                )
                # The GIF and the sidecar go to temp files too, renamed just after the mp4: a
                # failure anywhere (a full disk) leaves all three as they were.
                if gif:
                    writer.add_companion(gif_temp(gif_path(out), kept, video.fps), gif_path(out))
                writer.add_companion(sidecar_temp(sidecar_path(out), meta), sidecar_path(out))
        return out
