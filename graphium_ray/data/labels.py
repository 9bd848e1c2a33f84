"""Parse label cells into float32 arrays, naming the field of every bad value.

Missing (empty, null, ``nan``) is NaN and means "no label". A value that is not a number, or
is infinite, is an error for the row: the row is skipped and reported, never silently coerced.
Per-atom/per-bond label cells are lists (``"[0.1, -0.2]"`` in CSV, ``list<float>`` in Parquet);
each token is parsed with ``float()`` (QM9 files contain tokens like ``-7.E-6``).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MISSING = {"", "nan", "NaN", "NA", "N/A", "null", "None"}


def parse_scalar(value: object, field: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        text = value.strip()
        if text in _MISSING:
            return math.nan
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"field '{field}': {value!r} is not a number") from None
    else:
        number = float(value)  # type: ignore[arg-type]
    if math.isinf(number):
        raise ValueError(f"field '{field}': value {value!r} is infinite")
    return number


def parse_list(value: object, field: str) -> list[float] | None:
    """A per-atom/per-bond label list, or None when the cell is missing."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text in _MISSING:
            return None
        if not (text.startswith("[") and text.endswith("]")):
            raise ValueError(f"field '{field}': expected a list like [0.1, 0.2], got {value[:40]!r}")
        tokens = [t for t in text[1:-1].replace(";", ",").split(",") if t.strip()]
        values = [parse_scalar(t, field) for t in tokens]
    else:
        values = [parse_scalar(v, field) for v in value]  # type: ignore[union-attr]
    return values


def graph_label_matrix(columns: list[pa.Array], names: list[str], n_rows: int) -> tuple[np.ndarray, dict[int, str]]:
    """A batch's graph-level labels as (n_rows, T) float32, plus ``{row: error}`` for bad cells.

    Vectorized through Arrow casts; a column whose cast fails is re-parsed cell by cell so the
    error names the exact row and field.
    """
    out = np.full((n_rows, len(names)), np.nan, dtype=np.float32)
    errors: dict[int, str] = {}
    for j, (col, name) in enumerate(zip(columns, names, strict=True)):
        try:
            values = _column_to_float(col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            values = np.full(n_rows, np.nan)
            for i in range(n_rows):
                try:
                    values[i] = parse_scalar(col[i].as_py(), name)
                except ValueError as err:
                    errors.setdefault(i, str(err))
        for i in np.flatnonzero(np.isinf(values)):
            errors.setdefault(int(i), f"field '{name}': value {col[int(i)].as_py()!r} is infinite")
        out[:, j] = values
    return out, errors


def _column_to_float(col: pa.Array) -> np.ndarray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        stripped = pc.utf8_trim_whitespace(col)
        missing = pc.is_in(stripped, value_set=pa.array(sorted(_MISSING)))
        col = pc.if_else(missing, pa.scalar(None, pa.string()), stripped)
    return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def parse_item_labels(columns: list[pa.Array], names: list[str], row: int) -> np.ndarray:
    """One row's per-item (atom or bond) labels as a flattened (n_items * T,) float32, row-major.

    Every present list must have the same length; missing task cells become NaN. Returns an
    empty array when all cells are missing (the featurizer then fills NaN for every item).
    """
    lists = [parse_list(col[row].as_py(), name) for col, name in zip(columns, names, strict=True)]
    lengths = {len(v) for v in lists if v is not None}
    if not lengths:
        return np.zeros(0, dtype=np.float32)
    if len(lengths) > 1:
        detail = ", ".join(f"{n}: {len(v)}" for n, v in zip(names, lists, strict=True) if v is not None)
        raise ValueError(f"per-item label lists differ in length ({detail})")
    n_items = lengths.pop()
    out = np.full((n_items, len(names)), np.nan, dtype=np.float32)
    for j, values in enumerate(lists):
        if values is not None:
            out[:, j] = values
    return out.reshape(-1)
