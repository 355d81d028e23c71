"""Outputs are never lost, half-written or claimed twice (issue 12, items 2, 3 and 5).

- A render replaces the previous one only once ffmpeg has exited 0 and the new file decodes
  to every frame: a full disk, a file size limit or a failing ffmpeg leave the old render
  and its sidecar as they were, with one line naming the file.
- A run claims its output at start (a lock file beside it), so a second run naming the same
  output is refused at once instead of both "succeeding" with one result lost.
- Shipped weights and checkpoints a run starts from are never written; resuming needs the
  optimizer state it promises to continue with.
"""

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    TINY_TRAINING,
    cli,
    default_sigint,
    moving_square,
    subprocess_env,
    write_lossless,
)

from vidpred.checkpoint import save_for_inference
from vidpred.encoding import Mp4Writer, write_mp4
from vidpred.errors import OutputError
from vidpred.paths import DEFAULT_WEIGHTS
from vidpred.predict import Predictor
from vidpred.rendering import render
from vidpred.video_options import VideoOptions


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def vidpred(*args) -> list[str]:
    return [sys.executable, "-m", "vidpred", *map(str, args)]


pytestmark = pytest.mark.usefixtures("in_tmp_path")


def lock_path(out: Path) -> Path:
    """The lock file that claims ``out`` (vidpred.outputs.lock_path, spelled out here)."""
    return out.parent / f".{out.name}.lock"


def listing(folder: Path) -> list[str]:
    """Every name in the folder, hidden temp and lock files included."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def noise_clip(tmp_path) -> Path:
    """24 frames of noise: its render compresses badly (about 150 KB), so a small limit bites."""
    frames = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    return write_lossless(tmp_path / "noise.avi", frames)


@pytest.fixture
def good_render(tmp_path, noise_clip, trained_checkpoint) -> Path:
    """A folder holding a good render r.mp4 and its sidecar r.json."""
    folder = tmp_path / "renders"
    folder.mkdir()
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")
    return render(noise_clip, predictor, folder / "r.mp4", video_options=VideoOptions(cache=False))


def test_render_under_a_file_size_limit_keeps_the_good_render(
    tmp_path, noise_clip, good_render, trained_checkpoint
):
    """No privileges needed: RLIMIT_FSIZE makes the encoder's writes fail part way, the way
    a full disk does (a file that stops growing), with SIGXFSZ for ffmpeg."""
    before = {p: digest(p) for p in good_render.parent.iterdir()}
    limit = good_render.stat().st_size // 3

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        vidpred(
            "-q",
            "render",
            noise_clip,
            "--weights",
            trained_checkpoint,
            "--out",
            good_render,
            "--force",
            "--no-cache",
        ),
        capture_output=True,
        text=True,
        env=subprocess_env(),
        preexec_fn=limit_file_size,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("vidpred")] == [
        f"vidpred: error: {good_render}: could not write the video: File too large"
    ]
    assert result.stdout == "" and "Traceback" not in result.stderr
    # The old render and its sidecar, unchanged; no temp or lock file left.
    assert {p: digest(p) for p in good_render.parent.iterdir()} == before


def _can_mount_tmpfs(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--mount",
            "--map-root-user",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=64k tmpfs '{folder}'",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


# Inside a private mount namespace (the mount vanishes with it): a tmpfs with the good render
# on it and little room left, the render run, then what is on the tmpfs afterwards.
FULL_DISK = r"""
set -e
mount -t tmpfs -o size=$SIZE tmpfs "$SMALL"
cp "$GOOD"/r.mp4 "$GOOD"/r.json "$SMALL"/
set +e
"$PYTHON" -m vidpred -q render "$CLIP" --weights "$WEIGHTS" --out "$SMALL"/r.mp4 --force --no-cache
echo "rc=$?"
ls -A "$SMALL"
sha256sum "$SMALL"/r.mp4 "$SMALL"/r.json
"""


@pytest.mark.parametrize("free_kb", [40, 8])
def test_full_disk_during_render_keeps_the_good_render(
    tmp_path, noise_clip, good_render, trained_checkpoint, free_kb
):
    """The issue's repro, on a real full file system (a small tmpfs); skipped where this
    user may not mount one."""
    small = tmp_path / "small"
    small.mkdir()
    if not _can_mount_tmpfs(small):
        pytest.skip("cannot mount a tmpfs here (needs unshare and user namespaces, or root)")
    used = sum(p.stat().st_size for p in good_render.parent.iterdir())
    size_kb = -(-used // 4096) * 4 + 8 + free_kb  # the two files' pages, slack, the free room
    env = {
        **subprocess_env(),
        "SIZE": f"{size_kb}k",
        "SMALL": str(small),
        "GOOD": str(good_render.parent),
        "PYTHON": sys.executable,
        "CLIP": str(noise_clip),
        "WEIGHTS": str(trained_checkpoint),
    }
    result = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", FULL_DISK],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = small / "r.mp4"
    errors = [line for line in result.stderr.splitlines() if line.startswith("vidpred")]
    assert errors == [f"vidpred: error: {out}: could not write the video: No space left on device"]
    lines = result.stdout.splitlines()
    assert lines[0] == "rc=1", result.stdout + result.stderr
    assert lines[1:3] == ["r.json", "r.mp4"]  # no temp file, no lock file
    assert lines[3].split()[0] == digest(good_render)
    assert lines[4].split()[0] == digest(good_render.with_suffix(".json"))


# A stand-in for ffmpeg that fails the way it does on a full disk, or writes a file that does
# not decode, or encodes only the first frames and then exits 0; every other use (checking
# a written file) goes to the real ffmpeg.
FAKE_FFMPEG = r"""#!/bin/sh
for last; do :; done
case " $* " in
  *" -i - "*) ;;
  *) exec "$REAL_FFMPEG" "$@" ;;
