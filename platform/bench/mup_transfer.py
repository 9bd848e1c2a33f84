"""µP transfer experiment: validation loss vs learning rate at several widths, SP vs µP.

Same model, optimizer builder and masked loss as `graphium-ray train`, driven by a plain
in-process loop (48+ trainings do not fit Ray Train start-up costs on a 2-core machine).
Data: a QM9 sample from qm9pack (homo, lumo, gap in Hartree; normalized with train statistics),
deterministic 80/20 split. Prints JSON and writes a PNG with one curve per width.

    python platform/bench/mup_transfer.py --molecules 1500 --widths 32 64 128 256 --steps 300
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from graphium_ray.config import FeaturizerConfig, ModelConfig, RunConfig, TrainConfig
from graphium_ray.data.builtin import qm9_sample
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch
from graphium_ray.manifest import ModelData
from graphium_ray.nn.build import build_network
from graphium_ray.tasks import TaskSpec
from graphium_ray.train.losses import multitask_loss
from graphium_ray.train.optim import build_optimizer

TASKS = [TaskSpec("qm9", c, "graph", "regression", "mse", ("mae",), True) for c in ("homo", "lumo", "gap")]


def batches(n: int, batch_size: int, seed: int = 0):
    table = qm9_sample(n, ["SMILES", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au"]).to_pydict()
    y = np.array([table["HOMO_au"], table["LUMO_au"], table["HOMO_LUMO_gap_au"]], dtype=np.float32).T
    order = np.random.default_rng(seed).permutation(len(y))
    train_idx, val_idx = order[: int(0.8 * len(y))], order[int(0.8 * len(y)) :]
    mean, std = y[train_idx].mean(0), y[train_idx].std(0)
    y = (y - mean) / std
    feats = featurize_smiles(table["SMILES"], y, FeaturizerConfig())

    def collate(idx):
        return rows_to_batch(feats.take(pa.array(idx)), {"graph": 3, "node": 0, "edge": 0}, bond_dim=13)

    train = [collate(train_idx[i : i + batch_size]) for i in range(0, len(train_idx), batch_size)]
    return train, collate(val_idx)


def run(param: str, width: int, base: int, lr: float, steps: int, train, val, seed: int = 0) -> float:
    torch.manual_seed(seed)
    cfg = RunConfig(data={"datasets": [{"name": "qm9", "path": "-", "tasks": [{"columns": ["gap"]}]}]},
                    model=ModelConfig(layer="gine", hidden_dim=width, base_hidden_dim=base, num_layers=3, norm="layer",
                                      parametrization=param, head_hidden_dim=64, pooling=["sum", "mean"]),
                    train=TrainConfig(lr=lr))  # fmt: skip
    data = ModelData(tasks=[t.to_dict() for t in TASKS], label_widths={"graph": len(TASKS), "node": 0, "edge": 0},
                     atom_dim=val.x.shape[1], bond_dim=13, featurizer=FeaturizerConfig().model_dump(mode="json"))  # fmt: skip
    built = build_network(cfg.model, data)
    model = built.model
    opt = build_optimizer(model, cfg.train, built.lr_mult)
    for step in range(steps):
        batch = train[step % len(train)]
        loss, _ = multitask_loss({"graph": TASKS}, model(batch), batch.y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    model.eval()
    with torch.no_grad():
        val_loss, _ = multitask_loss({"graph": TASKS}, model(val), val.y)
    value = float(val_loss)
    return value if np.isfinite(value) else float("inf")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--molecules", type=int, default=1500)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output", default="docs/mup_transfer")
    args = p.parse_args()
    torch.set_num_threads(1)
    train, val = batches(args.molecules, args.batch_size)
    base = args.widths[0]
    curves = {param: {w: [run(param, w, base, lr, args.steps, train, val) for lr in args.lrs] for w in args.widths}
              for param in ("sp", "mup")}  # fmt: skip
    best = {param: {w: args.lrs[int(np.argmin(v))] for w, v in c.items()} for param, c in curves.items()}
    spread = {param: float(np.log10(max(b.values()) / min(b.values()))) for param, b in best.items()}
    result = {"lrs": args.lrs, "val_loss": curves, "best_lr": best, "best_lr_spread_decades": spread,
              "settings": vars(args)}  # fmt: skip
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mup_transfer.json").write_text(json.dumps(result, indent=1))
    plot(result, out / "mup_transfer.png")
    print(json.dumps({"best_lr": best, "best_lr_spread_decades": spread}, indent=1))


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, param in zip(axes, ("sp", "mup"), strict=True):
        for width, losses in result["val_loss"][param].items():
            ax.plot(result["lrs"], np.minimum(losses, 10.0), marker="o", label=f"width {width}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_title({"sp": "standard parametrization", "mup": "µP"}[param])
    axes[0].set_ylabel("validation loss (normalized MSE, 3 QM9 tasks)")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
