"""What the command prints on stderr and stdout: the console, result paths, progress, log lines."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from rich.console import Console

from ..errors import one_line, shown

# soft_wrap: never break paths across lines (users copy them).
stderr = Console(stderr=True, soft_wrap=True)


def stderr_progress(transient: bool = False, disable: bool = False):
    """Returns the command's progress display on stderr: a live bar on a terminal, plain
    lines every few seconds in a log (``vidpred.progress``)."""
    from ..progress import progress_display

    return progress_display(stderr, transient=transient, disable=disable)


def shell_word(path: Path) -> str:
    """Returns ``path`` as one word a shell reads back: quoted as needed, and a name that is
    not printable (bytes that are not UTF-8, a newline) in bash's $'...' form (``shown``)."""
    text = os.fsdecode(path)
    return shlex.quote(text) if text.isprintable() else shown(path)


def print_path(path: Path) -> None:
    """Prints a result path on stdout: on a terminal as messages show it (``shown``); to a pipe
    as the name's own bytes, which a script can use as is even when they are not UTF-8 (text
    output would fail on them, or change them)."""
    buffer = getattr(sys.stdout, "buffer", None)  # None for a text-only stream (StringIO)
    if sys.stdout.isatty() or buffer is None:
        print(shown(path) if sys.stdout.isatty() else path)
        return
    sys.stdout.flush()
    buffer.write(os.fsencode(path) + b"\n")
    sys.stdout.flush()


class LineHandler(logging.Handler):
    """Prints each log record as one unwrapped line on stderr, so a path in it copies whole
    (rich's log handler wraps long lines at the terminal width, mid-path)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = (
            f"vidpred: {record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        )
        # one_line: a control character in a path (a newline) must not split the line.
        text = one_line(prefix + self.format(record))
        stderr.print(text, markup=False, highlight=False, soft_wrap=True)
