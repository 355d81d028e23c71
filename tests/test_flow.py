"""The classical optical-flow baseline, and models that start from it."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from helpers import moving_square, write_lossless

from vidpred.checkpoint import save_checkpoint
from vidpred.data import DataConfig, WindowDataset, load_flows, load_videos
from vidpred.evaluation import evaluate
from vidpred.flow import base_flows, predict_flow
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.training import TrainConfig, train
from vidpred.video import read_video
from vidpred.video_options import VideoOptions


def textured_pan(
    num_frames: int = 24,
    height: int = 40,
    width: int = 56,
    dx: float = 1.5,
    dy: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Returns uint8 RGB (T, H, W, 3): a smooth random texture panning by (dx, dy) px a frame."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(
        rng.integers(0, 256, (height * 3, width * 3, 3)).astype(np.float32), (0, 0), 2.5
    )
    big = cv2.normalize(big, None, 10, 245, cv2.NORM_MINMAX)
    frames = []
    for t in range(num_frames):
        m = np.float32([[1, 0, width - dx * t], [0, 1, height - dy * t]])  # view moves
        frames.append(
            cv2.warpAffine(big, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        )
    return np.clip(np.stack(frames), 0, 255).round().astype(np.uint8)


def reference_flow_prediction(frames: np.ndarray, t: int) -> np.ndarray:
    """The README's definition, written independently: DIS (preset medium) from gray t-1 to
    gray t-2, then frame t-1 sampled at p + flow(p), bilinear, edges replicated. float64 RGB."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray = [cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for i in (t - 1, t - 2)]
    flow = dis.calc(gray[0], gray[1], None).astype(np.float64)
    h, w = gray[0].shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    x0, y0 = np.floor(x), np.floor(y)
    ax, ay = (x - x0)[..., None], (y - y0)[..., None]
    image = frames[t - 1].astype(np.float64)

    def at(yy, xx):
        return image[np.clip(yy, 0, h - 1).astype(int), np.clip(xx, 0, w - 1).astype(int)]

    top = at(y0, x0) * (1 - ax) + at(y0, x0 + 1) * ax
    bottom = at(y0 + 1, x0) * (1 - ax) + at(y0 + 1, x0 + 1) * ax
    return top * (1 - ay) + bottom * ay


def psnr255(pred: np.ndarray, truth: np.ndarray) -> float:
    mse = ((pred / 255.0 - truth.astype(np.float64) / 255.0) ** 2).mean()
    return 10 * math.log10(1 / max(mse, 1e-10))


@pytest.fixture(scope="module")
def pan_clip(tmp_path_factory):
    path = write_lossless(tmp_path_factory.mktemp("pan") / "pan.avi", textured_pan())
    return path


def untrained(tmp_path, **config) -> Predictor:
    model_config = ModelConfig(frames=3, width=8, depth=1, **config)
    data_config = DataConfig(size=40, crop=0)
    torch.manual_seed(0)
    payload = {
        "model_config": model_config.to_dict(),
        "data_config": data_config.to_dict(),
        "model": STResNet(model_config).state_dict(),
    }
    save_checkpoint(tmp_path / "untrained.pt", payload)
    return Predictor.from_checkpoint(tmp_path / "untrained.pt", device="cpu", precision="fp32")


def test_eval_flow_baseline_matches_the_definition(tmp_path, pan_clip):
    predictor = untrained(tmp_path, base_flow="none")
    result = evaluate([pan_clip], predictor, tail=0.5, horizon=2)
    frames = read_video(pan_clip, 40).frames
    first = math.floor(len(frames) * 0.5)
    expected = [
        psnr255(reference_flow_prediction(frames, t), frames[t]) for t in range(first, len(frames))
    ]
    video = result["videos"][0]
    assert video["flow"]["psnr"] == pytest.approx(np.mean(expected), abs=1e-3)
    assert result["mean"]["flow"]["psnr"] == pytest.approx(np.mean(expected), abs=1e-3)
    # Motion compensation pays on a pan: far above copy-last and linear extrapolation.
    assert video["flow"]["psnr"] > video["copy_last"]["psnr"] + 5
    assert video["flow"]["psnr"] > video["linear"]["psnr"] + 5
    assert set(video["flow"]) == {"mse", "mae", "psnr", "ssim", "psnr_median"}
    # The horizon steps carry "flow" too; step 1 is the one-step baseline on its targets.
    steps = result["horizon"]
    assert [s["step"] for s in steps] == [1, 2]
    assert all("flow" in s for s in steps)
    assert steps[1]["flow"]["psnr"] < steps[0]["flow"]["psnr"]


