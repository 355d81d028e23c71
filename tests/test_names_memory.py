"""File names, special files and long videos (issue 12): names that are not UTF-8, control
characters in names, a file given twice, FIFOs and devices named as videos, and decoding and
reading videos without holding them in memory twice (or at all, through the cache).

Cases that crashed the interpreter (a segfault in OpenCV) or could block (a FIFO) run in a
subprocess with a timeout, so they fail the test instead of the test run.
"""

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    TINY_TRAINING,
    claim_frames,
    cli,
    frame_index_video,
    moving_square,
    run_cli_process,
    subprocess_env,
    write_lossless,
)

from vidpred.cache import read_flows_cached, read_video_cached
from vidpred.cli import main
from vidpred.data import DataConfig, WindowDataset, load_flows, load_videos
from vidpred.errors import VideoError
from vidpred.evaluation import evaluate
from vidpred.predict import Predictor
from vidpred.video import find_videos, read_video
from vidpred.video_options import VideoOptions

pytestmark = pytest.mark.usefixtures("in_tmp_path")


def run(*calls: list, timeout: int = 900) -> list[tuple[int, list[str], str]]:
    """Returns (exit code, non-empty stderr lines, stdout) of each `vidpred ARGV` in ``calls``,
    run one after another in one subprocess: a segfault or a hang (a FIFO opened) fails the
    test, not the test run. Arguments may be bytes (names that are not UTF-8)."""
    _, results = run_cli_process(list(calls), timeout=timeout)
    return [
        (code, [line for line in err.splitlines() if line.strip()], out)
        for code, err, out in results
    ]


def bytes_path(folder: Path, name: bytes) -> bytes:
    return os.fsencode(folder) + b"/" + name


def make_file(path: bytes, source: Path) -> None:
    """Copies ``source`` to a name given as bytes; skips the test where the file system refuses
    it (some only take UTF-8 names)."""
    try:
        shutil.copyfile(source, path)
    except OSError as e:
        pytest.skip(f"the file system refuses the name {path!r} ({e})")


# --- names that are not UTF-8 -------------------------------------------------------------


@pytest.fixture
def latin1_folder(tmp_path) -> Path:
    """A folder holding café.avi with its name in Latin-1 (b'caf\\xe9.avi', not UTF-8) and a
    plain good.avi."""
    folder = tmp_path / "clips"
    good = write_lossless(folder / "good.avi", moving_square(12))
    make_file(bytes_path(folder, b"caf\xe9.avi"), good)
    return folder


def test_names_that_are_not_utf8_work_in_train_eval_and_render(tmp_path, latin1_folder):
    # Without the cache each command segfaulted in OpenCV; with it, a UnicodeEncodeError.
    latin1 = bytes_path(latin1_folder, b"caf\xe9.avi")
    weights = tmp_path / "w.pt"
    calls = [["train", latin1_folder, *TINY_TRAINING, "--out", weights, "--no-cache"]]
    for cache in ([], ["--no-cache"]):
        calls.append(["eval", latin1_folder, "--weights", weights, "--json", *cache])
        out = tmp_path / f"r{len(cache)}.mp4"
        calls.append(["render", latin1, "--weights", weights, "--out", out, *cache])
    (code, lines, _), *others = run(*calls)
    assert code == 0 and any(line.startswith("2 videos") for line in lines), lines
    for code, lines, out in others[::2]:  # eval
        assert code == 0, lines
        videos = json.loads(out)["videos"]
        assert sorted(os.fsencode(v["path"]) for v in videos) == sorted(
            [latin1, bytes_path(latin1_folder, b"good.avi")]
        )
    for (code, lines, _), rendered in zip(others[1::2], ["r0.mp4", "r1.mp4"], strict=True):
        assert code == 0 and read_video(tmp_path / rendered).num_frames == 12 - 4, lines


