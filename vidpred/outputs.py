"""Files: outputs checked and claimed before any work, written atomically, read safely, hashed.

Every command that writes a named file (a checkpoint, a render, generated clips) first checks
the path (``check_output_path``) and then claims it for the rest of the run
(``claim_output``): a second vidpred that names the same output is refused at its start
instead of both running to the end and one silently replacing the other's result.

Files are written to a hidden temp file beside their target and renamed over it
(``atomic_write_bytes``, ``write_temp``), so a crash or a full disk leaves the previous file
or none, never a partial one. Files vidpred did not write (sidecars, weights, a page in the
way) are read only if they are regular files (``open_regular``): a FIFO would block a read
forever and ``/dev/zero`` never ends. vidpred's own state and cache files are read the same
way (``read_state``): one that is not a regular file, too large or unreadable counts as absent,
with one warning line naming it, so that it is measured, decoded or written again instead of
hanging or crashing every command until the user finds and deletes it.

JSON that vidpred prints or writes is strict (``strict_json``): Python's ``json`` writes NaN and
infinities as bare ``NaN`` and ``Infinity``, which RFC 8259 parsers refuse.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from .errors import OutputError, shown
from .paths import SHIPPED_FILES, SHIPPED_FOLDER

log = logging.getLogger(__name__)


def is_shipped(path: str | Path) -> bool:
    """Returns whether ``path`` (after following links) is one of vidpred's shipped files."""
    resolved = Path(path).resolve()
    return resolved.parent == SHIPPED_FOLDER.resolve() and resolved.name in SHIPPED_FILES


# What vidpred's temp and lock files add to an output's name: ".", ".<pid>" (at most 7
# digits on Linux) and ".tmp" (renders: ".tmp.mp4" in place of ".mp4"; locks: ".lock").
TEMP_NAME_EXTRA = 1 + 8 + 4


def check_output_path(path: str | Path, *, force: bool, inputs: tuple[Path, ...] = ()) -> Path:
    """Returns ``path`` once it is safe to write there; call before doing any work.

    Raises:
        OutputError: it would overwrite an input or a shipped file, exists without ``force``,
            or its folder is missing or not writable.
    """
    path = Path(path)
    try:
        return _check_output_path(path, force=force, inputs=inputs)
    except OSError as e:  # e.g. a name longer than the file system allows
        raise OutputError(f"{path}: {e.strerror or e}") from e


def _check_output_path(path: Path, *, force: bool, inputs: tuple[Path, ...]) -> Path:
    resolved = path.resolve()
    if any(resolved == Path(p).resolve() for p in inputs):
        raise OutputError(f"{path}: refusing to overwrite an input file")
    if is_shipped(path):
        raise OutputError(
            f"{path}: refusing to overwrite vidpred's shipped weights; name another output (--out)"
        )
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; name a file")
    if path.exists() and not path.is_file():
        # e.g. --out /dev/null --force: the rename would replace the device itself.
        raise OutputError(f"{path}: is not a regular file (a device, FIFO or socket); name a file")
    if path.exists() and not force:
        raise OutputError(f"{path}: already exists (use --force to overwrite)")
    folder = resolved.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")
    # Found now, not when the first checkpoint is saved after an hour of training.
    longest = os.pathconf(folder, "PC_NAME_MAX") - TEMP_NAME_EXTRA
    if len(os.fsencode(path.name)) > longest:
        raise OutputError(
            f"{path}: the file name is too long for its temp and lock files beside it "
            f"(at most {longest} bytes here)"
        )
    return path


