"""A disk cache of decoded videos, so that each video is decoded and resized once.

The first read of a video at a working size decodes its frames, ``uint8 RGB (T, H, W, 3)``,
straight into a ``.npy`` file (plus a small JSON sidecar with fps and source size) in the
cache folder, one frame at a time: the decoded video is never in memory as a whole. Every
read, the first included, maps that file into memory: pages are read from disk as batches
touch them, so memory is bounded by what training uses, not by the folder's size.

An entry is keyed by the video's resolved path, its size in bytes, its mtime in
nanoseconds and the working size; a video that changes in any of these is decoded again
and its stale entries are removed. Entries are written to temporary files and renamed into
place, so an interrupted or concurrent write (e.g. two torchrun ranks) never leaves a
partial entry that a reader could pick up. An entry file that is not a regular file (a FIFO
would block the read forever), not an array or not its video's is decoded again, with one
warning line naming it.

Folder: ``cache_dir`` if given, else ``$VIDPRED_CACHE``, else ``$XDG_CACHE_HOME/vidpred``,
else ``~/.cache/vidpred``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import shown
from .outputs import (
    atomic_write_bytes,
    ignore_state,
    open_regular,
    read_state,
    remove_temp,
    temp_path,
)
from .video import Decoder, Video, read_video

log = logging.getLogger(__name__)

# Bumped whenever the decoded frames for the same key would differ (reader changes that
# alter pixels, a new layout): old entries then simply stop matching.
CACHE_VERSION = 1

# Entry files are named "<path hash>-<working size>-<state hash>.npy|.json"; only files with
# this shape are ever listed or removed, so pointing --cache-dir at a shared folder is safe.
_SUFFIXES = (".npy", ".json")
# A sidecar holds the key (a path of at most 4096 bytes) and a few numbers: 1 MiB is not ours.
SIDECAR_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class CacheStats:
    """What a cache folder holds."""

    folder: Path
    entries: int  # cached videos
    bytes: int  # total size of entry files


def default_cache_dir() -> Path:
    """Returns the cache folder: $VIDPRED_CACHE, else XDG cache (~/.cache)/vidpred."""
    if os.environ.get("VIDPRED_CACHE"):
        return Path(os.environ["VIDPRED_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidpred"


def _entry_stem(path: Path, size: int | None) -> tuple[str, str, dict]:
    """Returns (prefix shared by all versions of this video at this size, full stem, key)."""
    resolved = path.resolve()
    stat = resolved.stat()
    key = {
        "path": str(resolved),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "size": size,
        "version": CACHE_VERSION,
    }
    # The name's bytes: a name that is not UTF-8 has no str.encode() (surrogates).
    path_hash = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:16]
    state_hash = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    prefix = f"{path_hash}-{size if size is not None else 'native'}-"
    return prefix, prefix + state_hash, key


# Every frames file starts with an .npy header of this many bytes (a multiple of 64, as NumPy
# aligns its own), so the header can be rewritten in place once the frame count is known.
NPY_HEADER_BYTES = 128


def npy_header(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    """Returns an .npy (format 1.0) header for a C-order array of ``shape``, padded to
    NPY_HEADER_BYTES whatever the shape's digits."""
    text = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    room = NPY_HEADER_BYTES - 10  # magic string, version and the 2-byte header length
    if len(text) >= room:
        raise ValueError(f"shape {shape} does not fit an .npy header of {NPY_HEADER_BYTES} bytes")
    padded = text.ljust(room - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + room.to_bytes(2, "little") + padded.encode()


def _decode_to_file(decoder: Decoder, file) -> tuple[int, ...]:
    """Writes the decoder's frames to ``file`` as an .npy array, frame by frame; returns its
    shape (T, H, W, 3). The count is whatever decodes, which the container's claim need not be."""
    file.write(bytes(NPY_HEADER_BYTES))  # the header once the count is known
    shape = None
    for frame in decoder.frames():
        shape = frame.shape
        file.write(frame.data)
    count = len(decoder.timestamps_ms)
    if shape is not None:
        file.seek(0)
        file.write(npy_header((count, *shape)))
    return (count, *shape) if shape else (0,)


def release_pages(array: np.ndarray) -> None:
    """Drops this process's resident pages of a memory-mapped cache array.

    Pages of a map that were read stay counted in the process's memory until it unmaps them
    (the kernel frees them under pressure, but RSS keeps growing towards the mapped size): a
    pass over a long video would appear to hold all of it. After this, the next access
    re-reads from the page cache, so it is safe at any time for arrays nobody wrote to (the
    cache's maps are private: writes would be lost). A no-op for arrays that are not maps.
    """
    mapped = getattr(array, "_mmap", None)  # np.memmap keeps its mmap.mmap here
    if isinstance(mapped, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def map_npy(path: Path, mode: str) -> np.memmap:
    """Returns the .npy array in ``path`` memory-mapped (``mode`` "r" or "c", as ``np.load``'s
    ``mmap_mode``), if ``path`` is a regular file: a FIFO would block ``np.load`` forever.

    Raises:
        NotRegularFile: not a regular file.
        OSError: it cannot be opened (FileNotFoundError: there is none).
        ValueError: it is not an .npy array of plain numbers, or is shorter than it claims.
    """
    with open_regular(path) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if dtype.hasobject:
            raise ValueError("holds Python objects")
        order, offset = "F" if fortran else "C", f.tell()
        try:  # the map keeps its own descriptor; the file closes here
            return np.memmap(f, dtype=dtype, mode=mode, shape=shape, order=order, offset=offset)
        except OverflowError as e:  # a header claiming more elements than can be addressed
            raise ValueError(str(e)) from e


def _load_entry(folder: Path, stem: str, key: dict, path: Path) -> Video | None:
    """Returns the cached video, or None when the entry is missing, stale or damaged (a
    damaged one, e.g. a FIFO or a file that is not an array, with one warning line)."""
    meta_file, frames_file = folder / f"{stem}.json", folder / f"{stem}.npy"
    instead = f"decoding {shown(path)} again"
    data = read_state(meta_file, SIDECAR_MAX_BYTES, instead=instead)
    if data is None:
        return None
    try:
        meta = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: [[[[... nested deeper than Python
        ignore_state(meta_file, "not valid JSON", instead)
        return None
    try:
        # 'c' (copy-on-write) rather than 'r': torch.from_numpy wants a writable array, and
        # a private mapping can never write back to the cache file.
        frames = map_npy(frames_file, "c")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # NotRegularFile included
        ignore_state(frames_file, getattr(e, "strerror", None) or str(e), instead)
        return None
    try:
        if meta["key"] != key or list(frames.shape) != meta["shape"] or frames.dtype != np.uint8:
            raise ValueError("key, shape or dtype differ")
        fps, (h, w) = float(meta["fps"]), meta["source_size"]
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps {fps}")
        source_size = (int(h), int(w))
    except (KeyError, TypeError, ValueError) as e:
        ignore_state(meta_file, f"does not match its frames: {e}", instead)
        return None
    return Video(path=path, frames=frames, fps=fps, source_size=source_size)


def _remove_stale(folder: Path, prefix: str, keep: str) -> None:
    """Removes older entries of the same video at the same working size."""
    for old in folder.glob(f"{prefix}*"):
        if old.suffix in _SUFFIXES and old.stem != keep:
            old.unlink(missing_ok=True)


def read_video_cached(
    path: str | Path, size: int | None, cache_dir: str | Path | None = None
) -> Video:
    """Returns the video at its working size, from the cache when a current entry exists.

    Frames of a cached video are a memory-mapped ``uint8 RGB (T, H, W, 3)`` array. A cache
    folder that cannot be written is not an error: the video is decoded and used uncached,
    with a warning.

    Args:
        path: the video file.
        size: shorter side of the working size; None = native.
        cache_dir: the cache folder; None = ``default_cache_dir()``.

    Raises:
        VideoError: the video cannot be read (as ``read_video``).
    """
    path = Path(path)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        prefix, stem, key = _entry_stem(path, size)
    except OSError:
        return read_video(path, size)  # missing or unreadable: read_video says which
    cached = _load_entry(folder, stem, key, path)
    if cached is not None:
        return cached
    npy = folder / f"{stem}.npy"
    tmp = temp_path(npy)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with Decoder(path, size) as decoder, open(tmp, "wb") as f:
            shape = _decode_to_file(decoder, f)
            fps = decoder.finish()  # raises for no frames or a still image
        meta = {
            "key": key,
            "shape": list(shape),
            "fps": fps,
            "source_size": list(decoder.source_size),
        }
        try:
            changed = _entry_stem(path, size)[1] != stem
        except OSError:
            changed = True
        if changed:
            # It changed while being decoded: use these frames, but cache nothing (a map
            # outlives the unlinked file).
            frames = np.load(tmp, mmap_mode="c")
            tmp.unlink()
            return Video(path=path, frames=frames, fps=fps, source_size=decoder.source_size)
        # Frames first, sidecar last: the sidecar is what makes an entry count.
        os.replace(tmp, npy)
        # No fsync: an entry lost to a power cut is simply decoded again.
        sidecar = json.dumps(meta).encode()
        atomic_write_bytes(folder / f"{stem}.json", lambda f: f.write(sidecar), fsync=False)
        _remove_stale(folder, prefix, stem)
    except OSError as e:
        remove_temp(tmp)
        log.warning(
            "%s: could not write the decode cache in %s (%s); using it uncached",
            shown(path),
            shown(folder),
            e.strerror or e,
        )
        return read_video(path, size)
    except BaseException:
        remove_temp(tmp)
        raise
    return _load_entry(folder, stem, key, path) or read_video(path, size)


# While computing a video's flows, its frames' map is released every this many frames, so a long
# video is never resident as a whole.
RELEASE_EVERY = 64


def read_flows_cached(
    video: Video, size: int | None, cache_dir: str | Path | None = None
) -> np.ndarray:
    """Returns the base flows of a video, float32 (T, H, W, 2) (``vidpred.flow.video_flows``),
    memory-mapped from the cache when its frames' entry is current; computed into it
    otherwise, one frame at a time.

    The flows live in ``<entry>.flow.npy`` next to the frames' entry, so they go stale and are
    removed with it. Like the frames, a cache that cannot be written is not an error: the
    flows are then computed in memory.
    """
    from .flow import iter_video_flows, video_flows

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        stem = _entry_stem(Path(video.path), size)[1]
    except OSError:
        return video_flows(video.frames)
    file = folder / f"{stem}.flow.npy"
    expected = (*video.frames.shape[:3], 2)
    try:
        flows = map_npy(file, "r")
        if flows.shape == expected and flows.dtype == np.float32:
            return flows
        ignore_state(file, "not the flows of its video", "computing them again")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:  # NotRegularFile included
        ignore_state(file, getattr(e, "strerror", None) or str(e), "computing them again")
    if not (folder / f"{stem}.json").exists():  # only beside a current frames entry
        return video_flows(video.frames)

    def write_flows(f) -> None:
        f.write(npy_header(expected, np.dtype(np.float32).str))
        for t, flow in enumerate(iter_video_flows(video.frames)):
            f.write(np.ascontiguousarray(flow).data)
            if t % RELEASE_EVERY == RELEASE_EVERY - 1:
                release_pages(video.frames)
        release_pages(video.frames)

    try:  # no fsync: flows lost to a power cut are simply computed again
        atomic_write_bytes(file, write_flows, fsync=False)
        return map_npy(file, "r")
    except OSError as e:
        log.warning(
            "%s: could not cache its flows in %s (%s); computing them in memory",
            shown(video.path),
            shown(folder),
            e.strerror or e,
        )
        return video_flows(video.frames)


def _entry_files(folder: Path) -> list[Path]:
    """Returns the cache's own files in ``folder`` (entries and leftover temp files)."""
    if not folder.is_dir():
        return []
    files = []
    for f in folder.iterdir():
        name = f.name.lstrip(".")
        base = name.split(".")[0]
        parts = base.split("-")
        if len(parts) == 3 and len(parts[0]) == 16 and len(parts[2]) == 16 and f.is_file():
            if f.suffix in _SUFFIXES or name.endswith(".tmp"):
                files.append(f)
    return files


def cache_stats(cache_dir: str | Path | None = None) -> CacheStats:
    """Returns how many videos the cache holds and how many bytes they take."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    files = _entry_files(folder)
    entries = sum(1 for f in files if f.suffix == ".json" and not f.name.startswith("."))
    return CacheStats(folder, entries, sum(f.stat().st_size for f in files))


def clear_cache(cache_dir: str | Path | None = None) -> CacheStats:
    """Removes every cache entry in the folder; returns what was removed.

    Only files the cache wrote are removed; other files in the folder are left alone.
    """
    stats = cache_stats(cache_dir)
    for f in _entry_files(stats.folder):
        f.unlink(missing_ok=True)
    return stats
