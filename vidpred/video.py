"""Reading videos with OpenCV (writing them: ``vidpred.encoding``).

Layout handed out by this module: ``uint8 RGB (T, H, W, 3)``. OpenCV decodes BGR; the
conversion to RGB happens here, once, so nothing else in the project sees BGR.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# OpenCV's FFmpeg backend prints decoder chatter to stderr for damaged files; the reader
# reports problems itself, with the path, so keep that noise out of the user's terminal.
# ("ERROR" still let OpenCV's own "[ERROR:0@...]" lines through, hence "OFF".)
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .errors import VideoError, VidpredError, shown  # noqa: E402
from .stages import stage  # noqa: E402

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (
    ".mp4",
    ".avi",
    ".mkv",
    ".webm",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
)

# Frames are resized so that each side is a multiple of this: the space-to-depth stem halves
# the frame, and H.264 in yuv420p needs even sides, so 4 serves every model configuration.
SIZE_MULTIPLE = 4

# When the container's timestamps are missing or absurd, fall back to its fps field, and to
# this when that is missing too.
FALLBACK_FPS = 30.0

# Only the FFmpeg backend: OpenCV's fallback backends (its own MJPEG/AVI parser, image
# sequences) print raw parser errors for damaged files and would read "%d" in a file name as
# an image-sequence pattern.
BACKEND = cv2.CAP_FFMPEG

# FFmpeg happily decodes a still image named .mp4 as a one-frame "video"; these leading bytes
# let the reader say what the file really is.
IMAGE_SIGNATURES = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


# The most pixels a decoded frame may have at its working size: a 4096x4096 frame (--size's
# largest, square), 50 MB as uint8 RGB. A 2x4000 clip at --size 96 would otherwise decode to
# 96x192000 frames, 55 MB each from a 37 KB file; --size 4096 on a 32x48 clip, to 75 MB each.
MAX_FRAME_PIXELS = 4096 * 4096

# One decoded video may take at most this share of the machine's memory (see
# max_decoded_bytes); the environment variable replaces it with a number of GB.
DECODED_MEMORY_SHARE = 0.5
MAX_DECODED_ENV = "VIDPRED_MAX_DECODED_GB"


def max_decoded_bytes() -> int:
    """Returns the most bytes one video may take decoded (uint8 RGB at its working size):
    $VIDPRED_MAX_DECODED_GB GB if set, else half of this machine's physical memory.

    Raises:
        VidpredError: the environment variable is not a positive number.
    """
    text = os.environ.get(MAX_DECODED_ENV)
    if text:
        try:
            gb = float(text)
        except ValueError:
            gb = math.nan
        if not (gb > 0 and math.isfinite(gb)):
            raise VidpredError(f"{MAX_DECODED_ENV} must be a positive number of GB, got {text!r}")
        return int(gb * 1e9)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume 16 GB
        memory = 16 * 10**9
    return int(memory * DECODED_MEMORY_SHARE)


def _check_frame_size(
    path: Path, source: tuple[int, int], target: tuple[int, int], size: int | None
) -> None:
    """Raises VideoError if frames of ``source`` (H, W) become more than MAX_FRAME_PIXELS
    at the working size ``target`` (H, W)."""
    pixels = target[0] * target[1]
    if pixels > MAX_FRAME_PIXELS:
        at = f"working size {size}" if size is not None else "their native size"
        raise VideoError(
            f"{path}: its {source[1]}x{source[0]} frames become {target[1]}x{target[0]} at {at} "
            f"({pixels / 1e6:.1f} Mpx; the cap is {MAX_FRAME_PIXELS / 1e6:.1f} Mpx per frame); "
            f"use a smaller --size"
        )


class DecodeCapError(VideoError):
    """A video would take more memory decoded than the cap (``max_decoded_bytes``) allows."""


def _too_big(
    path: Path, frames: int, target: tuple[int, int], limit: int, how: str, held: int = 0
) -> DecodeCapError:
    setting = (
        f"set by {MAX_DECODED_ENV}"
        if os.environ.get(MAX_DECODED_ENV)
        else (f"half this machine's memory; {MAX_DECODED_ENV} changes it")
    )
    size = f"{frames * target[0] * target[1] * 3 / 1e9:.1f} GB decoded"
    if held:
        return DecodeCapError(
            f"{shown(path)}: {how} {frames} frames of {target[1]}x{target[0]} would take {size} "
            f"on top of the {held / 1e9:.1f} GB the videos before it hold, over the cap of "
            f"{limit / 1e9:.1f} GB ({setting}); without --no-cache the videos are memory-mapped "
            "from the decode cache instead of held"
        )
    return DecodeCapError(
        f"{shown(path)}: {how} {frames} frames of {target[1]}x{target[0]} would take {size}, "
        f"over the cap of {limit / 1e9:.1f} GB ({setting}); use a smaller --size or a shorter clip"
    )


@dataclass
class Video:
    """A decoded video at its working size."""

    path: Path
    frames: np.ndarray  # uint8 RGB (T, H, W, 3)
    fps: float  # measured from the decoded frames' timestamps where possible
    source_size: tuple[int, int]  # (H, W) before resizing
    offset: int = 0  # the clip's frame number of frames[0] (a segment starts later)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


# What a path that is neither a regular file nor a folder is, by its stat mode.
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True)
class Segment:
    """A part of a clip: from ``start`` seconds for ``duration`` seconds (None: to the end).
    Frame i of a clip is at i / fps, its container's frame rate."""

    start: float = 0.0
    duration: float | None = None

    def frame_range(self, fps: float) -> tuple[int, int | None]:
        """Returns (the first frame, the frame after the last or None: to the end)."""
        first = round(self.start * fps)
        if self.duration is None:
            return first, None
        return first, first + max(1, round(self.duration * fps))

    def describe(self) -> dict[str, float | None]:
        return {"start_s": self.start, "duration_s": self.duration}


