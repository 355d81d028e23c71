"""Frames of odd shapes and containers that lie (issue 22): very short or thin frames that
crashed OpenCV's DIS, a frame count claimed in the billions, and the batch memory estimate."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import (
    claim_frames,
    moving_square,
    run_cli_process,
    run_python_json,
    write_avi,
    write_lossless,
)

from vidpred import flow as flow_module
from vidpred.cache import read_video_cached
from vidpred.cli import main
from vidpred.errors import VidpredError
from vidpred.predict import Predictor
from vidpred.video import DecodeCapError, read_video

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default.pt"

# (H, W) where OpenCV 5.1.0's DIS (preset medium) segfaulted (8-15 x 40-319) or raised
# (under 8 px, or both sides under 12, or 8-15 x 320 and more): see vidpred/flow.py.
ODD_SHAPES = [(8, 100), (8, 40), (11, 159), (12, 200), (15, 319), (12, 40), (8, 400), (7, 500)]
ODD_SHAPES += [(8, 12), (1, 1000), (1000, 1), (1, 1), (500, 7)]


def write_mjpeg(path: Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Writes uint8 RGB (T, H, W, 3) frames to an MJPEG .avi: unlike FFV1 it takes 1-px sides."""
    return write_avi(path, frames, fps, "MJPG")


def noise(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), np.uint8)


def test_dis_flow_on_shapes_opencv_crashes_or_refuses_is_zero():
    # In a child process: on the old code the first of these shapes is a segfault.
    script = (
        "import json, sys, numpy as np\n"
        "from vidpred.flow import dis_flow\n"
        "out = []\n"
        "for h, w in json.loads(sys.argv[1]):\n"
        "    rng = np.random.default_rng(h * 10007 + w)\n"
        "    a = rng.integers(0, 256, (h, w, 3), np.uint8)\n"
        "    f = dis_flow(a, np.roll(a, 1, 1))\n"
        "    out.append([list(f.shape), f.dtype.str, bool(np.all(f == 0))])\n"
        "print(json.dumps(out))\n"
    )
    flows = run_python_json(script, ODD_SHAPES, timeout=120)
    for (h, w), (shape, dtype, zero) in zip(ODD_SHAPES, flows, strict=True):
        assert shape == [h, w, 2] and dtype == "<f4" and zero, (h, w)


def test_dis_flow_is_zero_where_opencv_refuses_a_pair(monkeypatch):
    class Refusing:
        def calc(self, *args):
            raise cv2.error("refused")

    monkeypatch.setattr(flow_module.cv2, "DISOpticalFlow_create", lambda preset: Refusing())
    frames = moving_square(3, 40, 56)
    flow = flow_module.dis_flow(frames[2], frames[1])
    assert flow.shape == (40, 56, 2) and not flow.any()


def leftovers(*folders: Path) -> list[str]:
    """Returns the lock and temporary files left anywhere below ``folders``."""
    return [
        str(p)
        for folder in folders
        for p in folder.rglob("*")
        if p.name.endswith(".lock") or ".tmp" in p.name
    ]


def test_short_and_thin_clips_run_to_the_end(tmp_path):
    """The tester's reproductions: each was a segfault (exit 139) or a cv2 traceback."""
    short = write_lossless(tmp_path / "s100x8.avi", noise(25, 8, 100))
    low = write_lossless(tmp_path / "s200x16.avi", noise(25, 16, 200))
    wide = write_mjpeg(tmp_path / "s1000x1.avi", noise(25, 1, 1000))
    tall = write_mjpeg(tmp_path / "s1x1000.avi", noise(25, 1000, 1))
    out = tmp_path / "out"
    calls = [
        ["render", short, "--out", out / "a.mp4"],
        ["eval", low, "--size", "8", "--json"],
        ["train", low, "--size", "8", "--crop", "0", "--steps", "2", "--out", out / "w.pt"],
        ["render", low, "--max-side", "8", "--out", out / "b.mp4"],
        ["render", wide, "--out", out / "c.mp4"],
        ["render", tall, "--out", out / "d.mp4"],
        ["eval", wide, "--resolution", "native", "--json"],
        ["eval", tall, "--resolution", "native", "--json"],
    ]
    out.mkdir()
    _, results = run_cli_process(calls, timeout=600)
    for call, (code, err, stdout) in zip(calls, results, strict=True):
        assert code == 0 and "Traceback" not in err, (call, err[-2000:])
        if call[0] == "eval":
            scores = json.loads(stdout)["videos"][0]
            assert np.isfinite(scores["flow"]["psnr"]), call
    for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4", "w.pt"):
        assert (out / name).stat().st_size > 0
    assert not leftovers(tmp_path, Path(os.environ["VIDPRED_CACHE"]))


def liar(tmp_path: Path, frames: np.ndarray) -> Path:
    """An MJPEG .avi of ``frames`` whose header claims 2**31 - 1 of them."""
    path = claim_frames(write_mjpeg(tmp_path / "liar.avi", frames), 0x7FFFFFFF)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 0x7FFFFFFF
    return path


def test_a_container_claiming_billions_of_frames_is_used_with_a_warning(tmp_path, caplog):
    frames = noise(25, 48, 64)
    path = liar(tmp_path, frames)
    with caplog.at_level(logging.WARNING):
        plain = read_video(path)
        cached = read_video_cached(path, None, tmp_path / "cache")
    assert plain.num_frames == cached.num_frames == 25
    np.testing.assert_array_equal(plain.frames, cached.frames)
    assert "claims 2147483647 frames" in caplog.text and "looks wrong" in caplog.text


def test_a_lying_container_still_meets_the_cap_as_it_decodes(tmp_path, monkeypatch):
    path = liar(tmp_path, noise(25, 48, 64))
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", str(10 * 48 * 64 * 3 / 1e9))  # 10 frames
    for read in (lambda: read_video(path), lambda: read_video_cached(path, None, tmp_path / "c")):
        with pytest.raises(DecodeCapError, match="more than 11 frames"):
            read()
    assert not leftovers(tmp_path)


def test_the_batch_estimate_covers_the_measured_peak(monkeypatch):
    """A 4000x2 clip at 64000x32 peaked at 7.87 GB RSS in eval (batch 8); the estimate said
    5.3 GB, so a 6 GB cap let it through to an allocator traceback."""
    predictor = Predictor.from_checkpoint(DEFAULT_WEIGHTS, "cpu", "fp32")
    monkeypatch.setenv("VIDPRED_MAX_DECODED_GB", "6")
    with pytest.raises(VidpredError, match=r"^batch_size 8 at 64000x32 would take about") as e:
        predictor.check_memory(8, 0, 32, 64000)
    assert float(str(e.value).split("about ")[1].split(" GB")[0]) >= 7.87


@pytest.mark.parametrize("value", ["nan", "4.5", "big"])
def test_a_max_side_that_is_not_a_number_names_what_is_allowed(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "clip.mp4", "--max-side", value])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (
        f"vidpred render: error: argument --max-side: must be an integer from 8 to 4096 px, "
        f"got '{value}'"
    )