def test_default_output_named_after_a_latin1_folder_prints_its_bytes(
    tmp_path, latin1_folder, capsysbinary
):
    folder = bytes_path(tmp_path, b"d\xe9j\xe0")
    try:
        os.mkdir(folder)
    except OSError as e:
        pytest.skip(f"the file system refuses the name ({e})")
    shutil.copyfile(latin1_folder / "good.avi", folder + b"/a.avi")
    # pytest's capture encodes strictly, as a non-C locale does: print() of the name failed.
    assert main(["train", os.fsdecode(folder), *TINY_TRAINING]) == 0
    out = capsysbinary.readouterr().out.strip()  # the name's own bytes, usable as they are
    assert out == b"weights/d\xe9j\xe0.pt" and os.path.isfile(os.fsencode(tmp_path) + b"/" + out)


def test_a_latin1_name_is_shown_escaped(latin1_folder, capsys, caplog):
    # The cached path hashed the name with str.encode(): UnicodeEncodeError and a traceback.
    latin1 = bytes_path(latin1_folder, b"caf\xe9.avi")
    Path(os.fsdecode(latin1)).write_bytes(b"not a video\n" * 40)
    with caplog.at_level(logging.WARNING):
        assert cli(capsys, "train", latin1_folder, *TINY_TRAINING)[0] == 0
    quoted = "$'" + str(latin1_folder) + "/caf\\xe9.avi'"  # bash can take it back
    assert f"skipping {quoted}: not a video OpenCV can read" in caplog.messages


def test_shown_is_what_bash_reads_back():
    from vidpred.errors import shown

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    names = [
        b"plain [1] \xc3\xbc.mp4",
        b"caf\xe9.mp4",
        b"new\nline.mp4",
        b"it's a\\b\t\x1b.mp4",
        b"sep\xe2\x80\xa8.mp4",
    ]
    for name in names:
        text = shown(name)
        assert text.isprintable()
        echoed = subprocess.run([bash, "-c", f"printf %s {text}"], capture_output=True).stdout
        assert echoed == name if text.startswith("$'") else text == os.fsdecode(name)


# --- control characters in names ------------------------------------------------------------


def test_a_newline_in_a_name_keeps_warnings_and_errors_on_one_line(tmp_path, capsys):
    folder = tmp_path / "clips"
    write_lossless(folder / "good.avi", moving_square(12))
    (folder / "two\nlines.mp4").write_text("not a video\n" * 40)
    write_lossless(folder / "short\r.avi", moving_square(3))
    [(code, lines, _)] = run(
        ["train", folder, *TINY_TRAINING]
    )  # a subprocess: the real log handler
    assert code == 0
    skipping = "vidpred: warning: skipping $'{}/{}': {}"
    assert skipping.format(folder, "two\\nlines.mp4", "not a video OpenCV can read") in lines
    assert skipping.format(folder, "short\\r.avi", "3 frames, needs at least 5") in lines
    assert not any(line.startswith("lines.mp4") for line in lines)
    missing = tmp_path / "gone\n.mp4"
    code, lines = cli(capsys, "train", missing, *TINY_TRAINING)
    assert code == 1
    assert lines == [f"vidpred: error: $'{tmp_path}/gone\\n.mp4': no such file or folder"]


# --- the same file twice ----------------------------------------------------------------------


def test_the_same_file_given_twice_counts_once(tmp_path, capsys, caplog, trained_checkpoint):
    folder = tmp_path / "clips"
    x = write_lossless(folder / "x.avi", moving_square(12))
    write_lossless(folder / "y.avi", moving_square(12, speed=3))
    os.link(x, tmp_path / "hard.avi")  # another name for the same file
    with caplog.at_level(logging.WARNING):
        videos = load_videos([folder, x, tmp_path / "hard.avi", x], 32, 5)
    assert [v.path for v in videos] == [x, folder / "y.avi"]
    assert caplog.text.count(f"skipping {x}: named twice") == 2
    assert f"skipping {tmp_path / 'hard.avi'}: same file as {x}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        main(["eval", str(folder), str(x), "--weights", str(trained_checkpoint), "--json"])
    assert len(json.loads(capsys.readouterr().out)["videos"]) == 2  # was 3
    assert caplog.messages == [f"skipping {x}: named twice; used once"]


