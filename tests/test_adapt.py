"""Learning while it watches (vidpred.adapt): strictly causal, it changes the predictions,
and each clip starts from the checkpoint's weights."""

import json
import shlex

import pytest
import torch
from helpers import cli, usage_error, write_lossless
from test_native import panning_clip

from vidpred.adapt import GUARD_LEAD_DB, AdaptConfig, Adapter, adapting, predict_adapting
from vidpred.cli import main
from vidpred.data import DataConfig
from vidpred.evaluation import evaluate
from vidpred.gate import FlowGate
from vidpred.losses import compute_loss, log_l1_loss
from vidpred.model import ModelConfig, STResNet
from vidpred.predict import Predictor
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.video_options import VideoOptions

QUICK = AdaptConfig(steps_per_frame=2, lr=1e-2, batch_size=2, crop=16)
# Enough steps for the trained copy of an untrained model to lead the starting weights.
LEARNS = AdaptConfig(steps_per_frame=4, lr=1e-2, batch_size=2, crop=16)


def _predictor(base_flow: str = "dis") -> Predictor:
    torch.manual_seed(0)
    config = ModelConfig(frames=3, width=4, depth=1, base_flow=base_flow)
    return Predictor(STResNet(config).eval(), config, DataConfig(size=32), torch.device("cpu"))


def _predictions(predictor, frames, adapt: AdaptConfig | None) -> torch.Tensor:
    """One-step predictions (T', 3, H, W) of every target from the first, one at a time."""
    targets = list(range(predictor.history, len(frames)))
    with adapting(predictor, frames, adapt) as adapter:
        return torch.cat(
            [p for _, _, p in predict_adapting(predictor, frames, targets, adapter, 1)]
        )


@pytest.mark.parametrize("base_flow", ["dis", "damped"])
def test_a_prediction_uses_weights_trained_only_on_frames_before_it(base_flow):
    frames = torch.from_numpy(panning_clip(16, 32, 48))  # uint8 RGB (T, H, W, 3)
    predictor = _predictor(base_flow)
    adapted = _predictions(predictor, frames, QUICK)
    first = predictor.history
    for t in (first + 1, 9, 14):
        changed = frames.clone()
        changed[t:] = 255 - changed[t:]  # what arrives at and after frame t is unknown before
        again = _predictions(predictor, changed, QUICK)
        # Predictions of frames up to t are made from frames before t, by the same weights.
        assert torch.equal(again[: t - first + 1], adapted[: t - first + 1]), t
        assert not torch.equal(again[t - first + 1 :], adapted[t - first + 1 :]), t
    # It learned: after the first prediction, the trained weights predicted differently from
    # the checkpoint's.
    still = _predictions(predictor, frames, None)
    assert torch.equal(still[0], adapted[0])
    assert not torch.equal(still[1:], adapted[1:])


def test_the_starting_weights_predict_where_learning_made_things_worse():
    frames = torch.from_numpy(panning_clip(40, 32, 48))
    predictor = _predictor()
    ruin = AdaptConfig(steps_per_frame=4, lr=1.0, batch_size=2, crop=16)
    targets = list(range(predictor.history, len(frames)))
    with adapting(predictor, frames, ruin) as adapter:
        batches = predict_adapting(predictor, frames, targets, adapter, 1)
        ruined = torch.cat([p for _, _, p in batches])
        summary = adapter.summary()
    still = _predictions(predictor, frames, None)
    # The guard saw the trained copy trail the starting weights on the frames just shown
    # and went back to them: the last predictions are exactly the unadapted ones.
    assert torch.equal(ruined[-10:], still[-10:])
    assert summary["start_share"] > 0.5 and summary["steps"] == 4 * len(targets)


def test_the_trained_copy_predicts_only_while_it_leads_the_starting_weights():
    frames = torch.from_numpy(panning_clip(16, 32, 48))
    predictor = _predictor()
    start = predictor.model
    adapter = Adapter(predictor, frames, AdaptConfig())
    truth = torch.full((4, 3, 8, 8), 0.5)

    def off_by(db: float) -> torch.Tensor:  # a prediction whose PSNR is 30 + db
        return truth + 10 ** (-(30 + db) / 20)

    # Level with the starting weights, or a little ahead: the starting weights predict.
    for lead in (0.0, GUARD_LEAD_DB / 2):
        adapter.guard.choose(off_by(lead), off_by(0.0), truth, show=False)
        adapter.learn([])
        assert predictor.model is start, lead
    # Clearly ahead over the window: the trained copy predicts.
    for _ in range(adapter.guard.window):
        adapter.guard.choose(off_by(3 * GUARD_LEAD_DB), off_by(0.0), truth, show=False)
    adapter.learn([])
    assert predictor.model is adapter.trained
    adapter.close()
    assert predictor.model is start


@pytest.mark.parametrize("gated", [True, False])
def test_a_copy_ahead_of_the_start_but_behind_the_flow_predicts_only_without_a_gate(gated):
    frames = torch.from_numpy(panning_clip(16, 32, 48))
    predictor = _predictor()
    start = predictor.model
    adapter = Adapter(predictor, frames, QUICK, FlowGate() if gated else None)
    adapter.learn([predictor.history])  # its first steps
    truth = torch.full((4, 3, 8, 8), 0.5)

    def off_by(db: float) -> torch.Tensor:  # a prediction whose PSNR is 30 + db
        return truth + 10 ** (-(30 + db) / 20)

    # The copy leads the starting weights by 3 dB; the flow leads both by 2 dB or more.
    for _ in range(adapter.guard.window):
        adapter.judge(off_by(0.0), off_by(-3.0), truth, flow=off_by(2.0), last=off_by(-10.0))
    adapter.learn([])
    # Through the clip's gate the user would see the flow with either weights: no lead, and
    # the starting weights predict, so the gate decides as it would without --adapt.
    assert predictor.model is (start if gated else adapter.trained)
    adapter.close()


