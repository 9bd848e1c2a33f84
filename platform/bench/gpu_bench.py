"""GPU throughput of the ToyMix GINE model (sweeps/toymix.yaml's model, Laplacian + random-walk PEs)
at batch sizes 256 … 4096 with bf16 autocast, and whether the data path keeps the GPU busy.

Per batch size, one training step = forward + masked multitask loss + backward + AdamW step:

* ``model_only``: batches collated and moved to the GPU beforehand (the GPU's ceiling);
* ``with_data_path``: every step collates its batch from the featurized Arrow rows (our
  ``collate_arrays``) in a background thread, pins it and copies it asynchronously, as training
  does; ``fed_fraction`` = with_data_path / model_only (1.0 = the data path never stalls the GPU);
* ``gpu_util_pct``: mean of ``torch.cuda.utilization()`` samples during the data-path run
  (when NVML is available);
* with ``--compile``, ``static_eager`` / ``static_compiled``: the same step on static-shape
  batches (``StaticBatcher``: padded to fixed node / edge / graph budgets, what ``train.static_shapes``
  feeds), eager and under ``torch.compile(dynamic=False, mode=--compile-mode)`` (default
  ``reduce-overhead``: CUDA graphs, one launch per captured graph instead of one per kernel),
  graphs/s counting real graphs only; ``compile_s``: the first compiled steps (compilation).

Without CUDA it runs on CPU in float32 (to keep the script tested in CI), e.g.
``--batch-sizes 16 32 --molecules 128 --steps 2``. On a GPU machine (``--smiles-file``: the same
molecules written beforehand where the registry packages are installed):

    python platform/bench/gpu_bench.py --molecules 16384 --steps 30
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from featurize_bench import drug_like  # noqa: E402

from graphium_ray.batch import GraphBatch  # noqa: E402
from graphium_ray.chem.features import atom_feature_dim  # noqa: E402
from graphium_ray.config import FeaturizerConfig, ModelConfig  # noqa: E402
from graphium_ray.data.builtin import qm9_sample  # noqa: E402
from graphium_ray.data.collate import collate_arrays  # noqa: E402
from graphium_ray.data.in_memory import featurize_smiles  # noqa: E402
from graphium_ray.data.static_shapes import StaticBatcher, StaticShape  # noqa: E402
from graphium_ray.nn.network import MultiTaskGNN  # noqa: E402
from graphium_ray.tasks import TaskSpec  # noqa: E402
from graphium_ray.train.losses import multitask_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PE = {"laplacian_k": 8, "random_walk_k": 16}
# ToyMix's graph tasks: 19 QM9 regression + 12 Tox21 binary + 3 ZINC regression
TASKS = ([TaskSpec("qm9", f"q{i}", "graph", "regression", "mae", ("mae",), True) for i in range(19)]
         + [TaskSpec("tox21", f"t{i}", "graph", "binary", "bce", ("auroc",), False) for i in range(12)]
         + [TaskSpec("zinc", f"z{i}", "graph", "regression", "mae", ("mae",), True) for i in range(3)])  # fmt: skip
WIDTHS = {"graph": len(TASKS), "node": 0, "edge": 0}


def pinned(batch: GraphBatch) -> GraphBatch:
    return GraphBatch(
        x=batch.x.pin_memory(), edge_index=batch.edge_index.pin_memory(), edge_attr=batch.edge_attr.pin_memory(),
        batch=batch.batch.pin_memory(), num_graphs=batch.num_graphs,
        pe={k: v.pin_memory() for k, v in batch.pe.items()}, y={k: v.pin_memory() for k, v in batch.y.items()},
    )  # fmt: skip


def prefetched(rows, batch_size: int, steps: int, device, depth: int = 3):
    """Collate (+ pin) in a background thread, copy to the device asynchronously."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    use_pin = device.type == "cuda"

    def produce() -> None:
        for step in range(steps):
            start = (step * batch_size) % max(rows.num_rows - batch_size, 1)
            batch = collate_arrays(rows.slice(start, batch_size), WIDTHS, 13)
            q.put(pinned(batch) if use_pin else batch)
        q.put(None)

    threading.Thread(target=produce, daemon=True).start()
    while (batch := q.get()) is not None:
        yield batch.to(device)


