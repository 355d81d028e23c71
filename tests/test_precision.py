"""bf16 autocast: chosen only where it is fast, selectable, and close to fp32 in what users see."""

import json

import pytest
import torch

from vidpred.checkpoint import load_checkpoint
from vidpred.cli import main
from vidpred.precision import cpu_has_amx_bf16
from vidpred.predict import Predictor
from vidpred.tuning import arithmetic_for
from vidpred.video import read_video

CPU = torch.device("cpu")


def test_auto_picks_bf16_on_a_cpu_only_where_it_has_amx():
    assert arithmetic_for(CPU, "auto").bf16 == cpu_has_amx_bf16()
    assert arithmetic_for(CPU, "bf16").bf16 is True
    assert arithmetic_for(CPU, "fp32").bf16 is False
    with pytest.raises(ValueError):
        arithmetic_for(CPU, "fp16")


def test_bf16_predictions_are_float32_and_close_to_fp32(trained_checkpoint, square_folder):
    frames = torch.from_numpy(read_video(square_folder / "a.avi", 32).frames)
    outputs = {}
    for precision in ("fp32", "bf16"):
        predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", precision)
        (_, _, pred), *_ = predictor.predict_frames(frames, [10, 11, 12, 13], 4)
        assert pred.dtype == torch.float32
        outputs[precision] = pred
    # bf16 keeps 8 significant bits: about 1/256 of a value, i.e. one level of a uint8 pixel.
    assert (outputs["bf16"] - outputs["fp32"]).abs().max() < 4 / 255


def test_eval_precision_flag_changes_psnr_by_a_hair(trained_checkpoint, square_folder, capsys):
    psnr = {}
    for precision in ("fp32", "bf16"):
        code = main(
            [
                "eval",
                str(square_folder),
                "--weights",
                str(trained_checkpoint),
                "--json",
                "--precision",
                precision,
            ]
        )
        assert code == 0
        psnr[precision] = json.loads(capsys.readouterr().out)["mean"]["model"]["psnr"]
    assert psnr["bf16"] == pytest.approx(psnr["fp32"], abs=0.1)


def test_train_stores_the_precision_and_resume_keeps_it(tmp_path, square_folder):
    out = tmp_path / "m.pt"
    common = ["--size", "32", "--crop", "16", "--width", "8", "--depth", "1"]
    assert (
        main(
            [
                "-q",
                "train",
                str(square_folder),
                "--steps",
                "3",
                "--out",
                str(out),
                "--precision",
                "fp32",
                *common,
            ]
        )
        == 0
    )
    assert load_checkpoint(out).train_config["precision"] == "fp32"
    assert main(["-q", "train", "--resume", str(out), "--steps", "5"]) == 0
    resumed = load_checkpoint(out)
    assert resumed.train_config["precision"] == "fp32"
    assert resumed.step == 5
