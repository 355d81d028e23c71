"""Shared helpers: small videos the tests write themselves, and an isolated state folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

# The tests train tiny models. On a small, busy CPU, OpenMP threads spin-waiting for each
# other made each step 20-50x slower than one thread does (measured on 2 shared cores).
# Set here, the variable also reaches the `vidpred` subprocesses the tests start.
# Choosing the arithmetic by measurement (vidpred.tuning) takes seconds per state folder, and
# every test has its own: tests use the rule of thumb; tests/test_tuning.py tests the choice.
os.environ.setdefault("VIDPRED_TUNING", "off")
if "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def default_sigint() -> None:
    """Restores SIGINT's default in a child about to exec (a ``preexec_fn``): a test that sends
    SIGINT must not depend on how pytest was started. Started in the background from a
    non-interactive shell, pytest inherits SIGINT ignored, its children would too, and a
    child Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def subprocess_env() -> dict[str, str]:
    """The environment for `vidpred` subprocesses, read when a test runs: it then carries the
    per-test VIDPRED_HOME and VIDPRED_CACHE (conftest), so a subprocess never writes the
    user's real state or cache. (A module-level copy, taken at import, did.)"""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])
        ),
    }


def run_python_json(script: str, argument: object, timeout: int = 300) -> object:
    """Returns the JSON that Python ``script``, run in a fresh interpreter with
    ``json.dumps(argument)`` as its one argument, prints on its last line: a crash or a
    hang there fails the test, not the test run."""
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argument)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(),
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    return json.loads(result.stdout.splitlines()[-1])


def write_lossless(path: Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Writes uint8 RGB (T, H, W, 3) frames to a lossless FFV1 .avi (tests compare exactly)."""
    return write_avi(path, frames, fps, "FFV1")


def write_avi(path: Path, frames: np.ndarray, fps: float = 25.0, fourcc: str = "FFV1") -> Path:
    """Writes uint8 RGB (T, H, W, 3) frames to an .avi with OpenCV's ``fourcc`` codec."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def moving_square(
    num_frames: int = 40,
    height: int = 32,
    width: int = 32,
    speed: int = 2,
    side: int = 8,
    color: tuple[int, int, int] = (230, 60, 40),
    background: int = 20,
) -> np.ndarray:
    """Returns uint8 RGB (T, H, W, 3): a square moving right by ``speed`` px per frame, wrapping."""
    frames = np.full((num_frames, height, width, 3), background, dtype=np.uint8)
    y = (height - side) // 2
    for t in range(num_frames):
        x = (4 + speed * t) % width
        cols = [(x + i) % width for i in range(side)]
        frames[t, y : y + side, cols] = color
    return frames


def frame_index_video(num_frames: int = 12, height: int = 16, width: int = 24) -> np.ndarray:
    """Returns uint8 RGB (T, H, W, 3) where frame t is filled with value 10 * t in every channel
    except blue (which holds 255 - 10 * t), so tests can read a frame's index from its pixels."""
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t, ..., 0] = 10 * t
        frames[t, ..., 1] = 10 * t
        frames[t, ..., 2] = 255 - 10 * t
    return frames


def pytest_collection_modifyitems(config, items):
    """Skips tests marked requires_cuda where there is no GPU, so CI runs on CPUs."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def isolated_session_cache(tmp_path_factory):
    """Keeps the decode cache of session-scoped fixtures (they run before any per-test
    fixture) out of the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIDPRED_CACHE", str(tmp_path_factory.mktemp("vidpred_session_cache")))
        yield


# The environment before any fixture points VIDPRED_HOME/VIDPRED_CACHE at temp folders.
_ENV_AT_START = dict(os.environ)


def _listing(folder: Path) -> dict[str, int]:
    """Returns {relative path: mtime_ns} of every file below ``folder`` (empty if absent)."""
    if not folder.is_dir():
        return {}
    files = (p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="session", autouse=True)
def users_state_is_untouched():
    """Fails the session if any test wrote the user's real state or cache folders
    (~/.local/state/vidpred, ~/.cache/vidpred, or their XDG/VIDPRED_* equivalents)."""
    env, home = _ENV_AT_START, Path.home()
    state = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "vidpred"
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "vidpred"
    folders = [Path(env.get("VIDPRED_HOME") or state), Path(env.get("VIDPRED_CACHE") or cache)]
    before = [_listing(f) for f in folders]
    yield
    for folder, listing in zip(folders, before, strict=True):
        assert _listing(folder) == listing, f"the tests changed {folder}"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory, monkeypatch):
    """Keeps `vidpred train`'s 'newest checkpoint' record and the decode cache out of the
    user's home; each test starts with an empty cache."""
    monkeypatch.setenv("VIDPRED_HOME", str(tmp_path_factory.mktemp("vidpred_home")))
    monkeypatch.setenv("VIDPRED_CACHE", str(tmp_path_factory.mktemp("vidpred_cache")))


