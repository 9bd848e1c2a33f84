"""Graphium split files: CSV columns ``train,val,test``, each a column of data-row indices.

Columns are padded with empty cells (so indices may be written as floats like ``392.0``). Rows
of the dataset that the file does not list get the split ``unassigned`` and are not used.
"""

from __future__ import annotations

import math

import pyarrow.csv as pacsv

from graphium_ray.config import ConfigError
from graphium_ray.data.labels import parse_scalar

SPLIT_COLUMNS = ("train", "val", "test")


def read_split_file(path: str, where: str) -> dict[int, str]:
    """Return ``{row_index: split}``; a row listed in two splits is an error."""
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    except (FileNotFoundError, OSError) as err:
        raise ConfigError(f"{where}: cannot read split file '{path}': {err}") from None
    missing = [c for c in SPLIT_COLUMNS if c not in table.column_names]
    if missing:
        raise ConfigError(f"{where}: split file '{path}' lacks columns {missing}; expected train,val,test")
    assignment: dict[int, str] = {}
    for split in SPLIT_COLUMNS:
        for line, value in enumerate(table.column(split).to_pylist()):
            number = parse_scalar(value, f"{split} (line {line + 2} of {path})")
            if math.isnan(number):
                continue
            if number < 0 or number != int(number):
                raise ConfigError(f"{where}: '{path}' line {line + 2}, column {split}: {value!r} is not a row index")
            row = int(number)
            if row in assignment and assignment[row] != split:
                raise ConfigError(f"{where}: '{path}': row {row} is in both {assignment[row]} and {split}")
            assignment[row] = split
    return assignment