esac
case "$FAKE" in
  full)
    head -c 5000 > "$last"
    echo "[out#0/mp4 @ 0x5581] Error writing trailer: No space left on device" >&2
    exit 1 ;;
  garbage)
    cat > /dev/null
    echo "not a video" > "$last"
    exit 0 ;;
  short)
    head -c 130000 | "$REAL_FFMPEG" "$@"
    cat > /dev/null
    exit 0 ;;
esac
"""


@pytest.mark.parametrize(
    "fake, reason",
    [
        ("full", "No space left on device"),
        ("garbage", "the written file does not decode ("),  # then ffmpeg's words for it
        ("short", "the written file decodes to 2 of the 8 frames sent"),
    ],
)
def test_a_failing_ffmpeg_never_replaces_the_render(
    tmp_path, capsys, monkeypatch, good_render, noise_clip, trained_checkpoint, fake, reason
):
    import imageio_ffmpeg

    script = tmp_path / "ffmpeg"
    script.write_text(FAKE_FFMPEG)
    script.chmod(0o755)
    monkeypatch.setenv("REAL_FFMPEG", imageio_ffmpeg.get_ffmpeg_exe())
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(script))
    monkeypatch.setenv("FAKE", fake)
    before = {p: digest(p) for p in good_render.parent.iterdir()}
    if fake == "short":  # 8 rendered frames of 104x200 RGB; the fake passes on 2.1 frames
        clip = write_lossless(tmp_path / "short.avi", moving_square(12))
    else:
        clip = noise_clip
    code, lines = cli(
        capsys,
        "render",
        clip,
        "--weights",
        trained_checkpoint,
        "--out",
        good_render,
        "--force",
        "--no-cache",
    )
    assert code == 1 and len(lines) == 1
    prefix = f"vidpred: error: {good_render}: could not write the video: "
    assert lines[0].startswith(prefix + reason), lines
    assert {p: digest(p) for p in good_render.parent.iterdir()} == before


def test_writer_counts_the_frames_it_wrote(tmp_path):
    """What the writer checks at the end: the file must decode to every frame sent."""
    frames = np.zeros((5, 16, 16, 3), dtype=np.uint8)
    out = tmp_path / "v.mp4"
    with pytest.raises(OutputError, match="decodes to 5 of the 6 frames sent"):
        with Mp4Writer(out, 25.0) as writer:
            for frame in frames:
                writer.write(frame)
            writer.frames_written += 1  # as if a frame had been lost on the way
    assert listing(tmp_path) == []
    assert write_mp4(out, frames, 25.0) == out and listing(tmp_path) == ["v.mp4"]


def test_a_failing_gif_leaves_the_render_its_gif_and_sidecar_as_they_were(
    tmp_path, capsys, monkeypatch, noise_clip, trained_checkpoint
):
    """The mp4, its GIF and its sidecar are replaced together, after all three are written."""
    import errno

    import imageio.v3 as iio

    out = tmp_path / "renders" / "r.mp4"
    out.parent.mkdir()
    args = [
        "render",
        noise_clip,
        "--weights",
        trained_checkpoint,
        "--out",
        out,
        "--gif",
        "--no-cache",
    ]
    assert cli(capsys, *args)[0] == 0
    before = {p: digest(p) for p in out.parent.iterdir()}
    assert sorted(p.name for p in before) == ["r.gif", "r.json", "r.mp4"]

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(iio, "imwrite", disk_full)
    code, lines = cli(capsys, *args, "--force")
    gif = out.with_suffix(".gif")
    assert (code, lines) == (
        1,
        [f"vidpred: error: {gif}: could not write it (No space left on device)"],
    )
    assert {p: digest(p) for p in out.parent.iterdir()} == before


@pytest.mark.parametrize("name", ["noext", "out.avi", "out.mkv", "out.mp4.part"])
def test_render_output_must_be_an_mp4(tmp_path, capsys, name):
    """Checked before the weights load (here they do not even exist): no ffmpeg command dump,
    no "Broken pipe", and no H.264 stream in a container named otherwise."""
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    out = tmp_path / name
    code, lines = cli(capsys, "render", clip, "--weights", tmp_path / "missing.pt", "--out", out)
    assert (code, lines) == (
        1,
        [
            f"vidpred: error: {out}: a render is an H.264 mp4; name it .mp4 "
            f"(its .json and .gif sit beside it)"
        ],
    )
    assert listing(tmp_path) == ["clip.avi"]


# Holds a claim on an output (as a running vidpred would) until its stdin closes.
HOLD = r"""
import sys
from pathlib import Path
from vidpred.outputs import claim_output
lock = Path(sys.argv[2]) if len(sys.argv) > 2 else None
with claim_output(Path(sys.argv[1]), lock=lock):
    print("held", flush=True)
    sys.stdin.read()
