"""Helpers the tests share: small videos they write, and ways to run vidpred in-process or in
a child process. (Fixtures are in conftest.py, which pytest loads itself.)"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch


def exact_render(clip, predictor, out: Path) -> Path:
    """Renders ``clip`` losslessly (CRF 0) and ungated: what tests compare pixel for pixel."""
    from vidpred.rendering import RenderSettings, render
    from vidpred.video_options import VideoOptions

    return render(clip, predictor, out, RenderSettings(crf=0), VideoOptions(gate=0))


# `vidpred train` options for a run that takes a fraction of a second: a 4-channel, 1-unit
# model on 16 px crops of 32 px frames, 2 steps of 2 windows. A later --steps overrides.
TINY_TRAINING = "--size 32 --crop 16 --width 4 --depth 1 --batch-size 2 --steps 2".split()


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


def cli(capsys, *args) -> tuple[int, list[str]]:
    """Returns (exit code, the stderr lines that start with 'vidpred') of `vidpred ARGS` run
    in-process; the other lines are progress and the 'weights:' note. One string argument is
    a command line, split as a shell would (``cli(capsys, f"render {clip} --size 32")``);
    otherwise each argument is one word, and may be bytes (names that are not UTF-8) or a
    path. In-process, warnings go to pytest's log capture: read them with caplog."""
    from vidpred.cli import main

    if len(args) == 1 and isinstance(args[0], str):
        args = shlex.split(args[0])
    code = main([os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, [line for line in err.splitlines() if line.startswith("vidpred")]


def usage_error(capsys, *args) -> str:
    """Returns argparse's error line for `vidpred ARGS`, which must exit 2."""
    from vidpred.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


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