# --- special files -----------------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.mp4"
    try:
        os.mkfifo(path)
    except (OSError, AttributeError) as e:
        pytest.skip(f"no FIFOs here ({e})")
    return path


def test_a_fifo_named_as_a_video_is_called_a_fifo_and_never_blocks(fifo, trained_checkpoint):
    with pytest.raises(VideoError, match="pipe.mp4: a FIFO \\(named pipe\\), not a video file"):
        read_video(fifo)
    weights = ["--weights", trained_checkpoint]
    # In a subprocess with a timeout: opening the FIFO would block until a writer comes.
    for code, lines, _ in run(
        ["render", fifo, *weights],
        ["eval", fifo, *weights],
        ["train", fifo, *TINY_TRAINING],
        timeout=600,
    ):
        assert code == 1, lines
        assert lines[-1].startswith(f"vidpred: error: {fifo}: a FIFO (named pipe), not a video")


def test_devices_and_fifos_in_a_folder_are_skipped_with_what_they_are(
    tmp_path, fifo, capsys, caplog
):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    folder = tmp_path / "clips"
    write_lossless(folder / "good.avi", moving_square(12))
    fifo.rename(folder / "pipe.mp4")
    zero = folder / "zero.mp4"
    zero.symlink_to("/dev/zero")
    with caplog.at_level(logging.WARNING):
        assert cli(capsys, "train", folder, *TINY_TRAINING)[0] == 0
    pipe = folder / "pipe.mp4"
    assert f"skipping {pipe}: a FIFO (named pipe), not a video file" in caplog.messages
    assert f"skipping {zero}: a character device, not a video file" in caplog.messages
    # Named alone: what it is, not "Not a directory" or "no such file".
    assert cli(capsys, "train", zero, *TINY_TRAINING) == (
        1,
        [f"vidpred: error: {zero}: a character device, not a video file or folder"],
    )
    code, lines = cli(capsys, "render", zero)
    assert (code, lines[-1]) == (1, f"vidpred: error: {zero}: a character device, not a video file")


def test_a_path_through_a_file_names_the_file(tmp_path, capsys):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    code, lines = cli(capsys, "train", clip / "x.mp4", *TINY_TRAINING)
    assert code == 1
    why = f"no such file or folder ({clip} is not a folder)"
    assert lines == [f"vidpred: error: {clip / 'x.mp4'}: {why}"]
    with pytest.raises(VideoError, match=f"no such file \\({re.escape(str(clip))} is not a folder"):
        read_video(clip / "x.mp4")


# --- long videos: decode once into one buffer or straight to the cache, map the cache -------


