"""``prepare``: sources → molecule shards → featurized cache + manifest + skipped report.

Stages are resumable: keyed rows are complete when ``keyed/_SUCCESS`` exists; a molecule
shard exists only once fully written; a featurized shard counts as done only when its row
count equals its molecule shard's. A rerun redoes only what is missing. A finished cache
(``manifest.json`` present) is reused as is.
"""

from __future__ import annotations

import csv
import logging
import shutil
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from graphium_ray.chem.features import atom_feature_dim, bond_feature_dim
from graphium_ray.config import ConfigError, DataConfig
from graphium_ray.data.cache import PreparedData, cache_key, write_json_atomic
from graphium_ray.data.featurize import Featurizer
from graphium_ray.data.ingest import SKIPPED_BUCKET, KeyMolecules, LabelLayout, SourceFile, merge_bucket, read_rows
from graphium_ray.data.reader import read_parquet_files
from graphium_ray.data.sources import file_format, fingerprint, localize, read_header, resolve_paths
from graphium_ray.data.split_file import read_split_file
from graphium_ray.data.stats import PartialStats, reduce_stats
from graphium_ray.tasks import TaskSpec, dataset_tasks

log = logging.getLogger(__name__)


def resolve_sources(cfg: DataConfig) -> tuple[list[SourceFile], list[TaskSpec], dict[str, str]]:
    """Resolve files, expand label wildcards against headers and fingerprint every file."""
    download_dir = Path(cfg.cache_dir) / "downloads"
    sources, tasks, fingerprints = [], [], {}
    for ds in cfg.datasets:
        where = f"datasets.{ds.name}.path"
        paths = resolve_paths(ds.paths, where)
        if ds.split_file and len(paths) != 1:
            raise ConfigError(f"datasets.{ds.name}.split_file: needs exactly one data file, found {len(paths)}")
        ds_tasks: list[TaskSpec] | None = None
        for display in paths:
            local = localize(display, download_dir)
            fmt = file_format(local, ds.format)
            header = read_header(local, fmt)
            found = dataset_tasks(ds, header, f"{display} (datasets.{ds.name})")
            if ds_tasks is not None and [t.column for t in found] != [t.column for t in ds_tasks]:
                raise ConfigError(f"{display} (datasets.{ds.name}): label columns differ from the dataset's first file")
            ds_tasks = found
            fingerprints[display] = fingerprint(local)
            cols = {lvl: tuple(t.column for t in found if t.level == lvl) for lvl in ("graph", "node", "edge")}
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
                )  # fmt: skip
            )
        tasks.extend(ds_tasks or [])
        if ds.split_file:
            fingerprints[ds.split_file] = fingerprint(ds.split_file)
    return sources, tasks, fingerprints


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


READ_CPUS = 0.25  # reading/parsing tasks: small logical share so actor pools never starve them


def actor_pool(cfg: DataConfig) -> dict:
    """map_batches arguments for an RDKit actor pool sized to the cluster. On a 1-CPU cluster each
    actor claims half a CPU, or Ray Data's file listing (1 CPU) could never be scheduled."""
    cpus = cluster_cpus()
    return {
        "compute": ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.featurize_concurrency or cpus),
        "num_cpus": 1.0 if cpus >= 2 else 0.5,
    }


def _ingest(sources: list[SourceFile], cfg: DataConfig, keyed_dir: Path) -> None:
    if (keyed_dir / "_SUCCESS").exists():
        return
    shutil.rmtree(keyed_dir, ignore_errors=True)
    rows_per_batch = cfg.batch_rows

    def read(batch: dict) -> object:
        for item in batch["item"]:
            yield from read_rows(item, rows_per_batch)

    ds = ray.data.from_items(sources, override_num_blocks=len(sources))
    ds = ds.map_batches(read, batch_size=1, batch_format="numpy", num_cpus=READ_CPUS)
    ds = ds.map_batches(
        KeyMolecules,
        fn_constructor_kwargs={"num_buckets": cfg.num_shards},
        batch_size=rows_per_batch,
        batch_format="pyarrow",
        **actor_pool(cfg),
    )
    ds.write_parquet(str(keyed_dir), partition_cols=["bucket"], ray_remote_args={"num_cpus": READ_CPUS})
    (keyed_dir / "_SUCCESS").touch()


@ray.remote(num_cpus=READ_CPUS * 2)
def _merge_task(bucket_dir: str, out_path: str, skipped_path: str, layout: LabelLayout, seed: int, fractions) -> int:
    return merge_bucket(Path(bucket_dir), Path(out_path), Path(skipped_path), layout, seed, fractions)


def _merge(cfg: DataConfig, layout: LabelLayout, keyed_dir: Path, mol_dir: Path) -> None:
    mol_dir.mkdir(parents=True, exist_ok=True)
    pending = []
    for b in range(cfg.num_shards):
        out = mol_dir / f"shard-{b:05d}.parquet"
        if not out.exists():
            skipped = mol_dir / f"skipped-{b:05d}.parquet"
            pending.append(_merge_task.remote(str(keyed_dir / f"bucket={b}"), str(out), str(skipped), layout,
                                              cfg.split.seed, tuple(cfg.split.fractions)))  # fmt: skip
    ray.get(pending)


