"""Readers over the featurized cache: one split, usable molecules only, as a streaming Ray Dataset
(:func:`read_split`) or read in the calling process, without a Ray Data execution: in the cache's
order (:func:`iter_split_tables`, :func:`read_split_table`: the rows :func:`read_split` streams, in
the same order) or as one epoch in a seeded random order (:func:`shuffled_split_tables`)."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from graphium_ray.data.resources import TASK_CPUS, cluster_cpus

DROP = ("sources", "skip_reason", "split", "shard")
READ_ROWS = 4096  # rows per record batch read from a featurized file


def keep_split(table: pa.Table, split: str, keep_key: bool) -> pa.Table:
    """Rows of ``split`` without a skip reason, minus bookkeeping columns, plus ``part``: a stable
    hash of the molecule key that deals evaluation rows to workers independently of row order."""
    mask = pc.and_(pc.equal(table.column("split"), split), pc.is_null(table.column("skip_reason")))
    table = table.filter(mask)
    parts = [zlib.crc32(k.encode()) for k in table.column("mol_key").to_pylist()]
    table = table.append_column("part", pa.array(parts, pa.int64()))
    drop = [c for c in (*DROP, *(() if keep_key else ("mol_key",))) if c in table.column_names]
    return table.drop_columns(drop)


def _read_files(batch: dict, columns: list[str] | None, rows_per_batch: int):
    for path in batch["path"]:
        for records in pq.ParquetFile(str(path)).iter_batches(batch_size=rows_per_batch, columns=columns):
            yield pa.Table.from_batches([records])


def readers(paths: list) -> int:
    """Concurrent reading tasks: one per cluster CPU, no more than there are files."""
    return max(1, min(cluster_cpus(), len(paths)))


def read_parquet_files(paths: list[str], columns: list[str] | None = None, rows_per_batch: int = READ_ROWS) -> ray.data.Dataset:
    """Stream Parquet files in record batches with one small task per file (``TASK_CPUS``).

    Unlike ``ray.data.read_parquet`` there is no file-listing task, which claims a whole CPU and
    can never be scheduled on a 1-CPU cluster while an actor pool of the same job holds part of it.
    At most one file is read per cluster CPU at a time: the small CPU share would otherwise let
    four readers per idle CPU start, each a worker process holding its own Arrow buffers
    (measured: 2.2 GB of reader processes while the 194k-molecule MOSES val split materialized).
    """
    ds = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=max(1, len(paths)))
    return ds.map_batches(_read_files, batch_size=1, batch_format="numpy", num_cpus=TASK_CPUS, compute=ray.data.TaskPoolStrategy(size=readers(paths)),
                          fn_kwargs={"columns": columns, "rows_per_batch": rows_per_batch})  # fmt: skip


class CacheFileError(OSError):
    """A featurized cache file that cannot be read (truncated, overwritten, deleted mid-run)."""


@contextlib.contextmanager
def _cache_file(path: str | Path) -> Iterator[None]:
    """Reading featurized cache file ``path``: an unreadable file is an error naming it and saying
    how to rebuild the cache."""
    try:
        yield
    except (pa.ArrowException, OSError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CacheFileError(f"{path}: unreadable featurized cache file ({detail}); rebuild the cache with "
                             "`graphium-ray prepare CONFIG --force`") from None  # fmt: skip


def _leaf_value_bytes(meta: pq.FileMetaData) -> dict[str, float]:
    """Top-level column → bytes per leaf value in Arrow (an int8 list is 1, though Parquet stores it
    as INT32); absent for variable-width leaves (strings)."""
    widths = {}
    for field in meta.schema.to_arrow_schema():
        leaf = field.type.value_type if pa.types.is_list(field.type) else field.type
        try:
            widths[field.name] = leaf.bit_width / 8
        except ValueError:  # not fixed-width
            pass
    return widths


def arrow_bytes(meta: pq.FileMetaData, skip: Sequence[str] = DROP) -> int:
    """Bytes a cache file's rows take in memory as Arrow arrays, from its Parquet footer alone.

    Parquet's own "uncompressed" sizes are after dictionary and run-length encoding, which shrink a
    block of one-hot atom features ~10x: a featurized file of 13,689 MOSES molecules says 14 MB
    and reads into 142 MB (float32 one-hots). Here every fixed-width column counts
    ``num_values × width`` of its Arrow type (list columns: their leaf values, plus 4 bytes of
    offsets per row); strings count their plain uncompressed size. Top-level columns in ``skip``
    (dropped on reading) are left out."""
    widths = _leaf_value_bytes(meta)
    total = 0.0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for c in range(group.num_columns):
            column = group.column(c)
            name = column.path_in_schema
            top = name.split(".")[0]
            if top in skip:
                continue
            width = widths.get(top)
            total += column.num_values * width if width else column.total_uncompressed_size
            total += 4 * group.num_rows if "." in name else 0
    return int(total)


def cache_file_metadata(path: str | Path) -> pq.FileMetaData:
    """A featurized cache file's Parquet footer; an unreadable file is an error naming it."""
    with _cache_file(path):
        return pq.read_metadata(path)


def featurized_files(featurized_dir: str | Path) -> list[str]:
    """The cache's featurized Parquet files (``shard=*/``), in a fixed order."""
    return sorted(str(f) for f in Path(featurized_dir).glob("shard=*/*.parquet"))