"""


def hold(path, lock=None) -> subprocess.Popen:
    """Starts a process that claims ``path``; returns once it holds the claim."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), *([str(lock)] if lock else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def wait_for(condition, process: subprocess.Popen, timeout: float = 900) -> None:
    """Waits until ``condition()`` holds; fails if ``process`` ends first or time runs out
    (generous: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended early (exit {process.returncode})")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_two_trainings_with_the_same_out(tmp_path, capsys, square_folder):
    """The issue's repro: a second training naming the running one's --out is refused at
    once, even with --force, and the first one's checkpoint is its own."""
    out = tmp_path / "same.pt"
    first = subprocess.Popen(
        vidpred(
            "train", square_folder, *TINY_TRAINING, "--steps", "100000", "--seed", "1", "--out", out
        ),
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "first.err", "w"),  # a file: a pipe could fill and stop it
        preexec_fn=default_sigint,  # it is stopped with SIGINT below
    )
    try:
        wait_for(out.exists, first)  # its first epoch ended with a checkpoint
        code, lines = cli(
            capsys,
            "train",
            square_folder,
            *TINY_TRAINING,
            "--steps",
            "2",
            "--seed",
            "2",
            "--lr",
            "5e-4",
            "--out",
            out,
            "--force",
        )
        assert (code, lines) == (
            1,
            [
                f"vidpred: error: {out}: another vidpred (PID {first.pid}) is writing it; wait for "
                f"it to finish or choose another output"
            ],
        )
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=300)
    assert first.returncode == 130, (tmp_path / "first.err").read_text()
    from vidpred.checkpoint import load_checkpoint

    assert load_checkpoint(out).train_config["seed"] == 1
    assert not lock_path(out).exists()  # released when the first run ended


