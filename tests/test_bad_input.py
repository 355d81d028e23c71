"""Bad input: each case ends in one clear line, and the rest of the work goes on where it can.

Errors are checked through ``vidpred.cli.main`` in-process (the same code path as the
command, without a process start per case); the permission cases run in a subprocess,
because as root they need file permissions to apply, which only a fresh process can get.
"""

import ctypes
import logging
import os
import struct
import subprocess
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import (
    TINY_TRAINING,
    claim_frames,
    cli,
    moving_square,
    run_cli_process,
    write_lossless,
)

from vidpred.cli import main
from vidpred.data import DataConfig, WindowDataset, load_videos
from vidpred.encoding import write_mp4
from vidpred.errors import OutputError, VideoError, VidpredError
from vidpred.model import ModelConfig
from vidpred.outputs import check_output_path
from vidpred.training import TrainConfig, train
from vidpred.video import find_videos, read_video

pytestmark = pytest.mark.usefixtures("in_tmp_path")


def assert_one_line_error(result, *words):
    code, lines = result
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("vidpred: error: "), lines
    for word in words:
        assert str(word) in lines[0], lines[0]


def mp4_boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Returns {box type: (offset, size)} of an mp4's top-level boxes."""
    boxes, i = {}, 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        boxes[kind] = (i, size)
        i += size
    return boxes


