"""Predictions at the clip's own resolution (vidpred.native), in render and eval."""

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import exact_render, write_lossless
from torch.nn import functional as F

from vidpred.data import DataConfig, frames_to_tensor, stack_windows
from vidpred.errors import VidpredError
from vidpred.evaluation import evaluate
from vidpred.flow import base_flows
from vidpred.metrics import psnr
from vidpred.model import ModelConfig, Motion, STResNet, compose
from vidpred.native import (
    NativeClip,
    apply_motion,
    decode_pairs,
    native_motion,
    native_short_side,
    resize_motion,
)
from vidpred.panels import FOOTER_HEIGHT, GAP, LABEL_HEIGHT
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.video import read_video
from vidpred.video_options import VideoOptions

# Global motion of the test clip, native pixels per frame (dx, dy).
MOTION = (4, 2)


def panning_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 RGB (T, H, W, 3): a smooth random texture panning by MOTION each frame."""
    rng = np.random.default_rng(seed)
    big = rng.random((height + frames * MOTION[1] + 16, width + frames * MOTION[0] + 16, 3))
    texture = cv2.GaussianBlur(big.astype(np.float32), (0, 0), 1.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return np.stack(
        [
            (
                255
                * texture[
                    8 + t * MOTION[1] : 8 + t * MOTION[1] + height,
                    8 + t * MOTION[0] : 8 + t * MOTION[0] + width,
                ][::-1, ::-1]
            ).round()
            for t in range(frames)
        ]
    ).astype(np.uint8)  # reversed window: the content moves by +MOTION


def working(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def test_the_models_motion_applied_at_native_size_recovers_the_pan_and_beats_copy_last():
    native = panning_clip(8, 192, 288)  # working size: half of it
    small = working(native, 96, 144)
    # untrained: its flow is the DIS flow, no residual
    model = STResNet(ModelConfig(base_flow="dis")).eval()
    targets = [6, 7]
    small_t = torch.from_numpy(small)
    with torch.no_grad():
        motion = model.motion(
            stack_windows(small_t, targets, model.config.input_offsets()),
            base_flows(small_t, targets),
        )
        big = resize_motion(motion, (192, 288))
        last = frames_to_tensor(native[[t - 1 for t in targets]])
        truth = frames_to_tensor(native[targets])
        predicted = apply_motion(last, motion)
        upscaled = F.interpolate(
            compose(frames_to_tensor(small[[t - 1 for t in targets]]), motion),
            size=(192, 288),
            mode="bicubic",
        ).clamp(0, 1)
    # The warp samples the last frame at p + flow: the flow of a pan by +MOTION is -MOTION.
    interior = big.flow[:, :, 32:-32, 32:-32]
    assert interior[:, 0].median().item() == pytest.approx(-MOTION[0], abs=0.3)
    assert interior[:, 1].median().item() == pytest.approx(-MOTION[1], abs=0.3)
    native_psnr = psnr(predicted, truth).mean().item()
    assert native_psnr > psnr(last, truth).mean().item() + 6
    assert native_psnr > psnr(upscaled, truth).mean().item() + 2  # sharper than upscaling


def test_resizing_motion_scales_the_flow_per_axis_and_keeps_a_same_size_motion():
    motion = Motion(
        residual=torch.zeros(1, 3, 4, 6), flow=torch.ones(1, 2, 4, 6), blend=torch.zeros(1, 1, 4, 6)
    )
    assert resize_motion(motion, (4, 6)) is motion
    big = resize_motion(motion, (12, 12))  # height x3, width x2
    assert big.flow.shape == (1, 2, 12, 12) and big.blend.shape == (1, 1, 12, 12)
    assert torch.allclose(big.flow[0, 0], torch.full((12, 12), 2.0))
    assert torch.allclose(big.flow[0, 1], torch.full((12, 12), 3.0))
    residual_only = resize_motion(Motion(residual=torch.zeros(1, 3, 4, 6)), (8, 12))
    assert residual_only.flow is None and residual_only.residual.shape == (1, 3, 8, 12)


@pytest.mark.parametrize(
    "size, cap, expected",
    [((480, 640), 720, None), ((1080, 1920), 720, 720), ((481, 641), None, None)],
)
def test_native_decoding_caps_only_the_shorter_side(size, cap, expected):
    assert native_short_side(*size, cap) == expected


def test_streamed_batches_are_what_the_whole_clip_in_memory_gives(tmp_path):
    """native_batches keeps only history + batch frames: every target from the first is
    predicted once, from the right frames, whatever the batch size."""
    clip = write_lossless(tmp_path / "pan.avi", panning_clip(13, 96, 144))
    model = STResNet(ModelConfig()).eval()
    predictor = Predictor(
        model, model.config, DataConfig(size=48), torch.device("cpu"), precision="fp32"
    )
    native = torch.from_numpy(read_video(clip).frames)
    small = torch.from_numpy(read_video(clip, 48).frames)
    pairs = list(decode_pairs(clip, 48, None))
    assert all(np.array_equal(a, b) for (a, _), b in zip(pairs, native.numpy(), strict=True))
    assert all(np.array_equal(a, b) for (_, a), b in zip(pairs, small.numpy(), strict=True))
    with torch.no_grad():
        whole = native_motion(predictor, small, native, list(range(6, 13))).native
        shown = {}
        for batch_size, read_ahead in ((1, True), (3, False), (3, True), (8, True)):
            stream = NativeClip(predictor, pairs, batch_size, read_ahead=read_ahead)
            batches = list(stream.batches(6))
            assert [t for b in batches for t in b.targets] == list(range(6, 13))
            streamed = torch.cat([b.model for b in batches])
            assert torch.allclose(streamed, whole, atol=1e-6)
            truth = torch.cat([b.truth for b in batches])
            assert torch.equal(truth, frames_to_tensor(native[6:13]))
            copy = torch.cat([b.last for b in batches])
            assert psnr(streamed, truth).mean() > psnr(copy, truth).mean() + 6
            if batch_size == 3:  # reading ahead on a second thread changes nothing
                shown[read_ahead] = torch.cat([torch.cat([b.model, b.flow]) for b in batches])
        assert torch.equal(shown[True], shown[False])


# --- render and eval at the clip's own size ------------------------------------------------


@pytest.fixture
def pan_clip(tmp_path) -> Path:
    """A 96x144 lossless clip panning by MOTION: three times the trained model's 32 px."""
    return write_lossless(tmp_path / "pan.avi", panning_clip(16, 96, 144))


