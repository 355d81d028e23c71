"""What a render shows: rollouts, frames past the end, panels, readouts, GIF and sidecar."""

import cv2
import numpy as np
import pytest
import torch
from helpers import moving_square, write_lossless

import vidpred.flow as flow_module
import vidpred.panels as panels_module
import vidpred.rendering as render_module
from vidpred.errors import VidpredError
from vidpred.evaluation import evaluate
from vidpred.flow import flow_rollout, predict_flow
from vidpred.panels import (
    ERROR_COLORMAP,
    ERROR_SCALE,
    FOOTER_HEIGHT,
    GAP,
    LABEL_HEIGHT,
    error_heatmap,
    parse_panels,
)
from vidpred.predict import Predictor, quantize
from vidpred.rendering import RENDER_SSIM_EVERY, RenderSettings, render
from vidpred.sidecar import gif_path, read_sidecar, sidecar_path
from vidpred.video import read_video
from vidpred.video_options import VideoOptions

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def shown(monkeypatch):
    """Records what render puts in each output frame: the arguments of frame_panels, and
    the captions and images of the panels it returns, one dict per frame."""
    frames = []
    real = render_module.frame_panels

    def spy(names, **kwargs):
        panels = real(names, **kwargs)
        frames.append(
            {
                **kwargs,
                "captions": [panel.caption for panel in panels],
                "images": [panel.image for panel in panels],
            }
        )
        return panels

    monkeypatch.setattr(render_module, "frame_panels", spy)
    return frames


def panel_image(frame: dict, caption_start: str) -> np.ndarray:
    """Returns the image of the one panel of a recorded frame whose caption starts so."""
    [image] = [
        image
        for caption, image in zip(frame["captions"], frame["images"], strict=True)
        if caption.startswith(caption_start)
    ]
    return image


def mean_psnr(predictions: np.ndarray, actual: np.ndarray) -> float:
    """Returns the mean over frames of PSNR in dB, in float64, of [0, 1] (T, H, W, 3) arrays."""
    mse = ((predictions.astype(np.float64) - actual) ** 2).mean(axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(1 / mse)))


def colormap(level: int) -> np.ndarray:
    return cv2.cvtColor(cv2.applyColorMap(np.uint8([[level]]), ERROR_COLORMAP), cv2.COLOR_BGR2RGB)[
        0, 0
    ]


def test_horizon_render_shows_n_step_predictions_labelled_as_such(
    tmp_path, trained_checkpoint, shown
):
    frames = moving_square(24, 32, 32, speed=3)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    out = render(clip, predictor, tmp_path / "r.mp4", settings=RenderSettings(horizon=3, scale=1))
    first = predictor.history - 1 + 3
    assert len(shown) == read_video(out).num_frames == 24 - first
    [(_, rolled)] = predictor.rollout(torch.from_numpy(frames), [first - 3], 3)
    assert np.array_equal(shown[0]["predicted"], quantize(rolled[0, 2]).numpy())
    for i, frame in enumerate(shown):
        t = first + i
        assert frame["captions"] == ["actual", "predicted, 3 steps ahead", "abs error"]
        assert np.array_equal(frame["actual"], frames[t])
        assert np.array_equal(frame["copy"], frames[t - 3])  # copy-last, also 3 steps ahead
    meta = read_sidecar(sidecar_path(out))
    assert (
        meta["horizon"] == 3
        and meta["frames"] == 24 - first
        and meta["metrics"]["frames"] == 24 - first
    )


def test_horizon_render_never_uses_real_frames_after_t_minus_n(tmp_path, trained_checkpoint, shown):
    """Render a clip, then the same clip with frames after j replaced by noise: the shown
    predictions of frames t <= j + N must not change."""
    frames = moving_square(24, 32, 32, speed=3)
    noisy = frames.copy()
    j, horizon = 12, 3
    noisy[j + 1 :] = np.random.default_rng(1).integers(0, 256, noisy[j + 1 :].shape, dtype=np.uint8)
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    views = RenderSettings(horizon=horizon, panels="predicted,flow")
    render(write_lossless(tmp_path / "a.avi", frames), predictor, tmp_path / "a.mp4", views)
    clean = [(f["predicted"], f["flow"]) for f in shown]
    shown.clear()
    render(write_lossless(tmp_path / "b.avi", noisy), predictor, tmp_path / "b.mp4", views)
    first = predictor.history - 1 + horizon
    unaffected = j + horizon - first + 1  # frames first .. j + N
    for i in range(unaffected):
        assert np.array_equal(clean[i][0], shown[i]["predicted"]), f"frame {first + i}"
        assert np.array_equal(clean[i][1], shown[i]["flow"]), f"flow baseline, frame {first + i}"
    assert not np.array_equal(clean[unaffected][0], shown[unaffected]["predicted"])
    assert not np.array_equal(clean[unaffected][1], shown[unaffected]["flow"])