def read_split(featurized_dir: str | Path, split: str, keep_key: bool = False) -> ray.data.Dataset:
    """The featurized rows of ``split`` that were not skipped, as a (lazy, streaming) Ray Dataset.

    Files are listed here, once, in a fixed order. Not ``ray.data.read_parquet``: Ray 2.60's Parquet
    datasource starts a pool of footer-reading actors (a new worker process each) at every
    execution, i.e. at every epoch of a streamed train split: measured 8-25 s per epoch instead of
    0.4 s on a 2-CPU cluster once a restarted worker group streamed the split again."""
    files = featurized_files(featurized_dir)
    ds = read_parquet_files(files, rows_per_batch=1024)
    return ds.map_batches(keep_split, fn_kwargs={"split": split, "keep_key": keep_key}, batch_format="pyarrow",
                          num_cpus=TASK_CPUS, compute=ray.data.TaskPoolStrategy(size=readers(files)))  # fused with the reader


def iter_split_tables(featurized_dir: str | Path, split: str, keep_key: bool = False,
                      batch_rows: int | None = None) -> Iterator[pa.Table]:  # fmt: skip
    """The rows :func:`read_split` streams, in the same order, read in this process one cache file at
    a time; with ``batch_rows``, cut into tables of exactly that many rows (the last one shorter),
    the batches Ray Data's ``iter_batches(batch_size=batch_rows)`` gives. Memory: one file.

    For splits a training worker reads whole (``train.in_memory_mb``): a Ray Data execution costs
    ~2 s before its first rows on a 2-core machine and competes with the worker's imports; reading
    the cache's Parquet files directly costs milliseconds for the small datasets most users train
    on. The files must be readable from the worker, as they already are for Ray Data's readers."""
    files = featurized_files(featurized_dir)
    if not files:
        raise FileNotFoundError(f"no featurized Parquet files under {featurized_dir}")
    held: list[pa.Table] = []
    for path in files:
        with _cache_file(path):
            table = keep_split(pq.read_table(path), split, keep_key)
        if batch_rows is None:
            yield table
            continue
        held.append(table)
        whole = pa.concat_tables(held, promote_options="default")
        full = whole.num_rows - whole.num_rows % batch_rows
        for start in range(0, full, batch_rows):
            yield whole.slice(start, batch_rows)
        held = [whole.slice(full)]
    if batch_rows is not None and held[0].num_rows:
        yield held[0]


def read_split_table(featurized_dir: str | Path, split: str, keep_key: bool = False) -> pa.Table:
    """The rows :func:`read_split` streams, in the same order, as one Arrow table read here, one
    chunk per column (:func:`concat_contiguous`)."""
    return concat_contiguous(iter_split_tables(featurized_dir, split, keep_key))


def concat_contiguous(tables: Iterable[pa.Table]) -> pa.Table:
    """``tables`` as one table with one chunk per column: ``take`` of random rows from list columns
    is ~14x faster than over many chunks (18k QM9 rows in 128-row batches: 1.15 s -> 0.08 s an
    epoch). A column whose values overflow one chunk's 32-bit offsets stays chunked. Columns are
    copied one at a time, each input chunk freed as soon as its column is copied (when the caller
    holds no other reference to ``tables``): the peak is the rows plus their largest column, not
    twice the rows (``Table.combine_chunks`` holds the chunked and the combined table at once)."""
    table = pa.concat_tables(tables, promote_options="default")
    schema, columns = table.schema, dict(zip(table.column_names, table.columns, strict=True))
    del table  # the chunks now live only in ``columns``, replaced below column by column
    for name, column in columns.items():
        if column.num_chunks > 1:
            try:
                columns[name] = pa.chunked_array([column.combine_chunks()], column.type)
            except pa.ArrowInvalid:  # values overflow one chunk's 32-bit offsets: stays chunked
                pass
        del column
    return pa.Table.from_arrays(list(columns.values()), schema=schema)


def shuffled_split_tables(featurized_dir: str | Path, split: str, batch_rows: int, seed: Sequence[int],
                          buffer_rows: int) -> Iterator[pa.Table]:  # fmt: skip
    """One epoch over ``split``'s usable rows in a random order fixed by ``seed``, read in this
    process: tables of ``batch_rows`` rows (the last one shorter), every row exactly once.

    The cache's files are visited in a permuted order, each read ``READ_ROWS`` rows at a time into a
    shuffle buffer; whenever it holds ``buffer_rows`` rows it is permuted and cut into batches, and the
    rows short of a whole batch stay for the next fill. Rows within a cache file are in hash order of
    their molecule key, unrelated to the source's order. Memory: the buffer plus one record batch,
    whatever the size of the split. The same ``seed`` gives the same batches in any process (the
    workers of a ``shard_train: hash`` run each read the whole split and keep their own rows)."""
    rng = np.random.default_rng(list(seed))
    files = featurized_files(featurized_dir)
    if not files:
        raise FileNotFoundError(f"no featurized Parquet files under {featurized_dir}")
    buffer: list[pa.Table] = []
    held = 0

    def cut(final: bool) -> Iterator[pa.Table]:
        whole = concat_contiguous(buffer)
        order = rng.permutation(whole.num_rows)
        full = whole.num_rows if final else whole.num_rows - whole.num_rows % batch_rows
        for start in range(0, full, batch_rows):
            yield whole.take(pa.array(order[start:start + batch_rows]))
        buffer[:] = [whole.take(pa.array(order[full:]))] if full < whole.num_rows else []

    def rows(path: str) -> Iterator[pa.Table]:
        with _cache_file(path):
            for records in pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS):
                yield keep_split(pa.Table.from_batches([records]), split, keep_key=False)

    for index in rng.permutation(len(files)):
        for table in rows(files[index]):
            if not table.num_rows:
                continue
            buffer.append(table)
            held += table.num_rows
            if held >= buffer_rows:
                yield from cut(final=False)
                held = sum(t.num_rows for t in buffer)
    if held:
        yield from cut(final=True)