def test_render_to_an_output_another_run_claims_is_refused(tmp_path, capsys, trained_checkpoint):
    clip = write_lossless(tmp_path / "clip.avi", moving_square(12))
    out = tmp_path / "r.mp4"
    args = ["render", clip, "--weights", trained_checkpoint, "--out", out, "--no-cache"]
    holder = hold(out)
    try:
        code, lines = cli(capsys, *args, "--force")
        assert (code, lines) == (
            1,
            [
                f"vidpred: error: {out}: another vidpred (PID {holder.pid}) is writing it; wait "
                f"for it to finish or choose another output"
            ],
        )
        assert listing(tmp_path) == [".r.mp4.lock", "clip.avi"]
    finally:
        holder.kill()  # like kill -9: the lock file stays, the lock goes with the process
        holder.wait()
    assert lock_path(out).exists()
    assert cli(capsys, *args)[0] == 0  # the stale lock file is taken over
    assert listing(tmp_path) == ["clip.avi", "r.json", "r.mp4"]


def test_generate_into_a_folder_another_generate_writes_is_refused(tmp_path, capsys):
    folder = tmp_path / "gen"
    folder.mkdir()
    args = ["generate", folder, "--count", "1", "--length", "3", "--height", "16", "--width", "16"]
    holder = hold(folder, lock=folder / ".vidpred-generate.lock")
    try:
        code, lines = cli(capsys, *args)
        assert code == 1 and len(lines) == 1
        assert f"{folder}: another vidpred (PID {holder.pid}) is writing it" in lines[0]
        assert listing(folder) == [".vidpred-generate.lock"]
    finally:
        holder.stdin.close()
        holder.wait()
    assert cli(capsys, *args)[0] == 0 and listing(folder) == ["natural_00000.mp4"]


def test_claims_are_released_on_errors_and_interrupts(tmp_path, capsys, trained_checkpoint):
    # An error after the claim: the only video is too short to train on.
    write_lossless(tmp_path / "short" / "a.avi", moving_square(3))
    out = tmp_path / "m.pt"
    code, lines = cli(
        capsys, "train", tmp_path / "short", *TINY_TRAINING, "--steps", "1", "--out", out
    )
    assert code == 1 and "a.avi: 3 frames; the model needs at least" in lines[-1]
    assert not lock_path(out).exists()

    # Ctrl-C half way through a render.
    clip = write_lossless(tmp_path / "clip.avi", moving_square(16))
    predictor = Predictor.from_checkpoint(trained_checkpoint, "cpu")

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(
            clip,
            predictor,
            tmp_path / "r.mp4",
            on_progress=interrupt,
            video_options=VideoOptions(cache=False),
        )
    assert listing(tmp_path) == ["clip.avi", "short"]

    # The claim holds while the block runs, in this process too, and ends with it.
    from vidpred.outputs import claim_output

    with claim_output(out):
        with pytest.raises(OutputError, match="is writing it"):
            with claim_output(out):
                pass
    assert not lock_path(out).exists()


def test_a_stale_lock_file_from_a_dead_process_is_taken_over(tmp_path, capsys, square_folder):
    out = tmp_path / "m.pt"
    lock_path(out).write_text("999999999\n")  # no such process
    assert cli(capsys, "train", square_folder, *TINY_TRAINING, "--steps", "1", "--out", out)[0] == 0
    assert listing(tmp_path) == ["m.jsonl", "m.pt"]


