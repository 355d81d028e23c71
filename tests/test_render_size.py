"""A default render is small enough to keep and share, and still shows what vidpred drew."""

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from helpers import exact_render

from vidpred.encoding import DEFAULT_CRF, Mp4Writer
from vidpred.panels import GAP, LABEL_HEIGHT
from vidpred.predict import Predictor
from vidpred.rendering import render
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.synthetic import generate
from vidpred.video import read_video
from vidpred.video_options import VideoOptions

# What docs/watching.md ("Render file size") calls visually lossless: the decoded actual and
# predicted pictures within 40 dB luma PSNR of the frames vidpred drew.
LOSSLESS_TO_THE_EYE_DB = 40.0


def luma(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((luma(a) - luma(b)) ** 2)))


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    """Fine procedural texture in motion with sensor noise, stored as a camera stores it
    (H.264 CRF 23, preset medium)."""
    frames = generate("natural", 40, 128, 160, seed=3)
    path = tmp_path_factory.mktemp("size") / "camera.mp4"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "160x128", "-r", "25", "-i", "-",
        "-c:v", "libx264", "-preset", "medium", "-crf", "23", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=frames.tobytes(), check=True)
    return path


def test_the_default_render_is_far_smaller_and_looks_the_same(
    tmp_path, camera_clip, trained_checkpoint
):
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    drawn_path = exact_render(camera_clip, predictor, tmp_path / "lossless.mp4")
    shared = render(
        camera_clip, predictor, tmp_path / "default.mp4", video_options=VideoOptions(gate=0)
    )
    assert read_sidecar(sidecar_path(shared))["crf"] == DEFAULT_CRF
    drawn, seen = read_video(drawn_path).frames, read_video(shared).frames
    meta = read_sidecar(sidecar_path(drawn_path))
    h, w = (side * meta["scale"] for side in meta["size"])
    for i, name in enumerate(meta["panels"][:2]):  # actual, predicted
        x = i * (w + GAP)
        picture = np.s_[:, LABEL_HEIGHT : LABEL_HEIGHT + h, x : x + w]
        assert luma_psnr(drawn[picture], seen[picture]) >= LOSSLESS_TO_THE_EYE_DB, name
    # The renders' old quality setting (x264 CRF 10) against the default.
    with Mp4Writer(tmp_path / "crf10.mp4", 25, crf=10) as writer:
        for frame in drawn:
            writer.write(frame)
    old, new = (tmp_path / "crf10.mp4").stat().st_size, shared.stat().st_size
    source = camera_clip.stat().st_size
    print(f"default {new} B, CRF 10 {old} B, source {source} B")
    assert new < 0.6 * old
