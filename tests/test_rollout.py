"""Multi-step rollouts: what a prediction N steps ahead may see, and the metrics of it."""

import json

import numpy as np
import pytest
import torch
from helpers import moving_square, write_lossless

from vidpred.cli import main
from vidpred.data import DataConfig
from vidpred.evaluation import evaluate
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor, quantize
from vidpred.video_options import VideoOptions

pytestmark = pytest.mark.usefixtures("one_thread")


def random_period_predictor() -> Predictor:
    """An untrained model with a period branch (inputs t-6, t-3 and t-4..t-1) whose output
    depends on every input frame: its zero-initialised output convs are randomised."""
    torch.manual_seed(0)
    config = ModelConfig(frames=4, width=8, depth=1, period=3, period_frames=2)
    model = STResNet(config).eval()
    for branch in model.branches.values():
        torch.nn.init.normal_(branch.tail.weight, std=0.05)
    return Predictor(model, config, DataConfig(size=32, crop=0), torch.device("cpu"))


@pytest.fixture(params=["trained", "period"])
def predictor(request, trained_checkpoint) -> Predictor:
    if request.param == "trained":
        return Predictor.from_checkpoint(trained_checkpoint, "cpu")
    return random_period_predictor()


def test_rollout_step_one_is_exactly_the_one_step_prediction(predictor):
    frames = torch.from_numpy(moving_square(24, 32, 32, speed=3))
    targets = list(range(predictor.history, 24))
    one_step = torch.cat([p for _, _, p in predictor.predict_frames(frames, targets)])
    rolled = torch.cat([p for _, p in predictor.rollout(frames, [t - 1 for t in targets], 3)])
    assert rolled.shape == (len(targets), 3, 3, 32, 32)  # (origins, steps, 3, H, W)
    assert torch.equal(rolled[:, 0], one_step)


def test_rollout_never_reads_a_real_frame_after_its_origin(predictor):
    """The prediction of t made N steps ahead must not change when frames after t-N do."""
    horizon = 4
    frames = torch.from_numpy(moving_square(24, 32, 32, speed=3))
    noise = torch.from_numpy(
        np.random.default_rng(0).integers(0, 256, frames.shape, dtype=np.uint8)
    )
    for origin in (predictor.history - 1, 12, 24 - 1 - horizon):
        perturbed = frames.clone()
        perturbed[origin + 1 :] = noise[origin + 1 :]  # every real frame after t-N
        [(_, clean)] = predictor.rollout(frames, [origin], horizon)
        [(_, other)] = predictor.rollout(perturbed, [origin], horizon)
        assert torch.equal(clean, other), f"origin {origin}: the rollout read a later real frame"
        # The check can fail: perturbing the origin frame itself does change the rollout.
        perturbed[origin] = noise[origin]
        [(_, changed)] = predictor.rollout(perturbed, [origin], horizon)
        assert not torch.equal(clean, changed)


def test_rollout_feeds_its_own_rounded_predictions_back(predictor):
    """Rolling out equals calling predict_next by hand on a video extended by its own output."""
    frames = moving_square(20, 32, 32, speed=2)
    origin, horizon = 10, 5
    video = list(frames[: origin + 1])
    for _ in range(horizon):
        video.append(predictor.predict_next(np.stack(video)))
    [(_, rolled)] = predictor.rollout(torch.from_numpy(frames), [origin], horizon)
    assert np.array_equal(quantize(rolled[0]).numpy(), np.stack(video[origin + 1 :]))


def test_eval_horizon_reports_every_step_beside_the_one_step_keys(
    tmp_path, trained_checkpoint, capsys
):
    frames = moving_square(24, 32, 32, speed=3)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    args = [
        "eval",
        str(clip),
        "--weights",
        str(trained_checkpoint),
        "--json",
        "--horizon",
        "3",
        "--tail",
        "0.5",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    video = result["videos"][0]
    assert {"model", "copy_last", "linear", "targets"} <= video.keys()  # one-step keys kept
    assert [s["step"] for s in result["horizon"]] == [1, 2, 3]
    assert [s["step"] for s in video["horizon"]] == [1, 2, 3]
    for step in result["horizon"]:
        assert {"model", "copy_last", "linear"} <= step.keys()
        assert {"psnr", "ssim", "mse", "mae"} <= step["model"].keys()
    # Same targets (12..23) for one step and for every rollout step: step 1 is the one-step score.
    assert video["targets"] == video["horizon_targets"] == 12
    # Step 1 is the one-step score, gated (its gate watched the same frames) and alone.
    for method in ("model", "model_ungated"):
        step_1 = video["horizon"][0][method]["psnr"]
        assert step_1 == pytest.approx(video[method]["psnr"], rel=1e-6)
    # Baselines carried k steps, computed independently.
    x = frames.astype(np.float64) / 255.0
    t = np.arange(12, 24)
    for k in (1, 2, 3):
        copy_mse = ((x[t] - x[t - k]) ** 2).mean(axis=(1, 2, 3))
        linear = np.clip(x[t - k] + k * (x[t - k] - x[t - k - 1]), 0, 1)
        linear_mse = ((x[t] - linear) ** 2).mean(axis=(1, 2, 3))
        assert video["horizon"][k - 1]["copy_last"]["mse"] == pytest.approx(
            copy_mse.mean(), rel=1e-4
        )
        assert video["horizon"][k - 1]["linear"]["mse"] == pytest.approx(
            linear_mse.mean(), rel=1e-4
        )


def test_eval_horizon_step_n_uses_n_step_predictions(tmp_path):
    """Step-N model metrics are those of the N-step rollout, not of one-step predictions."""
    predictor = random_period_predictor()
    frames = moving_square(30, 32, 32, speed=2)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    result = evaluate([clip], predictor, horizon=3, video_options=VideoOptions(size=32, gate=0))
    video = result["videos"][0]
    first = 3 + predictor.history - 1  # the first target whose origin t-3 has the model's inputs
    targets = list(range(first, 30))
    assert video["horizon_targets"] == len(targets)
    tensor = torch.from_numpy(frames)
    preds = torch.cat([p[:, 2] for _, p in predictor.rollout(tensor, [t - 3 for t in targets], 3)])
    truth = tensor[targets].permute(0, 3, 1, 2).float() / 255.0
    expected = (10 * torch.log10(1 / ((preds - truth) ** 2).mean(dim=(1, 2, 3)))).mean()
    assert video["horizon"][2]["model"]["psnr"] == pytest.approx(float(expected), rel=1e-5)
    assert result["horizon"][2]["model"]["psnr"] == pytest.approx(float(expected), rel=1e-5)


def test_eval_horizon_prints_a_table_of_every_step_for_every_method(
    tmp_path, trained_checkpoint, capsys
):
    """Without --json, `eval --horizon` prints the rollout table (it once raised NameError)."""
    clip = write_lossless(tmp_path / "clip.avi", moving_square(24, 32, 32, speed=3))
    args = ["eval", str(clip), "--weights", str(trained_checkpoint), "--horizon", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "rollouts" in out
    for method in ("model", "copy_last", "linear", "flow"):
        assert method in out