def noise_video(num_frames: int = 30, height: int = 32, width: int = 48) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) noise: every frame costs many bytes, so a cut lands mid-stream."""
    return np.random.default_rng(0).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def write_png_as_mp4(path: Path) -> Path:
    ok, png = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))
    path.write_bytes(png.tobytes())
    return path


# --- missing, empty, not a video -------------------------------------------------------


def test_missing_path_is_one_line_in_every_command(tmp_path, capsys, trained_checkpoint):
    missing = tmp_path / "nope.mp4"
    assert_one_line_error(cli(capsys, "train", missing), missing, "no such file")
    assert_one_line_error(
        cli(capsys, "eval", missing, "--weights", trained_checkpoint), missing, "no such file"
    )
    assert_one_line_error(
        cli(capsys, "render", missing, "--weights", trained_checkpoint), missing, "no such file"
    )
    assert_one_line_error(
        cli(capsys, "eval", trained_checkpoint.parent, "--weights", missing),
        missing,
        "no such weights",
    )


def test_empty_folder(tmp_path, capsys):
    assert_one_line_error(cli(capsys, "train", tmp_path), tmp_path, "no video files")


def test_zero_byte_file(tmp_path, capsys, trained_checkpoint):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoError, match="empty file"):
        read_video(empty)
    assert_one_line_error(
        cli(capsys, "render", empty, "--weights", trained_checkpoint), empty, "empty file"
    )


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_image_named_mp4_is_called_an_image(tmp_path, capsys, trained_checkpoint, kind):
    path = tmp_path / "photo.mp4"
    ok, data = cv2.imencode(f".{kind.lower()}", np.zeros((40, 40, 3), np.uint8))
    path.write_bytes(data.tobytes())
    # FFmpeg decodes the image as a one-frame "video"; the reader says what it really is.
    with pytest.raises(VideoError, match=f"a {kind} image, not a video"):
        read_video(path)
    assert_one_line_error(
        cli(capsys, "render", path, "--weights", trained_checkpoint), path, "image"
    )


def test_text_named_mp4(tmp_path, capsys):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n" * 40)
    assert_one_line_error(cli(capsys, "train", path), path)  # skipped, then nothing usable left


# --- damaged videos: use what decodes ----------------------------------------------------


def test_truncated_mp4_uses_the_frames_that_decode(tmp_path, caplog):
    frames = noise_video(30)
    full = write_mp4(tmp_path / "full.mp4", frames, fps=10)
    data = full.read_bytes()
    start, size = mp4_boxes(data)[b"mdat"]  # +faststart: the index comes first, frames after
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: start + size // 2])  # a download that stopped half way
    with caplog.at_level(logging.WARNING):
        video = read_video(cut)
    assert 0 < video.num_frames < 30
    np.testing.assert_array_equal(video.frames, read_video(full).frames[: video.num_frames])
    assert (
        f"claims 30 frames but only {video.num_frames} decode" in caplog.text
        and "cut.mp4" in caplog.text
    )


def test_container_claiming_more_frames_than_it_holds(tmp_path, caplog):
    frames = moving_square(20)
    path = claim_frames(write_lossless(tmp_path / "liar.avi", frames), 50)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 50  # the lie is in place
    with caplog.at_level(logging.WARNING):
        video = read_video(path)
    np.testing.assert_array_equal(video.frames, frames)  # every real frame, nothing invented
    assert "claims 50 frames but only 20 decode" in caplog.text


def test_folder_of_bad_files_skips_each_with_its_reason(tmp_path, caplog):
    folder = tmp_path / "videos"
    good = write_lossless(folder / "good.avi", moving_square(12))
    write_lossless(folder / "short.avi", moving_square(3))
    (folder / "empty.mp4").touch()
    (folder / "notes.mp4").write_text("not a video\n" * 40)
    write_png_as_mp4(folder / "photo.mp4")
    (folder / "gone.mp4").symlink_to(folder / "deleted.mp4")
    with caplog.at_level(logging.WARNING):
        videos = load_videos(folder, size=32, min_frames=5)
    assert [v.path for v in videos] == [good]
    for name, reason in [
        ("short.avi", "3 frames, needs at least 5"),
        ("empty.mp4", "empty file"),
        ("notes.mp4", "not a video"),
        ("photo.mp4", "PNG image"),
        ("gone.mp4", "broken symbolic link"),
    ]:
        assert any(name in r.message and reason in r.message for r in caplog.records), (
            name,
            caplog.text,
        )


def test_only_short_videos_is_an_error(tmp_path, capsys, caplog):
    # One video: its own reason is the error.
    write_lossless(tmp_path / "short.avi", moving_square(3))
    assert_one_line_error(
        cli(capsys, "train", tmp_path, *TINY_TRAINING),
        "short.avi: 3 frames; the model needs at least 5",
    )
    # Several: each is a warning, and the error sums them up.
    write_lossless(tmp_path / "short2.avi", moving_square(4))
    with caplog.at_level(logging.WARNING):
        assert_one_line_error(
            cli(capsys, "train", tmp_path, *TINY_TRAINING),
            "no usable video (each needs at least 5 frames)",
        )
    assert "short.avi" in caplog.text and "short2.avi" in caplog.text


def test_videos_skipped_for_other_reasons_are_not_called_short(tmp_path, capsys, caplog):
    """The summary said "each needs at least 5 frames" when the videos had been refused for
    their size: a user went looking for short clips."""
    for name in ("a.avi", "b.avi"):
        write_lossless(tmp_path / name, moving_square(8, 32, 48))
    with caplog.at_level(logging.WARNING):
        code, lines = cli(capsys, "train", tmp_path, *TINY_TRAINING, "--size", "4096")
    assert_one_line_error((code, lines), "no usable video: none of the 2 could be used")
    assert "frames" not in lines[0].split("no usable video")[1]
    assert caplog.text.count("at working size 4096") == 2
    write_lossless(tmp_path / "short.avi", moving_square(3))
    code, lines = cli(capsys, "train", tmp_path, *TINY_TRAINING, "--size", "4096")
    assert_one_line_error((code, lines), "2 could not be used and 1 had fewer than 5 frames")


# --- odd but valid videos ------------------------------------------------------------------


def write_gray(path: Path, num_frames: int, height: int, width: int, fps: float) -> Path:
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height), isColor=False
    )
    for t in range(num_frames):
        writer.write(np.full((height, width), 10 + 8 * t, np.uint8))
    writer.release()
    return path


def test_folder_mixing_sizes_aspects_fps_and_gray_trains_on_crops(tmp_path):
    folder = tmp_path / "mixed"
    write_lossless(folder / "square.avi", moving_square(16, 32, 32), fps=25)
    write_lossless(folder / "wide.avi", moving_square(16, 48, 80), fps=10)
    write_lossless(folder / "small.avi", moving_square(16, 20, 20), fps=60)  # upscaled to 32
    write_gray(folder / "tall_gray.avi", 16, 60, 40, fps=15)
    videos = load_videos(folder, size=32, min_frames=3)
    assert {v.frames.shape[1:] for v in videos} == {(32, 32, 3), (32, 52, 3), (48, 32, 3)}
    assert sorted(v.fps for v in videos) == pytest.approx([10, 15, 25, 60], rel=0.01)
    model_config = ModelConfig(frames=2, width=4, depth=1, base_flow="dis")
    config = TrainConfig(steps=3, batch_size=4, warmup_steps=1, device="cpu")
    data = WindowDataset(videos, model_config.input_offsets(), DataConfig(size=32, crop=16))
    result = train(data, model_config, DataConfig(size=32, crop=16), config, tmp_path / "m.pt")
    assert result.step == 3 and np.isfinite(result.history[-1]["val_psnr"])
    # Full frames of different sizes cannot share a batch: say so instead of a stack error.
    with pytest.raises(VidpredError, match="different working sizes.*--crop"):
        WindowDataset(videos, model_config.input_offsets(), DataConfig(size=32, crop=0))


def test_large_frames_are_resized_as_read(tmp_path):
    """A 1080p video read at --size 32 never holds more than one native-size frame."""
    height, width, num_frames = 1080, 1920, 6
    path = write_lossless(
        tmp_path / "big.avi", np.full((num_frames, height, width, 3), 90, np.uint8)
    )
    native_frame = height * width * 3
    tracemalloc.start()
    try:
        video = read_video(path, size=32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert video.frames.shape == (num_frames, 32, 56, 3)
    assert peak > 0.9 * native_frame  # the decoded frames are traced, so the bound means something
    assert peak < 2 * native_frame, f"peak {peak / native_frame:.1f} native frames"


def test_paths_with_spaces_non_ascii_and_brackets(tmp_path, capsys, trained_checkpoint):
    folder = tmp_path / "my vidéos [draft]"
    clip = write_lossless(folder / "clip ü 日本.avi", moving_square(12))
    weights = tmp_path / "run ü [2]" / "model ü.pt"
    weights.parent.mkdir()
    code, lines = cli(capsys, "train", folder, *TINY_TRAINING, "--out", weights)
    assert code == 0 and weights.is_file(), lines
    rendered = tmp_path / "renders ü" / "[a] b ü.mp4"
    rendered.parent.mkdir()
    assert cli(capsys, "render", clip, "--weights", weights, "--out", rendered)[0] == 0
    assert read_video(rendered).num_frames == 12 - 4
    # The paths print exactly (rich would eat "[draft]" and "[2]" as markup).
    main(["eval", str(clip), "--weights", str(weights)])
    assert f"weights: {weights} (given with --weights)" in capsys.readouterr().err
    missing = folder / "nope [1] ü.avi"
    assert_one_line_error(cli(capsys, "eval", missing, "--weights", weights), missing)


def test_symlinks_are_followed_once_and_loops_end(tmp_path, caplog):
    outside = tmp_path / "outside"
    linked = write_lossless(outside / "linked.avi", moving_square(8))
    folder = tmp_path / "videos"
    real = write_lossless(folder / "real.avi", moving_square(8))
    (folder / "alias.avi").symlink_to(real)  # the same file twice
    (folder / "more").symlink_to(outside)  # a linked folder
    (folder / "more_again").symlink_to(outside)  # the same folder twice
    (folder / "loop").symlink_to(folder)  # a loop
    (folder / "gone.avi").symlink_to(tmp_path / "deleted.avi")
    with caplog.at_level(logging.WARNING):
        found = find_videos(folder)
    assert sorted(p.resolve() for p in found) == sorted([real.resolve(), linked.resolve()])
    assert (
        "alias.avi: same file as" in caplog.text and "gone.avi: broken symbolic link" in caplog.text
    )
    assert find_videos(folder / "alias.avi") == [folder / "alias.avi"]  # a link named directly
    with pytest.raises(VideoError, match="broken symbolic link"):
        find_videos(folder / "gone.avi")
    # An output reached through a link to an input is still the input.
    link_out = tmp_path / "out.avi"
    link_out.symlink_to(real)
    with pytest.raises(OutputError, match="input"):
        check_output_path(link_out, force=True, inputs=(real,))


# --- outputs that cannot be written --------------------------------------------------------


def test_output_in_missing_folder_fails_before_any_work(
    tmp_path, capsys, monkeypatch, square_folder, trained_checkpoint
):
    def no_work(*args, **kwargs):
        raise AssertionError("videos were read before the output path was checked")

    monkeypatch.setattr("vidpred.data.load_videos", no_work)
    monkeypatch.setattr("vidpred.rendering.read_video", no_work)
    out = tmp_path / "missing" / "m.pt"
    assert_one_line_error(
        cli(capsys, "train", square_folder, *TINY_TRAINING, "--out", out), out, "does not exist"
    )
    out = tmp_path / "missing" / "r.mp4"
    clip = square_folder / "a.avi"
    assert_one_line_error(
        cli(capsys, "render", clip, "--weights", trained_checkpoint, "--out", out),
        out,
        "does not exist",
    )
    assert not (tmp_path / "missing").exists()


def test_default_output_folder_that_cannot_be_made(tmp_path, capsys, monkeypatch, square_folder):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert_one_line_error(
        cli(capsys, "train", square_folder, *TINY_TRAINING),
        "weights",
        "cannot create",
        "Permission denied",
    )


def test_outputs_never_overwrite_inputs_or_folders(
    tmp_path, capsys, square_folder, trained_checkpoint
):
    clip = square_folder / "a.avi"
    before = clip.read_bytes()
    assert_one_line_error(
        cli(capsys, "train", clip, *TINY_TRAINING, "--out", clip, "--force"), "input"
    )
    assert_one_line_error(
        cli(capsys, "train", square_folder, *TINY_TRAINING, "--out", tmp_path / "m.mp4"), ".mp4"
    )
    assert_one_line_error(
        cli(capsys, "train", square_folder, *TINY_TRAINING, "--out", tmp_path, "--force"), "folder"
    )
    weights = tmp_path / "w.pt"
    weights.write_bytes(trained_checkpoint.read_bytes())
    assert_one_line_error(
        cli(capsys, "render", clip, "--weights", weights, "--out", weights, "--force"), "input"
    )
    assert clip.read_bytes() == before and weights.read_bytes() == trained_checkpoint.read_bytes()


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _drop_permission_override() -> None:
    """In the child, before exec: drop the capabilities that let root ignore file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_with_file_permissions(calls: list[list], probe: Path) -> list:
    """Runs the calls in a subprocess where file modes apply (as root: without the override)."""
    as_root = os.geteuid() == 0
    try:
        readable, results = run_cli_process(
            calls,
            timeout=300,
            probe=probe,
            preexec_fn=_drop_permission_override if as_root else None,
        )
    except subprocess.SubprocessError as e:
        pytest.skip(f"running as root, cannot drop CAP_DAC_OVERRIDE ({e}): chmod 000 stops no read")
    if readable:
        pytest.skip(
            "file permissions are not enforced for this user, so chmod 000 cannot stop reads"
        )
    return [(code, err) for code, err, _ in results]