def test_render_draws_native_panels_by_default_and_beats_copy_last(
    tmp_path, pan_clip, trained_checkpoint
):
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    out = render(
        pan_clip,
        predictor,
        tmp_path / "r.mp4",
        settings=RenderSettings(panels="actual,predicted,motion"),
    )
    meta = read_sidecar(sidecar_path(out))
    assert meta["resolution"] == "native" and meta["size"] == [96, 144]
    assert meta["working_size"] == [32, 48] and meta["scale"] == 2  # panels under 200 px
    height, width = read_video(out).frames.shape[1:3]
    assert (height, width) == (LABEL_HEIGHT + 2 * 96 + FOOTER_HEIGHT, 3 * 2 * 144 + 2 * GAP)
    metrics = meta["metrics"]
    assert metrics["frames"] == 16 - predictor.history
    assert metrics["model"]["psnr"] > metrics["copy_last"]["psnr"] + 5
    # The working-size render of the same clip: panels at 32x48, blurrier and worse.
    working = render(
        pan_clip, predictor, tmp_path / "w.mp4", video_options=VideoOptions(resolution="working")
    )
    assert read_sidecar(sidecar_path(working))["size"] == [32, 48]
    # --max-side caps the shorter side, aspect kept.
    capped = render(
        pan_clip,
        predictor,
        tmp_path / "c.mp4",
        settings=RenderSettings(scale=1),
        video_options=VideoOptions(max_side=48),
    )
    assert read_sidecar(sidecar_path(capped))["size"] == [48, 72]


