"""Ray Train's per-worker entry point, kept light.

The driver pickles :func:`train_loop_per_worker` by reference and never imports the training loop
itself: torch's compiler stack and Lightning cost ~4 s to import on a 2-core machine, and only the
workers need them. In the worker, a train split that will be kept in memory starts being read on a
thread while those imports run: from the cache's files directly when every worker keeps the whole
split (``train.shard_train: hash``), else from the worker's Ray Data shard (a Ray Data execution,
~2-3 s to its first rows, which also slows the imports it overlaps).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

from graphium_ray.train.memory_budget import keeps_train_in_memory


def process_start_unix() -> float:
    """When this process started (its imports and Ray's set-up come after)."""
    import psutil

    return psutil.Process().create_time()


def whole_shard(shard):
    """The worker's whole train shard (a Ray Data iterator) as one Arrow table, one chunk per column."""
    from graphium_ray.data.reader import concat_contiguous

    return concat_contiguous(shard.iter_batches(batch_size=8192, batch_format="pyarrow"))


def in_background(read, *args) -> Future:
    """A future of ``read(*args)``, run on a daemon thread."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(read(*args))
        except BaseException as err:  # surfaced in the training loop, where the table is used
            future.set_exception(err)

    threading.Thread(target=run, name="train-shard-prefetch", daemon=True).start()
    return future


def read_kept_train_split(config: dict, in_memory_mb: float, shard_train: str, world: int) -> Future | None:
    """A future of the whole train split as one Arrow table, being read on a thread, when this
    worker keeps it in memory (``train.in_memory_mb``); None when it is read again every epoch.
    ``shard_train: hash``: from the cache's files; ``ray``: the worker's Ray Data shard."""
    import ray.train

    if not keeps_train_in_memory(config["train_bytes"], in_memory_mb, shard_train, world):
        return None
    if shard_train == "hash":
        from graphium_ray.data.reader import read_split_table

        return in_background(read_split_table, config["featurized_dir"], "train")
    return in_background(whole_shard, ray.train.get_dataset_shard("train"))


def train_loop_per_worker(config: dict) -> None:
    entered = time.time()
    import ray.train

    train = config["run"]["train"]
    prefetched = read_kept_train_split(config, train["in_memory_mb"], train["shard_train"],
                                       ray.train.get_context().get_world_size())  # fmt: skip
    from graphium_ray.train.loop import train_loop_per_worker as run

    run(config, entered, prefetched)
