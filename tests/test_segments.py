"""--start and --duration: render and eval of part of a clip."""

import json

import numpy as np
import pytest
from helpers import cli, moving_square, write_lossless

from vidpred.cli import main
from vidpred.cli.validators import clock_time
from vidpred.encoding import write_mp4
from vidpred.evaluation import evaluate
from vidpred.predict import Predictor
from vidpred.rendering import RenderSettings, render
from vidpred.sidecar import sidecar_path
from vidpred.video import Decoder, Segment, read_video
from vidpred.video_options import VideoOptions

pytestmark = pytest.mark.usefixtures("in_tmp_path")

FPS = 10.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An H.264 mp4 (an indexed container: the reader seeks) of 80 frames at 10 fps, each
    frame brighter than the one before so that any frame out of place shows."""
    frames = moving_square(80, 64, 64, speed=3)
    frames = np.clip(frames.astype(int) + np.arange(80)[:, None, None, None], 0, 255)
    return write_mp4(tmp_path_factory.mktemp("seg") / "clip.mp4", frames.astype(np.uint8), FPS)


@pytest.mark.parametrize("skip", [1, 37, 79])
def test_a_decoder_that_skips_gives_the_frames_a_full_decode_gives(clip, tmp_path, skip):
    whole = read_video(clip).frames
    with Decoder(clip, skip=skip, max_frames=5) as decoder:
        frames = np.stack(list(decoder.frames()))
    np.testing.assert_array_equal(frames, whole[skip : skip + 5])
    # An .avi is read from its start (no seek): the same frames.
    avi = write_lossless(tmp_path / "clip.avi", whole, FPS)
    assert np.array_equal(read_video(avi, skip=skip, max_frames=5).frames, whole[skip : skip + 5])


@pytest.mark.parametrize("resolution", ["working", "native"])
def test_a_segment_render_is_exactly_those_frames_of_the_full_render(
    clip, tmp_path, trained_checkpoint, resolution
):
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    lossless = RenderSettings(crf=0)  # compare exactly
    whole = VideoOptions(resolution=resolution, gate=0)
    part_only = VideoOptions(resolution=resolution, gate=0, segment=Segment(4.0, 2.0))
    full = render(clip, predictor, tmp_path / "full.mp4", lossless, whole)
    part = render(clip, predictor, tmp_path / "part.mp4", lossless, part_only)
    full_frames, part_frames = read_video(full).frames, read_video(part).frames
    # The full render shows targets 4.. (the model needs 4 frames before); 4 s at 10 fps is
    # frame 40, and 2 s are 20 frames.
    assert len(part_frames) == 20
    np.testing.assert_array_equal(part_frames, full_frames[36:56])
    meta = json.loads(sidecar_path(part).read_text())
    assert meta["segment"] == {"start_s": 4.0, "duration_s": 2.0}
    assert meta["first_frame"] == 40 and meta["frames"] == 20 and meta["crf"] == 0


def test_a_segment_at_the_start_shows_from_the_first_predictable_frame(
    clip, tmp_path, trained_checkpoint
):
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    out = render(
        clip,
        predictor,
        tmp_path / "s.mp4",
        video_options=VideoOptions(resolution="working", segment=Segment(0, 1)),
    )
    assert read_video(out).num_frames == 10 - 4  # frames 4..9: 0..3 are its inputs


def test_cli_segment_options_and_errors(clip, tmp_path, trained_checkpoint, capsys):
    render_clip = ["render", clip, "--weights", trained_checkpoint, "--resolution", "working"]
    out = tmp_path / "r.mp4"
    code, _ = cli(capsys, *render_clip, "--start", "0:05", "--duration", "1.5", "--out", out)
    assert code == 0 and read_video(out).num_frames == 15
    code, lines = cli(capsys, *render_clip, "--start", "9", "--out", tmp_path / "late.mp4")
    assert code != 0 and lines == [f"vidpred: error: {clip}: --start 9 s is past its end (8.0 s)"]
    assert not (tmp_path / "late.mp4").exists()
    with pytest.raises(SystemExit):
        cli(capsys, "render", clip, "--duration", "0")


def test_eval_scores_only_the_segments_targets(clip, trained_checkpoint, capsys):
    code = main(["eval", str(clip), "--weights", str(trained_checkpoint), "--json",
                 "--start", "2", "--duration", "3"])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["segment"] == {"start_s": 2.0, "duration_s": 3.0}
    assert result["videos"][0]["targets"] == 30  # frames 20..49
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    late = evaluate(
        [clip], predictor, tail=0.25, video_options=VideoOptions(segment=Segment(5.0))
    )  # both: frames 60..79
    assert late["videos"][0]["targets"] == 20


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("40", 40.0), ("1:05", 65.0), ("1:02:03.5", 3723.5), ("0.25", 0.25), ("00:40", 40.0)],
)
def test_times_read_as_ffmpeg_writes_them(text, seconds):
    assert clock_time(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "1:60", "a", "1:2:3:4", "nan", "inf"])
def test_bad_times_are_refused(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        clock_time(text)
