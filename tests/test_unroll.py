"""Training on rollouts (--unroll N): what an unrolled step predicts from, which frames its
windows hold, and how the CLI takes the setting."""

import numpy as np
import pytest
import torch
from helpers import cli, moving_square, write_lossless

from vidpred.checkpoint import load_checkpoint
from vidpred.data import DataConfig, WindowDataset, validation_start
from vidpred.flow import base_flows, model_flows
from vidpred.losses import predict_unrolled
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.video import Video

pytestmark = pytest.mark.usefixtures("one_thread")


def random_flow_model(base_flow: str = "dis") -> tuple[STResNet, ModelConfig]:
    """An untrained flow-start model whose output depends on its inputs: its zero-initialised
    output convs are randomised, so that it neither copies nor follows the flow exactly."""
    torch.manual_seed(0)
    config = ModelConfig(frames=3, width=8, depth=1, base_flow=base_flow)
    model = STResNet(config).eval()
    for branch in model.branches.values():
        torch.nn.init.normal_(branch.tail.weight, std=0.02)
    return model, config


@pytest.mark.parametrize("base_flow", ["dis", "damped"])
def test_an_unrolled_step_predicts_what_a_rollout_predicts(base_flow):
    """Step k of training's unroll sees what step k of inference's rollout sees: the earlier
    predictions rounded to uint8, and DIS's flow between the two newest frames (and, for the
    damped start, the pair before)."""
    model, config = random_flow_model(base_flow)
    predictor = Predictor(
        model, config, DataConfig(size=32, crop=0), torch.device("cpu"), precision="fp32"
    )
    # The square moves on, then back between frames 5 and 6: the damped start then damps.
    frames = torch.from_numpy(
        moving_square(16, 32, 32, speed=2)[[0, 1, 2, 3, 4, 6, 5, *range(7, 16)]]
    )
    origin = 6  # the last real frame: inputs 4, 5, 6; predictions of 7, 8, 9
    [(_, rolled)] = predictor.rollout(frames, [origin], 3)  # (1, 3, 3, H, W)
    inputs = frames[origin - 2 : origin + 1].permute(0, 3, 1, 2).reshape(1, 9, 32, 32) / 255.0
    with torch.no_grad():
        flows = model_flows(frames, [origin + 1], config.flow_pairs)
        unrolled = predict_unrolled(model, inputs, flows, 3)
    for k in range(3):
        assert torch.allclose(unrolled[k], rolled[0, k], atol=1e-5), f"step {k + 1}"


def test_an_unrolled_step_passes_the_gradient_back_through_its_own_predictions():
    model, _ = random_flow_model()
    frames = torch.from_numpy(moving_square(16, 32, 32, speed=2))
    inputs = frames[4:7].permute(0, 3, 1, 2).reshape(1, 9, 32, 32) / 255.0
    inputs.requires_grad_(True)
    second = predict_unrolled(model, inputs, base_flows(frames, [7]), 2)[1]
    (grad,) = torch.autograd.grad(second.sum(), inputs)
    # The oldest input frame reaches step 2 only through step 1's prediction.
    assert grad[:, :3].abs().sum() > 0


def frame_numbered_video(num_frames: int, size: int = 8) -> Video:
    """A video whose frame t is filled with the value t, so a batch says which frames it holds."""
    frames = np.repeat(np.arange(num_frames, dtype=np.uint8), size * size * 3)
    frames = frames.reshape(num_frames, size, size, 3)
    return Video(path="numbers", frames=frames, fps=25.0, source_size=(size, size))


@pytest.mark.parametrize("unroll", [1, 3])
def test_unrolled_windows_hold_their_targets_in_order_and_never_a_validation_frame(unroll):
    video = frame_numbered_video(40)
    data = WindowDataset(
        [video], [-3, -2, -1], DataConfig(size=8, crop=0, val_fraction=0.25), unroll=unroll
    )
    boundary = validation_start(40, 0.25)  # 30
    assert max(t for _, t in data.train_windows) + unroll - 1 == boundary - 1
    plan = data.epoch_plan(seed=0, epoch=0)
    inputs, targets = data.train_batch_uint8(plan, 0, len(data.train_windows))
    assert targets.shape[1] == 3 * unroll
    order = plan[0].tolist()
    for row, window in enumerate(order):
        t = data.train_windows[window][1]
        assert inputs[row, ::3, 0, 0].tolist() == [t - 3, t - 2, t - 1]
        assert targets[row, ::3, 0, 0].tolist() == list(range(t, t + unroll))
        assert t + unroll - 1 < boundary


def test_unroll_with_a_period_branch_is_one_clear_error(tmp_path, capsys):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(30, 32, 32, speed=2))
    code, lines = cli(
        capsys, "train", str(clip), "--size", "32", "--steps", "2", "--unroll", "2",
        "--period", "3", "--period-frames", "1", "--out", str(tmp_path / "m.pt"),
    )  # fmt: skip
    assert code == 1
    assert lines == ["vidpred: error: --unroll needs a model without --period and --trend"]


def test_an_unrolled_run_trains_resumes_and_keeps_its_unroll(tmp_path, capsys):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(30, 32, 32, speed=2))
    out = tmp_path / "m.pt"
    tiny = ["--size", "32", "--width", "8", "--depth", "1", "--precision", "fp32"]
    code, _ = cli(capsys, f"train {clip} {' '.join(tiny)} --steps 3 --unroll 3 --out {out}")
    assert code == 0
    assert load_checkpoint(out).train_config["unroll"] == 3
    code, _ = cli(capsys, f"train --resume {out} --steps 5")
    assert code == 0
    resumed = load_checkpoint(out)
    assert (resumed.step, resumed.train_config["unroll"]) == (5, 3)
    code, lines = cli(capsys, f"train --resume {out} --steps 6 --unroll 2")
    assert code != 0 and "unroll" in lines[-1]