def test_unreadable_files_and_read_only_folders(tmp_path, square_folder, trained_checkpoint):
    folder = tmp_path / "videos"
    write_lossless(folder / "ok.avi", moving_square(16))
    locked = write_lossless(folder / "locked.avi", moving_square(16))
    locked.chmod(0)
    closed = folder / "closed"
    write_lossless(closed / "inside.avi", moving_square(16))
    closed.chmod(0)
    locked_weights = tmp_path / "locked.pt"
    locked_weights.write_bytes(trained_checkpoint.read_bytes())
    locked_weights.chmod(0)
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    out = tmp_path / "out"
    out.mkdir()
    clip = square_folder / "a.avi"
    try:
        results = run_with_file_permissions(
            [
                ["train", folder, *TINY_TRAINING, "--out", read_only / "m.pt"],
                ["render", clip, "--weights", trained_checkpoint, "--out", read_only / "r.mp4"],
                ["render", locked, "--weights", trained_checkpoint, "--out", out / "r.mp4"],
                ["eval", folder / "ok.avi", "--weights", locked_weights],
                ["train", folder, *TINY_TRAINING, "--out", out / "m.pt"],
            ],
            probe=locked,
        )
    finally:
        read_only.chmod(0o755)
        closed.chmod(0o755)

    def message_lines(err: str) -> list[str]:
        return [
            line for line in err.splitlines() if line.strip() and not line.startswith("weights: ")
        ]

    expected = [
        (read_only, "not writable"),
        (read_only, "not writable"),
        (locked, "permission denied"),
        (locked_weights, "Permission denied"),
    ]
    for (code, err), words in zip(results[:4], expected, strict=True):
        lines = message_lines(err)
        assert code == 1 and len(lines) == 1 and lines[0].startswith("vidpred: error: "), lines
        assert all(str(w) in lines[0] for w in words), lines
    assert not any(read_only.iterdir()) and not (out / "r.mp4").exists()
    # Training goes on without the unreadable video, and says so.
    code, err = results[4]
    lines = message_lines(err)
    assert code == 0, lines
    assert f"vidpred: warning: skipping {locked}: permission denied" in lines
    assert f"vidpred: warning: skipping {closed}: Permission denied" in lines
    assert (out / "m.pt").is_file()