def run(model, optimizer, batches, device, bf16: bool, util: list | None = None, warmup: int = 1,
        graphs_of=lambda batch: batch.num_graphs) -> tuple[float, float]:  # fmt: skip
    """(graphs/s over the steps after the first ``warmup`` — allocator warm-up, cuBLAS set-up,
    compilation —, seconds those warm-up steps took). ``graphs_of``: the graphs a batch counts."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    graphs, started = 0, time.perf_counter()
    warmup_s = 0.0
    for i, batch in enumerate(batches):
        if i == warmup:
            sync()
            warmup_s, started, graphs = time.perf_counter() - started, time.perf_counter(), 0
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(batch)
            loss, _ = multitask_loss({"graph": TASKS}, out, batch.y, per_task=False)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        graphs += graphs_of(batch)
        if util is not None and device.type == "cuda" and i % 5 == 0:
            try:
                util.append(torch.cuda.utilization())
            except Exception:  # NVML missing: no utilization samples
                pass
    sync()
    return graphs / (time.perf_counter() - started), warmup_s


def static_batches(rows, batch_size: int, count: int) -> list[GraphBatch]:
    """``count`` padded batches of one shape, for ``batch_size`` graphs of the data's mean size
    (budgets 10 % above it, as ``train.static_shapes`` sizes them)."""
    nodes = float(np.mean(rows.column("num_nodes").to_numpy())) * 1.1
    edges = float(np.mean(rows.column("num_edges").to_numpy())) * 1.1
    batcher = StaticBatcher(StaticShape.for_batch_size(batch_size, nodes, edges), WIDTHS, 13)
    out = []
    for batch in batcher(rows.slice(s, 4096) for s in range(0, rows.num_rows, 4096)):
        out.append(batch)
        if len(out) == count:
            break
    return out


def static_rates(model_cfg, atom_dim: int, rows, bs: int, steps: int, device, bf16: bool, mode: str) -> dict:
    """Model-only graphs/s on static-shape batches: eager, then compiled (same weights and batches)."""
    batches = [b.to(device) for b in static_batches(rows, bs, 8)]
    real = {id(b): int(b.graph_mask.sum()) for b in batches}  # padding graphs do not count
    out = {}
    for name in ("static_eager", "static_compiled"):
        torch.manual_seed(0)
        model = MultiTaskGNN(model_cfg, atom_dim, 13, TASKS, PE["laplacian_k"], PE["random_walk_k"]).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        forward = torch.compile(model, dynamic=False, mode=mode) if name == "static_compiled" else model
        warmup = 3 if name == "static_compiled" else 1  # compilation (and CUDA-graph capture) happens here
        rate, warmup_s = run(forward, optimizer, (batches[i % len(batches)] for i in range(warmup + steps)), device,
                             bf16, warmup=warmup, graphs_of=lambda b: real[id(b)])  # fmt: skip
        out[f"{name}_warmup_s"], out[f"{name}_graphs_per_s"] = round(warmup_s, 1), round(rate)
    out["compiled_over_eager"] = round(out["static_compiled_graphs_per_s"] / out["static_eager_graphs_per_s"], 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=16384)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--smiles-file", type=Path, help="Parquet with a SMILES column (else half QM9, half MOSES)")
    p.add_argument("--compile", action="store_true", help="also time static-shape batches, eager vs torch.compile")
    p.add_argument("--compile-mode", default="reduce-overhead")
    p.add_argument("--skip-dynamic", action="store_true", help="only the static-shape comparison")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = device.type == "cuda"
    if args.smiles_file:  # e.g. on a GPU machine without the registry packages' data
        smiles = pq.read_table(args.smiles_file, columns=["SMILES"]).column(0).to_pylist()[: args.molecules]
    else:
        smiles = qm9_sample(args.molecules // 2, ["SMILES"]).column("SMILES").to_pylist()
        smiles += drug_like(args.molecules - len(smiles))[0]
    y = np.random.default_rng(0).normal(size=(len(smiles), len(TASKS))).astype(np.float32)
    y[:, 19:31] = (y[:, 19:31] > 0).astype(np.float32)
    featurizer = FeaturizerConfig(positional_encodings=PE)
    rows = featurize_smiles(smiles, y, featurizer)
    atom_dim = atom_feature_dim(list(featurizer.atom_onehot), list(featurizer.atom_float))
    model_cfg = ModelConfig.model_validate(yaml.safe_load((ROOT / "sweeps/toymix.yaml").read_text())["model"])
    results = []
    for bs in args.batch_sizes:
        row = {"batch_size": bs}
        if args.compile:
            row.update(static_rates(model_cfg, atom_dim, rows, bs, args.steps, device, bf16, args.compile_mode))
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress (compilation takes a while)
        if args.skip_dynamic:
            results.append(row)
            continue
        torch.manual_seed(0)
        model = MultiTaskGNN(model_cfg, atom_dim, 13, TASKS, PE["laplacian_k"], PE["random_walk_k"]).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        resident = [collate_arrays(rows.slice((s * bs) % max(rows.num_rows - bs, 1), bs), WIDTHS, 13).to(device)
                    for s in range(min(args.steps, 8))]  # fmt: skip
        ceiling, _ = run(model, optimizer, (resident[s % len(resident)] for s in range(args.steps)), device, bf16)
        util: list[float] = []
        fed, _ = run(model, optimizer, prefetched(rows, bs, args.steps, device), device, bf16, util)
        results.append({**row, "model_only_graphs_per_s": round(ceiling), "with_data_path_graphs_per_s": round(fed),
                        "fed_fraction": round(fed / ceiling, 3),
                        "gpu_util_pct": round(float(np.mean(util)), 1) if util else None})  # fmt: skip
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(json.dumps({"device": name, "bf16": bf16, "molecules": len(smiles), "results": results}, indent=2))


if __name__ == "__main__":
    main()
