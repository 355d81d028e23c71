"""The decode cache: decode once, read the cache later, decode again when the video changes."""

import json
import os

import cv2
import numpy as np
import pytest
from helpers import moving_square, write_lossless

import vidpred.video
from vidpred.cache import cache_stats, default_cache_dir, read_video_cached
from vidpred.cli import main
from vidpred.data import DataConfig, WindowDataset, load_videos
from vidpred.model import ModelConfig
from vidpred.training import TrainConfig, train


@pytest.fixture
def decodes(monkeypatch):
    """Counts videos opened by the decoder (each read opens a capture)."""
    opened = []
    real = cv2.VideoCapture

    def counting(path, *args):
        opened.append(path)
        return real(path, *args)

    monkeypatch.setattr(vidpred.video.cv2, "VideoCapture", counting)
    return opened


def entries(folder):
    return sorted(p.name for p in folder.glob("*.json"))


def test_second_epoch_and_second_run_decode_no_video(tmp_path, decodes):
    folder = tmp_path / "videos"
    write_lossless(folder / "a.avi", moving_square(30, speed=2))
    write_lossless(folder / "b.avi", moving_square(30, speed=3))
    first = load_videos(folder, 32, 5)
    assert {os.path.basename(p) for p in decodes} == {"a.avi", "b.avi"}
    decodes.clear()
    model_config = ModelConfig(frames=4, width=4, depth=1)
    data = WindowDataset(first, model_config.input_offsets(), DataConfig(32, 0.2, 16))
    result = train(
        data,
        model_config,
        DataConfig(32, 0.2, 16),
        TrainConfig(epochs=2, batch_size=8, device="cpu"),
        tmp_path / "m.pt",
    )
    assert result.epoch == 2 and decodes == []  # two epochs, no decoding
    again = load_videos(folder, 32, 5)  # what a second run does
    assert decodes == []
    for a, b in zip(first, again, strict=True):
        assert isinstance(b.frames, np.memmap)
        np.testing.assert_array_equal(a.frames, b.frames)
        assert (a.fps, a.source_size) == (b.fps, b.source_size) == (25.0, (32, 32))


def test_cached_frames_equal_a_fresh_decode(tmp_path):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(20, 48, 64))
    fresh = vidpred.video.read_video(clip, 32)
    read_video_cached(clip, 32)
    cached = read_video_cached(clip, 32)
    assert cached.frames.dtype == np.uint8 and cached.frames.shape == fresh.frames.shape == (
        20,
        32,
        44,
        3,
    )
    np.testing.assert_array_equal(cached.frames, fresh.frames)
    assert (cached.fps, cached.source_size) == (fresh.fps, fresh.source_size)
    meta = json.loads(next(default_cache_dir().glob("*.json")).read_text())
    assert meta["key"]["path"] == str(clip.resolve()) and meta["key"]["size"] == 32


def test_touched_or_rewritten_video_is_decoded_again(tmp_path, decodes):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(20, speed=2))
    read_video_cached(clip, 32)
    decodes.clear()
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # `touch`
    read_video_cached(clip, 32)
    assert len(decodes) > 0
    # New content at the same path: the new frames, and the stale entry is gone.
    write_lossless(clip, moving_square(20, speed=2, color=(10, 250, 10)))
    decodes.clear()
    video = read_video_cached(clip, 32)
    assert len(decodes) > 0
    np.testing.assert_array_equal(video.frames, vidpred.video.read_video(clip, 32).frames)
    assert len(entries(default_cache_dir())) == 1
    decodes.clear()
    read_video_cached(clip, 32)
    assert decodes == []


def test_each_working_size_has_its_own_entry(tmp_path):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12, 32, 48))
    assert read_video_cached(clip, 16).frames.shape == (12, 16, 24, 3)
    assert read_video_cached(clip, 32).frames.shape == (12, 32, 48, 3)
    assert read_video_cached(clip, 16).frames.shape == (12, 16, 24, 3)
    assert len(entries(default_cache_dir())) == 2


def test_damaged_entry_is_decoded_again(tmp_path, decodes):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    good = np.array(read_video_cached(clip, 32).frames)
    npy = next(default_cache_dir().glob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:1000])  # e.g. a full disk
    decodes.clear()
    video = read_video_cached(clip, 32)
    assert len(decodes) > 0
    np.testing.assert_array_equal(video.frames, good)


def test_unwritable_cache_folder_falls_back_to_decoding(tmp_path, caplog):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    video = read_video_cached(clip, 32, cache_dir=blocker / "cache")
    assert video.num_frames == 12
    assert "could not write the decode cache" in caplog.text


def test_no_cache_writes_nothing_and_cache_dir_is_honoured(tmp_path):
    folder = tmp_path / "videos"
    write_lossless(folder / "a.avi", moving_square(12))
    load_videos(folder, 32, 5, cache=False)
    assert cache_stats().entries == 0
    load_videos(folder, 32, 5, cache_dir=tmp_path / "mine")
    assert cache_stats(tmp_path / "mine").entries == 1 and cache_stats().entries == 0


def test_default_folder_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDPRED_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("VIDPRED_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "vidpred"


def test_eval_options_and_cache_command(tmp_path, square_folder, trained_checkpoint, capsys):
    mine, unused = tmp_path / "mine", tmp_path / "unused"
    evaluate = ["-q", "eval", square_folder, "--weights", trained_checkpoint, "--json"]
    assert main([str(a) for a in [*evaluate, "--cache-dir", mine, "--batch-size", 3]]) == 0
    assert len(json.loads(capsys.readouterr().out)["videos"]) == 2
    assert main([str(a) for a in [*evaluate, "--cache-dir", unused, "--no-cache"]]) == 0
    assert not unused.exists()
    capsys.readouterr()
    assert main(["cache", "--cache-dir", str(mine)]) == 0
    assert "2 cached videos" in capsys.readouterr().out
    (mine / "notes.txt").write_text("not the cache's")
    assert main(["cache", "--clear", "--cache-dir", str(mine)]) == 0
    assert "removed 2 cached videos" in capsys.readouterr().out
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