# --- nonsense options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, option",
    [
        (["train", "v", "--frames", "0"], "--frames"),
        (["train", "v", "--frames", "abc"], "--frames"),
        (["train", "v", "--size", "-32"], "--size"),
        (["train", "v", "--size", "0"], "--size"),
        (["train", "v", "--size", "4"], "--size"),
        (["train", "v", "--size", "100000"], "--size"),
        (["train", "v", "--crop", "30"], "--crop"),
        (["train", "v", "--crop", "-4"], "--crop"),
        (["train", "v", "--size", "48", "--crop", "64"], "--crop"),
        (["train", "v", "--val-fraction", "1.5"], "--val-fraction"),
        (["train", "v", "--val-fraction", "nan"], "--val-fraction"),
        (["train", "v", "--batch-size", "0"], "--batch-size"),
        (["train", "v", "--lr", "-1"], "--lr"),
        (["train", "v", "--lr", "inf"], "--lr"),
        (["train", "v", "--lr", "nan"], "--lr"),
        (["train", "v", "--steps", "0"], "--steps"),
        (["train", "v", "--epochs", "-2"], "--epochs"),
        (["train", "v", "--time-limit", "0"], "--time-limit"),
        (["train", "v", "--time-limit", "inf"], "--time-limit"),
        (["train", "v", "--width", "0"], "--width"),
        (["train", "v", "--period-frames", "3"], "--period-frames"),
        (["train", "v", "--period", "5", "--period-frames", "0"], "--period-frames"),
        (["train", "v", "--loss", "l3"], "--loss"),
        (["render", "v.mp4", "--scale", "0"], "--scale"),
        (["render", "v.mp4", "--size", "-1"], "--size"),
        (["eval", "v.mp4", "--tail", "0"], "--tail"),
        (["eval", "v.mp4", "--tail", "1.5"], "--tail"),
    ],
)
def test_nonsense_options_name_the_option(capsys, args, option):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    error = err.strip().splitlines()[-1]
    assert error.startswith(f"vidpred {args[0]}: error: argument {option}"), err
    assert "Traceback" not in err


def test_default_crop_shrinks_to_fit_a_small_size():
    from vidpred.cli import parse_args

    for size, crop in [("32", 32), ("96", 64)]:
        args = parse_args(["train", "v", "--size", size])
        assert args.crop == crop