def test_extend_appends_predictions_past_the_end_with_the_actual_panel_greyed(
    tmp_path, trained_checkpoint, shown
):
    frames = moving_square(12, 32, 32)
    clip = write_lossless(tmp_path / "clip.avi", frames, fps=10)
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    out = render(
        clip,
        predictor,
        tmp_path / "r.mp4",
        settings=RenderSettings(extend=5, panels="actual,predicted,error,copy_last,flow"),
    )
    assert read_video(out).num_frames == (12 - 4) + 5
    past = shown[-5:]
    [(_, rolled)] = predictor.rollout(torch.from_numpy(frames), [11], 5)
    flow_rolled = flow_rollout(frames, [11], 5)[0]  # (5, 3, H, W): carried on from frame 11
    for k, frame in enumerate(past, start=1):
        assert frame["actual"] is None
        assert frame["captions"] == [
            "actual: clip ended",
            f"predicted, {k} step{'s' if k > 1 else ''} past end",
            "error: no ground truth",
            f"copy-last, {k} step{'s' if k > 1 else ''} past end",
            f"flow baseline (DIS), {k} step{'s' if k > 1 else ''} past end",
        ]
        assert np.array_equal(frame["predicted"], quantize(rolled[0, k - 1]).numpy())
        assert np.array_equal(frame["copy"], frames[-1])
        assert np.array_equal(panel_image(frame, "flow"), quantize(flow_rolled[k - 1]).numpy())
        assert frame.get("psnr_flow") is None
    meta = read_sidecar(sidecar_path(out))
    assert meta["extend"] == 5 and meta["frames"] == 13 and meta["metrics"]["frames"] == 8
    assert meta["duration_s"] == pytest.approx(1.3)


def test_extend_works_on_a_clip_with_only_k_frames(tmp_path, trained_checkpoint):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(4, 32, 32))
    out = render(
        clip,
        Predictor.from_checkpoint(trained_checkpoint, "cpu"),
        tmp_path / "r.mp4",
        settings=RenderSettings(extend=3),
    )
    assert read_video(out).num_frames == 3
    meta = read_sidecar(sidecar_path(out))
    assert meta["metrics"] == {
        "frames": 0,
        "ssim_every": RENDER_SSIM_EVERY,
        "model": None,
        "copy_last": None,
        "flow": None,
    }


@pytest.mark.parametrize(
    ("panels", "scale"), [("actual,predicted,error,copy_last", 1), ("error", 3)]
)
def test_panels_and_scale_set_the_frame_size(tmp_path, trained_checkpoint, panels, scale):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(8, 32, 48))
    out = render(
        clip,
        Predictor.from_checkpoint(trained_checkpoint, "cpu"),
        tmp_path / "r.mp4",
        settings=RenderSettings(panels=panels, scale=scale),
    )
    n = len(panels.split(","))
    height, width = read_video(out).frames.shape[1:3]
    assert (height, width) == (
        LABEL_HEIGHT + 32 * scale + FOOTER_HEIGHT,
        n * 48 * scale + (n - 1) * GAP,
    )


def test_psnr_readouts_are_per_frame_psnr_of_model_and_copy_last(
    tmp_path, trained_checkpoint, shown
):
    frames = moving_square(10, 32, 32, speed=2)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    out = render(clip, predictor, tmp_path / "r.mp4")
    x = frames.astype(np.float64) / 255.0
    for i, frame in enumerate(shown):
        t = 4 + i
        expected_copy = 10 * np.log10(1 / ((x[t] - x[t - 1]) ** 2).mean())
        assert frame["psnr_copy"] == pytest.approx(expected_copy, abs=1e-3)
    # The sidecar's means are the one-step metrics that eval reports for the same frames.
    result = evaluate([clip], predictor)["videos"][0]
    meta = read_sidecar(sidecar_path(out))["metrics"]
    assert meta["model"]["psnr"] == pytest.approx(result["model"]["psnr"], rel=1e-5)
    assert meta["copy_last"]["psnr"] == pytest.approx(result["copy_last"]["psnr"], rel=1e-5)
    assert np.mean([f["psnr_model"] for f in shown]) == pytest.approx(
        meta["model"]["psnr"], rel=1e-5
    )