@pytest.fixture
def shipped_weights_guard():
    """The shipped weights' bytes, put back if a test (a regression) changed them."""
    files = [DEFAULT_WEIGHTS, DEFAULT_WEIGHTS.with_suffix(".jsonl")]
    saved = {p: p.read_bytes() for p in files if p.exists()}
    yield saved
    for path, data in saved.items():
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            pytest.fail(f"{path} was changed (restored)")


def test_resume_from_the_shipped_weights_is_refused(
    tmp_path, capsys, square_folder, shipped_weights_guard
):
    """They hold no optimizer state: a resume could not continue exactly, and it would
    rewrite them in place."""
    code, lines = cli(capsys, "train", square_folder, "--resume", DEFAULT_WEIGHTS, "--steps", "1")
    assert code == 1 and lines == [
        f"vidpred: error: {DEFAULT_WEIGHTS}: cannot resume: it holds no optimizer state (weights "
        f"saved for inference), so the run cannot continue where it stopped; to train on from "
        f"its weights, fine-tune: vidpred train FOLDER --init {DEFAULT_WEIGHTS} --out NEW.pt"
    ]
    # Not with a new --out either: the optimizer would still start fresh without a word.
    code, lines = cli(
        capsys,
        "train",
        square_folder,
        "--resume",
        DEFAULT_WEIGHTS,
        "--steps",
        "1",
        "--out",
        tmp_path / "new.pt",
    )
    assert code == 1 and "holds no optimizer state" in lines[0]
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["default.pt", "default.jsonl"])
def test_no_command_writes_the_shipped_weights(
    tmp_path, capsys, square_folder, shipped_weights_guard, name
):
    """Not even with --force (a train --out x.jsonl writes its checkpoint and log there)."""
    out = DEFAULT_WEIGHTS.parent / name
    code, lines = cli(
        capsys, "train", square_folder, *TINY_TRAINING, "--steps", "1", "--out", out, "--force"
    )
    assert (code, lines) == (
        1,
        [
            f"vidpred: error: {out}: refusing to overwrite vidpred's shipped weights; name another "
            f"output (--out)"
        ],
    )
    # Through a link too: the path is resolved.
    link = tmp_path / "link.pt"
    link.symlink_to(out)
    code, lines = cli(
        capsys, "train", square_folder, *TINY_TRAINING, "--steps", "1", "--out", link, "--force"
    )
    assert code == 1 and lines[0].endswith(
        "refusing to overwrite vidpred's shipped weights; name another output (--out)"
    )
    # Fine-tuning from them into them: refused as an input first.
    code, lines = cli(
        capsys,
        "train",
        square_folder,
        "--steps",
        "1",
        "--init",
        DEFAULT_WEIGHTS,
        "--out",
        DEFAULT_WEIGHTS,
        "--force",
    )
    assert (code, lines) == (
        1,
        [f"vidpred: error: {DEFAULT_WEIGHTS}: refusing to overwrite an input file"],
    )


def test_resume_without_optimizer_state_is_refused_and_the_file_kept(
    tmp_path, capsys, square_folder, trained_checkpoint
):
    inference = tmp_path / "inference.pt"
    save_for_inference(trained_checkpoint, inference)
    before = digest(inference)
    code, lines = cli(capsys, "train", "--resume", inference, square_folder, "--steps", "1")
    assert code == 1 and "cannot resume: it holds no optimizer state" in lines[0]
    assert f"--init {inference} --out NEW.pt" in lines[0]
    assert digest(inference) == before and listing(tmp_path) == ["inference.pt"]


