"""Peak memory of ``prepare`` vs dataset size: is it flat? And which process grows?

For each size, writes the input as 8 Parquet shards, then runs ``prepare`` in a fresh child
process that starts its own local Ray cluster. The parent samples, twice a second, the
proportional set size (PSS: shared pages such as the object store split between the processes
that map them, so the sum is not double counted) of the child and every process under it (GCS,
raylet, dashboard, workers) and reports the peak of the sum, the wall time, and per process
group (driver, gcs_server, raylet, dashboard, Ray agents, each kind of Ray worker) its peak and
its PSS over time (``--timeline`` writes every sample to a JSON file).

Inputs (``--source``):

* ``moses`` (default): drug-like molecules, every (1,936,962 // n)-th SMILES of MOSES (train +
  test + scaffold test, from the ``molsets`` wheel), labelled with RDKit's Crippen logP, TPSA and
  molecular weight (computed once per size by a 2-process pool, kept in ``--work``).
* ``qm9``: full QM9 from qm9pack (homo/lumo/gap); sizes above 130,831 repeat it with distinct
  molecule keys by adding an isotope-labelled helium fragment ``.[<i>He]`` to copy i ≥ 1.

``--train-epoch`` then trains one epoch streaming from the prepared cache (``--in-memory-mb``: the
train split kept in the worker's memory when it fits that many MB) (a second child process,
``graphium-ray train``'s path, GINE 64×4, 1 worker with all CPUs) and reports graphs/s and its peak.

    python platform/bench/memory_bench.py --sizes 193696 1936962 --num-cpus 2 --train-epoch
    python platform/bench/memory_bench.py --source qm9 --sizes 130831 1000000 --num-cpus 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from graphium_ray.data.builtin import qm9_sample

MOSES_FILES = ("train.csv.gz", "test.csv.gz", "test_scaffolds.csv.gz")
MOSES_TOTAL = 1_936_962
LABELS = {"qm9": ["homo", "lumo", "gap"], "moses": ["logp", "tpsa", "mol_wt"]}

CHILD_PREPARE = """
import json, os, sys, time
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
import ray
from graphium_ray.config import validate
from graphium_ray.data.prepare import prepare
cfg = validate(json.loads(sys.argv[1]), "memory bench")
from graphium_ray.cli import init_ray
init_ray(int(sys.argv[2]))  # its own local cluster, whatever else runs on the machine
if float(sys.argv[3]) > 0:  # cap Ray Data's object store buffering (MB) for this experiment
    from ray.data._internal.execution.interfaces.execution_options import ExecutionResources
    opts = ray.data.DataContext.get_current().execution_options
    opts.resource_limits = ExecutionResources.for_limits(object_store_memory=float(sys.argv[3]) * 2**20)
start = time.time()
prepared = prepare(cfg.data)
print(json.dumps({"featurized": prepared.manifest.featurized, "skipped": prepared.manifest.skipped["total"],
                  "train_graphs": prepared.manifest.splits["train"], "prepare_seconds": round(time.time() - start, 1),
                  "stage_seconds": prepared.manifest.stage_seconds}))