def _special_kind(mode: int) -> str:
    """Returns what a stat mode that is neither a regular file nor a folder describes."""
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), "not a regular file")


def _stat(path: Path, missing: str) -> os.stat_result:
    """Returns ``os.stat(path)`` (links followed), or raises VideoError saying why there is none.

    Args:
        missing: the reason given when nothing is there ("no such file").
    """
    try:
        return path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            target = shown(os.readlink(path))
            raise VideoError(f"{shown(path)}: broken symbolic link (points to {target})") from None
        raise VideoError(f"{shown(path)}: {missing}") from None
    except NotADirectoryError:
        # e.g. clip.mp4/x.mp4: name the part of the path that is a file, not a folder.
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        why = f" ({shown(blocker)} is not a folder)" if blocker else ""
        raise VideoError(f"{shown(path)}: {missing}{why}") from None
    except PermissionError:
        raise VideoError(f"{shown(path)}: permission denied") from None
    except OSError as e:  # a link loop, a name too long
        raise VideoError(f"{shown(path)}: {e.strerror or e}") from None


def check_video_file(path: str | Path) -> os.stat_result:
    """Returns the stat of ``path`` if it is a regular file that can be read and is not empty.

    Only the file's metadata is read: a FIFO is never opened (opening one blocks until a
    writer comes), nor a device (/dev/zero reads forever).

    Raises:
        VideoError: it is missing, a broken link, not a regular file, unreadable or empty.
    """
    path = Path(path)
    info = _stat(path, "no such file")
    if stat.S_ISDIR(info.st_mode):
        raise VideoError(f"{shown(path)}: a folder, not a video file")
    if not stat.S_ISREG(info.st_mode):
        raise VideoError(f"{shown(path)}: {_special_kind(info.st_mode)}, not a video file")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{shown(path)}: permission denied")
    if info.st_size == 0:
        raise VideoError(f"{shown(path)}: empty file (0 bytes)")
    return info


