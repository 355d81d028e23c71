"""Errors a user can cause. The CLI turns each into one line on stderr and a non-zero exit."""

import os
import shlex
from collections.abc import Callable

# Control characters that bash's $'...' quoting writes with a letter.
_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\E",
}


def _escaped(char: str) -> str:
    """Returns one unprintable character as $'...' escapes: a named escape, else its bytes
    (a byte that is not UTF-8 reaches Python as a surrogate, os.fsencode gives it back)."""
    return _NAMED_ESCAPES.get(char) or "".join(f"\\x{b:02x}" for b in os.fsencode(char))


def shown(path: str | bytes | os.PathLike) -> str:
    """Returns ``path`` as messages print it: verbatim when every character prints, else in
    bash's $'...' quoting, with control characters (a newline) and bytes that are not UTF-8
    escaped, so the message stays one line and the name can still be pasted into a shell."""
    text = os.fsdecode(path)
    if text.isprintable():
        return text
    quoted = (
        "\\" + char if char in "\\'" else char if char.isprintable() else _escaped(char)
        for char in text
    )
    return "$'" + "".join(quoted) + "'"


def one_line(message: str) -> str:
    """Returns ``message`` with every unprintable character escaped as in ``shown``: the last
    guard that keeps a message one line whatever path went into it unquoted."""
    if message.isprintable():
        return message
    return "".join(char if char.isprintable() else _escaped(char) for char in message)


class VidpredError(Exception):
    """Base class: something the user can fix (a path, an option, a file)."""


class SettingError(VidpredError, ValueError):
    """A setting out of range or at odds with another. The library's message names settings
    by their fields ("scale must be at least 1"); ``as_options`` names them by the command-line
    options that set them ("--scale must be at least 1").

    Args:
        message: writes the message, given a function that names a setting from its field:
            ``lambda name: f"{name('scale')} must be at least 1"``. (A function, not a
            template, so that a path in the message is never read as a placeholder.)
    """

    def __init__(self, message: Callable[[Callable[[str], str]], str]):
        self.message = message
        super().__init__(message(lambda field: field))

    def as_options(self) -> str:
        return self.message(lambda field: "--" + field.replace("_", "-"))

    def __reduce__(self):  # pickled (between processes) as the plain message
        return VidpredError, (str(self),)


class VideoError(VidpredError):
    """A video cannot be found, opened or decoded."""


class CheckpointError(VidpredError):
    """A weights file is missing, is not a vidpred checkpoint, or does not fit."""


class OutputError(VidpredError):
    """An output path cannot be written (exists without --force, missing folder, read-only)."""


class TrainingError(VidpredError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class TrainingInterrupted(VidpredError):
    """Training was stopped by SIGINT/SIGTERM after writing a resumable checkpoint."""

    def __init__(self, checkpoint, step: int):
        self.checkpoint = checkpoint
        self.step = step
        # Quoted so the command can be pasted as is, even with spaces in the path.
        super().__init__(
            f"interrupted at step {step}; checkpoint saved to {checkpoint}. "
            f"Continue with: vidpred train --resume {shlex.quote(str(checkpoint))}"
        )