def test_flow_panel_and_metrics_are_the_one_step_flow_baseline(tmp_path, trained_checkpoint, shown):
    frames = moving_square(10, 32, 32, speed=2)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    out = render(
        clip,
        Predictor.from_checkpoint(trained_checkpoint, "cpu"),
        tmp_path / "r.mp4",
        settings=RenderSettings(panels="actual,predicted,flow", scale=1),
    )
    targets = list(range(4, 10))
    expected = predict_flow(frames, targets)  # (T', 3, H, W), computed here independently
    x = frames.astype(np.float64) / 255.0
    for i, (frame, t) in enumerate(zip(shown, targets, strict=True)):
        assert frame["captions"] == [
            "actual",
            "predicted, 1 step ahead",
            "flow baseline (DIS), 1 step ahead",
        ]
        assert np.array_equal(panel_image(frame, "flow"), quantize(expected[i]).numpy())
        psnr = mean_psnr(expected[i : i + 1].permute(0, 2, 3, 1).numpy(), x[t : t + 1])
        assert frame["psnr_flow"] == pytest.approx(psnr, abs=1e-3)
    meta = read_sidecar(sidecar_path(out))
    flow = meta["metrics"]["flow"]
    assert flow["psnr"] == pytest.approx(
        mean_psnr(expected.permute(0, 2, 3, 1).numpy(), x[targets]), abs=1e-3
    )
    assert {"mse", "mae", "psnr", "ssim", "psnr_median"} == flow.keys()
    # Constant motion is what the flow baseline assumes: it beats copy-last on a moving square.
    assert flow["psnr"] > meta["metrics"]["copy_last"]["psnr"] + 3


def test_flow_panel_with_a_horizon_is_the_flow_baseline_carried_n_steps(
    tmp_path, trained_checkpoint, shown
):
    frames = moving_square(16, 32, 32, speed=3)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    out = render(
        clip,
        predictor,
        tmp_path / "r.mp4",
        settings=RenderSettings(horizon=3, panels="flow,predicted"),
    )
    first = predictor.history - 1 + 3
    targets = list(range(first, 16))
    rolled = flow_rollout(frames, [t - 3 for t in targets], 3)[:, 2]  # (T', 3, H, W)
    assert len(shown) == len(targets)
    for i, frame in enumerate(shown):
        assert frame["captions"][0] == "flow baseline (DIS), 3 steps ahead"
        assert np.array_equal(frame["flow"], quantize(rolled[i]).numpy())
    # Not the one-step baseline under another name: its own predictions were fed back.
    assert not torch.equal(rolled, predict_flow(frames, targets))
    x = frames.astype(np.float64) / 255.0
    meta = read_sidecar(sidecar_path(out))
    assert meta["metrics"]["flow"]["psnr"] == pytest.approx(
        mean_psnr(rolled.permute(0, 2, 3, 1).numpy(), x[targets]), abs=1e-3
    )


def test_flow_baseline_from_the_first_frame_stays_still_and_reads_no_later_frame():
    """A model with history 1 starts rollouts at frame 0, which has no motion before it: the
    baseline is frame 0 (zero flow), never a flow against frame -1 (the clip's last frame)."""
    frames = torch.from_numpy(moving_square(6, 32, 32, speed=3))
    out = flow_module.flow_baseline(frames, [0, 2], 3)  # (2, 3, 3, H, W)
    first = frames[0].permute(2, 0, 1).float() / 255
    assert all(torch.equal(step, first) for step in out[0])
    assert torch.equal(out[1], flow_rollout(frames, [2], 3)[0])
    assert torch.equal(flow_module.flow_baseline(frames, [0], 1)[0, 0], first)


def test_predicted_readout_names_the_flow_baseline_and_fits_the_default_panel():
    image = np.zeros((96, 172, 3), np.uint8)
    panels = panels_module.frame_panels(
        ("predicted", "flow"),
        predicted=image,
        copy=image,
        actual=image,
        flow=image,
        when="1 step ahead",
        psnr_model=27.43,
        psnr_copy=25.52,
        psnr_flow=26.14,
    )
    assert panels[0].readout[0] == "PSNR 27.4 dB, copy-last 25.5, flow 26.1"
    assert panels[1].readout[0] == "PSNR 26.1 dB"
    # At the default size and scale (96 x 172, 2x) the whole readout is shown...
    assert np.array_equal(
        panels_module.text_strip(2 * 172, panels[0].readout),
        panels_module.text_strip(2 * 172, panels[0].readout[0]),
    )
    # ...and a narrow panel falls back to a shorter form that still names the flow baseline.
    assert np.array_equal(
        panels_module.text_strip(140, panels[0].readout),
        panels_module.text_strip(140, "27.4 dB | copy 25.5 | flow 26.1"),
    )