def find_videos(path: str | Path) -> list[Path]:
    """Returns the video files at ``path``: the file itself, or every video below a folder.

    Symbolic links are followed (links to folders too, each real folder once, so a link loop
    ends); a file reached through several links (or hard links) is returned once. Broken
    links, special files (FIFOs, devices) and folders that cannot be listed are skipped with a
    warning.

    Raises:
        VideoError: the path does not exist, is a special file, or a folder holds no file with
            a video extension.
    """
    path = Path(path)
    info = _stat(path, "no such file or folder")
    if stat.S_ISREG(info.st_mode):
        return [path]
    if not stat.S_ISDIR(info.st_mode):
        kind = _special_kind(info.st_mode)
        raise VideoError(f"{shown(path)}: {kind}, not a video file or folder")

    def unlistable(error: OSError) -> None:
        log.warning("skipping %s: %s", shown(error.filename), error.strerror)

    candidates, folders_seen = [], set()
    for root, dirs, files in os.walk(path, onerror=unlistable, followlinks=True):
        real = os.path.realpath(root)
        if real in folders_seen:
            dirs[:] = []
            continue
        folders_seen.add(real)
        candidates += [
            Path(root) / name for name in files if Path(name).suffix.lower() in VIDEO_EXTENSIONS
        ]
    found, files_seen = [], {}
    # Paths reached without a link come first, so a duplicate is reported under its link.
    for p in sorted(candidates, key=lambda p: (os.path.realpath(p) != os.path.abspath(p), p)):
        try:
            info = _stat(p, "no such file")  # gone since the listing
        except VideoError as e:
            log.warning("skipping %s", e)
            continue
        if not stat.S_ISREG(info.st_mode):
            log.warning("skipping %s: %s, not a video file", shown(p), _special_kind(info.st_mode))
            continue
        same = files_seen.setdefault((info.st_dev, info.st_ino), p)
        if same is p:
            found.append(p)
        else:
            log.warning("skipping %s: same file as %s", shown(p), shown(same))
    found.sort()
    if not found:
        raise VideoError(
            f"{shown(path)}: no video files found (looked for {', '.join(VIDEO_EXTENSIONS)})"
        )
    return found


def gather_videos(paths: list[str | Path]) -> list[Path]:
    """Returns the video files at each of ``paths`` (files or folders, see ``find_videos``),
    in the order given, each file once: one named twice, or both alone and inside a folder
    given too (`eval clips clips/x.mp4`), is skipped the second time with a warning.

    Raises:
        VideoError: as ``find_videos``, for any of the paths.
    """
    found, seen = [], {}
    for p in (v for item in paths for v in find_videos(item)):
        try:
            info = p.stat()
        except OSError:  # gone since find_videos: the reader says why
            found.append(p)
            continue
        same = seen.setdefault((info.st_dev, info.st_ino), p)
        if same is p:
            found.append(p)
        elif os.path.abspath(same) == os.path.abspath(p):
            log.warning("skipping %s: named twice; used once", shown(p))
        else:
            log.warning("skipping %s: same file as %s", shown(p), shown(same))
    return found


def working_size(
    height: int, width: int, size: int | None, multiple: int = SIZE_MULTIPLE
) -> tuple[int, int]:
    """Returns (H, W) with the shorter side near ``size``, aspect kept, both multiples of
    ``multiple``.

    ``size=None`` keeps the native size (rounded to the multiple).
    """
    if size is not None:
        scale = size / min(height, width)
        height, width = height * scale, width * scale

    def snap(side: float) -> int:
        return max(multiple, math.floor(side / multiple + 0.5) * multiple)  # half up

    return snap(height), snap(width)


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """OpenCV BGR / BGRA / gray (H, W[, C]) -> uint8 RGB (H, W, 3)."""
    if frame.dtype != np.uint8:
        # 16-bit sources: keep the top 8 bits.
        frame = (
            (frame >> 8).astype(np.uint8) if frame.dtype == np.uint16 else frame.astype(np.uint8)
        )
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _open_capture(path: Path) -> cv2.VideoCapture:
    """Returns an OpenCV capture of ``path`` on the FFmpeg backend (maybe not opened)."""
    name: str | bytes = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        # A name whose bytes are not UTF-8 reaches Python with surrogates; OpenCV's conversion
        # of such a str crashes the interpreter (a segfault), but it takes the raw bytes.
        name = os.fsencode(path)
    return cv2.VideoCapture(name, BACKEND)


def _claimed(value: float) -> int:
    """Returns a container property OpenCV reports as a float as a count (0 when unknown)."""
    return int(value) if math.isfinite(value) and 0 < value < 2**62 else 0


