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
_BOOLEAN = {"true": 1.0, "false": 0.0}


def parse_scalar(value: object, field: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        text = value.strip()
        if text in _MISSING:
            return math.nan
        if text.lower() in _BOOLEAN:
            return _BOOLEAN[text.lower()]
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


def check_label_domains(y: np.ndarray, names: list[str], domains: list[tuple[str, int]], errors: dict[int, str]) -> None:
    """Per task kind, the values a label may take: binary ∈ {0, 1}; multiclass / ordinal an integer
    in [0, num_classes). Anything else is an error for the row naming the field and value."""
    for j, (kind, num_classes) in enumerate(domains):
        col = y[:, j]
        present = ~np.isnan(col)
        if kind == "binary":
            bad = present & (col != 0) & (col != 1)
            allowed = "0 or 1 (or true/false)"
        elif kind in ("multiclass", "ordinal"):
            bad = present & ((col != np.round(col)) | (col < 0) | (col >= num_classes))
            allowed = f"an integer class in [0, {num_classes})"
        else:
            continue
        for i in np.flatnonzero(bad):
            errors.setdefault(int(i), f"field '{names[j]}': {kind} label {float(col[i]):g} is not {allowed}")


def smiles_problem(smiles: object) -> str | None:
    """Why a SMILES cell cannot be read faithfully, or None. RDKit reads whatever follows a space
    as the molecule's name, so ``"CC CC"`` or ``"CC\nCC"`` would silently become ethane; control
    characters and inner whitespace are refused, except the space before a CXSMILES ``|...|`` block."""
    if not isinstance(smiles, str):
        return None
    text = smiles.strip()
    control = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if control is not None:
        return f"SMILES {smiles[:40]!r} contains the control character {control!r}"
    core = text.split(" |", 1)[0] if " |" in text else text
    if any(c.isspace() for c in core):
        return f"SMILES {smiles[:40]!r} contains whitespace (RDKit would read only the part before it)"
    return None
