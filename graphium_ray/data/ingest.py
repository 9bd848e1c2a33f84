"""Ingest: source files → keyed rows → molecule shards merged on the molecule key.

Stage 1 (a Ray Data actor pool over work units; no rows pass through the object store): a unit
is a range of rows of one source file. ``KeySourceRows`` reads its unit's rows itself
(``read_rows``: record batches, labels parsed), parses each SMILES with RDKit, computes the
molecule key and its hash bucket, and writes the unit's rows partitioned by bucket
(``bucket=<b>/unit-<u>.parquet``), so no stage ever holds a whole dataset.

Stage 2 (one Ray task per bucket): rows of one bucket, from every dataset, are merged on the
key into one molecule row with all its labels, a split is assigned, and the bucket is written
as ``molecules/shard-XXXXX.parquet`` (atomically; finished shards are not redone on rerun).

Molecule key = canonical isomeric SMILES of the heavy-atom molecule. We chose it over the
InChIKey because InChI normalizes tautomers and some charge states, which would merge
molecules whose labels differ; canonical SMILES only merges identical molecular graphs.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from graphium_ray.chem.graph import ParseError, molecule_key, parse_smiles
from graphium_ray.config import ConfigError
from graphium_ray.data.cells import read_cells
from graphium_ray.data.labels import check_label_domains, graph_label_matrix, parse_item_labels, smiles_problem
from graphium_ray.tasks import TaskSpec

SKIPPED_BUCKET = -1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SourceFile:
    """One file of one dataset with its label columns by level."""

    dataset: str
    path: str  # local path
    display_path: str  # what the user wrote (URL or path), for reports
    fmt: str
    smiles_column: str
    graph_columns: tuple[str, ...]
    node_columns: tuple[str, ...]
    edge_columns: tuple[str, ...]
    atom_mapped: bool
    split_rows: dict[int, str] | None = None  # from a split file: data row -> split
    graph_domains: tuple[tuple[str, int], ...] = ()  # (kind, num_classes) of each graph column


def read_rows(source: SourceFile, rows_per_batch: int, rows: range | None = None):
    """Yield Arrow tables of parsed rows of one source file (``rows``: only those data rows)."""
    columns = list(
        dict.fromkeys([source.smiles_column, *source.graph_columns, *source.node_columns, *source.edge_columns])
    )
    item_columns = frozenset(source.node_columns) | frozenset(source.edge_columns)
    for first_row, n, cells, errors in read_cells(source.path, source.fmt, columns, rows_per_batch, item_columns,
                                                  rows):  # fmt: skip
        yield _parse_batch(source, first_row, n, cells, errors)


def _parse_batch(source: SourceFile, first_row: int, n: int, col: dict[str, pa.Array], errors: dict[int, str]) -> pa.Table:
    """Labels and SMILES checked on the batch's cells; every problem recorded in ``errors``."""
    y_graph, label_errors = graph_label_matrix([col[c] for c in source.graph_columns], list(source.graph_columns), n)
    for i, reason in label_errors.items():
        errors.setdefault(i, reason)
    check_label_domains(y_graph, list(source.graph_columns), list(source.graph_domains), errors)
    smiles_column = col[source.smiles_column]
    for i, smi in enumerate(smiles_column.to_pylist()):
        problem = smiles_problem(smi)
        if problem:
            errors.setdefault(i, f"field '{source.smiles_column}': {problem}")
    y_node, y_edge = [], []
    for i in range(n):
        node, edge = np.zeros(0, np.float32), np.zeros(0, np.float32)
        try:
            node = parse_item_labels([col[c] for c in source.node_columns], list(source.node_columns), i)
            edge = parse_item_labels([col[c] for c in source.edge_columns], list(source.edge_columns), i)
        except ValueError as err:
            errors.setdefault(i, str(err))
        y_node.append(node)
        y_edge.append(edge)
    rows = np.arange(first_row, first_row + n, dtype=np.int64)
    split_rows = source.split_rows
    file_split = [split_rows.get(int(r), "unassigned") for r in rows] if split_rows is not None else [None] * n
    return pa.table(
        {
            "dataset": pa.array([source.dataset] * n, pa.string()),
            "src_file": pa.array([source.display_path] * n, pa.string()),
            "src_row": rows,
            "smiles": col[source.smiles_column].cast(pa.string()),
            "atom_mapped": pa.array([source.atom_mapped] * n, pa.bool_()),
            "y_graph": pa.array(list(y_graph), pa.list_(pa.float32())),
            "y_node": pa.array(y_node, pa.list_(pa.float32())),
            "y_edge": pa.array(y_edge, pa.list_(pa.float32())),
            "file_split": pa.array(file_split, pa.string()),
            "error": pa.array([errors.get(i) for i in range(n)], pa.string()),
        }
    )