class Decoder:
    """Decodes one video frame by frame, each resized to the working size as it arrives.

    Use it as a context manager. ``source_size`` and ``claimed_frames`` are what the container
    says (it may lie: the frames that decode are what counts); ``finish`` checks the result.

    Raises:
        VideoError: the file is missing, unreadable, a special file, or not a video OpenCV can
            open.
    """

    def __init__(
        self,
        path: str | Path,
        size: int | None = None,
        max_frames: int | None = None,
        held_bytes: int = 0,
        skip: int = 0,
    ):
        self.path = Path(path)
        self.size = size
        self.max_frames = max_frames
        self.skip = skip  # frames before the first one yielded (``frames``)
        file_bytes = check_video_file(self.path).st_size
        self._capture = _open_capture(self.path)
        if not self._capture.isOpened():
            self._capture.release()
            raise VideoError(f"{shown(self.path)}: not a video OpenCV can read")
        get = self._capture.get
        self.source_size = (
            _claimed(get(cv2.CAP_PROP_FRAME_HEIGHT)),
            _claimed(get(cv2.CAP_PROP_FRAME_WIDTH)),
        )
        self.metadata_fps = float(get(cv2.CAP_PROP_FPS) or 0.0)
        self.claimed_frames = _claimed(get(cv2.CAP_PROP_FRAME_COUNT))
        # No container stores a frame in less than a byte: a count above the file's size is
        # wrong (a damaged or hand-edited header), and nothing should be refused over it.
        self.count_looks_wrong = self.claimed_frames > file_bytes
        self.timestamps_ms: list[float] = []
        # Before decoding anything: what the container claims must fit the caps, so an honest
        # long clip is refused at once. A container can lie, so the decoded frames are checked
        # again in ``frames``, and only that check applies to a count that looks wrong.
        # ``held_bytes``: what the caller already holds decoded (uncached videos before this).
        self.limit, self.held = max_decoded_bytes(), held_bytes
        if min(self.source_size) > 0:
            try:
                expected = working_size(*self.source_size, size)
                _check_frame_size(self.path, self.source_size, expected, size)
                claimed_bytes = self.expected_frames * expected[0] * expected[1] * 3
                if not self.count_looks_wrong and self.held + claimed_bytes > self.limit:
                    raise _too_big(
                        self.path, self.expected_frames, expected, self.limit, "its", self.held
                    )
            except VideoError:
                self._capture.release()
                raise

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc) -> None:
        self._capture.release()

    @property
    def expected_frames(self) -> int:
        """Returns how many frames the container promises after ``skip``, within
        ``max_frames`` (0: unknown)."""
        claimed = max(self.claimed_frames - self.skip, 0) if self.claimed_frames else 0
        if self.max_frames is None:
            return claimed
        return min(claimed or self.max_frames, self.max_frames)

    def _read_after_skip(self) -> tuple[bool, np.ndarray | None]:
        """Reads frame ``skip``. Where the container has an index, it seeks there without
        decoding what comes before, and keeps the seek only if the frame it lands on has
        frame ``skip``'s timestamp (``skip`` / fps, within half a frame); otherwise (no
        index, a variable frame rate) it reads from the start, decoding the skipped frames
        without converting them."""
        fps = self.metadata_fps
        if 0 < fps < 1000 and self._capture.set(cv2.CAP_PROP_POS_FRAMES, self.skip):
            ok, frame = self._capture.read()
            landed_ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
            if ok and abs(landed_ms - self.skip * 1000.0 / fps) < 500.0 / fps:
                return ok, frame
        self._capture.release()
        self._capture = _open_capture(self.path)
        for _ in range(self.skip):
            if not self._capture.grab():
                return False, None
        return self._capture.read()

    def frames(self) -> Iterator[np.ndarray]:
        """Yields uint8 RGB (H, W, 3) frames at the working size; records their timestamps.

        Each frame is resized as soon as it is decoded, so memory never holds a video at its
        native size.
        """
        target: tuple[int, int] | None = None
        while self.max_frames is None or len(self.timestamps_ms) < self.max_frames:
            with stage("decode"):
                if self.skip and not self.timestamps_ms:
                    ok, frame = self._read_after_skip()
                else:
                    ok, frame = self._capture.read()
            if not ok or frame is None:
                break
            if target is None:
                target = working_size(frame.shape[0], frame.shape[1], self.size)
                _check_frame_size(self.path, frame.shape[:2], target, self.size)
            if self.held + (len(self.timestamps_ms) + 1) * target[0] * target[1] * 3 > self.limit:
                raise _too_big(
                    self.path,
                    len(self.timestamps_ms) + 1,
                    target,
                    self.limit,
                    "more than",
                    self.held,
                )
            if frame.shape[:2] != target:
                # INTER_AREA averages when shrinking (no aliasing); LINEAR when enlarging.
                shrink = target[0] < frame.shape[0]
                frame = cv2.resize(
                    frame,
                    (target[1], target[0]),
                    interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
                )
            self.timestamps_ms.append(float(self._capture.get(cv2.CAP_PROP_POS_MSEC)))
            yield _to_rgb(frame)

    def finish(self) -> float:
        """Returns the frame rate, once ``frames`` is exhausted; warns when fewer frames decoded
        than the container claims.

        Raises:
            VideoError: no frame decoded, or the one frame is a still image named as a video.
        """
        count = len(self.timestamps_ms)
        if not count:
            raise VideoError(
                f"{shown(self.path)}: no frame could be decoded (not a video, or damaged)"
            )
        if count == 1 and self.max_frames != 1 and (kind := _image_kind(self.path)):
            raise VideoError(f"{shown(self.path)}: a {kind} image, not a video")
        if self.max_frames is None and self.count_looks_wrong:
            log.warning(
                "%s: the container claims %d frames, more than its size could hold (its frame "
                "count looks wrong); %d decode, using those",
                shown(self.path),
                self.claimed_frames,
                count,
            )
        elif self.max_frames is None and self.claimed_frames > count:
            log.warning(
                "%s: the container claims %d frames but only %d decode; using those",
                shown(self.path),
                self.claimed_frames,
                count,
            )
        return _measured_fps(self.timestamps_ms, self.metadata_fps)


