"""The causal per-clip gate (vidpred.gate): it only looks back, and it rescues a model that is
worse than the flow baseline on a clip, in eval and in render, at both resolutions."""

import json

import pytest
import torch
from helpers import write_lossless
from test_native import panning_clip

from vidpred.data import DataConfig
from vidpred.evaluation import evaluate
from vidpred.gate import FlowGate
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.video_options import VideoOptions


def _frames(seed: int, n: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g)


@pytest.mark.parametrize("steps", [1, 3])
def test_each_choice_depends_only_on_the_frames_known_when_it_was_made(steps):
    """A k-step prediction of frame t is made at frame t-k: the gate's choice for it may
    use the truths of frames up to t-k only."""
    model, flow, truth = _frames(0), _frames(1), _frames(2)
    # The model is right on the first half and the flow after, so the gate changes its mind
    # after a few frames of the second half, and k-1 frames later for k-step predictions.
    truth[:20], truth[20:] = model[:20], flow[20:]
    shown = FlowGate(window=4, steps=steps).choose(model, flow, truth)
    one_step = FlowGate(window=4).choose(model, flow, truth)
    first_flow = next(i for i in range(40) if torch.equal(one_step[i], flow[i]))
    switch = first_flow + steps - 1
    assert 21 <= first_flow < 30
    assert torch.equal(shown[:switch], model[:switch]) and torch.equal(
        shown[switch:], flow[switch:]
    )
    for i in (5, 20, 23, 30):
        changed = truth.clone()
        unknown = i - steps + 1  # frames at and after this are unknown at frame i's origin
        changed[unknown:] = _frames(3)[unknown:]
        again = FlowGate(window=4, steps=steps).choose(model, flow, changed)
        assert torch.equal(again[: i + 1], shown[: i + 1]), i
    # One call or many: the same choices (render and eval feed it batch by batch).
    gate = FlowGate(window=4, steps=steps)
    batched = torch.cat(
        [gate.choose(model[j : j + 7], flow[j : j + 7], truth[j : j + 7]) for j in range(0, 40, 7)]
    )
    assert torch.equal(batched, shown)


def test_summary_counts_shown_frames_only():
    model, flow = _frames(0, 10), _frames(1, 10)
    gate = FlowGate(window=2)
    gate.choose(model, flow, flow, show=False)  # watched: the flow was right
    gate.choose(model, flow, flow)
    assert gate.summary() == {"window": 2, "margin_db": 0.1, "flow_share": 1.0, "repeat_share": 0.0}
    with pytest.raises(ValueError, match="at least 1"):
        FlowGate(window=0)
    with pytest.raises(ValueError, match="at least 1"):
        FlowGate(steps=0)


@pytest.fixture
def frozen_predictor() -> Predictor:
    """A flow-started model whose blend keeps the last frame unmoved everywhere: copy-last,
    far below the flow baseline on a pan (the failure the gate is for)."""
    config = ModelConfig(frames=4, width=4, depth=1)
    model = STResNet(config).eval()
    per_frame = 3 * model.scale**2
    with torch.no_grad():
        model.branches["closeness"].tail.bias[per_frame + 2 :] = -1.0  # blend -1: no motion
    return Predictor(model, config, DataConfig(size=32), torch.device("cpu"))


@pytest.fixture
def pan(tmp_path):
    return write_lossless(tmp_path / "pan.avi", panning_clip(24, 96, 144))


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_eval_shows_the_flow_where_the_model_trails_it(pan, frozen_predictor, resolution):
    gated = evaluate(
        [pan], frozen_predictor, tail=0.5, video_options=VideoOptions(resolution=resolution)
    )
    alone = evaluate(
        [pan], frozen_predictor, tail=0.5, video_options=VideoOptions(resolution=resolution, gate=0)
    )
    video = gated["videos"][0]
    assert alone["videos"][0]["model"]["psnr"] < video["flow"]["psnr"] - 3  # the failure
    assert "model_ungated" not in alone["videos"][0] and "gate" not in alone["videos"][0]
    # The frames before the tail taught the gate, so every scored frame is the flow's.
    assert video["gate"]["flow_share"] == 1.0
    assert video["model"]["psnr"] == pytest.approx(video["flow"]["psnr"], abs=1e-6)
    assert video["model_ungated"] == alone["videos"][0]["model"]
    assert gated["mean"]["model_ungated"] == alone["mean"]["model"]
    json.loads(json.dumps(gated), parse_constant=lambda c: pytest.fail(c))


def test_render_records_the_gate_and_shows_the_flow_after_the_first_frames(
    tmp_path, pan, frozen_predictor
):
    out = render(
        pan, frozen_predictor, tmp_path / "g.mp4", video_options=VideoOptions(resolution="working")
    )
    meta = read_sidecar(sidecar_path(out))
    shown = meta["metrics"]["frames"]
    # Only the first frame, before the gate has seen one, is the model's.
    assert meta["gate"]["flow_share"] == pytest.approx((shown - 1) / shown)
    alone = render(
        pan,
        frozen_predictor,
        tmp_path / "a.mp4",
        video_options=VideoOptions(resolution="working", gate=0),
    )
    alone_meta = read_sidecar(sidecar_path(alone))
    assert alone_meta["gate"] is None
    model, flow = meta["metrics"]["model"]["psnr"], meta["metrics"]["flow"]["psnr"]
    assert model > alone_meta["metrics"]["model"]["psnr"] + 2 and model > flow - 1


def test_eval_gates_every_step_of_the_rollouts(pan, frozen_predictor):
    gated = evaluate([pan], frozen_predictor, tail=0.5, horizon=3)
    alone = evaluate(
        [pan], frozen_predictor, tail=0.5, horizon=3, video_options=VideoOptions(gate=0)
    )
    steps = zip(gated["videos"][0]["horizon"], alone["videos"][0]["horizon"], strict=True)
    for k, (step, step_alone) in enumerate(steps):
        assert step_alone["model"]["psnr"] < step["flow"]["psnr"] - 3, k  # copy-last on a pan
        assert "gate" not in step_alone and "model_ungated" not in step_alone
        # Each step's gate watched the rollouts before the tail, so it shows the flow's.
        assert step["gate"]["flow_share"] == 1.0, k
        assert step["model"]["psnr"] == pytest.approx(step["flow"]["psnr"], abs=1e-6)
        assert step["model_ungated"] == step_alone["model"]
    assert gated["horizon"][2]["model_ungated"] == alone["horizon"][2]["model"]
    assert gated["horizon"][2]["model"]["psnr"] > alone["horizon"][2]["model"]["psnr"] + 3


def test_render_gates_rollouts_once_their_first_outcome_is_known(tmp_path, pan, frozen_predictor):
    """With --horizon 3 the prediction of frame t is made at t-3, when the 3-step predictions
    of the frames before the first shown one are not scored yet: the first 3 are the model's."""
    out = render(
        pan,
        frozen_predictor,
        tmp_path / "h.mp4",
        RenderSettings(horizon=3),
        VideoOptions(resolution="working"),
    )
    meta = read_sidecar(sidecar_path(out))
    shown = meta["metrics"]["frames"]
    assert meta["gate"]["flow_share"] == pytest.approx((shown - 3) / shown)
    assert meta["metrics"]["model"]["psnr"] > meta["metrics"]["flow"]["psnr"] - 1