@pytest.fixture(scope="session")
def square_folder(tmp_path_factory) -> Path:
    """A folder with two lossless moving-square videos (32x32, 40 frames)."""
    folder = tmp_path_factory.mktemp("squares")
    write_lossless(folder / "a.avi", moving_square(40, speed=2))
    write_lossless(folder / "sub" / "b.avi", moving_square(40, speed=3, color=(40, 200, 90)))
    return folder


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, square_folder) -> Path:
    """A small model trained for a few steps on the square folder (full 32x32 frames)."""
    from vidpred.data import DataConfig, WindowDataset, load_videos
    from vidpred.model import ModelConfig
    from vidpred.training import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "squares.pt"
    model_config = ModelConfig(frames=4, width=16, depth=2)
    data_config = DataConfig(size=32, val_fraction=0.2, crop=0)
    videos = load_videos(square_folder, data_config.size, model_config.history + 1)
    data = WindowDataset(videos, model_config.input_offsets(), data_config)
    train(
        data,
        model_config,
        data_config,
        TrainConfig(steps=20, batch_size=4, lr=3e-3, warmup_steps=5, device="cpu"),
        out,
    )
    return out


@pytest.fixture
def in_tmp_path(tmp_path, monkeypatch):
    """Commands without --out make weights/ or renders/ in the working folder: use a temp one.
    (Modules that run the CLI in-process use it with ``pytestmark``.)"""
    monkeypatch.chdir(tmp_path)


def cli(capsys, *args) -> tuple[int, list[str]]:
    """Returns (exit code, the stderr lines that start with 'vidpred') of `vidpred ARGS` run
    in-process; the other lines are progress and the 'weights:' note. Arguments may be bytes
    (names that are not UTF-8). In-process, warnings go to pytest's log capture: read them
    with caplog."""
    from vidpred.cli import main

    code = main([os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, [line for line in err.splitlines() if line.startswith("vidpred")]


@contextlib.contextmanager
def one_torch_thread():
    """Tiny models: one torch thread is faster than two fighting over a busy CPU (when the
    user's OMP_NUM_THREADS kept the import-time setting above from applying)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    with one_torch_thread():
        yield


def claim_frames(path: Path, claimed: int) -> Path:
    """Rewrites an FFV1 .avi's header frame counts (avih and strh) to ``claimed``."""
    import struct

    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    data[avih + 24 : avih + 28] = struct.pack("<I", claimed)  # dwTotalFrames
    data[strh + 40 : strh + 44] = struct.pack("<I", claimed)  # dwLength
    path.write_bytes(bytes(data))
    return path


# Runs `vidpred` commands one after another in one fresh process and prints, as JSON, whether
# the probe file (argv[2], if given) is readable, then [[exit code, stderr, stdout], ...].
_CLI_RUNNER = r"""
import contextlib, io, json, os, sys
from vidpred.cli import main
readable = os.access(sys.argv[2], os.R_OK) if len(sys.argv) > 2 else None
results = []
for argv in json.loads(sys.argv[1]):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    results.append([code, err.getvalue(), out.getvalue()])
print(json.dumps([readable, results]))
"""


def run_cli_process(
    calls: list[list], *, timeout: int = 900, probe: Path | None = None, preexec_fn=None
) -> tuple[bool | None, list[tuple[int, str, str]]]:
    """Returns (is ``probe`` readable in the subprocess, [(exit code, stderr, stdout)] of each
    `vidpred ARGV` in ``calls``), all run in one subprocess: a segfault or a hang fails the
    test, not the test run. Arguments may be bytes (names that are not UTF-8).

    Raises:
        subprocess.SubprocessError: the process could not start (e.g. ``preexec_fn`` failed).
    """
    argvs = [[os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in call] for call in calls]
    result = subprocess.run(
        [sys.executable, "-c", _CLI_RUNNER, json.dumps(argvs), *([str(probe)] if probe else [])],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=timeout,
        env=subprocess_env(),
        preexec_fn=preexec_fn,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-3000:]}"
    readable, results = json.loads(result.stdout.splitlines()[-1])
    return readable, [tuple(r) for r in results]
