"""The optimizer's share of a CPU training step: AdamW as torch's per-tensor loop (its default on the
CPU) vs its fused kernel (what :func:`graphium_ray.train.optim.build_optimizer` builds).

For each model width, one full training step (``MultiTaskModule.training_step`` + backward + gradient
clipping + AdamW step + zero_grad, the work a Ray Train worker does per batch, without Ray) on
batches of drug-like MOSES molecules (the ``molsets`` wheel; the project's reference molecules when
it is absent), 1 torch thread, one regression task. Each round times both optimizers in turn, from
the same initial weights; graphs/s are medians (min–max) over rounds and the ratio is taken per
round. ``step_ms`` times ``optimizer.step()`` alone on the same parameters and gradients.
``max_rel_param_diff_after`` is max |θ_fused − θ_loop| / max |θ_loop| after 1, 5, 20 and 60 training
steps, both started from the same weights on the same batches: the same math, so 0 or float32
rounding (~1e-7) at first; then, as with any change in the order of float operations (another
thread count, another BLAS), the rounding differences grow along the training trajectory (Adam
divides by √v, tiny for weights with near-zero gradients), and the two runs are two equally valid
trajectories: compare their losses and metrics, not their weights.

    python platform/bench/optimizer_bench.py --widths 64 128 300 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from many_tasks_bench import molecules, task_batches, task_module  # noqa: E402  (as that bench builds them)

from graphium_ray.config import TrainConfig  # noqa: E402
from graphium_ray.train.optim import build_optimizer  # noqa: E402


def make(width: int, prepared, fused: bool):
    """(module, optimizer, batches): the same initial GINE ``width`` × 4 every call, on ``prepared``
    = :func:`task_batches`'s (tasks, data, batches), with fused AdamW or torch's per-tensor loop."""
    tasks, data, batches = prepared
    module = task_module(tasks, data, batches, width=width, head_width=width)
    train = TrainConfig(lr=1e-3)
    optimizer = build_optimizer(module.net, train) if fused else torch.optim.AdamW(
        module.net.parameters(), lr=1e-3, weight_decay=train.weight_decay, foreach=False)  # fmt: skip
    return module, optimizer, batches


def train_step(module, optimizer, batches, i: int, clip: float = 5.0) -> None:
    """One full step on batch ``i`` (cycling): loss, backward, clipping, AdamW, zero_grad."""
    module.training_step(batches[i % len(batches)], i).backward()
    torch.nn.utils.clip_grad_norm_(module.net.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def train_steps(module, optimizer, batches, steps: int) -> float:
    """graphs/s over ``steps`` full training steps (after 3 untimed ones)."""
    for i in range(3):
        train_step(module, optimizer, batches, i)
    start = time.perf_counter()
    for i in range(steps):
        train_step(module, optimizer, batches, i)
    return steps * batches[0].num_graphs / (time.perf_counter() - start)


def param_divergence(width: int, prepared, checkpoints=(1, 5, 20, 60)) -> dict[int, float]:
    """max |θ_fused − θ_loop| / max |θ_loop| after each number of training steps in ``checkpoints``."""
    runs = [make(width, prepared, fused) for fused in (False, True)]
    out = {}
    for i in range(max(checkpoints)):
        for run in runs:
            train_step(*run, i)
        if i + 1 in checkpoints:
            with torch.no_grad():
                loop, fused = (dict(r[0].net.named_parameters()) for r in runs)
                scale = max(float(p.abs().max()) for p in loop.values())
                out[i + 1] = max(float((p - loop[k]).abs().max()) for k, p in fused.items()) / scale
    return out


def step_ms(optimizer, repeats: int = 200) -> float:
    for p in (p for g in optimizer.param_groups for p in g["params"]):
        p.grad = torch.randn_like(p) * 1e-3
    start = time.perf_counter()
    for _ in range(repeats):
        optimizer.step()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 300])
    parser.add_argument("--molecules", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    smiles, source = molecules(args.molecules)
    result: dict = {"source": source, "molecules": len(smiles), "batch_size": args.batch_size, "threads": 1,
                    "torch": torch.__version__, "widths": {}}  # fmt: skip
    prepared = task_batches(smiles, 1, "regression", args.batch_size)  # featurized once, for every model
    for width in args.widths:
        rates: dict[str, list[float]] = {"per_tensor_loop": [], "fused": []}
        ms: dict[str, list[float]] = {"per_tensor_loop": [], "fused": []}
        for _ in range(args.rounds):
            for name, fused in (("per_tensor_loop", False), ("fused", True)):
                module, optimizer, batches = make(width, prepared, fused)
                rates[name].append(train_steps(module, optimizer, batches, args.steps))
                ms[name].append(step_ms(make(width, prepared, fused)[1]))
        params = sum(p.numel() for p in module.net.parameters())
        result["widths"][width] = {
            "parameters": params,
            "graphs_per_s": {k: {"median": round(statistics.median(v)), "min": round(min(v)), "max": round(max(v))}
                             for k, v in rates.items()},
            "ratio_fused_vs_loop_median": round(float(np.median(np.array(rates["fused"]) / np.array(rates["per_tensor_loop"]))), 3),
            "ratio_per_round": [round(f / p, 3) for f, p in zip(rates["fused"], rates["per_tensor_loop"], strict=True)],
            "step_ms_median": {k: round(statistics.median(v), 3) for k, v in ms.items()},
            "max_rel_param_diff_after": param_divergence(width, prepared),
        }  # fmt: skip
        print(json.dumps({width: result["widths"][width]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
