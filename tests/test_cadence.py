"""Repeated frames on a cadence (vidpred.cadence): the gate shows the last frame where the
clip's past says the next frame repeats it, only then, only from frames already seen, in
eval and in render, at both resolutions."""

import numpy as np
import pytest
import torch
from helpers import write_lossless
from test_native import panning_clip

from vidpred.cadence import HISTORY, RepeatCadence, repeats
from vidpred.data import DataConfig
from vidpred.evaluation import evaluate
from vidpred.gate import FlowGate
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.video_options import VideoOptions


def _expected(pattern: list[bool]) -> list[bool]:
    """Feeds ``pattern`` (whether each frame repeated the one before) to a new cadence one
    frame at a time and returns what it expected before each."""
    cadence, expected = RepeatCadence(), []
    for repeated in pattern:
        expected.append(cadence.expects_repeat())
        cadence.observe([repeated])
    return expected


def test_a_cadence_is_followed_once_it_has_shown_itself_three_times():
    # 24 fps shown at 30: frames 1, 3 and 4 of every 5 repeat the one before (and a period of
    # 25, as in Big Buck Bunny).
    five = [i % 5 in (1, 3, 4) for i in range(60)]
    expected = _expected(five)
    # The period-5 rule was right at 11 and 13: from 14 on, every repeat and only them.
    assert not any(expected[:14])
    assert expected[14:] == five[14:]
    one_in_25 = [i % 25 == 7 for i in range(140)]
    expected = _expected(one_in_25)
    # Right at 57 (after 7 and 32) and at 82: followed at 107 and 132.
    assert [i for i, e in enumerate(expected) if e] == [107, 132]


def test_a_rule_that_was_wrong_is_not_followed():
    # Repeats at 0, 5, 10, 15, then motion: the period-5 rule was right at 10 and 15, so it
    # is followed at 20, and wrong there; at 36 (26 and 31 repeated) it has been right 2
    # times in 3.
    pattern = [i in (0, 5, 10, 15, 26, 31) for i in range(40)]
    expected = _expected(pattern)
    assert expected[20] and not pattern[20]
    assert not expected[36]
    # No repeats at all: never expects one; repeats at random in a fifth of the frames (no
    # cadence to follow): in under 2% of them.
    assert not any(_expected([False] * 200))
    random = list(np.random.default_rng(0).random(1000) < 0.2)
    assert sum(_expected(random)) < 20


def test_a_repeat_is_a_frame_copy_last_gets_and_the_flow_does_not():
    g = torch.Generator().manual_seed(0)
    last = torch.rand(3, 3, 16, 16, generator=g)
    still = (last + 0.002 * torch.randn(3, 3, 16, 16, generator=g)).clamp(0, 1)  # ~54 dB
    moved = torch.roll(last, 1, dims=-1)  # a motion prediction, wrong on a repeat
    # An exact repeat, a near one (sensor noise), and a still frame the flow followed more
    # closely than the unmoved frame (a slow motion): only the first two are repeats.
    truth = torch.stack([last[0], still[1], still[2]])
    flow = torch.stack([moved[0], moved[1], still[2]])
    assert repeats(last, truth, flow) == [True, True, False]
    # Far from the last frame: not a repeat, whatever the flow did.
    assert repeats(last, moved, moved.flip(-1)) == [False] * 3


def test_each_expectation_depends_only_on_frames_before_it():
    rng = np.random.default_rng(1)
    pattern = [i % 6 == 2 or rng.random() < 0.05 for i in range(3 * HISTORY)]
    expected = _expected(pattern)
    for t in (40, 130, 300):
        changed = pattern[:t] + list(rng.random(len(pattern) - t) < 0.5)
        assert _expected(changed)[: t + 1] == expected[: t + 1], t


def _cadence_frames(n: int = 48) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[bool]]:
    """Returns (model, flow, last, truth) float (n, 3, 8, 8) and which frames repeat: one in
    four repeats the frame before. The model is closer than the flow on the frames that
    move and far off on the repeats, which the flow gets right (its mistakes are elsewhere)."""
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(n, 3, 8, 8, generator=g)
    repeated = [t % 4 == 3 for t in range(n)]
    for t in range(1, n):
        if repeated[t]:
            truth[t] = truth[t - 1]
    last = torch.cat([truth[:1], truth[:-1]])
    model = (truth + 0.02).clamp(0, 1)
    model[torch.tensor(repeated)] = torch.rand(sum(repeated), 3, 8, 8, generator=g)
    flow = (truth + 0.05).clamp(0, 1)
    flow[torch.tensor(repeated)] = (truth[torch.tensor(repeated)] + 0.001).clamp(0, 1)
    return model, flow, last, truth, repeated