@pytest.mark.parametrize("stem", [False, True])
@pytest.mark.parametrize("norm", ["batch", "group"])
def test_untrained_flow_model_is_the_flow_baseline(tmp_path, pan_clip, square_folder, stem, norm):
    predictor = untrained(tmp_path, base_flow="dis", stem=stem, norm=norm)
    for clip in (pan_clip, square_folder / "a.avi"):
        result = evaluate([clip], predictor, tail=1.0)
        model, flow = result["mean"]["model"]["psnr"], result["mean"]["flow"]["psnr"]
        assert abs(model - flow) < 0.01
    frames = read_video(pan_clip, 40).frames
    assert np.array_equal(
        predictor.predict_next(frames[:10]),
        (predict_flow(frames, [10])[0] * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy(),
    )


def test_a_flow_model_needs_its_flow():
    model = STResNet(ModelConfig(frames=3, width=8, depth=1, base_flow="dis"))
    with pytest.raises(ValueError, match="flow"):
        model(torch.rand(1, 9, 16, 16))


def test_residual_models_have_no_base_flow():
    assert not ModelConfig(head="residual").uses_flow
    with pytest.raises(ValueError, match="2 frames"):
        ModelConfig(frames=1, base_flow="dis")


def test_flows_are_cached_so_a_second_run_computes_none(tmp_path, pan_clip, monkeypatch):
    import vidpred.flow

    videos = load_videos(pan_clip, 40, 3, cache_dir=tmp_path)
    first = load_flows(videos, 40, cache_dir=tmp_path)
    # The cached flows are the definition's: entry t is the flow for target t.
    assert np.array_equal(
        first[0][7], base_flows(videos[0].frames, [7])[0].permute(1, 2, 0).numpy()
    )

    def refuse(*args):
        raise AssertionError("computed flow again")

    monkeypatch.setattr(vidpred.flow, "video_flows", refuse)
    again = load_flows(load_videos(pan_clip, 40, 3, cache_dir=tmp_path), 40, cache_dir=tmp_path)
    assert np.array_equal(np.asarray(again[0]), np.asarray(first[0]))


def test_training_flows_follow_the_crops_and_flips(tmp_path, pan_clip):
    videos = load_videos(pan_clip, 40, 4, cache_dir=tmp_path)
    config = DataConfig(size=40, crop=16, val_fraction=0.2)
    data = WindowDataset(videos, [-3, -2, -1], config, load_flows(videos, 40, cache_dir=tmp_path))
    plan = data.epoch_plan(seed=3, epoch=0)
    order, positions, flips = plan
    assert flips[:8].any() and not flips[:8].all()
    inputs, _ = data.train_batch_uint8(plan, 0, 8)
    flows = data.train_batch_flows(plan, 0, 8)
    assert flows.shape == (8, 2, 16, 16)
    full = data.flows[0]
    for i in range(8):
        v, t = data.train_windows[int(order[i])]
        # Find the crop through the frames it shows, then check the flow took the same one.
        frame = data.frames[v][t - 1].numpy().transpose(2, 0, 1)  # (3, H, W)
        crop = inputs[i, -3:].numpy()
        expected_flow = None
        for y in range(frame.shape[1] - 15):
            for x in range(frame.shape[2] - 15):
                window = frame[:, y : y + 16, x : x + 16]
                candidate = full[t][y : y + 16, x : x + 16].transpose(2, 0, 1).copy()
                if flips[i]:
                    window = window[..., ::-1]
                    candidate = candidate[..., ::-1].copy()
                    candidate[0] *= -1
                if np.array_equal(window, crop):
                    expected_flow = candidate
                    break
            if expected_flow is not None:
                break
        assert expected_flow is not None
        assert np.array_equal(flows[i].numpy(), expected_flow)


def test_checkpoint_holds_the_weight_average_for_inference(tmp_path, square_folder):
    """With --ema the checkpoint's "model" (what render and eval load) is the average and
    "train_model" the trained weights; without, "model" is the trained weights. (Resuming
    continues the average exactly: tests/test_train.py, which trains with the defaults.)"""
    model_config = ModelConfig(frames=3, width=8, depth=1)
    data_config = DataConfig(size=32, crop=0)
    videos = load_videos(square_folder, 32, 4)

    def run(out, ema):
        data = WindowDataset(videos, model_config.input_offsets(), data_config)
        config = TrainConfig(steps=12, batch_size=4, lr=3e-3, warmup_steps=2, device="cpu", ema=ema)
        return train(data, model_config, data_config, config, out)

    averaged, plain = run(tmp_path / "ema.pt", 0.9), run(tmp_path / "plain.pt", 0.0)
    assert plain.train_model is None
    for key, value in plain.model.items():
        assert torch.equal(averaged.train_model[key], value), key
    weights = [k for k, v in averaged.model.items() if v.is_floating_point()]
    assert not any(torch.equal(averaged.model[k], plain.model[k]) for k in weights if "tail" in k)
    assert (
        Predictor.from_checkpoint(tmp_path / "ema.pt", device="cpu").model.state_dict().keys()
        == plain.model.keys()
    )


def brightness_contrast(frames: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return np.clip(frames.astype(np.float32) * gain + offset, 0, 255).round().astype(np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["group", "batch"])
def test_eval_mode_predictions_hold_on_a_clip_brighter_and_flatter_than_training(tmp_path, norm):
    """Normalisation must not fall apart on footage unlike the training mix: trained on
    mid-grey pans, the model still predicts a dim, low-contrast and a bright, high-contrast
    clip at least as well as copy-last."""
    train_dir = tmp_path / "train"
    for seed in range(2):
        write_lossless(train_dir / f"pan{seed}.avi", textured_pan(40, dx=1.0 + seed, seed=seed))
    write_lossless(train_dir / "square.avi", moving_square(40, 40, 56, speed=2))
    model_config = ModelConfig(frames=3, width=16, depth=2, norm=norm)
    data_config = DataConfig(size=40, crop=32)
    videos = load_videos(train_dir, 40, 4, cache_dir=tmp_path / "cache")
    data = WindowDataset(videos, model_config.input_offsets(), data_config)
    config = TrainConfig(
        steps=120, batch_size=8, lr=2e-3, warmup_steps=10, device="cpu", precision="fp32"
    )
    train(data, model_config, data_config, config, tmp_path / "m.pt")
    predictor = Predictor.from_checkpoint(tmp_path / "m.pt", device="cpu", precision="fp32")
    for gain, offset in ((0.3, 10.0), (1.6, -60.0)):
        clip = brightness_contrast(textured_pan(24, dx=1.5, dy=-0.5, seed=7), gain, offset)
        path = write_lossless(tmp_path / f"odd{gain}.avi", clip)
        result = evaluate(
            [path], predictor, video_options=VideoOptions(cache_dir=tmp_path / "cache")
        )["mean"]
        assert result["model"]["psnr"] >= result["copy_last"]["psnr"], (gain, result)


def test_dis_flow_is_a_function_of_its_two_frames():
    """OpenCV's DIS object keeps state between calls; the baseline must not: the same pair
    gives the same flow whatever was computed before, from the memo or computed again."""
    import vidpred.flow as flow_module

    frames = textured_pan(6)
    first = flow_module.dis_flow(frames[3], frames[2]).copy()
    for t in range(2, 6):  # other pairs in between
        flow_module.dis_flow(frames[t], frames[t - 1])
    flow_module._memo.clear()
    flow_module._memo_bytes = 0
    for t in range(5, 1, -1):
        flow_module.dis_flow(frames[t], frames[t - 1])
    assert np.array_equal(flow_module.dis_flow(frames[3], frames[2]), first)
    assert not flow_module.dis_flow(frames[3], frames[2]).flags.writeable
