"""Writing H.264 mp4s through ffmpeg (imageio-ffmpeg's binary), whole or not at all.

Layout taken: ``uint8 RGB (H, W, 3)`` frames, one at a time.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import OutputError, VideoError
from .outputs import remove_temp, temp_path
from .stages import stage

# x264's fastest preset with the tools that pay on render frames turned back on: CABAC,
# 3 B-frames, macroblock-tree rate control (10-frame lookahead), deblocking and adaptive
# quantisation. On 1040x232 render frames (`python benchmarks/x264_settings.py`) it files
# about the same bytes at the same fidelity as the veryfast preset for about two thirds
# of its CPU time; the encoder competes with the model for the cores during a render.
X264_OPTIONS = [
    "-preset",
    "ultrafast",
    "-x264-params",
    "cabac=1:bframes=3:mbtree=1:rc-lookahead=10:deblock=1:aq-mode=1",
]


# x264's rate factor for renders, chosen by measurement (docs/watching.md, "Render file
# size"): the highest CRF at which the decoded actual and predicted pictures stayed within
# 40 dB luma PSNR of the frames vidpred drew, on three of the four clips measured (the
# fourth: 39.6 dB).
DEFAULT_CRF = 18
MAX_CRF = 51


def _codec_options(crf: int) -> list[str]:
    """Returns ffmpeg's codec options for ``crf``: H.264 yuv420p that every player and browser
    plays, or at 0 lossless RGB (libx264rgb, qp 0), for people who measure from the mp4;
    browsers do not play that profile (High 4:4:4), so it is for measuring, not sharing."""
    if crf == 0:
        return ["-c:v", "libx264rgb", "-pix_fmt", "rgb24", "-qp", "0"]
    return ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf)]


# The mp4 must be whole before it replaces anything. imageio-ffmpeg's writer ignores ffmpeg's
# exit status (a full disk gave a truncated, unplayable file and exit 0), and prints ffmpeg's
# command and errors to the terminal; so this module runs ffmpeg itself, collects what it
# says, and checks both its exit status and the file it wrote.

# The errors a write can meet, as the OS words them: ffmpeg's messages end with one of these.
WRITE_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.ENOENT,
)


def ffmpeg_exe() -> str:
    """Returns the ffmpeg that imageio-ffmpeg provides ($IMAGEIO_FFMPEG_EXE overrides it)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _failure_reason(returncode: int, stderr: str) -> str:
    """Returns why ffmpeg failed, in a few words: the OS error it met, else its last line."""
    for code in WRITE_ERRNOS:
        if os.strerror(code) in stderr:
            return os.strerror(code)
    if returncode < 0:
        sig = signal.Signals(-returncode)
        if sig == signal.SIGXFSZ:  # it outgrew the file size limit (ulimit -f)
            return os.strerror(errno.EFBIG)
        return f"ffmpeg was stopped by {sig.name}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if lines:  # drop ffmpeg's "[out#0/mp4 @ 0x55d0...]" prefix
        return re.sub(r"^(\[[^\]]*\]\s*)+", "", lines[-1])
    return f"ffmpeg exited with status {returncode}"


def decoded_frame_count(path: str | Path) -> int:
    """Returns how many video frames of ``path`` ffmpeg decodes, start to end.

    Raises:
        VideoError: ffmpeg cannot open or decode the file; the message is the reason alone.
    """
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-nostats",
            "-",
        ],
        capture_output=True,
    )
    if result.returncode != 0:
        raise VideoError(_failure_reason(result.returncode, result.stderr.decode(errors="replace")))
    counts = re.findall(rb"^frame=(\d+)", result.stdout, re.MULTILINE)
    return int(counts[-1]) if counts else 0


