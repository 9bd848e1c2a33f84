"""One writer per cache entry: an exclusive lock held while ``prepare`` builds it.

Two ``prepare`` runs of the same data (two commands started together, two users sharing a cache
directory) would otherwise write the same files at once, and one of them reads the other's
half-written Parquet ("magic bytes not found in footer"). With the lock, the second waits, then
finds the finished manifest and reuses the cache. The lock is ``fcntl.flock`` on
``<cache_dir>/<key>.lock``: the kernel releases it when its holder exits or is killed, so a crashed
``prepare`` never blocks the next one (which then rebuilds the entry, as without a lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def lock_path(root: Path) -> Path:
    """The lock file of the cache entry ``root`` (beside it, so deleting the entry keeps its lock)."""
    return root.with_name(root.name + ".lock")


@contextlib.contextmanager
def cache_entry_lock(root: Path) -> Iterator[None]:
    """Hold the exclusive lock of cache entry ``root``; wait (and say who holds it) when taken."""
    with open(lock_path(root), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            log.warning("another prepare (%s) is writing %s: waiting for it to finish", holder, root)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
