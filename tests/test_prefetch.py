"""The prefetch thread a training worker reads its own batches on (``train/prefetch.py``)."""

from __future__ import annotations

import threading
import time

import pytest

from graphium_ray.train.prefetch import prefetched


def test_items_come_in_order_and_at_most_depth_ahead():
    produced: list[int] = []

    def numbers():
        for i in range(50):
            produced.append(i)
            yield i

    got = []
    for item in prefetched(numbers(), depth=3):
        time.sleep(0.002)
        assert len(produced) <= item + 1 + 3 + 1  # the queue's 3, plus one waiting to be put
        got.append(item)
    assert got == list(range(50))


def test_an_error_in_the_producer_is_raised_at_its_item():
    def failing():
        yield 1
        yield 2
        raise ValueError("row 3 of part-00001.parquet: bad")

    got = []
    with pytest.raises(ValueError, match="row 3"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1, 2]


def test_closing_early_stops_the_producer():
    def endless():
        while True:
            yield 0

    before = {t.name for t in threading.enumerate()}
    stream = prefetched(endless(), depth=2, name="test-prefetch")
    assert next(stream) == 0
    assert "test-prefetch" in {t.name for t in threading.enumerate()}
    stream.close()  # a stopped epoch
    assert "test-prefetch" not in {t.name for t in threading.enumerate()} - before