def lock_path(path: str | Path) -> Path:
    """Returns the hidden lock file that claims ``path``: ``.<name>.lock`` beside it."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextmanager
def claim_output(
    path: str | Path, *, check: Callable[[], None] | None = None, lock: Path | None = None
) -> Iterator[Path]:
    """Holds an exclusive claim on ``path`` while the block runs; yields the path.

    The claim is an ``flock`` on a lock file beside the output (``lock_path``; ``lock``
    overrides it) that holds the claimer's PID. The kernel drops the lock when its process
    ends in any way, so a run killed with ``kill -9`` leaves at most a stale lock file, which
    the next claim simply takes over. The file is removed when the block ends (errors and
    Ctrl-C included).

    Args:
        path: the output to claim.
        check: called once the claim is held, to repeat the caller's output checks: another
            run may have finished writing ``path`` between those checks and this claim.
        lock: the lock file to use instead of ``lock_path(path)`` (e.g. inside a folder
            that is the output).

    Raises:
        OutputError: another process holds the claim, or the lock file cannot be created.
    """
    path = Path(path)
    lock = lock or lock_path(path)
    fd = _acquire(lock, path)
    try:
        if check is not None:
            check()
        yield path
    finally:
        # Unlinked while still locked: a process that opened the file meanwhile finds it gone
        # after its own flock (see _acquire) and starts over on a fresh file.
        try:
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _acquire(lock: Path, path: Path) -> int:
    """Returns an open, flock-ed descriptor of ``lock`` holding this process's PID."""
    while True:
        try:
            # O_NOFOLLOW: a link planted under the lock file's name must not make vidpred
            # truncate whatever it points to.
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the lock file {lock} ({e.strerror})") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"another vidpred (PID {holder})" if holder else "another vidpred"
            raise OutputError(
                f"{path}: {who} is writing it; wait for it to finish or choose another output"
            ) from None
        except OSError as e:  # a file system without locks
            os.close(fd)
            raise OutputError(f"{path}: cannot lock {lock} ({e.strerror})") from e
        # The previous holder may have removed the file between our open and our flock: we
        # would then hold a lock on a file no one else sees. Start over on the current one.
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is None or (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
            os.close(fd)
            continue
        if not stat.S_ISREG(mine.st_mode) or mine.st_nlink != 1:  # a FIFO, a hard link, ...
            os.close(fd)
            raise OutputError(f"{path}: {lock} is not a lock file vidpred made; remove it")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as e:  # a full disk
            lock.unlink(missing_ok=True)
            os.close(fd)
            raise OutputError(f"{path}: cannot write the lock file {lock} ({e.strerror})") from e
        return fd


def _read_pid(fd: int) -> int | None:
    """Returns the PID written in a lock file, if it holds one."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def temp_path(path: str | Path, *, keep_suffix: bool = False) -> Path:
    """Returns the hidden temp file that is written before it is renamed over ``path``:
    ``.<name>.<pid>.tmp``, or with ``keep_suffix`` ``.<stem>.<pid>.tmp<suffix>`` (a render's
    temp file is still an .mp4 by its name).

    Beside the target, so that the rename stays on one file system and is atomic; with the
    PID, so that two processes (torchrun ranks) never write the same temp file.
    """
    path = Path(path)
    if keep_suffix:
        return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_temp(tmp: str | Path) -> None:
    """Removes a temp file if there is one. Never raises (its folder may be gone): it runs
    while another error is on its way up, which must be the one the user sees."""
    with suppress(OSError):
        Path(tmp).unlink()


def write_temp(
    path: str | Path, write: Callable[[BinaryIO], object], *, fsync: bool = True
) -> Path:
    """Calls ``write(file)`` on the temp file beside ``path`` (``temp_path``), fsyncs it
    unless ``fsync`` is False, and returns it, for the caller to rename over ``path``. On any
    failure the temp file is removed.

    Raises:
        OSError: the write failed; its ``filename`` is ``path``, so the message names the file.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
    except BaseException as e:
        remove_temp(tmp)
        if isinstance(e, OSError) and e.errno is not None and not e.filename:
            # f.write's own errors (a full disk) name no file; the user needs to know which.
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    return tmp


def atomic_write_bytes(
    path: str | Path, write: Callable[[BinaryIO], object], *, fsync: bool = True
) -> None:
    """Calls ``write(file)`` on a temp file beside ``path``, fsyncs it, then renames it over
    ``path`` and fsyncs the folder, so that the rename itself is durable.

    A crash at any point leaves the previous file intact (or no file), never a partial one.
    ``fsync=False`` skips both fsyncs, for files that are cheap to make again (the decode
    cache): the rename is still atomic, but a power cut may lose the new file.
    """
    path = Path(path)
    tmp = write_temp(path, write, fsync=fsync)
    try:
        os.replace(tmp, path)
    except BaseException:
        remove_temp(tmp)
        raise
    if fsync:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Flushes a folder's entries to disk (a rename into it); best effort."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


class NotRegularFile(OSError):
    """A path names a FIFO, a device, a folder or a socket, or is over a size cap."""


def open_regular(path: str | Path, limit: int | None = None, *, follow: bool = True) -> BinaryIO:
    """Returns ``path`` opened for reading in binary, if it is a regular file (of at most
    ``limit`` bytes).

    A FIFO would block a read forever and ``/dev/zero`` never ends, so only regular files are
    opened: checked before opening (opening some devices has effects), and again on the open
    descriptor in case the path was swapped in between (O_NONBLOCK: a FIFO put there does not
    block the open). With ``follow=False`` a symbolic link as the last component is refused.

    Raises:
        NotRegularFile: not a regular file, or larger than ``limit``.
        OSError: it cannot be opened (missing, permissions, a link with ``follow=False``).
    """
    _check_regular(os.stat(path), limit)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    f = os.fdopen(os.open(path, flags), "rb")
    try:
        _check_regular(os.fstat(f.fileno()), limit)
    except BaseException:
        f.close()
        raise
    return f


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"


def _check_regular(st: os.stat_result, limit: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile("not a regular file")
    if limit is not None and st.st_size > limit:
        raise NotRegularFile(f"larger than {_size(limit)}")


def read_regular(path: str | Path, limit: int) -> bytes:
    """Returns the bytes of a regular file of at most ``limit`` bytes (see ``open_regular``).

    Raises:
        NotRegularFile: not a regular file, or larger than ``limit``.
        OSError: it cannot be read (missing, permissions).
    """
    with open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew after the check
        raise NotRegularFile(f"larger than {_size(limit)}")
    return data


def file_sha256(path: str | Path, limit: int | None = None) -> str:
    """Returns the hex sha256 of a regular file (of at most ``limit`` bytes, if given).

    Raises:
        NotRegularFile: not a regular file (``/dev/zero`` would hash forever), or too large.
        OSError: it cannot be read.
    """
    digest, total = hashlib.sha256(), 0
    with open_regular(path, limit) as f:
        while block := f.read(1 << 20):
            total += len(block)
            if limit is not None and total > limit:  # it grew after the check
                raise NotRegularFile(f"larger than {_size(limit)}")
            digest.update(block)
    return digest.hexdigest()


def read_state(path: str | Path, limit: int, *, instead: str) -> bytes | None:
    """Returns the bytes of one of vidpred's state or cache files, or None where there is no
    usable one: missing (quietly), or not a regular file (a FIFO would block forever and a link
    to ``/dev/zero`` never ends), larger than ``limit`` bytes or unreadable, which is logged as
    one warning line (``ignore_state``) ending in ``instead``, what vidpred does without it.
    """
    try:
        return read_regular(path, limit)
    except FileNotFoundError:
        return None
    except OSError as e:  # NotRegularFile included
        ignore_state(path, e.strerror or str(e), instead)
        return None


def ignore_state(path: str | Path, why: str, instead: str) -> None:
    """Logs one warning line saying that the state or cache file ``path`` is ignored, why, and
    what vidpred does ``instead`` (e.g. "measuring again")."""
    log.warning("ignoring %s (%s); %s", shown(path), why, instead)


def finite_or_null(value: Any) -> Any:
    """Returns ``value`` (nested dicts, lists and tuples of JSON values) with every float that is
    NaN or infinite replaced by None, which JSON writes as ``null``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def strict_json(value: Any, **options: Any) -> str:
    """Returns ``value`` as strict JSON text (RFC 8259): non-finite numbers become ``null``.
    ``options`` go to ``json.dumps`` (``indent``, ``sort_keys``)."""
    return json.dumps(finite_or_null(value), allow_nan=False, **options)