def bucket_of(key: str, num_buckets: int) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_buckets


def random_split(key: str, seed: int, fractions: tuple[float, float, float]) -> str:
    """Deterministic split of a molecule from a hash of (seed, key): stable across runs and shards."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "little") / 2.0**64
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def key_molecules(table: pa.Table, num_buckets: int) -> pa.Table:
    """Parsed rows → the same rows with ``mol_key`` and ``bucket``; unparsable rows go to bucket -1."""
    smiles = table.column("smiles").to_pylist()
    mapped = table.column("atom_mapped").to_pylist()
    errors = table.column("error").to_pylist()
    keys: list[str | None] = []
    buckets: list[int] = []
    for i, smi in enumerate(smiles):
        key = None
        if errors[i] is None:
            try:
                key = molecule_key(parse_smiles(smi, atom_mapped=mapped[i]))
            except ParseError as err:
                errors[i] = f"unparsable SMILES: {err}"
        keys.append(key)
        buckets.append(SKIPPED_BUCKET if key is None else bucket_of(key, num_buckets))
    table = table.set_column(table.schema.get_field_index("error"), "error", pa.array(errors, pa.string()))
    return table.append_column("mol_key", pa.array(keys, pa.string())).append_column(
        "bucket", pa.array(buckets, pa.int32())
    )


@dataclass(frozen=True)
class IngestUnit:
    """A range of data rows of one source file: the work one ingest actor call does."""

    unit: int  # names the unit's files
    source: int  # index into the ingest's source list
    first_row: int
    num_rows: int


def ingest_units(source_rows: list[int], rows_per_unit: int) -> list[IngestUnit]:
    """``source_rows``: data rows of each source file → every row in exactly one unit of at most
    ``rows_per_unit`` rows."""
    spans = [(i, first, min(rows_per_unit, n - first)) for i, n in enumerate(source_rows)
             for first in range(0, n, rows_per_unit)]  # fmt: skip
    return [IngestUnit(u, i, first, count) for u, (i, first, count) in enumerate(spans)]


class KeySourceRows:
    """Ray Data callable class over ingest units: reads a unit's rows of its source file itself,
    keys them (:func:`key_molecules`) and writes them partitioned by bucket, one file per bucket
    named after the unit (``bucket=<b>/unit-00007.parquet``, no ``bucket`` column: the layout of
    a hive-partitioned write); returns only ``(unit, rows)``.

    Rows never pass through the object store. Measured at 1,936,962 MOSES molecules with reading
    tasks and a write stage around a keying actor pool: the keying actors' object-store pages grew
    over the stage (36 → 330 MB), each write task buffered rows for every bucket, and the peak of
    ``prepare`` came in this stage (BENCHMARKS.md section 3). Memory here is one unit's keyed rows.
    A retried unit rewrites its own files, so a killed actor neither loses nor duplicates rows;
    each file is written under a hidden name and then renamed.
    """

    def __init__(self, sources: list[SourceFile], keyed_dir: str, num_buckets: int, rows_per_batch: int):
        self.sources, self.keyed_dir = sources, Path(keyed_dir)
        self.num_buckets, self.rows_per_batch = num_buckets, rows_per_batch

    def __call__(self, units: dict) -> dict:
        """``units``: columns of :class:`IngestUnit` → ``unit``, ``rows`` keyed, and ``error``: why a
        unit's file could not be read ("" if it could), returned as data for the driver to raise
        (Ray Data's wrapper of a failed UDF does not carry the exception to the driver)."""
        done, errors = [], []
        for unit, source, first, count in zip(units["unit"], units["source"], units["first_row"], units["num_rows"],
                                              strict=True):  # fmt: skip
            rows = range(int(first), int(first) + int(count))
            try:
                keyed = [key_molecules(t, self.num_buckets)
                         for t in read_rows(self.sources[int(source)], self.rows_per_batch, rows)]  # fmt: skip
            except ConfigError as err:  # an unreadable file: nothing of this unit is written
                done.append(0)
                errors.append(f"{err}, in data rows {rows.start}-{rows.stop - 1}")
                continue
            if keyed:
                write_by_bucket(pa.concat_tables(keyed), self.keyed_dir, f"unit-{int(unit):05d}.parquet")
            done.append(sum(t.num_rows for t in keyed))
            errors.append("")
        return {"unit": np.asarray(units["unit"]), "rows": np.array(done, dtype=np.int64), "error": np.array(errors)}


def write_by_bucket(table: pa.Table, keyed_dir: Path, name: str) -> None:
    """``table``'s rows, grouped by ``bucket``, as ``keyed_dir/bucket=<b>/name`` without that column."""
    table = table.take(pc.sort_indices(table, sort_keys=[("bucket", "ascending")]))
    buckets = table.column("bucket").to_numpy()
    table = table.drop_columns(["bucket"])
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    for start, stop in zip(starts, [*starts[1:], len(buckets)], strict=True):
        out = keyed_dir / f"bucket={int(buckets[start])}" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(table.slice(int(start), int(stop - start)), out)


@dataclass(frozen=True)
class LabelLayout:
    """Where each dataset's labels sit in the global per-level label vectors."""

    offsets: dict[str, dict[str, tuple[int, int]]]  # dataset -> level -> (start, width)
    widths: dict[str, int]  # level -> total number of tasks
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # dataset -> graph label columns
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # dataset -> their task kinds

    @staticmethod
    def from_tasks(tasks: list[TaskSpec]) -> LabelLayout:
        offsets: dict[str, dict[str, tuple[int, int]]] = {}
        widths = {"graph": 0, "node": 0, "edge": 0}
        columns: dict[str, tuple[str, ...]] = {}
        kinds: dict[str, tuple[str, ...]] = {}
        for t in tasks:
            lvl = offsets.setdefault(t.dataset, {})
            start, width = lvl.get(t.level, (widths[t.level], 0))
            lvl[t.level] = (start, width + 1)
            widths[t.level] += 1
            if t.level == "graph":
                columns[t.dataset] = (*columns.get(t.dataset, ()), t.column)
                kinds[t.dataset] = (*kinds.get(t.dataset, ()), t.kind)
        return LabelLayout(offsets, widths, columns, kinds)


MOLECULE_SCHEMA = pa.schema(
    [
        ("mol_key", pa.string()),
        ("smiles", pa.string()),
        ("atom_mapped", pa.bool_()),
        ("split", pa.string()),
        ("y_graph", pa.list_(pa.float32())),
        ("y_node", pa.list_(pa.float32())),
        ("y_edge", pa.list_(pa.float32())),
        ("sources", pa.string()),
    ]
)
SKIPPED_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("src_file", pa.string()),
        ("src_row", pa.int64()),
        ("smiles", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
    ]
)


