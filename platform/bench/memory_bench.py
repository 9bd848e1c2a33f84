"""Peak memory of ``prepare`` vs dataset size: is it flat?

For each size, writes the input (full QM9 from qm9pack, homo/lumo/gap; sizes above 130,831 repeat
it with distinct molecule keys by adding an isotope-labelled helium fragment ``.[<i>He]`` to copy
i ≥ 1, i.e. one isolated atom more per molecule) as 8 Parquet shards, then runs ``prepare`` in a
fresh child process that starts its own local Ray cluster. The parent samples, twice a second,
the proportional set size (PSS: shared pages such as the object store split between the processes
that map them, so the sum is not double counted) of the child and every process under it (GCS,
raylet, dashboard, workers) and reports the peak of the sum and the wall time.

    python platform/bench/memory_bench.py --sizes 130831 1000000 --num-cpus 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from graphium_ray.data.builtin import qm9_sample

CHILD = """
import json, os, sys, time
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
import ray
from graphium_ray.config import validate
from graphium_ray.data.prepare import prepare
cfg = validate(json.loads(sys.argv[1]), "memory bench")
ray.init(num_cpus=int(sys.argv[2]), dashboard_host="127.0.0.1", log_to_driver=False)
if float(sys.argv[3]) > 0:  # cap Ray Data's object-store buffering (MB) for this experiment
    from ray.data._internal.execution.interfaces.execution_options import ExecutionResources
    opts = ray.data.DataContext.get_current().execution_options
    opts.resource_limits = ExecutionResources.for_limits(object_store_memory=float(sys.argv[3]) * 2**20)
start = time.time()
prepared = prepare(cfg.data)
print(json.dumps({"featurized": prepared.manifest.featurized, "skipped": prepared.manifest.skipped["total"],
                  "prepare_seconds": round(time.time() - start, 1)}))
ray.shutdown()
"""


def write_input(size: int, out: Path, shards: int = 8) -> None:
    base = qm9_sample(130_831, ["SMILES", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au"])
    base = base.rename_columns(["smiles", "homo", "lumo", "gap"]).slice(0, min(size, 130_831))
    out.mkdir(parents=True, exist_ok=True)
    per_shard = -(-size // shards)
    written, copy, parts = 0, 0, []
    while written < size:
        take = base.slice(0, min(base.num_rows, size - written))
        if copy:
            tagged = [f"{s}.[{copy + 2}He]" for s in take.column("smiles").to_pylist()]
            take = take.set_column(0, "smiles", pa.array(tagged))
        parts.append(take)
        written += take.num_rows
        copy += 1
    table = pa.concat_tables(parts)
    for i in range(shards):
        pq.write_table(table.slice(i * per_shard, per_shard), out / f"part-{i}.parquet")


def pss_tree(root: psutil.Process) -> int:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measure(size: int, num_cpus: int, work: Path, num_shards: int, cap_mb: float = 0.0) -> dict:
    if not (work / f"in_{size}").is_dir():
        write_input(size, work / f"in_{size}")
    cfg = {"data": {"cache_dir": str(work / f"cache_{size}_{num_shards}"), "num_shards": num_shards,
                    "datasets": [{"name": "qm9", "path": str(work / f"in_{size}" / "*.parquet"),
                                  "tasks": [{"columns": ["homo", "lumo", "gap"]}]}]}}  # fmt: skip
    started = time.time()
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(num_cpus), str(cap_mb)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(child.pid)
        while not done.is_set():
            try:
                peak = max(peak, pss_tree(root))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    done.set()
    sampler.join()
    if child.returncode:
        raise RuntimeError(f"prepare of {size} molecules failed (exit {child.returncode}):\n{err[-3000:]}")
    return {"molecules": size, "num_shards": num_shards, "object_store_cap_mb": cap_mb, "peak_pss_mb": round(peak / 2**20), "wall_seconds": round(time.time() - started, 1),
            **json.loads(out.strip().splitlines()[-1])}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[130_831, 1_000_000])
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--num-shards", type=int, default=16, help="data.num_shards (merge buckets)")
    p.add_argument("--work", default=None, help="reuse inputs written by an earlier run")
    p.add_argument("--object-store-cap-mb", type=float, default=0.0, help="cap Ray Data's object store use (0: Ray's default)")
    args = p.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="memory_bench_"))
    runs = [measure(size, args.num_cpus, work, args.num_shards, args.object_store_cap_mb) for size in args.sizes]
    result = {"runs": runs, "peak_ratio_largest_vs_smallest": round(runs[-1]["peak_pss_mb"] / runs[0]["peak_pss_mb"], 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
