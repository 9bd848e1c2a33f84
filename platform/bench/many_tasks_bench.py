"""Training-step throughput as the number of tasks grows (LargeMix's PCBA has 1,328 binary tasks;
the offline pretraining mix 210 graph-level regression tasks and a node-level one).

Times ``MultiTaskModule.training_step`` + backward + AdamW step (the code a Ray Train worker runs
every step, without Ray) for GINE 128×4 on batches of drug-like MOSES molecules (the ``molsets``
wheel; the project's reference molecules when it is absent), 1 torch thread, with T label columns
of random labels (30 % missing), for each T in ``--tasks``. Each round times every T once, in
turn; graphs/s per T is the median (min–max) over rounds, and ``vs 1 task`` is its ratio to the
one-task rate of the same round.

To compare two commits, run the same file against each tree, alternating::

    PYTHONPATH=/path/to/other/tree python platform/bench/many_tasks_bench.py --rounds 3

(the script prints which ``graphium_ray`` it imported).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import graphium_ray
from graphium_ray.config import FeaturizerConfig, ModelConfig, RunConfig, TrainConfig
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch
from graphium_ray.manifest import ModelData
from graphium_ray.nn.build import build_network
from graphium_ray.tasks import TaskSpec
from graphium_ray.train.module import MultiTaskModule


def molecules(n: int) -> tuple[list[str], str]:
    """(SMILES, where they came from)."""
    try:
        from graphium_ray.data.pretrain_data import moses_sample

        return [s for _, chunk in moses_sample(n) for s in chunk], "MOSES (molsets)"
    except Exception as error:  # molsets not installed: the reference molecules, repeated
        from graphium_ray.data.builtin import REFERENCE_SMILES

        return (REFERENCE_SMILES * (n // len(REFERENCE_SMILES) + 1))[:n], f"reference molecules ({error})"


def task_batches(smiles: list[str], n_tasks: int, kind: str, batch_size: int, seed: int = 0):
    """(tasks, model data, batches): ``n_tasks`` graph-level tasks of ``kind`` with random labels
    (30 % missing) on the featurized ``smiles``, cut into batches of ``batch_size``."""
    rng = np.random.default_rng(seed)
    if kind == "binary":
        y = (rng.random((len(smiles), n_tasks)) < 0.3).astype(np.float32)
    else:
        y = rng.normal(size=(len(smiles), n_tasks)).astype(np.float32)
    y[rng.random(y.shape) < 0.3] = np.nan
    tasks = [TaskSpec("d", f"t{i}", "graph", kind, "bce" if kind == "binary" else "mse",
                      ("auroc",) if kind == "binary" else ("mae",), kind == "regression") for i in range(n_tasks)]  # fmt: skip
    feats = featurize_smiles(smiles, y, FeaturizerConfig())
    widths = {"graph": n_tasks, "node": 0, "edge": 0}
    batches = [rows_to_batch(feats.slice(i, batch_size), widths, bond_dim=13)
               for i in range(0, len(smiles) - batch_size + 1, batch_size)]  # fmt: skip
    stats = {"graph": {"count": [len(smiles)] * n_tasks, "mean": [0.0] * n_tasks, "std": [1.0] * n_tasks}}
    data = ModelData(tasks=[t.to_dict() for t in tasks], label_widths=widths, atom_dim=batches[0].x.shape[1],
                     bond_dim=13, label_stats=stats, featurizer=FeaturizerConfig().model_dump(mode="json"))  # fmt: skip
    return tasks, data, batches


def task_module(tasks, data, batches, seed: int = 0, width: int = 128, head_width: int = 64) -> MultiTaskModule:
    """A freshly initialised (``seed``) GINE ``width`` × 4 ``MultiTaskModule`` with ``head_width``-wide heads."""
    cfg = RunConfig(data={"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]},
                    model=ModelConfig(layer="gine", hidden_dim=width, head_hidden_dim=head_width, num_layers=4))  # fmt: skip
    torch.manual_seed(seed)
    net = build_network(cfg.model, data).model
    return MultiTaskModule(net, tasks, data.label_stats, TrainConfig(), steps_per_epoch=len(batches))


def setup(smiles: list[str], n_tasks: int, kind: str, batch_size: int, seed: int = 0):
    """(module, optimizer, batches) for ``n_tasks`` graph-level tasks of ``kind`` (GINE 128×4)."""
    tasks, data, batches = task_batches(smiles, n_tasks, kind, batch_size, seed)
    module = task_module(tasks, data, batches, seed)
    return module, torch.optim.AdamW(module.net.parameters(), lr=1e-3), batches


def graphs_per_s(module, optimizer, batches, steps: int) -> float:
    def step(i: int) -> None:
        optimizer.zero_grad()
        module.training_step(batches[i % len(batches)], i).backward()
        optimizer.step()

    for i in range(3):  # warm-up
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps * batches[0].num_graphs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 12, 211, 1328])
    parser.add_argument("--kind", choices=["regression", "binary"], default="binary")
    parser.add_argument("--molecules", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    smiles, source = molecules(args.molecules)
    setups = {t: setup(smiles, t, args.kind, args.batch_size) for t in args.tasks}
    rates: dict[int, list[float]] = {t: [] for t in args.tasks}
    for _ in range(args.rounds):
        for t in args.tasks:
            rates[t].append(graphs_per_s(*setups[t], args.steps))
    base = min(args.tasks)
    result = {
        "graphium_ray": graphium_ray.__file__, "kind": args.kind, "batch_size": args.batch_size,
        "molecules": len(smiles), "source": source, "threads": 1,
        "graphs_per_s": {t: {"median": float(np.median(r)), "min": min(r), "max": max(r)} for t, r in rates.items()},
        f"vs_{base}_task": {t: float(np.median(np.array(r) / np.array(rates[base]))) for t, r in rates.items()},
    }  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
