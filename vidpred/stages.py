"""Where a render's time goes: named stages timed while ``recording`` is on.

Off (the default) a stage costs one ``None`` check. ``vidpred bench`` turns it on for one
native render and reports milliseconds per frame of each stage. Stages may run on two
threads at once (the render reads ahead on a second thread), so their sum can exceed the
wall time: it is the work done, not the time waited.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

_totals: defaultdict[str, float] | None = None
_lock = threading.Lock()
_open = threading.local()  # per thread: the time spent in stages inside the open one


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Adds the wall time of the block to stage ``name`` while recording, less the time of
    the stages inside it (each moment counts once, in the innermost stage)."""
    if _totals is None:
        yield
        return
    inner = getattr(_open, "inner", None)
    _open.inner = [0.0]
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        own = elapsed - _open.inner[0]
        _open.inner = inner
        if inner is not None:
            inner[0] += elapsed
        with _lock:
            if _totals is not None:
                _totals[name] += own


@contextlib.contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Records every stage inside the block; the dict it yields holds seconds per stage
    once the block ends."""
    global _totals
    result: dict[str, float] = {}
    with _lock:
        _totals = defaultdict(float)
    try:
        yield result
    finally:
        with _lock:
            result.update(_totals)
            _totals = None