def test_each_clip_starts_from_the_checkpoints_weights(tmp_path):
    predictor = _predictor("none")
    before = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    clips = [write_lossless(tmp_path / f"pan{i}.avi", panning_clip(16, 32, 48)) for i in (0, 1)]
    options = VideoOptions(gate=0, cache=False)
    alone = evaluate(clips, predictor, tail=0.5, video_options=options)
    adapted = evaluate(clips, predictor, tail=0.5, video_options=options, adapt=LEARNS)
    first, second = adapted["videos"]
    assert first["model"] == second["model"]  # the second clip did not start adapted
    assert first["model"]["psnr"] != alone["videos"][0]["model"]["psnr"]
    after = predictor.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_it_learns_after_every_frame_whatever_the_batch_size(tmp_path):
    clip = write_lossless(tmp_path / "pan.avi", panning_clip(20, 32, 48))
    scores = [
        evaluate(
            [clip],
            _predictor("none"),
            tail=0.6,
            video_options=VideoOptions(gate=0, cache=False, batch_size=b),
            adapt=LEARNS,
        )["videos"][0]
        for b in (1, 8)
    ]
    # Eight frames per call would have learned, and chosen between the trained copy and the
    # starting weights, only after every eighth frame.
    assert scores[0]["model"] == scores[1]["model"]
    assert scores[0]["adapt"]["start_share"] < 0.8


def test_targets_must_come_in_order():
    frames = torch.from_numpy(panning_clip(12, 32, 48))
    adapter = Adapter(_predictor(), frames, QUICK)
    adapter.learn([5, 6])
    with pytest.raises(ValueError, match="in order"):
        adapter.learn([6])
    assert adapter.steps == 4


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_render_learns_while_it_plays_and_records_it(
    tmp_path, capsys, trained_checkpoint, resolution
):
    clip = write_lossless(tmp_path / "pan.avi", panning_clip(20, 32, 48))
    out = tmp_path / "a.mp4"
    command = f"render {clip} --weights {trained_checkpoint} --out {out} --gate 0"
    assert cli(capsys, f"{command} --resolution {resolution} --adapt 2 --adapt-lr 1e-3")[0] == 0
    meta = read_sidecar(sidecar_path(out))
    # Two steps for each frame shown, taken once the frame was shown.
    adapt = meta["adapt"]
    assert adapt["steps_per_frame"] == 2.0 and adapt["lr"] == 1e-3
    assert adapt["steps"] == 2 * meta["frames"] and 0 <= adapt["start_share"] <= 1
    plain = tmp_path / "p.mp4"
    assert (
        cli(
            capsys,
            f"render {clip} --weights {trained_checkpoint} --out {plain} --gate 0 "
            f"--resolution {resolution}",
        )[0]
        == 0
    )
    alone = read_sidecar(sidecar_path(plain))
    assert alone["adapt"] is None
    assert alone["metrics"]["model"]["psnr"] != meta["metrics"]["model"]["psnr"]


def test_eval_reports_the_adaptation_and_refuses_what_it_does_not_do(
    tmp_path, capsys, trained_checkpoint
):
    clip = write_lossless(tmp_path / "pan.avi", panning_clip(20, 32, 48))
    command = f"eval {clip} --weights {trained_checkpoint} --tail 0.5"
    assert main(shlex.split(f"{command} --adapt 1 --json")) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["adapt"]["steps_per_frame"] == 1.0 and result["adapt"]["lr"] == 1e-4
    # Every target from the first the model has inputs for (history 4) was predicted, then
    # learned from.
    assert result["videos"][0]["adapt"]["steps"] == 20 - 4
    for refused in ("--horizon 2", "--resolution native"):
        code, errors = cli(capsys, f"{command} --adapt 1 {refused}")
        assert code == 1 and errors == [
            "vidpred: error: --adapt scores one-step predictions at the working size: "
            "leave out --horizon and --resolution native"
        ], refused
    code, errors = cli(
        capsys, f"render {clip} --weights {trained_checkpoint} --adapt 1 --horizon 2"
    )
    assert code == 1 and errors == ["vidpred: error: --adapt needs --horizon 1"]
    assert "--adapt: must be" in usage_error(capsys, "eval", clip, "--adapt", "0")


def test_the_adapters_loss_weighs_each_frames_error_relative_to_its_size():
    # A repeated frame predicted to within 0.003 and a moving one off by 0.1: halving either
    # error is worth the same to a mean of PSNRs, and to the adapter's loss; plain L1 values
    # the small one 33 times less, so steps on it trade easy frames for hard ones.
    target = torch.rand(2, 3, 8, 8)
    errors = torch.tensor([0.1, 0.003]).view(2, 1, 1, 1)

    def gain_from_halving(loss, sample):
        halved = errors.clone()
        halved[sample] /= 2
        return (loss(target + errors, target) - loss(target + halved, target)).item()

    hard, easy = (gain_from_halving(log_l1_loss, s) for s in (0, 1))
    assert hard == pytest.approx(easy, rel=0.05)
    hard, easy = (gain_from_halving(lambda p, t: compute_loss("l1", p, t), s) for s in (0, 1))
    assert easy < hard / 20
    assert torch.isfinite(log_l1_loss(target, target))  # an exact prediction