def iter_frames(
    path: str | Path, size: int | None = None, max_frames: int | None = None
) -> Iterator[tuple[np.ndarray, float]]:
    """Yields (uint8 RGB (H, W, 3) frame at the working size, timestamp in ms) as decoded.

    Raises:
        VideoError: as ``Decoder``.
    """
    with Decoder(path, size, max_frames) as decoder:
        for frame in decoder.frames():
            yield frame, decoder.timestamps_ms[-1]


# The most a decode reserves up front for the frames a container claims: a damaged header can
# claim billions. Past it the buffer grows as frames arrive, which costs no copy on Linux.
MAX_RESERVED_BYTES = 2**30


def _anonymous_map(nbytes: int) -> mmap.mmap:
    """Returns private anonymous memory: a shared anonymous map cannot grow (its new pages
    raise SIGBUS), and untouched pages of either cost no memory."""
    return mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)


class _FrameBuffer:
    """uint8 RGB (T, H, W, 3) frames decoded one by one into one anonymous memory map.

    A list of frames stacked at the end holds the video twice at the peak; the map is sized
    from the container's frame count instead, and resized in place when the count is wrong:
    mremap (Linux) moves or frees pages without copying them.
    """

    def __init__(self, frame_shape: tuple[int, ...], expected: int):
        self.frame_shape = frame_shape
        self.frame_bytes = math.prod(frame_shape)
        self.count = 0
        reserved = min(max(expected, 1), max(1, MAX_RESERVED_BYTES // self.frame_bytes))
        self._map = _anonymous_map(reserved * self.frame_bytes)

    def append(self, frame: np.ndarray) -> None:
        end = (self.count + 1) * self.frame_bytes
        if end > len(self._map):
            self._resize(end + max(len(self._map) // 4, 16 * self.frame_bytes))
        self._map[end - self.frame_bytes : end] = np.ascontiguousarray(frame).data.cast("B")
        self.count += 1

    def _resize(self, nbytes: int) -> None:
        try:
            self._map.resize(nbytes)
        except (OSError, SystemError):  # no mremap (macOS): copy into a new map
            bigger = _anonymous_map(nbytes)
            kept = min(nbytes, self.count * self.frame_bytes)
            with memoryview(self._map) as old, memoryview(bigger) as new:
                new[:kept] = old[:kept]
            self._map.close()
            self._map = bigger

    def array(self) -> np.ndarray:
        """Returns the frames as a uint8 RGB (T, H, W, 3) array over the map (shrunk to fit)."""
        self._resize(self.count * self.frame_bytes)
        return np.frombuffer(self._map, np.uint8).reshape(self.count, *self.frame_shape)


def _measured_fps(timestamps_ms: list[float], metadata_fps: float) -> float:
    """Returns the frame rate implied by decoded timestamps, else the container's, else 30."""
    if len(timestamps_ms) >= 2:
        span = timestamps_ms[-1] - timestamps_ms[0]
        if span > 0:
            fps = (len(timestamps_ms) - 1) * 1000.0 / span
            if 0.5 <= fps <= 1000:
                return round(fps, 3)
    if math.isfinite(metadata_fps) and 0.5 <= metadata_fps <= 1000:
        return float(metadata_fps)
    return FALLBACK_FPS


def _image_kind(path: Path) -> str | None:
    """Returns the still-image format the file's first bytes announce, if any."""
    with open(path, "rb") as f:
        head = f.read(8)
    return next((kind for magic, kind in IMAGE_SIGNATURES.items() if head.startswith(magic)), None)


def read_video(
    path: str | Path,
    size: int | None = None,
    max_frames: int | None = None,
    held_bytes: int = 0,
    skip: int = 0,
) -> Video:
    """Returns the decoded video at its working size (shorter side ``size``; None = native).

    The frame count is what actually decodes, not what the container claims; a file that
    claims more frames than it holds is read up to the last good frame, with a warning.
    Frames are decoded straight into one buffer sized from the claimed count, so memory peaks
    at the decoded video's size, not twice it.

    Args:
        held_bytes: decoded bytes the caller already holds; they count against the cap.
        skip: frames before the first one read (``Decoder``; the Video's ``offset``).

    Raises:
        VideoError: the file is missing, unreadable, not a video, or holds no decodable frame.
        DecodeCapError: it would take more than the cap decoded, with ``held_bytes``.
    """
    with Decoder(path, size, max_frames, held_bytes, skip) as decoder:
        buffer = None
        for frame in decoder.frames():
            if buffer is None:
                buffer = _FrameBuffer(frame.shape, decoder.expected_frames)
            buffer.append(frame)
        fps = decoder.finish()
    return Video(Path(path), buffer.array(), fps, decoder.source_size, offset=skip)


def read_segment(
    path: str | Path, size: int | None, segment: Segment, lead: int
) -> tuple[Video, int, int]:
    """Returns (``segment``'s frames at the working size with up to ``lead`` frames before
    it, the index in them of the segment's first frame, the clip's frame count as its
    container claims it or 0). The frames before are seeked past where the container
    allows (``Decoder``), not decoded.

    Raises:
        VidpredError: the container gives no frame rate, or the segment starts past the end.
        VideoError: as ``read_video``.
    """
    with Decoder(path, max_frames=1) as probe:
        fps, claimed = probe.metadata_fps, probe.claimed_frames
        if probe.count_looks_wrong:
            claimed = 0
    if not 0 < fps < 1000:
        raise VidpredError(
            f"{shown(Path(path))}: its container gives no frame rate, so --start and "
            "--duration cannot be placed; cut the clip with ffmpeg first"
        )
    start, stop = segment.frame_range(fps)
    past_end = VidpredError(
        f"{shown(Path(path))}: --start {segment.start:g} s is past its end"
        + (f" ({claimed / fps:.1f} s)" if claimed else "")
    )
    if claimed and start >= claimed:
        raise past_end
    skip = max(0, start - lead)
    try:
        video = read_video(path, size, None if stop is None else stop - skip, skip=skip)
    except DecodeCapError:
        raise
    except VideoError:
        if skip:  # nothing decodes after the frames skipped: the clip is shorter
            raise past_end from None
        raise
    if video.num_frames <= start - skip:
        raise past_end
    return video, start - skip, claimed
