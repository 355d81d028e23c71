"""Progress on stderr: rich's live bar on a terminal, plain lines in a log.

rich draws its bar only on a terminal; with stderr redirected (a job scheduler, ``nohup``,
``2> log``, a CI log) it draws nothing until the end, so a long render, evaluation or
training looked hung for minutes. ``LogProgress`` takes the bar's place there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Seconds between two progress lines in a log.
LOG_INTERVAL_S = 10.0


def progress_display(
    console: Console, *, transient: bool = False, disable: bool = False
) -> Progress | LogProgress:
    """Returns what shows a command's progress on ``console``: rich's bar on a terminal,
    else ``LogProgress``. Both are context managers with ``add_task`` and ``update``."""
    if console.is_terminal:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=transient,
            disable=disable,
        )
    return LogProgress(console, disable=disable)


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    info: str
    unit: str  # what ``completed`` counts ("frames"); "" when it is a fraction or a step
    started: float
    updated: float  # when ``completed`` last changed: the rate is over the work done


def _clock_text(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class LogProgress:
    """The part of ``rich.progress.Progress`` vidpred uses, for a stderr that is not a
    terminal: while it is entered, one plain line per task every ``interval`` seconds (from a
    background thread, so a slow step still gets its line), and one at the end unless the
    command failed. A line: what is done of the total, the rate, the time elapsed and the
    estimated time left, and the task's ``info``.

    ``clock`` is injectable for tests; ``disable`` (``-q``) prints nothing.
    """

    def __init__(
        self,
        console: Console,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        disable: bool = False,
    ):
        self.console = console
        self.interval = LOG_INTERVAL_S if interval is None else interval
        self.clock = clock
        self.disable = disable
        self._tasks: list[_Task] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        task = _Task(
            description,
            total,
            0.0,
            str(fields.get("info", "")),
            str(fields.get("unit", "")),
            self.clock(),
            self.clock(),
        )
        with self._lock:
            self._tasks.append(task)
            return len(self._tasks) - 1

    def update(
        self,
        task_id: int,
        *,
        completed: float | None = None,
        total: float | None = None,
        info: str | None = None,
        **_,
    ) -> None:
        with self._lock:
            task = self._tasks[task_id]
            if completed is not None and completed != task.completed:
                task.completed, task.updated = completed, self.clock()
            if total is not None:
                task.total = total
            if info is not None:
                task.info = info

    def line(self, task_id: int) -> str:
        """Returns the task's progress line as it stands now."""
        with self._lock:
            task = self._tasks[task_id]
            elapsed = self.clock() - task.started
            working = task.updated - task.started
            parts = []
            if task.total:
                done = min(task.completed / task.total, 1.0)
                if task.unit:
                    parts.append(f"{task.completed:g}/{task.total:g} {task.unit} ({done:.0%})")
                    if working > 0 and task.completed:
                        parts.append(f"{task.completed / working:.1f} {task.unit}/s")
                else:
                    parts.append(f"{done:.0%}")
            if task.info and not task.unit:
                parts.append(task.info)
            parts.append(f"{_clock_text(elapsed)} elapsed")
            if task.total and 0 < task.completed < task.total and working > 0:
                left = working * (task.total - task.completed) / task.completed
                parts.append(f"eta {_clock_text(left)}")
            return f"{task.description}: " + ", ".join(parts)

    def print_lines(self) -> None:
        """Prints every task's line."""
        for task_id in range(len(self._tasks)):
            self.console.print(self.line(task_id), markup=False, highlight=False)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.print_lines()

    def __enter__(self) -> LogProgress:
        if not self.disable:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if exc_type is None:
                self.print_lines()
