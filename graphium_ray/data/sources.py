"""Source files: resolve paths/globs/URLs, fingerprint content, stream record batches with row numbers.

Everything here streams: a CSV or Parquet file is read in record batches of bounded size, never
as one table. Remote URLs (``s3://``, ``gs://``, ``https://``) go through fsspec; HTTP sources are
first copied into a local download cache so every later read is a local read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graphium_ray.config import ConfigError

_GLOB_CHARS = set("*?[")


def file_format(path: str, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv")):
        return "csv"
    raise ConfigError(f"cannot tell the format of '{path}': set format: csv or parquet")


def resolve_paths(paths: list[str], where: str) -> list[str]:
    """Expand globs; every path must exist. Returns URLs/paths in sorted order per pattern."""
    out: list[str] = []
    for p in paths:
        fs, _, _ = fsspec.get_fs_token_paths(p)
        if any(c in p for c in _GLOB_CHARS):
            protocol = p.split("://")[0] + "://" if "://" in p else ""
            hits = sorted(protocol + h if protocol and not h.startswith(protocol) else h for h in fs.glob(p))
            if not hits:
                raise ConfigError(f"{where}: no file matches '{p}'")
            out.extend(hits)
        elif not fs.exists(p):
            raise ConfigError(f"{where}: file not found: '{p}'")
        else:
            out.append(p)
    return out


def localize(path: str, download_dir: str | Path) -> str:
    """Return a local path for ``path``, downloading remote files once into ``download_dir``."""
    if "://" not in path or path.startswith("file://"):
        return path.removeprefix("file://")
    fp = remote_fingerprint(path)
    target = Path(download_dir) / fp[:16] / Path(path.split("?")[0]).name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        with fsspec.open(path, "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.replace(tmp, target)
    return str(target)


def remote_fingerprint(path: str) -> str:
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    info = fs.info(p)
    parts = [path] + [str(info.get(k)) for k in ("size", "ETag", "etag", "md5Hash", "mtime", "LastModified")]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


def local_fingerprint(path: str) -> str:
    """Hash of size, mtime and the full content: any change to the file changes it."""
    st = os.stat(path)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(path: str) -> str:
    if "://" in path and not path.startswith("file://"):
        return remote_fingerprint(path)
    return local_fingerprint(path.removeprefix("file://"))


def _csv_reader(path: str, block_size: int, columns: list[str] | None = None) -> pacsv.CSVStreamingReader:
    # every selected column is read as bytes: labels are parsed by us, so a bad value names its row,
    # and a cell that is not UTF-8 is one reported row (data/cells.py), not a failed file
    convert = pacsv.ConvertOptions(
        column_types={c: pa.binary() for c in columns or []},
        include_columns=columns,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),  # parse errors then name the row
        parse_options=pacsv.ParseOptions(delimiter="\t" if path.lower().endswith(".tsv") else ","),
        convert_options=convert,
    )


def read_header(path: str, fmt: str, where: str | None = None) -> list[str]:
    """Column names of a data file; a file that is not readable as ``fmt`` is a one-line ConfigError."""
    where = where or path
    if os.path.isdir(path):
        raise ConfigError(f"{where}: is a directory, not a {fmt} file (use a glob such as '{path}/*.{fmt}')")
    try:
        if fmt == "parquet":
            return list(pq.read_schema(path).names)
        return list(_csv_reader(path, 1 << 16).schema.names)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, OSError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{where}: not a readable {fmt} file ({detail})") from None


def iter_batches(
    path: str, fmt: str, columns: list[str], rows_per_batch: int, rows: range | None = None
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield ``(first_row_index, batch)`` over ``columns``; row indices are 0-based data rows.

    ``rows`` (a range of data rows): only those rows, so that several readers can share one file.
    A Parquet reader skips the row groups before it; a CSV file has no index, so the rows before
    it are parsed and dropped (~0.1 µs a row, against ~250 µs of actor time to read, key and write it). A file
    that turns out unreadable part-way (a malformed CSV row, a damaged Parquet page) is a one-line
    ``ConfigError`` naming it."""
    want = rows if rows is not None else range(0, 1 << 62)
    try:
        for first, batch in _batches_from(path, fmt, columns, rows_per_batch, want.start):
            lo, hi = max(first, want.start), min(first + batch.num_rows, want.stop)
            if hi > lo:
                yield lo, batch.slice(lo - first, hi - lo)
            if first + batch.num_rows >= want.stop:
                return
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{path}: not a readable {fmt} file ({detail})") from None


def _batches_from(path: str, fmt: str, columns: list[str], rows_per_batch: int, start: int):
    """``(first_row, batch)`` from the batch holding data row ``start`` (Parquet: its row group) on."""
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        row, groups = 0, []
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if groups or row + n > start:
                groups.append(g)
            else:
                row += n
        if not groups:
            return
        for batch in pf.iter_batches(batch_size=rows_per_batch, row_groups=groups, columns=columns):
            yield row, batch
            row += batch.num_rows
        return
    row = 0
    for batch in _csv_reader(path, 1 << 20, columns):
        if row + batch.num_rows <= start:  # a block wholly before the rows wanted
            row += batch.num_rows
            continue
        for offset in range(0, batch.num_rows, rows_per_batch):
            part = batch.slice(offset, rows_per_batch)
            yield row, part
            row += part.num_rows


def open_sources(paths: list[str], where: str, download_dir: str | Path, declared_fmt: str = "auto"):
    """The one resolver of input files (``prepare``'s datasets and ``predict``'s inputs): every
    path, glob or URL in ``paths`` → ``(display, local path, format, header)``, remote files
    downloaded once into ``download_dir``; an unreadable file is a one-line error naming it."""
    for display in resolve_paths(paths, where):
        local = localize(display, download_dir)
        fmt = file_format(local, declared_fmt)
        yield display, local, fmt, read_header(local, fmt, f"{display} ({where})")
