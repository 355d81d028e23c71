"""The damped start (--base-flow damped): the DIS flow halved where it turned since the pair
of frames before, in every path that gives a model its flows (training, eval and render at
both sizes, rollouts, learning while watching)."""

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from helpers import write_lossless
from torch.nn import functional as F

from vidpred.cli import main
from vidpred.data import (
    DataConfig,
    WindowDataset,
    frames_to_tensor,
    load_flows,
    load_videos,
    stack_windows,
)
from vidpred.errors import SettingError
from vidpred.evaluation import evaluate
from vidpred.flow import base_flows, damping, flow_extrapolation, model_flows
from vidpred.metrics import psnr
from vidpred.model import ModelConfig, STResNet, start_flow, weights_for_inputs
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.video_options import VideoOptions


def texture_clip(positions: list[tuple[int, int]], height: int, width: int) -> np.ndarray:
    """uint8 RGB (T, H, W, 3): a smooth random texture seen through a window whose content
    sits at (x, y) = ``positions[t]`` pixels in frame t."""
    rng = np.random.default_rng(0)
    margin = 16 + max(max(abs(x), abs(y)) for x, y in positions)
    big = rng.random((height + 2 * margin, width + 2 * margin, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(big, (0, 0), 3.0)
    texture = (255 * (texture - texture.min()) / (texture.max() - texture.min())).round()
    return np.stack(
        [
            texture[margin - y : margin - y + height, margin - x : margin - x + width]
            for x, y in positions
        ]
    ).astype(np.uint8)


def shaking_clip(frames: int, height: int = 64, width: int = 96) -> np.ndarray:
    """A hand-held camera's jitter: the content moves 2 px right, then back, and so on."""
    return texture_clip([(2 * (t % 2), 0) for t in range(frames)], height, width)


def panning_clip(frames: int, height: int = 64, width: int = 96) -> np.ndarray:
    """A steady pan, 3 px right and 1 down a frame: the damped start is the DIS flow there."""
    return texture_clip([(3 * t - 45, t - 15) for t in range(frames)], height, width)


def untrained(base_flow: str) -> Predictor:
    """An untrained flow-started model: exactly its start (the flow, damped or not)."""
    torch.manual_seed(0)
    config = ModelConfig(frames=4, width=4, depth=1, base_flow=base_flow)
    return Predictor(STResNet(config).eval(), config, DataConfig(size=64), torch.device("cpu"))


def uniform(dx: float, dy: float) -> torch.Tensor:
    return torch.tensor([dx, dy]).view(1, 2, 1, 1).expand(1, 2, 24, 32)


def test_damping_keeps_motion_that_goes_on_and_halves_motion_that_turned():
    flow = uniform(3.0, -1.0)
    assert torch.allclose(damping(flow, uniform(6.0, -2.0)), torch.ones(1, 1, 24, 32), atol=1e-3)
    assert torch.allclose(damping(flow, -flow), torch.full((1, 1, 24, 32), 0.5))
    assert torch.allclose(damping(flow, uniform(1.0, 3.0)), torch.full((1, 1, 24, 32), 0.5))
    assert torch.allclose(damping(flow, torch.zeros_like(flow)), torch.full((1, 1, 24, 32), 0.5))
    # In between, the cosine: 45 degrees apart keeps 0.5 + 0.5 * cos 45.
    turned = damping(uniform(1.0, 0.0), uniform(1.0, 1.0))
    assert torch.allclose(turned, torch.full_like(turned, 0.5 + 0.5 * 2**-0.5), atol=0.01)


def test_an_untrained_damped_model_predicts_its_damped_start():
    frames = torch.from_numpy(shaking_clip(12))
    predictor = untrained("damped")
    targets = list(range(4, 12))
    [(_, _, predicted)] = predictor.predict_frames(frames, targets, batch_size=8)
    flows = model_flows(frames, targets, 2)
    assert torch.equal(flows[:, :2], base_flows(frames, targets))
    assert torch.equal(flows[:, 2:], base_flows(frames, [t - 1 for t in targets]))
    last = frames_to_tensor(frames[[t - 1 for t in targets]])
    start = flows[:, :2] * damping(flows[:, :2], flows[:, 2:])
    assert torch.allclose(predicted, flow_extrapolation(last, start), atol=1e-6)
    truth = frames_to_tensor(frames[targets])
    # Constant velocity overshoots the shake by the whole way back; the damped start by half.
    flow_db = psnr(flow_extrapolation(last, flows[:, :2]), truth).mean().item()
    assert psnr(predicted, truth).mean().item() > flow_db + 1.0


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_eval_scores_the_damped_start_on_jitter_and_the_flow_on_a_pan(tmp_path, resolution):
    shake = write_lossless(tmp_path / "shake.avi", shaking_clip(30, 128, 192))
    pan = write_lossless(tmp_path / "pan.avi", panning_clip(30, 128, 192))
    options = VideoOptions(resolution=resolution, size=64)
    damped, dis = untrained("damped"), untrained("dis")
    result = evaluate([shake, pan], damped, tail=0.5, video_options=options)["videos"]
    plain = evaluate([shake, pan], dis, tail=0.5, video_options=options)["videos"]
    shaking, panning = (v["model_ungated"]["psnr"] for v in result)
    assert plain[0]["model_ungated"]["psnr"] == pytest.approx(plain[0]["flow"]["psnr"], abs=0.01)
    assert shaking > result[0]["flow"]["psnr"] + 1.0
    assert panning == pytest.approx(result[1]["flow"]["psnr"], abs=0.05)


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_render_shows_the_damped_start(tmp_path, resolution):
    clip = write_lossless(tmp_path / "shake.avi", shaking_clip(24, 128, 192))
    out = render(
        clip,
        untrained("damped"),
        tmp_path / "shake.mp4",
        RenderSettings(),
        VideoOptions(resolution=resolution, size=64),
    )
    metrics = read_sidecar(sidecar_path(out))["metrics"]
    assert metrics["model"]["psnr"] > metrics["flow"]["psnr"] + 1.0


def test_rollouts_take_the_pair_before_from_their_own_frames():
    """Step k of a rollout damps with the pair before it, real or predicted; frames after the
    origin are never read, and extending past the end predicts what the rollout does."""
    frames = torch.from_numpy(shaking_clip(16))
    predictor = untrained("damped")
    [(_, _, one_step)] = predictor.predict_frames(frames, [8])
    [(_, rolled)] = predictor.rollout(frames, [7], 3)  # (1, 3, 3, H, W): frames 8, 9, 10
    assert torch.allclose(rolled[0, 0], one_step[0], atol=1e-6)
    changed = frames.clone()
    changed[8:] = 255 - changed[8:]
    [(_, again)] = predictor.rollout(changed, [7], 3)
    assert torch.equal(again, rolled)
    extended = torch.stack(list(predictor.extend(frames[:8], 3)))
    assert torch.allclose(extended, rolled[0], atol=1e-6)


def test_training_flows_hold_the_pair_before_cropped_and_mirrored_alike(tmp_path):
    write_lossless(tmp_path / "v" / "shake.avi", shaking_clip(20, 40, 48))
    videos = load_videos(tmp_path / "v", 40, 5, cache_dir=tmp_path / "cache")
    config = DataConfig(size=40, crop=16, val_fraction=0.2)
    flows = load_flows(videos, 40, cache_dir=tmp_path / "cache")
    data = WindowDataset(videos, [-4, -3, -2, -1], config, flows)
    # The same windows, reading as each target's flow the one of the target before.
    shifted = [np.concatenate([f[:1], f[:-1]]) for f in flows]
    before = WindowDataset(videos, [-4, -3, -2, -1], config, shifted)
    plan = data.epoch_plan(seed=3, epoch=0)
    assert plan[2][:8].any() and not plan[2][:8].all()  # some mirrored, some not
    both = data.train_batch_flows(plan, 0, 8, pairs=2)
    assert both.shape == (8, 4, 16, 16)
    assert torch.equal(both[:, :2], data.train_batch_flows(plan, 0, 8))
    assert torch.equal(both[:, 2:], before.train_batch_flows(plan, 0, 8))
    # Validation reads the same flows, whole frames.
    assert torch.equal(data.base_flows(0, [10, 11], 2), model_flows(videos[0].frames, [10, 11], 2))


def test_a_damped_start_needs_three_frames():
    with pytest.raises(SettingError):
        ModelConfig(frames=2, base_flow="damped")
    ModelConfig(frames=2, base_flow="dis")


def test_train_eval_and_render_a_damped_model_from_the_command_line(tmp_path, capsys):
    write_lossless(tmp_path / "v" / "shake.avi", shaking_clip(30, 64, 96))
    out = tmp_path / "d.pt"
    code = main(
        ["train", str(tmp_path / "v"), "--base-flow", "damped", "--steps", "3", "--size", "32",
         "--width", "8", "--depth", "1", "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and "training starts at the classical DIS flow, halved" in err, err
    predictor = Predictor.from_checkpoint(out, "cpu", "fp32")
    assert predictor.model_config.base_flow == "damped" and predictor.flow_pairs == 2
    assert main(["eval", str(tmp_path / "v"), "--weights", str(out), "--horizon", "2"]) == 0
    video = tmp_path / "v" / "shake.avi"
    assert (
        main(["render", str(video), "--weights", str(out), "--out", str(tmp_path / "r.mp4")]) == 0
    )


def test_a_dis_model_fitted_to_the_damped_start_computes_what_it_did():
    torch.manual_seed(0)
    config = ModelConfig(frames=4, width=8, depth=1, base_flow="dis")
    model = STResNet(config).eval()
    for branch in model.branches.values():  # an output that depends on the inputs
        torch.nn.init.normal_(branch.tail.weight, std=0.02)
    damped_config = replace(config, base_flow="damped")
    damped = STResNet(damped_config).eval()
    damped.load_state_dict(weights_for_inputs(model.state_dict(), config, damped_config))
    frames = torch.from_numpy(shaking_clip(12))
    targets = [8, 9, 10]
    inputs = stack_windows(frames, targets, config.input_offsets())
    flows = model_flows(frames, targets, 2)
    with torch.no_grad():
        before, after = model.motion(inputs, flows[:, :2]), damped.motion(inputs, flows)
    start, _ = start_flow(damped_config, flows)
    assert not torch.allclose(start, flows[:, :2])  # the shake is damped
    assert torch.allclose(after.residual, before.residual, atol=1e-6)
    assert torch.allclose(after.blend, before.blend, atol=1e-6)
    assert torch.allclose(after.flow - start, before.flow - flows[:, :2], atol=1e-5)
    # And back: the weights it had.
    back = weights_for_inputs(damped.state_dict(), damped_config, config)
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("base_flow", ["dis", "damped"])
def test_pooling_the_flow_input_refits_the_weights_to_the_same_predictions(base_flow):
    torch.manual_seed(0)
    config = ModelConfig(frames=4, width=8, depth=1, base_flow=base_flow, pool_flow_input=False)
    model = STResNet(config).eval()
    for branch in model.branches.values():  # an output that depends on the inputs
        torch.nn.init.normal_(branch.tail.weight, std=0.02)
    pooled_config = replace(config, pool_flow_input=True)
    pooled = STResNet(pooled_config).eval()
    pooled.load_state_dict(weights_for_inputs(model.state_dict(), config, pooled_config))
    # 2 or 3 flow features in 4 sub-pixel channels each, or in 1
    assert model.flow_inputs == 4 * pooled.flow_inputs
    frames = torch.from_numpy(shaking_clip(12))
    inputs = stack_windows(frames, [8, 9, 10], config.input_offsets())
    flows = model_flows(frames, [8, 9, 10], config.flow_pairs)
    # Where the flow is even over each 2x2 block, pooling loses nothing: the same output.
    even = F.interpolate(F.avg_pool2d(flows, 2), scale_factor=2, mode="nearest")
    with torch.no_grad():
        before, after = model.motion(inputs, even), pooled.motion(inputs, even)
    for part in ("residual", "flow", "blend", "sharpness"):
        assert torch.allclose(getattr(after, part), getattr(before, part), atol=1e-5), part
    # Back to every pixel: the pooled model's predictions for any flow, exactly.
    unpooled = STResNet(config).eval()
    unpooled.load_state_dict(weights_for_inputs(pooled.state_dict(), pooled_config, config))
    with torch.no_grad():
        assert torch.allclose(unpooled(inputs, flows), pooled(inputs, flows), atol=1e-5)
    # Nothing else can be refitted.
    with pytest.raises(ValueError, match="only the base flow and the pooling"):
        weights_for_inputs(model.state_dict(), config, replace(config, width=16))


def test_a_model_without_a_base_flow_can_be_asked_to_pool_it_but_not_to_start_from_one():
    config = ModelConfig(frames=4, width=8, depth=1, base_flow="none", pool_flow_input=False)
    state = STResNet(config).state_dict()
    pooled_config = replace(config, pool_flow_input=True)
    same = weights_for_inputs(state, config, pooled_config)
    STResNet(pooled_config).load_state_dict(same)  # pooling a flow it never sees: no change
    assert same.keys() == state.keys()
    assert all(torch.equal(same[k], state[k]) for k in state)
    with pytest.raises(ValueError, match="start from a base flow"):
        weights_for_inputs(state, config, replace(config, base_flow="dis"))


def test_init_refits_how_the_model_sees_the_flow_and_keeps_the_rest(
    tmp_path, capsys, square_folder, trained_checkpoint
):
    from vidpred.checkpoint import load_checkpoint

    init = load_checkpoint(trained_checkpoint)
    other = "damped" if init.model_config.base_flow == "dis" else "dis"
    pooled = not init.model_config.pool_flow_input
    out = tmp_path / "swapped.pt"
    code = main(
        ["train", str(square_folder), "--init", str(trained_checkpoint), "--base-flow", other,
         "--pool-flow-input" if pooled else "--no-pool-flow-input",
         "--steps", "1", "--size", "32", "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    swapped = load_checkpoint(out)
    assert swapped.model_config == replace(
        init.model_config, base_flow=other, pool_flow_input=pooled
    )
    assert Predictor.from_checkpoint(out, "cpu", "fp32").flow_pairs == (
        2 if other == "damped" else 1
    )
    # Any other model option would not fit the checkpoint's weights: one clear line.
    code = main(
        ["train", str(square_folder), "--init", str(trained_checkpoint), "--width", "8",
         "--steps", "1", "--size", "32", "--out", str(tmp_path / "w.pt")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "--init keeps the checkpoint's architecture: drop --width" in err, err
    assert "Traceback" not in err and not (tmp_path / "w.pt").exists()