def test_native_render_extends_past_the_end(tmp_path, pan_clip, trained_checkpoint):
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    out = render(
        pan_clip,
        predictor,
        tmp_path / "r.mp4",
        settings=RenderSettings(extend=4, panels="predicted,flow"),
    )
    assert read_video(out).num_frames == 16 - predictor.history + 4
    assert read_sidecar(sidecar_path(out))["frames"] == 16 - predictor.history + 4


def test_a_residual_model_renders_at_working_size_and_says_why(tmp_path, pan_clip, caplog):
    model = STResNet(ModelConfig(frames=2, width=4, depth=1, head="residual")).eval()
    predictor = Predictor(model, model.config, DataConfig(size=32), torch.device("cpu"))
    with caplog.at_level(logging.WARNING):
        out = render(pan_clip, predictor, tmp_path / "r.mp4")
    assert read_sidecar(sidecar_path(out))["resolution"] == "working"
    assert "rendering at the working size: a residual-head model" in caplog.text
    with pytest.raises(VidpredError, match="^panels motion needs a model with a warp head"):
        render(pan_clip, predictor, tmp_path / "m.mp4", settings=RenderSettings(panels="motion"))


def test_eval_at_native_resolution_scores_full_size_frames(pan_clip, trained_checkpoint):
    """Its copy-last value against PSNR computed here from the decoded frames alone."""
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    result = evaluate(
        [pan_clip], predictor, tail=0.5, video_options=VideoOptions(resolution="native")
    )
    working = evaluate([pan_clip], predictor, tail=0.5)
    assert result["resolution"] == "native" and working["resolution"] == "working"
    assert set(result) == set(working)
    video = result["videos"][0]
    assert set(video) == set(working["videos"][0])
    assert video["resolution_size"] == [96, 144] and working["videos"][0]["resolution_size"] == [
        32,
        48,
    ]
    frames = read_video(pan_clip).frames.astype(np.float64) / 255  # (16, 96, 144, 3)
    targets = range(16 - video["targets"], 16)
    expected = np.mean(
        [10 * np.log10(1 / np.mean((frames[t] - frames[t - 1]) ** 2)) for t in targets]
    )
    assert video["copy_last"]["psnr"] == pytest.approx(expected, abs=1e-3)
    assert video["model"]["psnr"] > video["copy_last"]["psnr"] + 5


def test_a_native_render_shows_what_the_slower_paths_showed(tmp_path, pan_clip, trained_checkpoint):
    """Issue 24's faster native render (OpenCV remap for the warps, the next batch read on a
    second thread) against the paths it replaced (integer gathers, no read-ahead), on the
    same clip, losslessly encoded: at most one grey level apart, on a few pixels (the two
    warps differ by float rounding, which can flip a rounding to 8 bits)."""
    from unittest import mock

    import vidpred.native
    import vidpred.warping

    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    now = exact_render(pan_clip, predictor, tmp_path / "now.mp4")
    original_init = vidpred.native.NativeClip.__init__

    def without_read_ahead(self, predictor, pairs, batch_size=8, read_ahead=True):
        original_init(self, predictor, pairs, batch_size, read_ahead=False)

    with (
        mock.patch.object(vidpred.warping, "_remap_applies", lambda *_: False),
        mock.patch.object(vidpred.native.NativeClip, "__init__", without_read_ahead),
    ):
        before = exact_render(pan_clip, predictor, tmp_path / "before.mp4")
    new, old = read_video(now).frames.astype(int), read_video(before).frames.astype(int)
    assert new.shape == old.shape
    width = 2 * 144  # the panels are drawn at scale 2
    predicted = np.s_[:, LABEL_HEIGHT : LABEL_HEIGHT + 2 * 96, width + GAP : 2 * width + GAP]
    assert np.abs(new[predicted] - old[predicted]).max() <= 1
    # Elsewhere only the error panel's colour of those few pixels moves; captions, readouts
    # and the actual panel are the same.
    assert (new != old).mean() < 1e-4
