"""Row-level faults in raw cells, found before any parsing: bytes that are not UTF-8 and nested
values (lists, structs, maps) where one value belongs.

CSV columns are read as bytes (:mod:`graphium_ray.data.sources`), so one bad byte sequence in one
cell cannot abort a whole file: that cell becomes missing and its row is reported with the field
and the offending bytes. A Parquet column typed as a list where a scalar is expected (a SMILES or a
graph-level label) makes every non-empty cell of it a reported row.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from graphium_ray.data.sources import iter_batches

# the column that carries these faults of an input row through the inference pipeline
INPUT_ERROR = "_input_error"


def _is_bytes(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def decode_text(col: pa.Array, name: str, errors: dict[int, str]) -> pa.Array:
    """Bytes → UTF-8 strings; a cell that is not valid UTF-8 becomes null and ``errors[row]`` says why."""
    try:
        return pc.cast(col, pa.string())  # validates UTF-8: the common case, vectorized
    except pa.ArrowInvalid:
        pass
    out: list[str | None] = []
    for i, cell in enumerate(col.to_pylist()):
        if cell is None:
            out.append(None)
            continue
        try:
            out.append(cell.decode("utf-8"))
        except UnicodeDecodeError as err:
            bad = cell[err.start:err.end]
            errors.setdefault(i, f"field '{name}': not valid UTF-8 (byte {bad.hex()} at offset {err.start})")
            out.append(None)
    return pa.array(out, pa.string())


def scalar_cells(col: pa.Array, name: str, errors: dict[int, str]) -> pa.Array:
    """A column that must hold one value per row: bytes are decoded (:func:`decode_text`); a nested
    column (list, struct, map) reports each non-null cell and is replaced by nulls."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if _is_bytes(col.type):
        return decode_text(col, name, errors)
    if pa.types.is_nested(col.type):
        for i in range(len(col)):
            if col[i].is_valid:
                errors.setdefault(i, f"field '{name}': a {col.type} value where one value belongs")
        return pa.nulls(len(col), pa.string())
    return col


def item_list_cells(col: pa.Array, name: str, errors: dict[int, str]) -> pa.Array:
    """A per-atom / per-bond label column (a list per row, or its text form): bytes are decoded;
    anything else is left to the label parser, which names the row."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return decode_text(col, name, errors) if _is_bytes(col.type) else col


def read_cells(path: str, fmt: str, columns: list[str], rows_per_batch: int, list_columns: frozenset[str] = frozenset(),
               rows: range | None = None):  # fmt: skip
    """The one row reader of source files (``prepare``'s ingest and ``predict``/``fingerprint``):
    yields ``(first_row, num_rows, cells, errors)`` per record batch, ``cells``: column → checked
    Arrow array (:func:`item_list_cells` for ``list_columns``, else :func:`scalar_cells`),
    ``errors``: row within the batch → the first problem found in it. ``rows``: only those data rows."""
    for first_row, batch in iter_batches(path, fmt, columns, rows_per_batch, rows):
        errors: dict[int, str] = {}
        cells = {name: (item_list_cells if name in list_columns else scalar_cells)(batch.column(name), name, errors)
                 for name in batch.schema.names}  # fmt: skip
        yield first_row, batch.num_rows, cells, errors