ray.shutdown()
"""

CHILD_TRAIN = """
import json, os, sys, time
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
import ray
from graphium_ray.config import validate
from graphium_ray.data.prepare import prepare
from graphium_ray.train.driver import run_training
cfg = validate(json.loads(sys.argv[1]), "memory bench")
from graphium_ray.cli import init_ray
init_ray(int(sys.argv[2]))  # its own local cluster, whatever else runs on the machine
prepared = prepare(cfg.data)  # the cache is there: only checked
start = time.time()
history = run_training(cfg, prepared, sys.argv[3])["history"]
print(json.dumps({"train_graphs_per_s": round(history[0]["graphs_per_s"]), "train_seconds": round(time.time() - start, 1)}))
ray.shutdown()
"""


def _moses_dir() -> Path:
    from graphium_ray.data.pretrain_data import moses_train_file

    return moses_train_file().parent


def _moses_labels(smiles: list[str]) -> list[tuple[str, float, float, float]]:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

    RDLogger.DisableLog("rdApp.*")
    out = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        if mol is None:  # kept with missing labels: prepare reports it
            out.append((smi, float("nan"), float("nan"), float("nan")))
        else:
            out.append((smi, Crippen.MolLogP(mol), rdMolDescriptors.CalcTPSA(mol), Descriptors.MolWt(mol)))
    return out


def write_moses_input(size: int, out: Path, shards: int = 8) -> None:
    """Every (total // size)-th MOSES SMILES with RDKit logP, TPSA and molecular weight, as ``shards`` files."""
    smiles: list[str] = []
    for name in MOSES_FILES:
        with gzip.open(_moses_dir() / name, "rt") as f:
            next(f)  # header: SMILES
            smiles.extend(line.strip() for line in f)
    smiles = smiles[:: max(1, len(smiles) // size)][:size]
    out.mkdir(parents=True, exist_ok=True)
    per_shard = -(-len(smiles) // shards)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for i in range(shards):
            part = smiles[i * per_shard : (i + 1) * per_shard]
            rows = [r for chunk in pool.map(_moses_labels, [part[j : j + 5000] for j in range(0, len(part), 5000)]) for r in chunk]
            columns = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
            table = pa.table({"smiles": pa.array(columns[0], pa.string()),
                              **{k: pa.array(columns[j + 1], pa.float64()) for j, k in enumerate(LABELS["moses"])}})  # fmt: skip
            pq.write_table(table, out / f"part-{i}.parquet")


def write_qm9_input(size: int, out: Path, shards: int = 8) -> None:
    base = qm9_sample(130_831, ["SMILES", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au"])
    base = base.rename_columns(["smiles", *LABELS["qm9"]]).slice(0, min(size, 130_831))
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


def process_group(proc: psutil.Process, root_pid: int) -> str:
    """Which part of the local cluster a process is: driver, gcs_server, raylet, dashboard, agents,
    or a Ray worker by the name Ray gives it (``ray::KeySourceRows``, ``ray::IDLE``, ...)."""
    if proc.pid == root_pid:
        return "driver"
    name = proc.name()
    if name in ("gcs_server", "raylet") or name.startswith("ray::"):
        return name.split(".")[0] if not name.startswith("ray::") else _worker_group(name)
    if name.startswith("ray-dashboard"):
        return "dashboard"
    cmd = " ".join(proc.cmdline()[:4])
    for key, group in (("dashboard", "dashboard"), ("log_monitor", "log_monitor"), ("monitor.py", "autoscaler_monitor"),
                       ("forkserver", "dashboard"), ("resource_tracker", "dashboard")):  # fmt: skip
        if key in cmd:
            return group
    return f"other:{name}"


def _worker_group(name: str) -> str:
    """``ray::MapWorker(MapBatches(KeySourceRows))`` -> ``ray::KeySourceRows``: the innermost name."""
    inner = name[len("ray::") :].replace(")", "").split("(")[-1]
    return f"ray::{inner}"


def pss_kib(pid: int) -> tuple[int, int]:
    """(PSS, the part of it in shared memory: the object store's pages on /dev/shm) in KiB,
    from ``/proc/<pid>/smaps_rollup`` (one read; psutil's full smaps walk is far slower)."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Pss_Shmem"):
                fields[key] = int(rest.split()[0])
    return fields["Pss"], fields.get("Pss_Shmem", 0)


class TreeSampler:
    """Samples the PSS of a process and every process under it, grouped by :func:`process_group`,
    with the part of each group's PSS that is shared memory (object store pages) beside it."""

    def __init__(self, root_pid: int, interval_s: float = 0.5):
        self.root_pid, self.interval_s = root_pid, interval_s
        self.samples: list[dict] = []  # {"t": s, "total_mb": .., "groups": {group: mb}, "shm": {group: mb}}
        self.pid_peak: dict[int, tuple[str, int]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.time()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.is_set():
            groups: dict[str, int] = defaultdict(int)
            shm: dict[str, int] = defaultdict(int)
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    (pss_k, shm_k), group = pss_kib(proc.pid), process_group(proc, self.root_pid)
                except (OSError, KeyError, psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                pss = pss_k * 1024
                groups[group] += pss
                shm[group] += shm_k * 1024
                if pss > self.pid_peak.get(proc.pid, ("", 0))[1]:
                    self.pid_peak[proc.pid] = (group, pss)
            self.samples.append({"t": round(time.time() - self._start, 1), "total_mb": round(sum(groups.values()) / 2**20),
                                 "groups": {g: round(v / 2**20) for g, v in sorted(groups.items())},
                                 "shm": {g: round(v / 2**20) for g, v in sorted(shm.items()) if v >= 2**20}})  # fmt: skip
            time.sleep(self.interval_s)

    def summary(self) -> dict:
        """Peak of the total, the groups at that moment, each group's own peak and its PSS in the
        first and last tenth of the run (growth), and the five largest single processes."""
        if not self.samples:
            return {"peak_pss_mb": 0}
        peak = max(self.samples, key=lambda s: s["total_mb"])
        names = sorted({g for s in self.samples for g in s["groups"]})
        tenth = max(1, len(self.samples) // 10)

        def mean_of(samples, g):
            return round(float(np.mean([s["groups"].get(g, 0) for s in samples])))

        groups = {g: {"peak_mb": max(s["groups"].get(g, 0) for s in self.samples), "at_total_peak_mb": peak["groups"].get(g, 0),
                      "shared_memory_at_total_peak_mb": peak["shm"].get(g, 0),
                      "first_tenth_mb": mean_of(self.samples[:tenth], g), "last_tenth_mb": mean_of(self.samples[-tenth:], g)}
                  for g in names}  # fmt: skip
        largest = sorted(self.pid_peak.items(), key=lambda kv: -kv[1][1])[:5]
        return {"peak_pss_mb": peak["total_mb"], "peak_at_s": peak["t"], "groups": groups,
                "largest_processes": [{"pid": pid, "group": g, "peak_mb": round(v / 2**20)} for pid, (g, v) in largest]}  # fmt: skip


def run_child(code: str, args: list[str], what: str) -> tuple[dict, TreeSampler]:
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeSampler(child.pid) as sampler:
        out, err = child.communicate()
    if child.returncode:
        raise RuntimeError(f"{what} failed (exit {child.returncode}):\n{err[-3000:]}")
    result = next(line for line in reversed(out.splitlines()) if line.startswith('{"'))  # Ray's log lines may follow
    return json.loads(result), sampler


def input_rows(inputs: Path) -> int:
    """Molecules in the input files of an earlier run (0 if there are none)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in inputs.glob("*.parquet")) if inputs.is_dir() else 0


def measure(size: int, num_cpus: int, work: Path, num_shards: int, cap_mb: float = 0.0, source: str = "moses",
            train_epoch: bool = False, timeline: Path | None = None, backend: str = "rdkit",
            stream_buffer_mb: float | None = None, stream_block_mb: float | None = None,
            in_memory_mb: float = 0.0) -> dict:  # fmt: skip
    inputs = work / f"in_{source}_{size}"
    if input_rows(inputs) != size:  # absent, or left incomplete by an interrupted run: written anew
        shutil.rmtree(inputs, ignore_errors=True)
        partial = inputs.with_name(inputs.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        (write_moses_input if source == "moses" else write_qm9_input)(size, partial)
        partial.rename(inputs)
    if input_rows(inputs) != size:
        raise RuntimeError(f"{inputs} holds {input_rows(inputs)} molecules, not {size}")
    cache = work / f"cache_{source}_{size}_{num_shards}_{num_cpus}cpu_{backend}"  # (the cache key ignores the backend)
    # the distributed pipeline at every size (a small input would otherwise be prepared in the driver)
    cfg = {"data": {"cache_dir": str(cache), "num_shards": num_shards, "featurizer": {"backend": backend},
                    "prepare_in_driver": "never",
                    "datasets": [{"name": source, "path": str(inputs / "*.parquet"), "tasks": [{"columns": LABELS[source]}]}]},
           "model": {"layer": "gine", "hidden_dim": 64, "num_layers": 4},
           "train": {"epochs": 1, "batch_size": 256, "num_workers": 1, "cpus_per_worker": num_cpus - 0.25, "in_memory_mb": in_memory_mb}}  # fmt: skip
    if stream_buffer_mb is not None:
        cfg["train"]["stream_buffer_mb"] = stream_buffer_mb
    if stream_block_mb is not None:
        cfg["train"]["stream_block_mb"] = stream_block_mb
    started = time.time()
    result, sampler = run_child(CHILD_PREPARE, [json.dumps(cfg), str(num_cpus), str(cap_mb)], f"prepare of {size} molecules")
    summary = sampler.summary()
    out = {"source": source, "backend": backend, "molecules": size, "num_shards": num_shards, "object_store_cap_mb": cap_mb,
           "peak_pss_mb": summary["peak_pss_mb"], "wall_seconds": round(time.time() - started, 1), **result,
           "molecules_per_s": round(size / result["prepare_seconds"]) if result["prepare_seconds"] else None, "prepare_memory": summary}  # fmt: skip
    timelines = {"prepare": sampler.samples}
    if train_epoch:
        run_dir = work / f"run_{source}_{size}"
        shutil.rmtree(run_dir, ignore_errors=True)  # a fresh epoch (an old run there would be resumed)
        result, sampler = run_child(CHILD_TRAIN, [json.dumps(cfg), str(num_cpus), str(run_dir)],
                                    f"training epoch on {size} molecules")  # fmt: skip
        out["train_epoch"] = {**result, "memory": sampler.summary()}
        timelines["train"] = sampler.samples
    if timeline is not None:
        timeline.write_text(json.dumps(timelines))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[MOSES_TOTAL // 10, MOSES_TOTAL])
    p.add_argument("--source", choices=["moses", "qm9"], default="moses")
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--num-shards", type=int, default=16, help="data.num_shards (merge buckets)")
    p.add_argument("--work", default=None, help="reuse inputs written by an earlier run")
    p.add_argument("--object-store-cap-mb", type=float, default=0.0, help="cap Ray Data's object store use (0: Ray's default)")
    p.add_argument("--train-epoch", action="store_true", help="then one training epoch streaming from the cache")
    p.add_argument("--timeline", default=None, help="folder for per-sample PSS timelines (JSON per size)")
    p.add_argument("--backend", choices=["rdkit", "cuik"], default="rdkit",
                   help="featurizer.backend (cuik: run this script with cuik-molmaker's environment, BENCHMARKS.md section 1)")
    p.add_argument("--stream-buffer-mb", type=float, default=None,
                   help="train.stream_buffer_mb of the training epoch (default: the config's default)")
    p.add_argument("--stream-block-mb", type=float, default=None,
                   help="train.stream_block_mb of the training epoch (default: Ray Data's block size)")
    p.add_argument("--in-memory-mb", type=float, default=0.0,
                   help="train.in_memory_mb of the training epoch (default 0: streamed; above the split's size: kept in memory)")
    args = p.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="memory_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for size in args.sizes:
        timeline = Path(args.timeline) / f"{args.source}_{size}.json" if args.timeline else None
        if timeline is not None:
            timeline.parent.mkdir(parents=True, exist_ok=True)
        runs.append(measure(size, args.num_cpus, work, args.num_shards, args.object_store_cap_mb, args.source,
                            args.train_epoch, timeline, args.backend, args.stream_buffer_mb,
                            args.stream_block_mb, args.in_memory_mb))  # fmt: skip
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    result = {"runs": runs, "peak_ratio_largest_vs_smallest": round(runs[-1]["peak_pss_mb"] / runs[0]["peak_pss_mb"], 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
