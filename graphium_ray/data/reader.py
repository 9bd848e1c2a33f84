"""Ray Data readers over the featurized cache: one split, usable molecules only."""

from __future__ import annotations

import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import ray

DROP = ("sources", "skip_reason", "split", "shard")
DATA_TASK_CPUS = 0.25  # Ray Data tasks stay small so train workers can hold most CPUs


def keep_split(table: pa.Table, split: str, keep_key: bool) -> pa.Table:
    """Rows of ``split`` without a skip reason, minus bookkeeping columns, plus ``part``: a stable
    hash of the molecule key that deals evaluation rows to workers independently of row order."""
    mask = pc.and_(pc.equal(table.column("split"), split), pc.is_null(table.column("skip_reason")))
    table = table.filter(mask)
    parts = [zlib.crc32(k.encode()) for k in table.column("mol_key").to_pylist()]
    table = table.append_column("part", pa.array(parts, pa.int64()))
    drop = [c for c in (*DROP, *(() if keep_key else ("mol_key",))) if c in table.column_names]
    return table.drop_columns(drop)


def read_split(featurized_dir: str | Path, split: str, shuffle_files: bool = False, keep_key: bool = False):
    """The featurized rows of ``split`` that were not skipped, as a (lazy, streaming) Ray Dataset."""
    ds = ray.data.read_parquet(str(featurized_dir), num_cpus=DATA_TASK_CPUS, shuffle="files" if shuffle_files else None)
    return ds.map_batches(
        keep_split, fn_kwargs={"split": split, "keep_key": keep_key}, batch_format="pyarrow", num_cpus=DATA_TASK_CPUS
    )