def test_the_gate_shows_the_last_frame_on_expected_repeats_only():
    model, flow, last, truth, repeated = _cadence_frames()
    gate = FlowGate(window=4)
    shown = torch.cat(
        [
            gate.choose(model[j : j + 5], flow[j : j + 5], truth[j : j + 5], last[j : j + 5])
            for j in range(0, 48, 5)
        ]
    )
    as_last = [t for t in range(48) if torch.equal(shown[t], last[t])]
    # Repeats at 3, 7, 11, 15: the period-4 rule was right at 11 and 15, followed from 19.
    assert as_last == [t for t in range(19, 48) if repeated[t]]
    assert gate.summary()["repeat_share"] == pytest.approx(len(as_last) / 48)
    # Before, the model's misses on the repeats made the gate show the flow on frames that
    # move; once the repeats are shown as such they no longer count against the model, and
    # from the window's length after the last repeat that counted, it is shown everywhere else.
    moving = [t for t in range(48) if not repeated[t]]
    assert any(torch.equal(shown[t], flow[t]) for t in moving if t < 19)
    assert all(torch.equal(shown[t], model[t]) for t in moving if t > 19 + 4)
    # Without the last frames, or k steps ahead (whose last frame is a prediction): no cadence.
    alone = FlowGate(window=4).choose(model, flow, truth)
    assert not any(torch.equal(alone[t], last[t]) for t in range(19, 48) if repeated[t])
    ahead = FlowGate(window=4, steps=2).choose(model, flow, truth, last)
    assert not any(torch.equal(ahead[t], last[t]) for t in range(19, 48) if repeated[t])


def _with_repeats(frames: np.ndarray, every: int) -> np.ndarray:
    """Returns ``frames`` with each ``every``-th frame replaced by the one before: frame-rate
    conversion's duplicates."""
    frames = frames.copy()
    for t in range(every - 1, len(frames), every):
        frames[t] = frames[t - 1]
    return frames


@pytest.fixture
def flow_predictor() -> Predictor:
    """An untrained flow-started model: exactly the flow baseline, which misses repeats."""
    config = ModelConfig(frames=4, width=4, depth=1, base_flow="dis")
    return Predictor(STResNet(config).eval(), config, DataConfig(size=32), torch.device("cpu"))


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_eval_predicts_the_repeats_of_converted_footage(tmp_path, flow_predictor, resolution):
    """A pan in which one frame in four repeats: the model (the flow baseline) is shown
    unmoved on the repeats once the cadence is known, from the frames before the tail, and
    is left alone on the other frames."""
    clip = write_lossless(tmp_path / "conv.avi", _with_repeats(panning_clip(40, 64, 96), 4))
    gated = evaluate(
        [clip], flow_predictor, tail=0.5, video_options=VideoOptions(resolution=resolution)
    )
    video = gated["videos"][0]
    # Tail: frames 20..39; the repeats there are 23, 27, 31, 35, 39.
    assert video["gate"]["repeat_share"] == 0.25 and video["gate"]["flow_share"] == 0.0
    assert video["model_ungated"]["psnr"] == pytest.approx(video["flow"]["psnr"], abs=0.01)
    assert video["model"]["psnr"] > video["flow"]["psnr"] + 10
    # Footage without repeats: the cadence never steps in.
    plain = write_lossless(tmp_path / "pan.avi", panning_clip(40, 64, 96))
    options = VideoOptions(resolution=resolution)
    video = evaluate([plain], flow_predictor, tail=0.5, video_options=options)["videos"][0]
    assert video["gate"]["repeat_share"] == 0.0
    assert video["model"] == video["model_ungated"]


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_render_shows_the_repeats_it_expects(tmp_path, flow_predictor, resolution):
    clip = write_lossless(tmp_path / "conv.avi", _with_repeats(panning_clip(40, 64, 96), 4))
    out = render(
        clip,
        flow_predictor,
        tmp_path / "c.mp4",
        RenderSettings(),
        VideoOptions(resolution=resolution),
    )
    meta = read_sidecar(sidecar_path(out))
    shown = meta["metrics"]["frames"]
    # Repeats at 3, 7, 11, ...; the gate watches from the first frame shown (4, after the
    # model's 4 inputs): the rule is right at 15 and 19 and followed from 23 on.
    assert meta["gate"]["repeat_share"] == pytest.approx(len(range(23, 40, 4)) / shown)
    assert meta["metrics"]["model"]["psnr"] > meta["metrics"]["flow"]["psnr"] + 5


def test_rollouts_follow_the_cadence_one_step_ahead_only(tmp_path, flow_predictor):
    """Step 1 of the rollouts is a one-step prediction and follows the cadence as the
    one-step eval does, learned from the frames before the tail (a repeat every 8 frames
    needs 40 to be followed, more than the rollouts' gates watch)."""
    clip = write_lossless(tmp_path / "conv.avi", _with_repeats(panning_clip(100, 64, 96), 8))
    result = evaluate([clip], flow_predictor, tail=0.3, horizon=3)["videos"][0]
    one_step = evaluate([clip], flow_predictor, tail=0.3)["videos"][0]
    steps = result["horizon"]
    assert one_step["gate"]["repeat_share"] == pytest.approx(4 / 30, abs=0.01)  # 71 .. 95
    assert steps[0]["gate"]["repeat_share"] == pytest.approx(4 / result["horizon_targets"])
    assert [s["gate"]["repeat_share"] for s in steps[1:]] == [0.0, 0.0]