class Mp4Writer:
    """Writes uint8 RGB (H, W, 3) frames to an H.264 (yuv420p) mp4 that browsers play.

    The file appears only when it is whole. Frames go through ffmpeg into a temporary file
    beside the target; at the end (``finish``) the writer checks that ffmpeg exited 0 and
    that the file decodes to every frame written, and only then renames it over the target.
    Any failure (a full disk, ffmpeg dying, Ctrl-C) removes the temporary file and leaves
    the old target, or none: never a broken mp4.

    Raises (from any method):
        OutputError: the path does not end in .mp4, or the video could not be written; the
            message names the file and the reason (e.g. "No space left on device").
    """

    def __init__(self, path: str | Path, fps: float, *, crf: int = DEFAULT_CRF):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise OutputError(f"{self.path}: vidpred writes H.264 mp4s; name the file .mp4")
        if not 0 <= crf <= MAX_CRF:
            raise ValueError(f"crf must be 0..{MAX_CRF}, got {crf}")
        self.fps = fps
        self.crf = crf
        self.frames_written = 0
        self._tmp = temp_path(self.path, keep_suffix=True)  # .<stem>.<pid>.tmp.mp4
        self._process: subprocess.Popen | None = None
        self._stderr = bytearray()
        self._stderr_reader: threading.Thread | None = None
        self._size: tuple[int, int] | None = None
        self._finished = False
        self._companions: list[tuple[Path, Path]] = []  # (temp file, target)

    def __enter__(self) -> Mp4Writer:
        return self

    def _start(self, height: int, width: int) -> None:
        command = [
            ffmpeg_exe(),
            "-y",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-r",
            str(Fraction(self.fps).limit_denominator()),
            "-i",
            "-",
            "-an",
            *_codec_options(self.crf),
            # +faststart puts the index first, so browsers start playing at once.
            "-movflags",
            "+faststart",
            *X264_OPTIONS,
            "-f",
            "mp4",
            str(self._tmp),
        ]
        # Its own session: Ctrl-C reaches vidpred only, which then stops ffmpeg and removes
        # the temp file (ffmpeg stopping on its own would first finish a partial file).
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._stderr_reader = threading.Thread(target=self._collect_stderr, daemon=True)
        self._stderr_reader.start()

    def _collect_stderr(self) -> None:
        # Drained all along: a full pipe would block ffmpeg. The tail is enough to say why.
        for chunk in iter(lambda: self._process.stderr.read(4096), b""):
            self._stderr += chunk
            del self._stderr[:-65536]

    def write(self, frame: np.ndarray) -> None:
        """Appends one uint8 RGB (H, W, 3) frame; H and W must be even and constant."""
        if self._process is None:
            h, w = frame.shape[:2]
            if h % 2 or w % 2:
                raise ValueError(f"H.264 yuv420p needs even sides, got {h}x{w}")
            self._size = (h, w)
            self._start(h, w)
        if frame.shape != (*self._size, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 {self._size[0]}x{self._size[1]}x3, got "
                f"{frame.dtype} {'x'.join(map(str, frame.shape))}"
            )
        try:
            with stage("encode (H.264, ffmpeg)"):
                self._process.stdin.write(np.ascontiguousarray(frame).data)
        except OSError:  # ffmpeg stopped reading: it has failed, its exit status says why
            returncode = self._wait()
            self._raise_failure(returncode or "ffmpeg stopped reading the frames")
        self.frames_written += 1

    def _raise_failure(self, why: int | str) -> None:
        """Raises the OutputError for ffmpeg's exit status ``why`` (or a reason in words)."""
        if isinstance(why, int):
            why = _failure_reason(why, self._stderr.decode(errors="replace"))
        raise OutputError(f"{self.path}: could not write the video: {why}")

    def _wait(self) -> int:
        try:
            self._process.stdin.close()
        except OSError:
            pass  # it stopped reading; the exit status says why
        returncode = self._process.wait()
        self._stderr_reader.join()
        return returncode

    def finish(self) -> Path:
        """Ends the video and checks it; returns the temporary file, whole and verified.

        The target is replaced when the ``with`` block ends.
        """
        if self._finished:
            return self._tmp
        if self._process is None:
            raise OutputError(f"{self.path}: no frames to write")
        with stage("encode (H.264, ffmpeg)"):
            returncode = self._wait()
        if returncode != 0:
            self._raise_failure(returncode)
        try:
            # Some file systems (delayed allocation, quotas, NFS) report a full disk only now.
            with open(self._tmp, "rb") as f:
                os.fsync(f.fileno())
            with stage("check the written mp4"):
                decoded = decoded_frame_count(self._tmp)
        except OSError as e:
            self._raise_failure(e.strerror or str(e))
        except VideoError as e:
            self._raise_failure(f"the written file does not decode ({e})")
        if decoded != self.frames_written:
            self._raise_failure(
                f"the written file decodes to {decoded} of the {self.frames_written} frames sent"
            )
        self._finished = True
        return self._tmp

    def add_companion(self, tmp: Path, target: Path) -> None:
        """Renames the finished temp file ``tmp`` over ``target`` just after the mp4 replaces
        its own target, or removes it if the mp4 fails: e.g. a render's sidecar, which must
        never describe a video that is not there."""
        self._companions.append((Path(tmp), Path(target)))

    def discard(self) -> None:
        """Stops ffmpeg if it still runs and removes the temporary files."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._wait()
        remove_temp(self._tmp)
        for tmp, _ in self._companions:
            remove_temp(tmp)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()
            return
        try:
            self.finish()
            os.replace(self._tmp, self.path)
            for tmp, target in self._companions:
                os.replace(tmp, target)
        except BaseException:
            self.discard()
            raise


def write_mp4(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Writes uint8 RGB (T, H, W, 3) frames to an H.264 mp4 atomically; returns the path."""
    with Mp4Writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