CONFLICT_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("mol_key", pa.string()),
        ("column", pa.string()),
        ("rows", pa.string()),
        ("values", pa.string()),
        ("resolution", pa.string()),
    ]
)


def merge_bucket(
    bucket_dir: Path, out_path: Path, skipped_path: Path, layout: LabelLayout, seed: int, fractions: tuple,
    on_conflict: str = "drop_label",
) -> int:
    """Merge one bucket's keyed rows into molecule rows; returns the number of molecules written.

    Rows of the same molecule within one dataset (duplicates) are merged label by label: a label
    missing in one row and present in another is kept; present labels that disagree are a conflict,
    settled by ``on_conflict`` (``drop_label``: set missing; ``first``: the first row's; ``mean``:
    their mean for regression labels, missing for class labels; ``error``: kept as in ``drop_label`` here, the prepare step then stops). Every
    conflict is written next to the shard (``conflicts-*.parquet``) with all rows and values.

    Memory: the bucket is held as Arrow (compact); Python objects exist for one slice of at most
    ``MERGE_SLICE_ROWS`` rows at a time (all rows of a molecule fall in the same slice, by a hash
    of its key), and merged rows are appended to the shard as each slice finishes (measured on
    drug-like rows, 97k / 194k rows in one bucket: 467 / 859 MB above the process's baseline when
    the whole bucket became Python objects at once, see BENCHMARKS.md section 3)."""
    table = pads.dataset(str(bucket_dir), format="parquet").to_table() if bucket_dir.exists() else None
    skipped: list[dict] = []
    conflicts: list[dict] = []
    tmp = out_path.with_name(out_path.name + ".tmp")
    written = 0
    with pq.ParquetWriter(tmp, MOLECULE_SCHEMA) as writer:
        for rows in _merge_slices(table):
            molecules: dict[str, dict] = {}
            for row in rows.to_pylist():
                _merge_row(molecules, skipped, row, layout)
            out_rows = []
            for m in molecules.values():
                try:
                    _resolve_duplicates(m, layout, on_conflict, conflicts)
                    out_rows.append(_finish(m, layout, seed, fractions))
                except ValueError as err:
                    for source in m["rows"]:
                        ds, src_file, src_row = source.split("|")
                        skipped.append({"dataset": ds, "src_file": src_file, "src_row": int(src_row),
                                        "smiles": m["smiles"][0], "stage": "merge", "reason": str(err)})  # fmt: skip
            writer.write_table(pa.Table.from_pylist(out_rows, schema=MOLECULE_SCHEMA))
            written += len(out_rows)
    _write_atomic(pa.Table.from_pylist(conflicts, schema=CONFLICT_SCHEMA),
                  skipped_path.with_name(skipped_path.name.replace("skipped-", "conflicts-")))  # fmt: skip
    _write_atomic(pa.Table.from_pylist(skipped, schema=SKIPPED_SCHEMA), skipped_path)
    tmp.replace(out_path)  # last: marks the shard done
    return written