class _FeaturizeShard(Featurizer):
    """Featurizer that keeps the molecule shard name (from the read path) for partitioning."""

    def __call__(self, table):
        shards = [Path(p).name.removesuffix(".parquet") for p in table.column("path").to_pylist()]
        import pyarrow as pa

        return super().__call__(table).append_column("shard", pa.array(shards, pa.string()))


def _shard_done(mol_file: Path, feat_dir: Path) -> bool:
    part = feat_dir / f"shard={mol_file.stem}"
    if not part.is_dir():
        return False
    written = sum(pq.ParquetFile(f).metadata.num_rows for f in part.glob("*.parquet"))
    return written == pq.ParquetFile(mol_file).metadata.num_rows


def _featurize(cfg: DataConfig, layout: LabelLayout, mol_dir: Path, feat_dir: Path) -> None:
    mol_files = sorted(mol_dir.glob("shard-*.parquet"))
    pending = [f for f in mol_files if pq.ParquetFile(f).metadata.num_rows and not _shard_done(f, feat_dir)]
    if not pending:
        return
    for f in pending:
        shutil.rmtree(feat_dir / f"shard={f.stem}", ignore_errors=True)
    ds = read_parquet_files([str(f) for f in pending], rows_per_batch=cfg.batch_rows, with_path=True)
    ds = ds.map_batches(
        _FeaturizeShard,
        fn_constructor_kwargs={
            "cfg": cfg.featurizer,
            "num_node_tasks": layout.widths["node"],
            "num_edge_tasks": layout.widths["edge"],
        },  # fmt: skip
        batch_size=cfg.batch_rows,
        batch_format="pyarrow",
        **actor_pool(cfg),
    )
    ds.write_parquet(str(feat_dir), partition_cols=["shard"], ray_remote_args={"num_cpus": READ_CPUS})


def _label_stats(feat_dir: Path, layout: LabelLayout) -> dict:
    files = sorted(str(f) for f in feat_dir.glob("shard=*/*.parquet"))
    ds = read_parquet_files(files, columns=["split", "skip_reason", "y_graph", "y_node", "y_edge"])
    partials = ds.map_batches(PartialStats, fn_constructor_kwargs={"widths": layout.widths}, batch_format="pyarrow",
                              compute=ray.data.ActorPoolStrategy(size=1), num_cpus=READ_CPUS).take_all()  # fmt: skip
    return reduce_stats(partials, layout.widths)


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
    feat = pads.dataset(str(feat_dir), format="parquet", partitioning="hive")
    failed = feat.to_table(columns=["sources", "skip_reason", "mol_key"], filter=pads.field("skip_reason").is_valid())
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


def _rows_in(keyed_dir: Path) -> dict[str, int]:
    """Rows read per dataset (streamed batch by batch)."""
    import pyarrow.dataset as pads

    counts: dict[str, int] = {}
    scanner = pads.dataset(str(keyed_dir), format="parquet", partitioning="hive").scanner(columns=["dataset"])
    for batch in scanner.to_batches():
        for item in pc.value_counts(batch.column(0)).to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return dict(sorted(counts.items()))


def prepare(cfg: DataConfig, force: bool = False) -> PreparedData:
    """Run (or reuse) the whole preparation; Ray must already be initialized."""
    started = time.time()
    sources, tasks, fingerprints = resolve_sources(cfg)
    key = cache_key(cfg, fingerprints, tasks)
    root = Path(cfg.cache_dir).resolve() / key
    if force:
        shutil.rmtree(root, ignore_errors=True)
    if (root / "manifest.json").exists():
        log.info("reusing prepared data in %s", root)
        return PreparedData.load(root)
    root.mkdir(parents=True, exist_ok=True)
    layout = LabelLayout.from_tasks(tasks)
    keyed, mols, feats = root / "keyed", root / "molecules", root / "featurized"
    _ingest(sources, cfg, keyed)
    _merge(cfg, layout, keyed, mols)
    _featurize(cfg, layout, mols, feats)
    skipped = _write_skipped(root, keyed, mols, feats)
    stats = _label_stats(feats, layout)
    rows = stats.pop("rows")
    manifest = {
        "cache_key": key,
        "sources": fingerprints,
        "tasks": [t.to_dict() for t in tasks],
        "label_widths": layout.widths,
        "rows_in": _rows_in(keyed),
        "molecules": sum(rows.values()),
        "featurized": sum(rows.values()) - rows["skipped"],
        "splits": {k: v for k, v in rows.items() if k != "skipped"},
        "skipped": {"total": sum(skipped.values()), "by_stage": skipped, "report": str(root / "skipped.csv")},
        "featurizer": cfg.featurizer.model_dump(mode="json"),
        "atom_dim": atom_feature_dim(list(cfg.featurizer.atom_onehot), list(cfg.featurizer.atom_float)),
        "bond_dim": bond_feature_dim(list(cfg.featurizer.bond)),
        "label_stats": stats,
        "prepare_seconds": round(time.time() - started, 2),
    }
    write_json_atomic(root / "manifest.json", manifest)
    return PreparedData(root, manifest)
