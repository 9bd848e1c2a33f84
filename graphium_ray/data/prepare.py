"""``prepare``: sources → molecule shards → featurized cache + manifest + skipped report.

Stages are resumable: keyed rows are complete when ``keyed/_SUCCESS`` exists; a molecule
shard exists only once fully written; a featurized shard counts as done only when its row
count equals its molecule shard's. A rerun redoes only what is missing. A finished cache
(``manifest.json`` present) is reused as is.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import ray

from graphium_ray.config import ConfigError, DataConfig
from graphium_ray.data.cache import PreparedData, entry_root, write_json_atomic
from graphium_ray.data.cache_lock import cache_entry_lock, lock_path
from graphium_ray.data.cells import read_cells
from graphium_ray.data.in_driver import cache_small_enough, rows_of, small_enough
from graphium_ray.data.ingest import (
    CONFLICT_SCHEMA,
    SKIPPED_BUCKET,
    KeySourceRows,
    LabelLayout,
    SourceFile,
    ingest_units,
    merge_bucket,
)
from graphium_ray.data.reader import READ_ROWS, featurized_files, read_parquet_files
from graphium_ray.data.resources import TASK_CPUS, actor_pool, cluster_cpus
from graphium_ray.data.sources import fingerprint, open_sources
from graphium_ray.data.split_file import read_split_file
from graphium_ray.data.stats import molecule_feature_stats, partial_stats, reduce_stats
from graphium_ray.manifest import Manifest
from graphium_ray.tasks import TaskSpec, dataset_tasks

log = logging.getLogger(__name__)


def resolve_sources(cfg: DataConfig) -> tuple[list[SourceFile], list[TaskSpec], dict[str, str]]:
    """Resolve files, expand label wildcards against headers and fingerprint every file."""
    download_dir = Path(cfg.cache_dir) / "downloads"
    sources, tasks, fingerprints = [], [], {}
    for ds in cfg.datasets:
        where = f"datasets.{ds.name}.path"
        files = list(open_sources(ds.paths, where, download_dir, ds.format))
        if ds.split_file and len(files) != 1:
            raise ConfigError(f"datasets.{ds.name}.split_file: needs exactly one data file, found {len(files)}")
        ds_tasks: list[TaskSpec] | None = None
        for display, local, fmt, header in files:
            where_file = f"{display} (datasets.{ds.name})"
            found = dataset_tasks(ds, header, where_file)
            if ds_tasks is not None and [t.column for t in found] != [t.column for t in ds_tasks]:
                raise ConfigError(f"{where_file}: label columns differ from the dataset's first file")
            ds_tasks = found
            fingerprints[display] = fingerprint(local)
            cols = {lvl: tuple(t.column for t in found if t.level == lvl) for lvl in ("graph", "node", "edge")}
            domains = tuple((t.kind, t.num_classes) for t in found if t.level == "graph")
            split_rows = read_split_file(ds.split_file, f"datasets.{ds.name}.split_file") if ds.split_file else None
            sources.append(
                SourceFile(
                    ds.name,
                    local,
                    display,
                    fmt,
                    ds.smiles_column,
                    cols["graph"],
                    cols["node"],
                    cols["edge"],
                    ds.atom_mapped,
                    split_rows,
                    domains,
                )  # fmt: skip
            )
        tasks.extend(ds_tasks or [])
        if ds.split_file:
            fingerprints[ds.split_file] = fingerprint(ds.split_file)
    return sources, tasks, fingerprints


def with_scaffold_splits(sources: list[SourceFile], cfg: DataConfig) -> list[SourceFile]:
    """``split.kind: scaffold``: each dataset without a ``split_file`` gets one balanced Bemis–Murcko
    split over all its files. Computed only when a cache entry is built, never to reuse one: it
    parses every SMILES on the driver (the cache key already names the files, seed and fractions
    it depends on)."""
    if cfg.split.kind != "scaffold":
        return sources
    sources = list(sources)
    for ds in cfg.datasets:
        if ds.split_file:
            continue
        mine = [i for i, src in enumerate(sources) if src.dataset == ds.name]
        for i, src in zip(mine, _scaffold_sources([sources[i] for i in mine], cfg), strict=True):
            sources[i] = src
    return sources


def _scaffold_sources(sources: list[SourceFile], cfg: DataConfig) -> list[SourceFile]:
    """One balanced Bemis–Murcko split over ``sources`` (one dataset's files), given to each file as
    its row → split map (computed on the driver from the SMILES column only)."""
    from graphium_ray.data.scaffold import scaffold_split  # RDKit: not needed to reuse a cache

    smiles, owners = [], []
    for src in sources:
        for _, _, cells, _ in read_cells(src.path, src.fmt, [src.smiles_column], 65536):
            values = cells[src.smiles_column].to_pylist()  # bad cells: None (reported by the ingest)
            smiles += values
            owners += [src] * len(values)
    assignment = scaffold_split(smiles, cfg.split.seed, tuple(cfg.split.fractions))
    rows: dict[int, dict[int, str]] = {id(src): {} for src in sources}
    first_row: dict[int, int] = {}
    for i, src in enumerate(owners):
        first_row.setdefault(id(src), i)
        if i in assignment:
            rows[id(src)][i - first_row[id(src)]] = assignment[i]
    return [dataclasses.replace(src, split_rows=rows[id(src)]) for src in sources]


# rows of one ingest unit: at most INGEST_UNIT_MAX_ROWS (one unit's keyed rows are in an actor's
# memory, ~250 B a drug-like row), about UNIT_ROWS_PER_BUCKET a bucket file when there are many
# buckets (a unit writes one file per bucket, and tiny files cost the merge: 194k MOSES molecules in
# 6,100 files of ~32 rows grew its tasks' memory by ~1.2 KB a row), and at least UNITS_PER_CPU units
# per CPU of the cluster for a small input (balance)
INGEST_UNIT_MAX_ROWS = 1 << 20
INGEST_UNIT_MIN_ROWS = 1 << 16
UNIT_ROWS_PER_BUCKET = 256
UNITS_PER_CPU = 4


def rows_per_ingest_unit(total_rows: int, num_buckets: int, cpus: int, batch_rows: int) -> int:
    """Large enough that a unit writes ~UNIT_ROWS_PER_BUCKET rows to each bucket's file (many
    buckets: few files, each of some size), small enough to give every CPU UNITS_PER_CPU units."""
    wide = min(max(INGEST_UNIT_MIN_ROWS, UNIT_ROWS_PER_BUCKET * num_buckets), INGEST_UNIT_MAX_ROWS)
    return max(batch_rows, min(wide, -(-total_rows // (UNITS_PER_CPU * cpus))))


def in_driver(sources: list[SourceFile], cfg: DataConfig) -> bool:
    """Whether ``prepare`` runs its stages in this process (``data.prepare_in_driver``; ``auto``: a
    small input, :func:`graphium_ray.data.in_driver.small_enough`). The same code and the same cache
    either way."""
    if cfg.prepare_in_driver != "auto":
        return cfg.prepare_in_driver == "always"
    from graphium_ray.chem.descriptors import descriptor_passes

    return small_enough([(s.path, s.fmt, s.smiles_column) for s in sources], descriptor_passes(list(cfg.featurizer.molecule)))


def _run_work_units(actor_cls: type, actor_kwargs: dict, units: list[dict], concurrency: int | None,
                    local: bool) -> list[dict]:  # fmt: skip
    """Small work items (dicts of scalars) → the rows ``actor_cls`` returns for them (one per item).
    The actor reads and writes its own data, so only the items and the small results travel: in
    this process for ``local``, else through one Ray Data actor pool of at most one actor per item
    and CPU, one item in flight per actor (so a small job still spreads over the pool)."""
    if not units:
        return []
    if local:
        done = actor_cls(**actor_kwargs)({k: np.array([u[k] for u in units]) for k in units[0]})
        return [dict(zip(done, values, strict=True)) for values in zip(*done.values(), strict=True)]
    ds = ray.data.from_items(units, override_num_blocks=len(units))
    ds = ds.map_batches(actor_cls, fn_constructor_kwargs=actor_kwargs, batch_size=1, batch_format="numpy",
                        **actor_pool(min(len(units), concurrency or len(units)), tasks_in_flight=1))  # fmt: skip
    return ds.take_all()


def _ingest(sources: list[SourceFile], cfg: DataConfig, keyed_dir: Path, local: bool = False) -> None:
    if (keyed_dir / "_SUCCESS").exists():
        return
    shutil.rmtree(keyed_dir, ignore_errors=True)
    keyed_dir.mkdir(parents=True)  # a header-only file writes no row at all
    source_rows = [rows_of(s.path, s.fmt, s.smiles_column) for s in sources]  # CSV: one pass over its SMILES
    per_unit = rows_per_ingest_unit(sum(source_rows), cfg.num_shards, 1 if local else cluster_cpus(), cfg.batch_rows)
    units = [dataclasses.asdict(u) for u in ingest_units(source_rows, per_unit)]
    actor_kwargs = {"sources": sources, "keyed_dir": str(keyed_dir), "num_buckets": cfg.num_shards,
                    "rows_per_batch": cfg.batch_rows}  # fmt: skip
    keyed = _run_work_units(KeySourceRows, actor_kwargs, units, cfg.featurize_concurrency, local)
    unreadable = sorted({str(r["error"]) for r in keyed if r["error"]})
    if unreadable:
        raise ConfigError("\n".join(unreadable))
    log.info("keyed %d rows of %d files in %d units", sum(int(r["rows"]) for r in keyed), len(sources), len(keyed))
    (keyed_dir / "_SUCCESS").touch()


@ray.remote(num_cpus=1)  # CPU-bound Python: more than one per CPU only adds memory (each holds a bucket)
def _merge_task(bucket_dir: str, out_path: str, skipped_path: str, layout: LabelLayout, seed: int, fractions,
                on_conflict: str) -> int:  # fmt: skip
    return merge_bucket(Path(bucket_dir), Path(out_path), Path(skipped_path), layout, seed, fractions, on_conflict)


def _merge(cfg: DataConfig, layout: LabelLayout, keyed_dir: Path, mol_dir: Path, local: bool = False) -> None:
    mol_dir.mkdir(parents=True, exist_ok=True)
    pending = []
    for b in range(cfg.num_shards):
        out = mol_dir / f"shard-{b:05d}.parquet"
        if not out.exists():
            args = (keyed_dir / f"bucket={b}", out, mol_dir / f"skipped-{b:05d}.parquet", layout, cfg.split.seed,
                    tuple(cfg.split.fractions), cfg.on_conflict)  # fmt: skip
            pending.append(merge_bucket(*args) if local else _merge_task.remote(*map(str, args[:3]), *args[3:]))
    if not local:
        ray.get(pending)


class _FeaturizeRowGroups:
    """Reads one row group of a molecule shard, featurizes it ``batch_rows`` at a time and writes
    the result as one file of the shard's folder in the cache; returns only ``(shard, rows)``.

    The actor reads and writes its own data, so neither molecules nor featurized graphs pass
    through the object store. Measured at 1,936,962 MOSES molecules with separate stages: the
    readers ran ahead of featurization and put the whole input in the store at once (the peak:
    reader processes 865 MB), and the featurize actors' object-store pages grew with the dataset
    (to 569 MB of their 1,152 MB); with a separate write stage the featurized blocks (~10 KB a
    molecule) added as much again. Memory here is one row group of molecules and one batch of
    graphs. The file is named after its row group (``rg-00003.parquet``): a retried unit rewrites
    its own file instead of adding a copy, and every prepare of the same data writes the same
    files. Written under a hidden temporary name, then renamed: a killed actor leaves no partial
    file that counts.
    """

    def __init__(self, feat_dir: str, batch_rows: int, **featurizer_kwargs):
        from graphium_ray.data.featurize import Featurizer  # RDKit and SciPy: not needed to reuse a cache

        self.featurizer = Featurizer(**featurizer_kwargs)
        self.feat_dir, self.batch_rows = Path(feat_dir), batch_rows

    def __call__(self, units: dict) -> dict:
        # one BLAS thread wherever this runs (an actor, or the driver for a small input): RDKit's `Ipc`
        # descriptor goes through NumPy's linear algebra, whose float sums change with the thread count
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return self._featurize_units(units)

    def _featurize_units(self, units: dict) -> dict:
        shards, rows = [], []
        for path, row_group in zip(units["path"], units["row_group"], strict=True):
            shard = Path(str(path)).stem
            out = self.feat_dir / f"shard={shard}" / f"rg-{int(row_group):05d}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")  # hidden: no Parquet reader lists it
            molecules = pq.ParquetFile(str(path)).read_row_group(int(row_group))
            with pq.ParquetWriter(tmp, self.featurizer.schema) as writer:
                for offset in range(0, molecules.num_rows, self.batch_rows):
                    writer.write_table(self.featurizer(molecules.slice(offset, self.batch_rows)))
            os.replace(tmp, out)
            shards.append(shard)
            rows.append(molecules.num_rows)
        return {"shard": np.array(shards), "rows": np.array(rows, dtype=np.int64)}


def _shard_done(mol_file: Path, mol_rows: int, feat_dir: Path) -> bool:
    part = feat_dir / f"shard={mol_file.stem}"
    if not part.is_dir():
        return False
    return sum(pq.ParquetFile(f).metadata.num_rows for f in part.glob("*.parquet")) == mol_rows


def _featurize(cfg: DataConfig, layout: LabelLayout, mol_dir: Path, feat_dir: Path, local: bool = False) -> None:
    footers = {f: pq.ParquetFile(f).metadata for f in sorted(mol_dir.glob("shard-*.parquet"))}  # each read once
    pending = [f for f, meta in footers.items() if meta.num_rows and not _shard_done(f, meta.num_rows, feat_dir)]
    feat_dir.mkdir(parents=True, exist_ok=True)
    if not pending:
        return
    for f in pending:
        shutil.rmtree(feat_dir / f"shard={f.stem}", ignore_errors=True)
    units = [{"path": str(f), "row_group": g} for f in pending for g in range(footers[f].num_row_groups)]
    featurizer_kwargs = {"feat_dir": str(feat_dir), "batch_rows": cfg.batch_rows, "cfg": cfg.featurizer,
                         "num_node_tasks": layout.widths["node"], "num_edge_tasks": layout.widths["edge"]}  # fmt: skip
    written = _run_work_units(_FeaturizeRowGroups, featurizer_kwargs, units, cfg.featurize_concurrency, local)
    log.info("featurized %d rows of %d shards into %d files", sum(int(r["rows"]) for r in written), len(pending), len(written))



def label_stats(feat_dir: Path, layout: LabelLayout, mol_feat_dim: int, in_driver: bool | None = None) -> dict:
    """Label (and molecule-feature) statistics of a featurized cache (:mod:`graphium_ray.data.stats`).
    ``in_driver``: read the files here (one record batch at a time) rather than as a Ray Data job;
    default: a small cache (:func:`graphium_ray.data.in_driver.cache_small_enough`). Both give one partial per record
    batch of ``READ_ROWS`` rows, summed in a canonical order."""
    files = featurized_files(feat_dir)
    if not files:
        return reduce_stats([], layout.widths, mol_feat_dim)
    columns = ["split", "skip_reason", "y_graph", "y_node", "y_edge"] + (["mol_feat"] if mol_feat_dim else [])
    kwargs = {"widths": layout.widths, "mol_feat_dim": mol_feat_dim}
    if in_driver is None:
        in_driver = cache_small_enough(files)
    if in_driver:
        partials = [row for f in files
                    for records in pq.ParquetFile(f).iter_batches(batch_size=READ_ROWS, columns=columns)
                    for row in partial_stats(pa.Table.from_batches([records]), **kwargs).to_pylist()]  # fmt: skip
    else:
        # one partial per block as read from a file (batch_size=None): the same partials on every run,
        # whichever task returns first; reduce_stats sums them in a canonical order
        ds = read_parquet_files(files, columns=columns, rows_per_batch=READ_ROWS)
        partials = ds.map_batches(partial_stats, fn_kwargs=kwargs, batch_size=None, batch_format="pyarrow",
                                  num_cpus=TASK_CPUS).take_all()  # fmt: skip
    return reduce_stats(partials, layout.widths, mol_feat_dim)


def _write_skipped(root: Path, keyed_dir: Path, mol_dir: Path, feat_dir: Path) -> dict[str, int]:
    """Collect every skipped row (ingest, merge, featurize) into skipped.csv; return counts by stage."""
    import pyarrow.dataset as pads

    rows: list[dict] = []
    bad = keyed_dir / f"bucket={SKIPPED_BUCKET}"
    if bad.exists():
        t = pads.dataset(str(bad), format="parquet").to_table(
            columns=["dataset", "src_file", "src_row", "smiles", "error"]
        )
        rows += [{**r, "stage": "ingest", "reason": r.pop("error")} for r in t.to_pylist()]
    for f in sorted(mol_dir.glob("skipped-*.parquet")):
        rows += pq.read_table(f).to_pylist()
    feat_files = featurized_files(feat_dir)
    failed = pads.dataset(feat_files, format="parquet").to_table(
        columns=["sources", "skip_reason", "mol_key"], filter=pads.field("skip_reason").is_valid()
    ) if feat_files else pa.table({"sources": [], "skip_reason": [], "mol_key": []})  # fmt: skip
    for r in failed.to_pylist():
        for src in r["sources"].split(";"):
            ds, src_file, src_row = src.split("|")
            rows.append({"dataset": ds, "src_file": src_file, "src_row": int(src_row), "smiles": r["mol_key"],
                         "stage": "featurize", "reason": r["skip_reason"]})  # fmt: skip
    rows.sort(key=lambda r: (r["dataset"], r["src_file"], r["src_row"]))
    fields = ["dataset", "src_file", "src_row", "smiles", "stage", "reason"]
    with open(root / "skipped.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: r[k] for k in fields} for r in rows)
    by_stage: dict[str, int] = {}
    for r in rows:
        by_stage[r["stage"]] = by_stage.get(r["stage"], 0) + 1
    return by_stage


def _write_conflicts(root: Path, mol_dir: Path) -> dict:
    """``conflicts.csv`` (every disagreeing label among duplicate rows, with all rows and values) and,
    per dataset, the duplicate rows merged into an earlier row of the same molecule and the conflicts."""
    parts = [pq.read_table(f) for f in sorted(mol_dir.glob("conflicts-*.parquet"))]
    table = pa.concat_tables([CONFLICT_SCHEMA.empty_table(), *parts])
    table = table.sort_by([("dataset", "ascending"), ("mol_key", "ascending")])
    pacsv.write_csv(table, root / "conflicts.csv")
    conflicts: dict[str, int] = {}
    for ds in table.column("dataset").to_pylist():
        conflicts[ds] = conflicts.get(ds, 0) + 1
    duplicates: dict[str, int] = {}
    for f in sorted(mol_dir.glob("shard-*.parquet")):
        for sources in pq.read_table(f, columns=["sources"]).column("sources").to_pylist():
            entries = [s.split("|", 1)[0] for s in sources.split(";")]
            for ds in set(entries):
                duplicates[ds] = duplicates.get(ds, 0) + entries.count(ds) - 1
    return {"duplicate_rows_merged": {k: v for k, v in sorted(duplicates.items()) if v},
            "conflicts": dict(sorted(conflicts.items())), "report": str(root / "conflicts.csv")}  # fmt: skip


def _rows_in(keyed_dir: Path) -> dict[str, int]:
    """Rows read per dataset (streamed batch by batch)."""
    import pyarrow.dataset as pads

    counts: dict[str, int] = {}
    files = sorted(str(f) for f in keyed_dir.glob("bucket=*/*.parquet"))
    if not files:
        return counts
    scanner = pads.dataset(files, format="parquet").scanner(columns=["dataset"])
    for batch in scanner.to_batches():
        for item in pc.value_counts(batch.column(0)).to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return dict(sorted(counts.items()))


def prepare(cfg: DataConfig, force: bool = False, start_ray: Callable[[], None] | None = None) -> PreparedData:
    """Run (or reuse) the whole preparation. Ray must be initialized, or ``start_ray`` given: it is
    called before any Ray work (none when the cache is reused or the stages run in this process).
    One process builds a cache entry at a time: a second ``prepare`` of the same data waits for the
    first, then reuses it."""
    started = time.time()
    sources, tasks, fingerprints = resolve_sources(cfg)
    root = entry_root(cfg, fingerprints, tasks)
    if not force and (root / "manifest.json").exists():
        log.info("reusing prepared data in %s", root)
        return _usable(PreparedData.load(root), sources)
    if cfg.featurizer.backend == "cuik":
        from graphium_ray.chem.cuik_graph import INSTALL_HINT, installed

        if not installed():  # one line here, not a traceback per actor
            raise ConfigError(f"data.featurizer.backend: cuik needs cuik-molmaker, not installed: {INSTALL_HINT}")
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        lock_path(root).touch(exist_ok=True)
    except OSError as err:
        raise ConfigError(f"data.cache_dir {cfg.cache_dir}: cannot write in {root.parent} ({err.strerror})") from None
    with cache_entry_lock(root):
        if force:
            shutil.rmtree(root, ignore_errors=True)
        elif (root / "manifest.json").exists():  # built by the prepare this one waited for
            log.info("reusing prepared data in %s (prepared meanwhile by another process)", root)
            return _usable(PreparedData.load(root), sources)
        root.mkdir(exist_ok=True)
        sources = with_scaffold_splits(sources, cfg)
        return _usable(_build(cfg, sources, tasks, fingerprints, root, started, start_ray), sources)


def _build(cfg: DataConfig, sources: list[SourceFile], tasks: list[TaskSpec], fingerprints: dict[str, str],
           root: Path, started: float, start_ray: Callable[[], None] | None = None) -> PreparedData:
    """The stages (ingest, merge, featurize), the reports and the manifest of cache entry ``root``
    (named by its cache key)."""
    layout = LabelLayout.from_tasks(tasks)
    keyed, mols, feats = root / "keyed", root / "molecules", root / "featurized"
    stage_seconds: dict[str, float] = {}
    local = in_driver(sources, cfg)
    if local:
        log.info("preparing in this process (data.prepare_in_driver: %s)", cfg.prepare_in_driver)
    elif start_ray is not None:
        start_ray()
    for stage, run in (("ingest", lambda: _ingest(sources, cfg, keyed, local)),
                       ("merge", lambda: _merge(cfg, layout, keyed, mols, local)),
                       ("featurize", lambda: _featurize(cfg, layout, mols, feats, local))):  # fmt: skip
        stage_started = time.time()
        run()
        stage_seconds[stage] = round(time.time() - stage_started, 2)
    reports_started = time.time()
    skipped = _write_skipped(root, keyed, mols, feats)
    duplicates = _write_conflicts(root, mols)
    if cfg.on_conflict == "error" and duplicates["conflicts"]:
        raise ConfigError(f"{sum(duplicates['conflicts'].values())} conflicting duplicate labels "
                          f"(data.on_conflict=error); see {duplicates['report']}")  # fmt: skip
    from graphium_ray.chem.descriptors import molecule_feature_names
    from graphium_ray.chem.features import atom_feature_dim, bond_feature_dim

    mol_names = molecule_feature_names(list(cfg.featurizer.molecule))
    stats = label_stats(feats, layout, len(mol_names), in_driver=True if local else None)
    rows = stats.pop("rows")
    mol_stats = stats.pop("mol_feat", None)
    manifest = Manifest(
        cache_key=root.name,
        sources=fingerprints,
        tasks=[t.to_dict() for t in tasks],
        label_widths=layout.widths,
        rows_in={**{ds.name: 0 for ds in cfg.datasets}, **_rows_in(keyed)},
        molecules=sum(rows.values()),
        featurized=sum(rows.values()) - rows["skipped"],
        splits={k: v for k, v in rows.items() if k != "skipped"},
        skipped={"total": sum(skipped.values()), "by_stage": skipped, "report": str(root / "skipped.csv")},
        duplicates=duplicates,
        featurizer=cfg.featurizer.without_backend(),  # a checkpoint's inputs, whichever backend computed them
        atom_dim=atom_feature_dim(list(cfg.featurizer.atom_onehot), list(cfg.featurizer.atom_float)),
        bond_dim=bond_feature_dim(list(cfg.featurizer.bond)),
        label_stats=stats,
        molecule_features=molecule_feature_stats(mol_names, mol_stats),
        prepare_seconds=round(time.time() - started, 2),
        stage_seconds={**stage_seconds, "reports_and_stats": round(time.time() - reports_started, 2)},
    )
    write_json_atomic(root / "manifest.json", manifest.to_dict())
    return PreparedData(root, manifest)


def _usable(prepared: PreparedData, sources: list[SourceFile]) -> PreparedData:
    """A preparation without a single usable molecule is an error, after its reports are written."""
    m = prepared.manifest
    if m.featurized == 0:
        files = ", ".join(sorted({s.display_path for s in sources}))
        rows = sum(m.rows_in.values())
        raise ConfigError(f"no valid molecule in {files}: {rows} rows, {m.skipped['total']} skipped"
                          f" — see {m.skipped['report']}")  # fmt: skip
    return prepared
