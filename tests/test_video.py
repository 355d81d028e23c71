import logging

import cv2
import numpy as np
import pytest
from helpers import frame_index_video, moving_square, write_lossless

from vidpred.encoding import write_mp4
from vidpred.errors import VideoError
from vidpred.video import find_videos, read_video, working_size


def test_reader_returns_every_frame_as_uint8_rgb(tmp_path):
    frames = moving_square(30, 32, 48, color=(250, 0, 0))
    path = write_lossless(tmp_path / "v.avi", frames, fps=12)
    video = read_video(path)
    assert video.frames.shape == (30, 32, 48, 3)
    assert video.frames.dtype == np.uint8
    np.testing.assert_array_equal(video.frames, frames)  # lossless input, native size: exact
    assert video.fps == pytest.approx(12, rel=0.01)


def test_reader_channel_order_is_rgb(tmp_path):
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    frames[..., 0] = 200  # pure red in RGB
    video = read_video(write_lossless(tmp_path / "red.avi", frames))
    assert video.frames[..., 0].min() == 200 and video.frames[..., 2].max() == 0


def test_reader_resizes_shorter_side_and_keeps_aspect(tmp_path):
    path = write_lossless(tmp_path / "wide.avi", moving_square(5, 120, 200))
    video = read_video(path, size=48)
    h, w = video.frames.shape[1:3]
    assert h == 48 and w == 80  # 200 * 48 / 120 = 80, already a multiple of 4
    assert video.source_size == (120, 200)


def test_working_size_rounds_to_multiple_of_four():
    assert working_size(100, 177, 50) == (52, 88)  # 50 -> 52, 88.5 -> 88
    assert working_size(30, 30, None) == (32, 32)


def test_grayscale_video_becomes_rgb(tmp_path):
    path = tmp_path / "gray.avi"
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (16, 16), isColor=False
    )
    for value in (10, 90, 170):
        writer.write(np.full((16, 16), value, np.uint8))
    writer.release()
    video = read_video(path)
    assert video.frames.shape == (3, 16, 16, 3)
    assert (video.frames[1] == 90).all()


def test_mp4_round_trip_is_h264_with_expected_count(tmp_path):
    frames = moving_square(20, 32, 48)
    path = write_mp4(tmp_path / "out.mp4", frames, fps=15)
    capture = cv2.VideoCapture(str(path))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    capture.release()
    assert fourcc in ("avc1", "h264", "H264")
    video = read_video(path)
    assert video.num_frames == 20 and video.frames.shape[1:3] == (32, 48)
    assert video.fps == pytest.approx(15, rel=0.01)
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


def test_find_videos_is_recursive_and_errors_are_clear(tmp_path, square_folder):
    assert [p.name for p in find_videos(square_folder)] == ["a.avi", "b.avi"]
    with pytest.raises(VideoError, match="no such file"):
        find_videos(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VideoError, match="no video files"):
        find_videos(tmp_path)


def test_text_file_named_mp4_is_rejected(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match="fake.mp4"):
        read_video(path)


def test_frame_index_video_reads_back_in_order(tmp_path):
    video = read_video(write_lossless(tmp_path / "idx.avi", frame_index_video(12)))
    assert [int(f[0, 0, 0]) for f in video.frames] == [10 * t for t in range(12)]


def test_short_video_is_skipped_with_a_warning(tmp_path, caplog):
    from vidpred.data import load_videos

    write_lossless(tmp_path / "short.avi", moving_square(3))
    write_lossless(tmp_path / "long.avi", moving_square(12))
    with caplog.at_level(logging.WARNING):
        videos = load_videos(tmp_path, size=32, min_frames=5)
    assert [v.path.name for v in videos] == ["long.avi"]
    assert "short.avi" in caplog.text