def test_error_heatmap_is_dark_for_no_error_and_saturates_at_the_scale():
    a = np.full((4, 6, 3), 100, np.uint8)
    assert (error_heatmap(a, a) == colormap(0)).all()
    far = a + np.uint8(round(ERROR_SCALE * 255 * 1.5))
    assert (error_heatmap(far, a) == colormap(255)).all()
    half = a + np.uint8(round(ERROR_SCALE * 255 / 2))
    assert (error_heatmap(half, a) == colormap(128)).all()


def test_upscaled_frame_shows_model_pixels_and_readouts_drawn_at_full_width():
    """At --scale 2 each model pixel is a 2x2 block, while the readout text under a panel is
    drawn at the upscaled width (sharp), not stretched from a strip drawn at the panel's."""
    rng = np.random.default_rng(0)
    actual, predicted = rng.integers(0, 256, (2, 12, 40, 3), dtype=np.uint8)
    panels = panels_module.frame_panels(
        ("actual", "predicted"),
        predicted=predicted,
        copy=actual,
        actual=actual,
        when="1 step ahead",
        psnr_model=31.0,
        psnr_copy=30.0,
        frame_text="frame 5/9",
    )
    frame = panels_module.compose_frame(panels, scale=2)
    assert frame.shape == (LABEL_HEIGHT + 24 + FOOTER_HEIGHT, 2 * 80 + GAP, 3)
    image = frame[LABEL_HEIGHT : LABEL_HEIGHT + 24]
    assert np.array_equal(image[:, :80], actual.repeat(2, axis=0).repeat(2, axis=1))
    assert np.array_equal(image[:, 80 + GAP :], predicted.repeat(2, axis=0).repeat(2, axis=1))
    footer = frame[LABEL_HEIGHT + 24 :, :80]
    assert np.array_equal(footer, panels_module.text_strip(80, "frame 5/9"))
    stretched = cv2.resize(
        panels_module.text_strip(40, "frame 5/9"),
        (80, FOOTER_HEIGHT),
        interpolation=cv2.INTER_NEAREST,
    )
    assert not np.array_equal(footer, stretched)


def test_gif_is_written_beside_the_mp4_with_the_same_frames(tmp_path, trained_checkpoint):
    import imageio.v3 as iio

    clip = write_lossless(tmp_path / "clip.avi", moving_square(9, 32, 32), fps=10)
    out = render(
        clip,
        Predictor.from_checkpoint(trained_checkpoint, "cpu"),
        tmp_path / "r.mp4",
        settings=RenderSettings(gif=True, scale=1),
    )
    gif = iio.imread(gif_path(out), index=None)  # (T, H, W, C)
    assert gif.shape[:3] == (9 - 4, *read_video(out).frames.shape[1:3])
    assert read_sidecar(sidecar_path(out))["gif"] == "r.gif"


def test_sidecar_records_weights_and_their_training_log(tmp_path, trained_checkpoint):
    import hashlib
    import json

    from vidpred.checkpoint import metrics_log_path

    clip = write_lossless(tmp_path / "clip.avi", moving_square(8, 32, 32))
    out = render(clip, Predictor.from_checkpoint(trained_checkpoint, "cpu"), tmp_path / "r.mp4")
    meta = read_sidecar(sidecar_path(out))
    assert meta["weights"] == str(trained_checkpoint.resolve())
    assert meta["weights_sha256"] == hashlib.sha256(trained_checkpoint.read_bytes()).hexdigest()
    rows = [
        json.loads(line) for line in metrics_log_path(trained_checkpoint).read_text().splitlines()
    ]
    assert meta["training_log"] == rows and rows
    assert meta["video"] == "r.mp4" and meta["panels"] == ["actual", "predicted", "error"]


def test_existing_sidecar_or_gif_is_not_overwritten_without_force(tmp_path, trained_checkpoint):
    from vidpred.errors import OutputError

    clip = write_lossless(tmp_path / "clip.avi", moving_square(8, 32, 32))
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    (tmp_path / "r.json").write_text("mine")
    with pytest.raises(OutputError, match="--force"):
        render(clip, predictor, tmp_path / "r.mp4")
    assert (tmp_path / "r.json").read_text() == "mine" and not (tmp_path / "r.mp4").exists()


