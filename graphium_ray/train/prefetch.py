"""Run an iterator ahead of its consumer on a thread, a bounded number of items ahead.

For a training worker that reads its own batches (Parquet decoding releases the GIL, so reading
the next rows overlaps the model's step, as Ray Data's prefetch threads do)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterable[T], depth: int = 4, name: str = "prefetch") -> Iterator[T]:
    """The items of ``items`` in order, produced on a daemon thread at most ``depth`` ahead.

    An exception in the producer is raised here, at the item where it happened. Closing the
    returned generator early (a stopped epoch) stops the producer at its next item; nothing is
    left running."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            offer((_DONE, err))
            return
        offer((_DONE, None))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, err = ready.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
