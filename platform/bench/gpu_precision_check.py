"""The training core's GPU path under each ``train.precision``: the ``MultiTaskModule`` trained by a
plain Lightning ``Trainer`` on one device (what each Ray Train worker runs, without Ray around it).

Molecules: ``--smiles-file`` (a Parquet file with a ``SMILES`` column) or the built-in QM9 sample;
labels: RDKit's Crippen logP, TPSA (Å²), molecular weight (Da) and "has a halogen" (binary), split
80/20 at random (seed 0). The model is ``sweeps/toymix.yaml``'s (GINE, Laplacian + random-walk PEs).
Per precision (32, bf16-mixed, 16-mixed; CPU runs 32 and bf16-mixed only) and the same seed:
first and last epoch's train loss, validation MAE per regression task in real units, AUROC of
the binary one (None where val has one class), training graphs/s, and whether every loss was finite. A mixed-precision run
passes when its validation MAEs are within ``--tolerance`` (relative) of float32's, or better.

    python platform/bench/gpu_precision_check.py --molecules 8192 --epochs 15
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pyarrow.parquet as pq
import torch
import yaml
from rdkit import Chem

from graphium_ray.config import FeaturizerConfig, ModelConfig, TrainConfig
from graphium_ray.data.builtin import descriptor_labels, qm9_sample
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch
from graphium_ray.manifest import ModelData
from graphium_ray.nn.build import build_network
from graphium_ray.tasks import TaskSpec
from graphium_ray.train.module import MultiTaskModule

ROOT = Path(__file__).resolve().parents[2]
PE = {"laplacian_k": 8, "random_walk_k": 16}
REGRESSION = ("logp", "tpsa", "mol_wt")
TASKS = [TaskSpec("desc", n, "graph", "regression", "mae", ("mae",), True) for n in REGRESSION] + [
    TaskSpec("desc", "has_halogen", "graph", "binary", "bce", ("auroc",), False)
]
WIDTHS = {"graph": len(TASKS), "node": 0, "edge": 0}


class Batches:
    """A re-iterable list of GraphBatches, reshuffled each pass (seeded)."""

    def __init__(self, batches, shuffle: bool):
        self.batches, self.shuffle, self.epoch = batches, shuffle, 0

    def __iter__(self):
        order = np.random.default_rng(self.epoch).permutation(len(self.batches)) if self.shuffle else range(len(self.batches))
        self.epoch += 1
        return iter([self.batches[i] for i in order])


def load(args) -> tuple[list, list, dict]:
    smiles = (pq.read_table(args.smiles_file, columns=["SMILES"]).column(0).to_pylist()[: args.molecules]
              if args.smiles_file else qm9_sample(args.molecules, ["SMILES"]).column(0).to_pylist())  # fmt: skip
    labels = descriptor_labels(smiles)
    halogen = Chem.MolFromSmarts("[F,Cl,Br,I]")
    labels["has_halogen"] = [float(Chem.MolFromSmiles(s).HasSubstructMatch(halogen)) for s in labels["smiles"]]
    y = np.array([labels[n] for n in (*REGRESSION, "has_halogen")], dtype=np.float32).T
    feats = featurize_smiles(labels["smiles"], y, FeaturizerConfig(positional_encodings=PE))
    feats = feats.filter(feats.column("skip_reason").is_null())
    order = np.random.default_rng(0).permutation(feats.num_rows)
    cut = int(0.8 * len(order))
    train, val = feats.take(order[:cut]), feats.take(order[cut:])
    y_train = y[order[:cut]]

    def batches(table):
        return [rows_to_batch(table.slice(s, args.batch_size), WIDTHS, 13) for s in range(0, table.num_rows, args.batch_size)]

    stats = {"graph": {"count": [cut] * len(TASKS), "mean": y_train.mean(0).tolist(),
                       "std": [*y_train[:, :3].std(0).tolist(), 1.0]}}  # fmt: skip
    return batches(train), batches(val), stats


def run(precision: str, device: str, train_b, val_b, stats: dict, atom_dim: int, epochs: int) -> dict:
    data = ModelData(tasks=[t.to_dict() for t in TASKS], label_widths=WIDTHS, atom_dim=atom_dim, bond_dim=13,
                     label_stats=stats, featurizer=FeaturizerConfig(positional_encodings=PE).model_dump(mode="json"))  # fmt: skip
    model_cfg = ModelConfig.model_validate(yaml.safe_load((ROOT / "sweeps/toymix.yaml").read_text())["model"])
    train_cfg = TrainConfig(epochs=epochs, lr=1e-3, warmup_epochs=1, precision=precision)
    torch.manual_seed(0)
    module = MultiTaskModule(build_network(model_cfg, data).model, TASKS, stats, train_cfg, len(train_b))
    losses: list[float] = []
    timing = {}

    class Record(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if device == "gpu":
                torch.cuda.synchronize()
            timing["start"] = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            if device == "gpu":
                torch.cuda.synchronize()
            timing.setdefault("epochs", []).append(time.perf_counter() - timing["start"])
            total, graphs = module.train_loss_sum()
            losses.append(total / graphs)

    trainer = pl.Trainer(accelerator=device, devices=1, precision=precision, max_epochs=epochs, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, callbacks=[Record()])  # fmt: skip
    trainer.fit(module, train_dataloaders=Batches(train_b, True), val_dataloaders=Batches(val_b, False))
    metrics = module.val_result["metrics"]
    graphs = sum(b.num_graphs for b in train_b)
    steady = timing["epochs"][1:] or timing["epochs"]  # the first epoch holds CUDA/cuBLAS set-up
    return {
        "precision": precision,
        "all_losses_finite": all(math.isfinite(v) for v in losses),
        "train_loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
        "val_mae": {n: round(metrics[f"desc/{n}"]["mae"], 4) for n in REGRESSION},
        "val_auroc_has_halogen": metrics["desc/has_halogen"]["auroc"] and round(metrics["desc/has_halogen"]["auroc"], 4),
        "train_graphs_per_s": round(graphs / float(np.median(steady))),
        "param_dtype": str(next(module.net.parameters()).dtype),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=8192)
    p.add_argument("--smiles-file", type=Path)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--tolerance", type=float, default=0.15, help="relative val-MAE slack of mixed vs float32")
    args = p.parse_args()
    device = "gpu" if torch.cuda.is_available() else "cpu"
    train_b, val_b, stats = load(args)
    atom_dim = train_b[0].x.shape[1]
    precisions = ["32", "bf16-mixed", "16-mixed"] if device == "gpu" else ["32", "bf16-mixed"]
    results = [run(pr, device, train_b, val_b, stats, atom_dim, args.epochs) for pr in precisions]
    ref = results[0]["val_mae"]
    for r in results[1:]:
        r["within_tolerance_of_fp32"] = all(r["val_mae"][n] <= ref[n] * (1 + args.tolerance) for n in REGRESSION)
    name = torch.cuda.get_device_name(0) if device == "gpu" else "cpu"
    print(json.dumps({"device": name, "molecules": sum(b.num_graphs for b in train_b + val_b),
                      "epochs": args.epochs, "batch_size": args.batch_size, "results": results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