MERGE_SLICE_ROWS = 20_000


def _merge_slices(table: pa.Table | None):
    """The bucket's rows cut into slices of about ``MERGE_SLICE_ROWS`` by a hash of the molecule key
    (a molecule's rows never straddle slices; one slice when small), each sorted by (source file,
    row) with Arrow's sort (no Python objects for the whole bucket)."""
    if table is None or table.num_rows == 0:
        return
    slices = -(-table.num_rows // MERGE_SLICE_ROWS)
    slice_of = None
    if slices > 1:  # chunk by chunk: Python strings for one chunk of keys at a time
        slice_of = np.concatenate([np.fromiter((zlib.crc32(k.encode()) % slices for k in chunk.to_pylist()), np.int64)
                                   for chunk in table.column("mol_key").chunks])  # fmt: skip
    for s in range(slices):
        part = table if slice_of is None else table.filter(pa.array(slice_of == s))
        yield part.take(pc.sort_indices(part, sort_keys=[("src_file", "ascending"), ("src_row", "ascending")]))


def _skip(row: dict, reason: str) -> dict:
    return {"dataset": row["dataset"], "src_file": row["src_file"], "src_row": row["src_row"],
            "smiles": row["smiles"], "stage": "merge", "reason": reason}  # fmt: skip


def _merge_row(molecules: dict[str, dict], skipped: list[dict], row: dict, layout: LabelLayout) -> None:
    key, ds = row["mol_key"], row["dataset"]
    mol = molecules.setdefault(key, {"key": key, "datasets": {}, "smiles": None, "rows": [],
                                     "node": {}, "edge": {}, "graph": {}, "graph_rows": {}, "item_conflicts": [],
                                     "file_split": None, "smiles_has_items": False})  # fmt: skip
    where = f"{row['src_file']} row {row['src_row']}"
    if ds in mol["datasets"]:  # a duplicate within the dataset: merged label by label in _resolve_duplicates
        mol["rows"].append(f"{ds}|{row['src_file']}|{row['src_row']}")
        mol["graph_rows"][ds].append((where, row["y_graph"]))
        _merge_duplicate_items(mol, row, ds, where)
        return
    has_items = len(row["y_node"]) > 0 or len(row["y_edge"]) > 0
    if has_items and mol["smiles"] is not None and mol["smiles_has_items"] and row["smiles"] != mol["smiles"][0]:
        skipped.append(_skip(row, f"per-atom labels in a different atom order than those of {mol['smiles'][1]}"))
        return
    mol["datasets"][ds] = where
    mol["rows"].append(f"{ds}|{row['src_file']}|{row['src_row']}")
    if mol["smiles"] is None or (has_items and not mol["smiles_has_items"]):
        mol["smiles"] = (row["smiles"], mol["datasets"][ds], row["atom_mapped"])
        mol["smiles_has_items"] = has_items
    mol["graph"][ds] = row["y_graph"]
    mol["graph_rows"][ds] = [(where, row["y_graph"])]
    for level in ("node", "edge"):
        if len(row[f"y_{level}"]):
            mol[level][ds] = row[f"y_{level}"]
    if row["file_split"] is not None and mol["file_split"] is None:
        mol["file_split"] = row["file_split"]


def _merge_duplicate_items(mol: dict, row: dict, ds: str, where: str) -> None:
    """Per-atom/bond labels of a duplicate row: taken when the molecule has none yet (with the row's
    SMILES, which defines their atom order); lists that differ from the kept ones are a conflict."""
    for level in ("node", "edge"):
        items = row[f"y_{level}"]
        if not len(items):
            continue
        if ds not in mol[level] and not mol["smiles_has_items"]:
            mol[level][ds] = items
            mol["smiles"] = (row["smiles"], where, row["atom_mapped"])
            mol["smiles_has_items"] = True
        elif ds not in mol[level] or row["smiles"] != mol["smiles"][0] or list(items) != list(mol[level][ds]):
            mol["item_conflicts"].append((ds, level, where))


def _resolve_duplicates(mol: dict, layout: LabelLayout, on_conflict: str, conflicts: list[dict]) -> None:
    """Settle each dataset's graph labels over its duplicate rows (see :func:`merge_bucket`)."""
    for ds, rows in mol["graph_rows"].items():
        if len(rows) < 2:
            continue
        values = np.asarray([r[1] for r in rows], dtype=np.float64).reshape(len(rows), -1)
        merged = values[0].copy()
        columns, kinds = layout.columns.get(ds, ()), layout.kinds.get(ds, ())
        for j in range(values.shape[1]):
            present = values[~np.isnan(values[:, j]), j]
            if len(present) == 0 or np.all(present == present[0]):
                merged[j] = present[0] if len(present) else np.nan
                continue
            policy = on_conflict
            if policy == "mean" and j < len(kinds) and kinds[j] != "regression":
                policy = "drop_label (no mean of class labels)"
            merged[j] = {"first": present[0], "mean": float(present.mean())}.get(policy, np.nan)
            where = [r[0] for r, v in zip(rows, values[:, j], strict=True) if not np.isnan(v)]
            conflicts.append({"dataset": ds, "mol_key": mol["key"], "column": columns[j] if j < len(columns) else str(j),
                              "rows": "; ".join(where), "values": "; ".join(f"{v:g}" for v in present),
                              "resolution": policy})  # fmt: skip
        mol["graph"][ds] = merged.tolist()
    for ds, level, where in mol["item_conflicts"]:
        conflicts.append({"dataset": ds, "mol_key": mol["key"], "column": f"{level} labels", "rows": where,
                          "values": "list differs", "resolution": "first (per-item lists are not merged)"})  # fmt: skip


def _place(parts: dict[str, list], layout: LabelLayout, level: str) -> list[float]:
    """Scatter per-dataset label slices into the global (items × tasks) layout, flattened."""
    width = layout.widths[level]
    if not parts or width == 0:
        return []
    n_items = {len(v) // layout.offsets[ds][level][1] for ds, v in parts.items()}
    if len(n_items) > 1:
        raise ValueError(f"{level} label lists of different lengths across datasets")
    out = np.full((n_items.pop(), width), np.nan, dtype=np.float32)
    for ds, values in parts.items():
        start, w = layout.offsets[ds][level]
        out[:, start : start + w] = np.asarray(values, np.float32).reshape(-1, w)
    return out.reshape(-1).tolist()


def _finish(mol: dict, layout: LabelLayout, seed: int, fractions: tuple) -> dict:
    y_graph = np.full(layout.widths["graph"], np.nan, dtype=np.float32)
    for ds, values in mol["graph"].items():
        if "graph" in layout.offsets[ds]:
            start, w = layout.offsets[ds]["graph"]
            y_graph[start : start + w] = values
    split = mol["file_split"] or random_split(mol["key"], seed, fractions)
    return {
        "mol_key": mol["key"],
        "smiles": mol["smiles"][0],
        "atom_mapped": mol["smiles"][2],
        "split": split,
        "y_graph": y_graph.tolist(),
        "y_node": _place(mol["node"], layout, "node"),
        "y_edge": _place(mol["edge"], layout, "edge"),
        "sources": ";".join(mol["rows"]),
    }


def _write_atomic(table: pa.Table, path: Path) -> None:
    """Written under a hidden name (no Parquet dataset reader lists it), then renamed."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