def test_flow_is_a_panel_but_not_a_default_one():
    assert parse_panels("actual, Flow,predicted") == ("actual", "flow", "predicted")
    assert "flow" not in RenderSettings().panels


@pytest.mark.parametrize("text", ["actual,nope", "", "error,error"])
def test_bad_panels_are_refused(text):
    with pytest.raises(VidpredError, match="^panels: "):
        parse_panels(text)


def test_clip_too_short_for_the_horizon_names_the_horizon(tmp_path, trained_checkpoint):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(6, 32, 32))
    with pytest.raises(VidpredError, match="--horizon 3"):
        render(
            clip,
            Predictor.from_checkpoint(trained_checkpoint, "cpu"),
            tmp_path / "r.mp4",
            settings=RenderSettings(horizon=3),
        )


def test_cli_render_options(tmp_path, trained_checkpoint, capsys):
    from vidpred.cli import main

    clip = write_lossless(tmp_path / "clip.avi", moving_square(10, 32, 32))
    out = tmp_path / "r.mp4"
    args = [
        "render",
        str(clip),
        "--weights",
        str(trained_checkpoint),
        "--out",
        str(out),
        "--horizon",
        "2",
        "--extend",
        "3",
        "--panels",
        "actual,copy_last,flow",
        "--gif",
        "--scale",
        "1",
    ]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    meta = read_sidecar(sidecar_path(out))
    assert (meta["horizon"], meta["extend"], meta["panels"], meta["scale"]) == (
        2,
        3,
        ["actual", "copy_last", "flow"],
        1,
    )
    assert gif_path(out).is_file() and meta["frames"] == (10 - 5) + 3
    assert (
        main(["render", str(clip), "--weights", str(trained_checkpoint), "--panels", "actual,oops"])
        == 1
    )
    err = capsys.readouterr().err
    assert "oops" in err and err.strip().count("\n") == 0


def test_one_step_render_batches_equal_the_rollout_and_baselines_bit_for_bit(trained_checkpoint):
    """Render's one-step path runs DIS and the model once per batch; what it shows must be
    exactly what the general path (rollout, with_baselines, the model's motion) gives."""
    from vidpred.data import stack_windows
    from vidpred.flow import model_flows
    from vidpred.rendering import RenderSettings, one_step_batches, with_baselines

    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    frames = torch.from_numpy(moving_square(20, speed=3))
    targets = list(range(predictor.history, 20))
    settings = RenderSettings(panels=("actual", "predicted", "motion"))
    fast = list(one_step_batches(predictor, frames, targets, settings, batch_size=6))
    origins = [t - 1 for t in targets]
    slow = [
        with_baselines(frames, chunk, preds[:, -1], 1)
        for chunk, preds in predictor.rollout(frames, origins, 1, batch_size=6)
    ]
    assert [b.targets for b in fast] == [b.targets for b in slow]
    for a, b in zip(fast, slow, strict=True):
        for name in ("predicted", "truth", "copy", "flow"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
        inputs = stack_windows(frames, b.targets, predictor.offsets)
        flows = model_flows(frames, b.targets, predictor.flow_pairs)
        motion = predictor.motion(inputs, flows).flow
        assert torch.equal(a.motion, motion)
    assert not torch.equal(fast[0].predicted, fast[0].copy)  # the model does move pixels


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_computing_ahead_changes_nothing_a_render_shows(
    tmp_path, trained_checkpoint, monkeypatch, resolution
):
    """On CUDA render computes the next batch while it draws one (vidpred.overlap); forced
    on here, on the CPU, the video and its metrics are the same as without."""
    frames = moving_square(30, 32, 32, speed=3)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    outputs = {}
    for overlap in (False, True):
        monkeypatch.setattr(render_module, "overlaps", lambda device, on=overlap: on)
        out = render(
            clip,
            predictor,
            tmp_path / f"{overlap}.mp4",
            settings=RenderSettings(panels="actual,predicted,flow,motion"),
            video_options=VideoOptions(resolution=resolution, batch_size=4),
        )
        outputs[overlap] = (read_video(out).frames, read_sidecar(sidecar_path(out))["metrics"])
    assert np.array_equal(outputs[False][0], outputs[True][0])
    assert outputs[False][1] == outputs[True][1]
