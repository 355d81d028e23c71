"""Computing the next item of a pipeline while the current one is used.

A render alternates two kinds of work: a batch of predictions (the model, DIS flows and
warps, in torch and OpenCV, which release the GIL and use every core) and the drawing,
scoring and encoding of that batch (mostly one thread of NumPy and OpenCV, and the
encoder's pipe). Done in turn, a core idles through the single-threaded part, and on a GPU
the device idles while the CPU draws. ``ahead`` computes the next batch on a background
thread meanwhile, where that pays (``overlaps``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")
_END = object()


def ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yields ``items`` in their order, computing up to ``depth`` of them ahead of the
    consumer on a background thread (so up to ``depth`` + 2 are alive at once: one queued
    per depth, one being computed, one being used).

    An exception raised by ``items`` is raised here, where its item would have come.
    Stopping early (the consumer breaks, fails or is interrupted) stops the producer after
    the item it is computing and closes ``items``, so its cleanup runs.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as e:  # handed to the consumer, raised there
            put((_END, e))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="vidpred-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def overlaps(device: torch.device) -> bool:
    """Whether renders on ``device`` compute ahead: on CUDA, where the GPU computes while the
    CPU draws. Not on a CPU, where the model already keeps every core busy: on the 2-core
    Xeon without AMX a native render ran at 3.92 frames/s with it against 3.97 without, a
    working-size one within noise, and each batch held ahead costs memory (about 150 MB
    for 8 frames of 640x480)."""
    return device.type == "cuda"
