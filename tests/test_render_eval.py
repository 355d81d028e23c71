import json

import cv2
import numpy as np
import pytest
from helpers import moving_square, write_lossless

from vidpred.cli import main
from vidpred.errors import OutputError
from vidpred.evaluation import evaluate
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render


def test_render_writes_h264_side_by_side_at_source_fps(tmp_path, trained_checkpoint):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(30, 32, 48), fps=12)
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    out = render(clip, predictor, tmp_path / "out.mp4", settings=RenderSettings(scale=2))
    capture = cv2.VideoCapture(str(out))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    frames = 0
    while capture.read()[0]:
        frames += 1
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    assert fourcc in ("avc1", "h264", "H264")
    assert frames == 30 - 4  # every frame t >= K
    # Three panels (actual, predicted, error) of 2x(32x48) with a caption strip above, a
    # readout strip below and gaps between: even sides for yuv420p.
    from vidpred.panels import FOOTER_HEIGHT, GAP, LABEL_HEIGHT

    assert (height, width) == (LABEL_HEIGHT + 64 + FOOTER_HEIGHT, 3 * 96 + 2 * GAP)
    assert fps == pytest.approx(12, rel=0.01)


def test_render_never_overwrites_input_or_existing_output(tmp_path, trained_checkpoint):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(10))
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    before = clip.read_bytes()
    with pytest.raises(OutputError, match="input"):
        render(clip, predictor, clip, force=True)
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="--force"):
        render(clip, predictor, existing)
    assert existing.read_bytes() == b"keep me" and clip.read_bytes() == before
    render(clip, predictor, existing, force=True)
    assert existing.read_bytes() != b"keep me"


def test_eval_copy_last_psnr_matches_numpy(tmp_path, trained_checkpoint):
    frames = moving_square(20, 32, 32, speed=3)
    clip = write_lossless(tmp_path / "clip.avi", frames)
    result = evaluate([clip], Predictor.from_checkpoint(trained_checkpoint, "cpu"))
    x = frames.astype(np.float64) / 255.0
    t = np.arange(4, 20)  # targets from K = 4
    mse = ((x[t] - x[t - 1]) ** 2).mean(axis=(1, 2, 3))
    expected = np.mean(10 * np.log10(1.0 / mse))
    video = result["videos"][0]
    assert video["targets"] == 16
    assert video["copy_last"]["psnr"] == pytest.approx(expected, abs=1e-3)
    lin = np.clip(2 * x[t - 1] - x[t - 2], 0, 1)
    lin_mse = ((x[t] - lin) ** 2).mean(axis=(1, 2, 3))
    assert video["linear"]["mse"] == pytest.approx(lin_mse.mean(), rel=1e-4)


def test_eval_tail_selects_the_last_fraction(tmp_path, trained_checkpoint):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(40))
    result = evaluate([clip], Predictor.from_checkpoint(trained_checkpoint, "cpu"), tail=0.2)
    assert result["videos"][0]["targets"] == 8  # targets 32..39


def test_eval_json_is_one_object_with_the_documented_keys(
    tmp_path, square_folder, trained_checkpoint, capsys
):
    assert main(["eval", str(square_folder), "--weights", str(trained_checkpoint), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["weights"] == str(trained_checkpoint)
    assert len(result["videos"]) == 2
    for entry in result["videos"] + [result["mean"]]:
        for method in ("model", "copy_last", "linear"):
            assert {"mse", "mae", "psnr", "ssim"} <= entry[method].keys()
    assert {"path", "targets"} <= result["videos"][0].keys()
    assert result["mean"]["model"]["psnr"] == pytest.approx(
        np.mean([v["model"]["psnr"] for v in result["videos"]])
    )


def test_ssim_of_identical_frames_is_one_and_drops_with_noise():
    import torch

    from vidpred.metrics import psnr, ssim

    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2))
    assert (ssim(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1)) < 0.9).all()
    assert torch.allclose(psnr(x, x), torch.full((2,), 100.0))


def test_ssim_equals_the_textbook_11x11_gaussian_window_definition():
    """The fast (separable, matmul) SSIM gives the numbers of a direct 2-D Gaussian window."""
    import torch
    from torch.nn import functional as F

    from vidpred.metrics import SSIM_C1, SSIM_C2, ssim

    def reference(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        coords = torch.arange(11, dtype=torch.float32) - 5
        g = torch.exp(-(coords**2) / (2 * 1.5**2))
        window = (g[:, None] * g[None, :] / g.sum() ** 2).expand(3, 1, 11, 11)

        def blur(x):
            return F.conv2d(x, window, groups=3)

        mu_p, mu_t = blur(p), blur(t)
        var_p, var_t = blur(p * p) - mu_p**2, blur(t * t) - mu_t**2
        cov = blur(p * t) - mu_p * mu_t
        num = (2 * mu_p * mu_t + SSIM_C1) * (2 * cov + SSIM_C2)
        return (num / ((mu_p**2 + mu_t**2 + SSIM_C1) * (var_p + var_t + SSIM_C2))).mean((1, 2, 3))

    torch.manual_seed(0)
    for h, w in ((24, 40), (48, 36)):
        p = torch.rand(3, 3, h, w)
        t = (p + 0.15 * torch.randn_like(p)).clamp(0, 1)
        assert torch.allclose(ssim(p, t), reference(p, t), atol=1e-5)


def test_ssim_on_a_subsample_scores_every_kth_frame_across_batches():
    """Renders average SSIM over every 4th frame (the rest of the metrics over all)."""
    import torch

    from vidpred.metrics import MetricAccumulator, ssim

    torch.manual_seed(0)
    pred, truth = torch.rand(10, 3, 16, 16), torch.rand(10, 3, 16, 16)
    every, sampled = MetricAccumulator(), MetricAccumulator(ssim_every=4)
    for start in range(0, 10, 3):  # batches of 3, 3, 3, 1: the picks cross batch borders
        every.add(pred[start : start + 3], truth[start : start + 3])
        sampled.add(pred[start : start + 3], truth[start : start + 3])
    assert sampled.values["psnr"] == every.values["psnr"] and sampled.count == 10
    expected = ssim(pred[[0, 4, 8]], truth[[0, 4, 8]])
    assert torch.allclose(torch.tensor(sampled.values["ssim"]), expected)
    assert len(every.values["ssim"]) == 10