def peak_growth(script: str, *args: str) -> dict:
    """Runs ``script`` in a fresh interpreter; returns what it prints as JSON. The script can
    call ``grown()``: MB the peak resident memory grew above the memory resident at its start
    (the peak is reset first: the imports' own peak would hide a smaller one)."""
    prelude = (
        "import json, sys\n"
        "from vidpred.video import read_video\n"
        "from vidpred.cache import read_video_cached\n"
        "def kb(field):\n"
        "    with open('/proc/self/status') as f:\n"
        "        return next(int(line.split()[1]) for line in f if line.startswith(field))\n"
        "with open('/proc/self/clear_refs', 'w') as f:\n"
        "    f.write('5')  # resets VmHWM, the peak\n"
        "START = kb('VmRSS:')\n"
        "def grown():\n"
        "    return (kb('VmHWM:') - START) / 1024\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_decoding_peaks_at_one_copy_of_the_frames_and_the_cache_at_almost_none(tmp_path):
    # 80 frames at 512x512: 60 MB decoded. A list of frames then np.stack held 120 MB.
    clip = write_lossless(tmp_path / "clip.avi", moving_square(80, 32, 32))
    decoded_mb = 80 * 512 * 512 * 3 / 2**20
    memory = peak_growth(
        "v = read_video(sys.argv[1], 512)\n"
        "print(json.dumps({'grown': grown(), 'shape': list(v.frames.shape)}))",
        str(clip),
    )
    assert memory["shape"] == [80, 512, 512, 3]
    assert memory["grown"] < 1.25 * decoded_mb, memory
    cached = peak_growth(
        "v = read_video_cached(sys.argv[1], 512, sys.argv[2])\n"
        "print(json.dumps({'grown': grown(), 'kind': type(v.frames).__name__}))",
        str(clip),
        str(tmp_path / "cache"),
    )
    assert cached["kind"] == "memmap" and cached["grown"] < 0.5 * decoded_mb, cached
    np.testing.assert_array_equal(
        read_video_cached(clip, 512, tmp_path / "cache").frames, read_video(clip, 512).frames
    )


@pytest.mark.parametrize("claimed", [0, 3, 20, 500])
def test_a_wrong_frame_count_grows_or_shrinks_the_buffer(tmp_path, monkeypatch, claimed):
    import vidpred.video

    frames = frame_index_video(20)
    clip = claim_frames(write_lossless(tmp_path / "clip.avi", frames), claimed)
    monkeypatch.setattr(vidpred.video, "MAX_RESERVED_BYTES", 4 * frames[0].nbytes)  # grow too
    for video in (read_video(clip), read_video_cached(clip, None), read_video_cached(clip, None)):
        np.testing.assert_array_equal(video.frames, frames)
    assert read_video(clip, max_frames=7).frames.shape == (7, 16, 24, 3)


def resident_file_mb() -> float:
    """Returns MB of file-backed memory resident in this process (mapped files)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:")) / 1024


def test_training_reads_memory_maps_and_its_batches_are_the_decoded_frames(tmp_path):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(40, 48, 48))
    videos = load_videos(tmp_path, 48, 5)
    assert isinstance(videos[0].frames, np.memmap)  # nothing is read until a batch asks
    flows = load_flows(videos, 48)  # computed on the first run straight into the cache
    assert isinstance(flows[0], np.memmap) and flows[0].shape == (40, 48, 48, 2)
    np.testing.assert_array_equal(load_flows(load_videos(tmp_path, 48, 5), 48)[0], flows[0])
    in_memory = load_videos(clip, 48, 5, cache=False)
    assert not isinstance(in_memory[0].frames, np.memmap)
    np.testing.assert_array_equal(in_memory[0].frames, videos[0].frames)
    offsets, config = [-4, -3, -2, -1], DataConfig(48, 0.2, 16)
    mapped = WindowDataset(videos, offsets, config, flows)
    plain = WindowDataset(in_memory, offsets, config, [np.array(f) for f in flows])
    plan = mapped.epoch_plan(seed=3, epoch=0)
    for step in range(mapped.steps_per_epoch(4)):
        for got, want in zip(
            mapped.train_batch_uint8(plan, step, 4),
            plain.train_batch_uint8(plan, step, 4),
            strict=True,
        ):
            assert torch.equal(got, want)
        assert torch.equal(
            mapped.train_batch_flows(plan, step, 4), plain.train_batch_flows(plan, step, 4)
        )


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_eval_holds_only_the_frames_of_a_batch(tmp_path, trained_checkpoint, monkeypatch):
    # 160 frames at 256x256, 30 MB cached: a pass that keeps every page it read resident
    # ends with all of it in the process's memory.
    write_lossless(tmp_path / "v" / "clip.avi", moving_square(160, 32, 32))
    video_mb = 160 * 256 * 256 * 3 / 2**20
    load_videos(tmp_path / "v", 256, 5)  # fill the cache
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu", "fp32")
    start, samples = resident_file_mb(), []
    real = predictor.predict_frames

    def sampled(*args, **kwargs):
        for item in real(*args, **kwargs):
            samples.append(resident_file_mb() - start)
            yield item

    monkeypatch.setattr(predictor, "predict_frames", sampled)
    result = evaluate(
        [tmp_path / "v"], predictor, video_options=VideoOptions(size=256, batch_size=16)
    )
    assert result["videos"][0]["targets"] > 150 and len(samples) >= 10
    assert max(samples) < 0.25 * video_mb, (max(samples), video_mb)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_validation_and_long_training_drop_the_pages_they_read(tmp_path, trained_checkpoint):
    from vidpred.checkpoint import load_checkpoint
    from vidpred.model import STResNet
    from vidpred.validation import validate

    write_lossless(tmp_path / "v" / "clip.avi", moving_square(160, 32, 32))
    videos = load_videos(tmp_path / "v", 256, 5)
    checkpoint = load_checkpoint(trained_checkpoint)
    model = STResNet(checkpoint.model_config)
    model.load_state_dict(checkpoint.model)
    data = WindowDataset(videos, model.config.input_offsets(), DataConfig(256, 0.5, 0))
    validate(model, data, torch.device("cpu"), limit=80)  # loads the code it runs
    start = resident_file_mb()
    validate(model, data, torch.device("cpu"), limit=80)  # full frames: 84 of them, 16 MB
    assert resident_file_mb() - start < 4
    np.asarray(videos[0].frames).sum()  # every page, as a long run ends up touching
    assert resident_file_mb() - start > 25
    data.release_pages()  # what training does every data.release_interval(batch) steps
    assert resident_file_mb() - start < 4


def test_flows_that_cannot_be_cached_are_computed_in_memory(tmp_path, caplog):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    cache = tmp_path / "cache"
    video = read_video_cached(clip, 32, cache)
    entry = next(cache.glob("*.json"))
    (cache / f"{entry.stem}.flow.npy").mkdir()  # in the way of the flows file
    with caplog.at_level(logging.WARNING):
        flows = read_flows_cached(video, 32, cache)
    assert flows.shape == (12, 32, 32, 2) and "could not cache its flows" in caplog.text
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # no temp file left
    (cache / f"{entry.stem}.flow.npy").rmdir()
    np.testing.assert_array_equal(flows, read_flows_cached(video, 32, cache))


def test_found_videos_are_regular_files(tmp_path):
    folder = tmp_path / "clips"
    clip = write_lossless(folder / "a.avi", moving_square(8))
    (folder / "sub.mp4").mkdir()  # a folder named like a video is searched, not read
    write_lossless(folder / "sub.mp4" / "b.avi", moving_square(8))
    assert find_videos(folder) == [clip, folder / "sub.mp4" / "b.avi"]


def test_training_drops_pages_after_reading_about_the_budget(tmp_path, monkeypatch):
    """Dropping pages every 32 steps cost the trainer 5-10% at --size 96: the interval now
    follows how much a step reads, within 8 to 1024 steps."""
    import vidpred.data

    write_lossless(tmp_path / "v" / "clip.avi", moving_square(20, 32, 32))
    videos = load_videos(tmp_path / "v", 32, 5)
    data = WindowDataset(videos, [-4, -3, -2, -1], DataConfig(32, crop=16))
    per_window = 5 * 32 * 32 * 3  # four input frames and the target, uint8 RGB
    monkeypatch.setattr(vidpred.data, "RESIDENT_PAGE_BUDGET", 50 * 8 * per_window)
    assert data.release_interval(8) == 50 and data.release_interval(16) == 25
    monkeypatch.setattr(vidpred.data, "RESIDENT_PAGE_BUDGET", 8 * per_window)
    assert data.release_interval(8) == 8  # never more often than every 8 steps
    monkeypatch.setattr(vidpred.data, "RESIDENT_PAGE_BUDGET", 2**40)
    assert data.release_interval(8) == 1024  # nor less often than every 1024
