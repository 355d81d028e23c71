"""A seeded fuzz pass over the reader: corrupted bytes give frames or a VideoError, nothing else.

The cases run in a subprocess, so that a crash of the decoder (a segfault) or a hang fails
this test with the seed that caused it instead of taking the test run down.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import moving_square, write_lossless

from vidpred.encoding import write_mp4

CASES = 300
SIZE = 32  # working size asked of the reader: every good result has this shorter side

FUZZ = r"""
import faulthandler, json, logging, random, sys
import numpy as np
from vidpred.errors import VideoError
from vidpred.video import read_video

logging.disable(logging.CRITICAL)  # the reader's warnings about damaged files are expected
sources, folder, cases, size = json.loads(sys.argv[1])
originals = {path: open(path, "rb").read() for path in sources}
outcomes = {"frames": 0, "VideoError": 0}
for seed in range(cases):
    rng = random.Random(seed)
    source = rng.choice(sorted(originals))
    data = bytearray(originals[source])
    how = rng.choice(["flip bytes", "overwrite a run", "truncate", "damage the header"])
    if how == "flip bytes":
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == "overwrite a run":
        start = rng.randrange(len(data))
        data[start : start + rng.randint(1, 200)] = rng.randbytes(rng.randint(1, 200))
    elif how == "truncate":
        data = data[: rng.randrange(len(data))]
    else:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(min(len(data), 1024))] = rng.randrange(256)
    path = f"{folder}/case{source[source.rindex('.'):]}"
    with open(path, "wb") as f:
        f.write(data)
    print(f"seed {seed}: {how} of {source}", flush=True)  # the last line names a hang or crash
    faulthandler.dump_traceback_later(30, exit=True)  # a hang fails with a stack, not silently
    try:
        frames = read_video(path, size=size).frames
    except VideoError:
        outcomes["VideoError"] += 1
        continue
    finally:
        faulthandler.cancel_dump_traceback_later()
    t, h, w, c = frames.shape
    assert frames.dtype == np.uint8 and t >= 1 and c == 3, (seed, frames.shape, frames.dtype)
    assert min(h, w) == size and h % 4 == 0 and w % 4 == 0, (seed, frames.shape)
    outcomes["frames"] += 1
print(json.dumps(outcomes))
"""


def test_reader_survives_corrupted_bytes(tmp_path):
    sources = [
        str(
            write_mp4(tmp_path / "h264.mp4", moving_square(12, 32, 48), fps=10)
        ),  # what render writes
        str(write_lossless(tmp_path / "ffv1.avi", moving_square(12, 32, 48))),
    ]
    folder = tmp_path / "cases"
    folder.mkdir()
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", FUZZ, json.dumps([sources, str(folder), CASES, SIZE])],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=240,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
        },
    )
    last = result.stdout.strip().splitlines()[-1:] or ["(no output)"]
    # A negative return code is a signal: the interpreter crashed.
    assert result.returncode == 0, (
        f"exit {result.returncode} after {last[0]}\n{result.stderr[-3000:]}"
    )
    outcomes = json.loads(last[0])
    assert outcomes["frames"] + outcomes["VideoError"] == CASES
    assert outcomes["frames"] > 0 and outcomes["VideoError"] > 0  # both paths were exercised
