"""The gallery in a real browser: headless Chromium loads and plays every video.

Skipped when no Chromium is installed (`.ci/run` installs Debian's). Playwright drives that
Chromium (tests/browser.py); it downloads no browser of its own.
"""

import os
from pathlib import Path

import cv2
import pytest
from browser import CHROMIUM_FLAGS, find_chromium, play_and_screenshot
from helpers import moving_square, one_torch_thread, write_lossless

from vidpred.gallery import write_gallery
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.sidecar import read_sidecar, sidecar_path
from vidpred.video import read_video

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium not found (looked for $VIDPRED_CHROMIUM, chromium, chromium-browser, "
    "google-chrome); install it with `apt-get install chromium` as .ci/run does",
)


def test_launch_flags_are_the_ones_the_issue_asks_for():
    wanted = (
        "headless no-sandbox disable-gpu disable-background-networking disable-component-update"
    )
    assert {f"--{flag}" for flag in wanted.split()} | {"--disable-sync", "--no-first-run"} == set(
        CHROMIUM_FLAGS
    )


@needs_chromium
def test_gallery_videos_load_and_play_in_headless_chromium(tmp_path, trained_checkpoint):
    renders = tmp_path / "renders"
    renders.mkdir()
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    a = write_lossless(tmp_path / "a.avi", moving_square(30, 32, 32), fps=12)
    b = write_lossless(tmp_path / "b.avi", moving_square(20, 32, 48, speed=3), fps=25)
    with one_torch_thread():
        render(a, predictor, renders / "a.pred.mp4")
        render(
            b,
            predictor,
            renders / "b.pred.mp4",
            settings=RenderSettings(horizon=3, extend=4, panels="actual,predicted,error,copy_last"),
        )
    index = write_gallery(renders)
    # $VIDPRED_SCREENSHOT_DIR keeps the screenshot (e.g. as a CI artifact).
    shots = Path(os.environ.get("VIDPRED_SCREENSHOT_DIR") or tmp_path)
    screenshot = shots / "gallery.png"

    records = play_and_screenshot(index, screenshot)

    assert [r["src"] for r in records] == ["a.pred.mp4", "b.pred.mp4"]
    for record in records:
        mp4 = renders / record["src"]
        video = read_video(mp4)
        expected = video.num_frames / video.fps  # the rendered clip, decoded independently
        assert read_sidecar(sidecar_path(mp4))["duration_s"] == pytest.approx(expected)
        assert record["error"] is None and record["playError"] is None, record
        assert record["readyState"] >= 2, record  # HAVE_CURRENT_DATA: a frame is decoded
        assert record["duration"] == pytest.approx(expected, abs=0.5 / video.fps), record
        assert record["advanced"] > 0, record  # the clock moved: it plays
        assert (record["height"], record["width"]) == video.frames.shape[1:3]
    image = cv2.imread(str(screenshot))
    assert image is not None and image.shape[1] == 1280
    assert image.std() > 10  # a page, not a blank
