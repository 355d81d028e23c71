"""Output paths: checked before any work, and claimed so that two runs never write one file.

Every command that writes a named file (a checkpoint, a render, generated clips) first checks
the path (``check_output_path``) and then claims it for the rest of the run
(``claim_output``): a second vidpred that names the same output is refused at its start
instead of both running to the end and one silently replacing the other's result.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError
from .weights import DEFAULT_WEIGHTS

# The files vidpred ships in its own weights/ folder. No command ever writes them: they are
# what every user without a trained model renders with. (Other files in that folder are the
# user's: `vidpred train` run from the repo root writes weights/<folder>.pt there.)
SHIPPED_FOLDER = DEFAULT_WEIGHTS.parent
SHIPPED_FILES = (DEFAULT_WEIGHTS.name, DEFAULT_WEIGHTS.with_suffix(".jsonl").name, "README.md")


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
