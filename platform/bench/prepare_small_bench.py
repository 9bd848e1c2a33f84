"""``prepare`` of small datasets: in the driver process vs as Ray Data jobs on the cluster.

For each dataset (the downstream sets and Tox21 of ``../shared/data``) and featurizer (the default
atom/bond features, and with RDKit's 2D descriptors as molecule inputs, as ``sweeps/small_data.yaml``),
prepares the same cache with ``data.prepare_in_driver: always`` and ``never``, alternating, each
time from scratch (``force``), on one local Ray cluster; reports the median and range of the wall
time of each, the per-molecule cost of the in-driver path (what ``auto`` estimates with), and which
path ``auto`` picks. The two caches are compared file by file (they must be identical).

    python platform/bench/prepare_small_bench.py --repeats 3 --num-cpus 2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("GRAPHIUM_RAY_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = {  # name: (file, label column, kind)
    "freesolv": ("downstream/freesolv.csv", "expt", "regression"),
    "esol": ("downstream/esol.csv", "measured log solubility in mols per litre", "regression"),
    "bbbp": ("downstream/bbbp.csv", "p_np", "binary"),
    "lipophilicity": ("downstream/lipophilicity.csv", "lipo", "regression"),
    "tox21": ("toymix/tox21.csv", "NR-AR", "binary"),
}


def config(name: str, molecule_sets: list[str], cache: str, where: str):
    from graphium_ray.config import validate

    path, column, kind = DATASETS[name]
    raw = {"name": name, "data": {
        "cache_dir": cache, "num_shards": 2, "prepare_in_driver": where, "split": {"kind": "scaffold", "seed": 0},
        "featurizer": {"molecule": molecule_sets},
        "datasets": [{"name": name, "path": str(SHARED / path), "smiles_column": "smiles",
                      "tasks": [{"columns": [column], "kind": kind}]}]}}  # fmt: skip
    return validate(raw, name).data


def same_cache(a: Path, b: Path) -> bool:
    """Every molecule and featurized file of two cache entries holds the same rows (NaN equal to NaN)."""

    def rows(path: Path) -> str:
        return repr([{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                     for r in pq.read_table(path).to_pylist()])  # fmt: skip

    for sub in ("molecules", "featurized"):
        files = sorted(p.relative_to(a / sub) for p in (a / sub).rglob("*.parquet"))
        if files != sorted(p.relative_to(b / sub) for p in (b / sub).rglob("*.parquet")):
            return False
        if any(rows(a / sub / f) != rows(b / sub / f) for f in files):
            return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num-cpus", type=int, default=2)
    args = p.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs the shared datasets at {SHARED} (or GRAPHIUM_RAY_SHARED_DATA)")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    import ray

    from graphium_ray.data.in_driver import SECONDS_PER_MOLECULE, SECONDS_PER_MOLECULE_FEATURE_SET
    from graphium_ray.data.prepare import in_driver, prepare, resolve_sources

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="prepare_small_"))
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {args.num_cpus} CPUs, {args.repeats} alternating repeats, medians (min-max)")
    print("| dataset | molecule inputs | rows | in the driver | on the cluster | driver / cluster | driver ms per molecule"
          " (estimate) | auto picks | caches identical |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    for name in args.datasets:
        for sets in ([], ["rdkit2d"]):
            times: dict[str, list[float]] = {"always": [], "never": []}
            roots = {}
            for r in range(args.repeats):
                for where in (("always", "never") if r % 2 == 0 else ("never", "always")):
                    cfg = config(name, sets, str(work / where), where)
                    started = time.perf_counter()
                    prepared = prepare(cfg, force=True)
                    times[where].append(time.perf_counter() - started)
                    roots[where] = prepared.root
            rows = sum(prepared.manifest.rows_in.values())
            auto = config(name, sets, str(work / "auto"), "auto")
            picks = "driver" if in_driver(resolve_sources(auto)[0], auto) else "cluster"
            d, c = np.median(times["always"]), np.median(times["never"])
            estimate = (SECONDS_PER_MOLECULE + SECONDS_PER_MOLECULE_FEATURE_SET * len(sets)) * 1e3
            print(f"| {name} | {'+'.join(sets) or 'none'} | {rows:,} | {d:.2f} s ({min(times['always']):.2f}-"
                  f"{max(times['always']):.2f}) | {c:.2f} s ({min(times['never']):.2f}-{max(times['never']):.2f}) | "
                  f"{d / c:.2f} | {d / rows * 1e3:.2f} ({estimate:.1f}) | {picks} | "
                  f"{'yes' if same_cache(roots['always'], roots['never']) else 'NO'} |", flush=True)  # fmt: skip
    ray.shutdown()


if __name__ == "__main__":
    main()