def test_a_run_never_overwrites_the_checkpoint_it_starts_from(
    tmp_path, capsys, square_folder, trained_checkpoint
):
    """--init (and --resume with another --out) read a checkpoint: it is an input."""
    start = tmp_path / "start.pt"
    start.write_bytes(trained_checkpoint.read_bytes())
    code, lines = cli(
        capsys,
        "train",
        square_folder,
        *TINY_TRAINING[:4],  # --size, --crop: --init keeps the model's architecture
        "--steps",
        "1",
        "--init",
        start,
        "--out",
        start,
        "--force",
    )
    assert (code, lines) == (1, [f"vidpred: error: {start}: refusing to overwrite an input file"])
    assert start.read_bytes() == trained_checkpoint.read_bytes()


def test_disk_full_while_writing_the_training_log_names_the_log(
    tmp_path, capsys, monkeypatch, square_folder
):
    import errno

    import vidpred.training as training

    write = training.atomic_write_bytes

    def log_disk_full(path, _):
        def fail(f):  # what f.write raises on a full disk: no file name in it
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        write(path, fail)

    monkeypatch.setattr(training, "atomic_write_bytes", log_disk_full)
    out = tmp_path / "m.pt"
    code, lines = cli(capsys, "train", square_folder, *TINY_TRAINING, "--steps", "1", "--out", out)
    assert code == 1 and lines == [
        f"vidpred: error: {out.with_suffix('.jsonl')}: could not write the training log (No "
        f"space left on device); the previous one, if any, is unchanged"
    ]


@pytest.mark.parametrize("plant", ["symlink", "hard link", "fifo"])
def test_a_planted_lock_file_never_writes_elsewhere(tmp_path, capsys, square_folder, plant):
    """Someone put a link (or a FIFO) where the lock file goes: vidpred must not truncate or
    write the file it points to, and must not hang."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "m.pt"
    if plant == "symlink":
        lock_path(out).symlink_to(victim)
    elif plant == "hard link":
        os.link(victim, lock_path(out))
    else:
        os.mkfifo(lock_path(out))
    code, lines = cli(capsys, "train", square_folder, *TINY_TRAINING, "--steps", "1", "--out", out)
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"vidpred: error: {out}: ")
    assert victim.read_text() == "precious\n" and not out.exists()


def test_an_output_that_is_a_device_or_fifo_is_refused(tmp_path, capsys, square_folder):
    """`--out /dev/null --force` as root would have renamed a file over /dev/null; a FIFO
    stands in for the device here."""
    fifo = tmp_path / "out.pt"
    os.mkfifo(fifo)
    code, lines = cli(
        capsys, "train", square_folder, *TINY_TRAINING, "--steps", "1", "--out", fifo, "--force"
    )
    assert (code, lines) == (
        1,
        [f"vidpred: error: {fifo}: is not a regular file (a device, FIFO or socket); name a file"],
    )
    assert fifo.is_fifo() and listing(tmp_path) == ["out.pt"]


def test_an_output_name_too_long_for_its_temp_files_fails_at_start(tmp_path, capsys):
    """Its temp and lock files add a few characters to the name: found before any video is
    read (the folder here does not even exist), not when the first checkpoint is saved."""
    longest = os.pathconf(tmp_path, "PC_NAME_MAX") - 13  # 242 on most file systems
    out = tmp_path / ("a" * (longest - 2) + ".pt")
    code, lines = cli(capsys, "train", tmp_path / "missing", "--out", out)
    assert (code, lines) == (
        1,
        [
            f"vidpred: error: {out}: the file name is too long for its temp and lock files beside "
            f"it (at most {longest} bytes here)"
        ],
    )
    assert listing(tmp_path) == []


def test_a_checkpoint_named_like_its_own_log_is_refused(tmp_path, capsys, square_folder):
    """train --out m.jsonl: each epoch's log would have replaced the checkpoint."""
    out = tmp_path / "m.jsonl"
    code, lines = cli(capsys, "train", square_folder, *TINY_TRAINING, "--steps", "1", "--out", out)
    assert (code, lines) == (
        1,
        [
            f"vidpred: error: {out}: a checkpoint path must not end in .jsonl: its per-epoch log "
            f"is written beside it under that name (use .pt)"
        ],
    )
    assert listing(tmp_path) == []
