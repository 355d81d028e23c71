"""vidpred.overlap.ahead: the next item is computed while the current one is used, and the
order, errors and early stops behave as a plain loop's would."""

import threading
import time

import pytest

from vidpred.overlap import ahead


def test_items_come_in_order_and_the_next_is_computed_meanwhile():
    made = []

    def produce():
        for i in range(5):
            made.append(i)
            yield i

    seen = []
    for item in ahead(produce()):
        time.sleep(0.05)  # the consumer's work: the producer runs on during it
        seen.append((item, len(made)))
    assert [item for item, _ in seen] == [0, 1, 2, 3, 4]
    # While item 0 was used, item 1 (and one more queued) had already been made.
    assert seen[0][1] >= 2


def test_an_error_in_the_producer_is_raised_where_its_item_would_come():
    def produce():
        yield 1
        raise ValueError("bad frame 2")

    got = []
    with pytest.raises(ValueError, match="bad frame 2"):
        for item in ahead(produce()):
            got.append(item)
    assert got == [1]


def test_stopping_early_stops_the_producer_and_runs_its_cleanup():
    closed = threading.Event()
    made = []

    def produce():
        try:
            for i in range(1000):
                made.append(i)
                yield i
        finally:
            closed.set()

    for item in ahead(produce()):
        if item == 2:
            break
    assert closed.is_set()  # the generator was closed: a decoder it held is released
    assert len(made) <= 2 + 3  # at most depth + 2 beyond the last item used
    assert not any(t.name == "vidpred-ahead" for t in threading.enumerate())


def test_an_error_in_the_consumer_stops_the_producer():
    closed = threading.Event()

    def produce():
        try:
            while True:
                yield 0
        finally:
            closed.set()

    with pytest.raises(KeyError):
        for _ in ahead(produce()):
            raise KeyError("consumer failed")
    assert closed.is_set()
