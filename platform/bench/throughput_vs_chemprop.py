"""CPU training throughput: graphium-ray vs chemprop v2 at about the same parameter count.

Same machine, same molecules (drug-like MOSES SMILES from the ``molsets`` wheel with RDKit logP,
TPSA and molecular weight as three regression targets), same batch size, same number of torch
threads, side by side in one run, alternating, ``--repeats`` times each:

* ``chemprop``: chemprop v2's default model (``BondMessagePassing`` d_h 300 depth 3, mean
  aggregation, one 300-wide FFN layer; chemprop's own virtual environment, see vs_chemprop.py),
  its featurizer with the MolGraphs cached (as its CLI does), trained by its Lightning
  ``Trainer``; graphs/s over the training epochs after the first (featurization excluded).
* ``graphium-ray``: ``graphium-ray train``'s path (Ray Train, one worker running ``--threads`` torch
  threads, the prepared cache, the in-memory train split), GINE 152×4 (about chemprop's parameter count);
  graphs/s of the epochs after the first, as the run reports them (validation of each epoch included).

    python platform/bench/throughput_vs_chemprop.py --molecules 10000 --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_chemprop import CHEMPROP_VENV, ensure_chemprop  # noqa: E402

LABELS = ["logp", "tpsa", "mol_wt"]

CHEMPROP_RUN = """
import json, sys, time
import numpy as np, pandas as pd, torch
import lightning.pytorch as pl
from chemprop import data, featurizers, models, nn
torch.set_num_threads(int(sys.argv[2]))
frame = pd.read_csv(sys.argv[1])
points = [data.MoleculeDatapoint.from_smi(s, y) for s, y in zip(frame["smiles"], frame[{labels}].to_numpy())]
dataset = data.MoleculeDataset(points, featurizers.SimpleMoleculeMolGraphFeaturizer())
dataset.cache = True
scaler = dataset.normalize_targets()
loader = data.build_dataloader(dataset, batch_size=int(sys.argv[3]), num_workers=0, seed=0)
model = models.MPNN(nn.BondMessagePassing(), nn.MeanAggregation(),
                    nn.RegressionFFN(n_tasks={n_tasks}, output_transform=nn.UnscaleTransform.from_standard_scaler(scaler)))

class EpochTimes(pl.Callback):
    times = []
    def on_train_epoch_start(self, trainer, module):
        self.start = time.perf_counter()
    def on_train_epoch_end(self, trainer, module):
        self.times.append(time.perf_counter() - self.start)

timer = EpochTimes()
trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=int(sys.argv[4]), logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
trainer.fit(model, loader)
print(json.dumps({{"graphs_per_s": [len(dataset) / t for t in timer.times],
                   "parameters": sum(p.numel() for p in model.parameters())}}))
"""


def write_molecules(n: int, work: Path) -> Path:
    from graphium_ray.data.builtin import descriptor_labels
    from graphium_ray.data.pretrain_data import moses_sample

    labels = descriptor_labels([s for _, chunk in moses_sample(n) for s in chunk])
    path = work / "molecules.parquet"
    pq.write_table(pa.table({k: labels[k] for k in ["smiles", *LABELS]}), path)
    return path


def graphium_config(path: Path, work: Path, epochs: int, batch: int, threads: int, hidden: int) -> dict:
    return {"name": "throughput", "data": {"cache_dir": str(work / "cache"), "num_shards": 2,
                                           "split": {"fractions": [0.9, 0.05, 0.05]},
                                           "datasets": [{"name": "moses", "path": str(path), "tasks": [{"columns": LABELS}]}]},
            "model": {"layer": "gine", "hidden_dim": hidden, "num_layers": 4},
            "train": {"epochs": epochs, "batch_size": batch, "num_workers": 1, "cpus_per_worker": threads}}  # fmt: skip


def run_graphium(cfg, prepared, out: Path) -> dict:
    from graphium_ray.nn.build import build_network
    from graphium_ray.train.driver import run_training

    history = run_training(cfg, prepared, out)["history"]
    params = sum(p.numel() for p in build_network(cfg.model, prepared.manifest).model.parameters())
    return {"graphs_per_s": [h["graphs_per_s"] for h in history], "parameters": params}


def run_chemprop(csv: Path, threads: int, batch: int, epochs: int) -> dict:
    code = CHEMPROP_RUN.format(labels=LABELS, n_tasks=len(LABELS))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([str(CHEMPROP_VENV / "bin" / "python"), "-c", code, str(csv), str(threads), str(batch), str(epochs)],
                         capture_output=True, text=True, env=env)  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"chemprop run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64, help="chemprop's default")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden-dim", type=int, default=152, help="GINE width; 152 x 4 layers ~ chemprop's parameter count")
    args = p.parse_args()
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    import ray

    from graphium_ray.config import validate
    from graphium_ray.data.prepare import prepare

    ensure_chemprop()
    work = Path(tempfile.mkdtemp(prefix="throughput_"))
    path = write_molecules(args.molecules, work)
    cfg = validate(graphium_config(path, work, args.epochs, args.batch_size, args.threads, args.hidden_dim), "throughput bench")
    # one logical CPU more than the threads, so that the worker can claim ``threads`` whole CPUs (torch
    # threads) and the cache reader still has its share; after the first epoch the split is in memory
    from graphium_ray.cli import init_ray

    init_ray(args.threads + 1)  # its own local cluster, whatever else runs on the machine
    prepared = prepare(cfg.data)
    train = pq.read_table(prepared.featurized_dir, columns=["mol_key", "split"], filters=[("split", "=", "train")])
    source = pq.read_table(path).to_pandas()  # chemprop trains on exactly our train molecules
    keys = set(train.column("mol_key").to_pylist())
    from graphium_ray.chem.graph import molecule_key, parse_smiles

    source[source["smiles"].map(lambda s: molecule_key(parse_smiles(s)) in keys)].to_csv(work / "train.csv", index=False)
    runs: dict[str, list] = {"chemprop": [], "graphium_ray": []}
    params = {}
    for i in range(args.repeats):
        cp = run_chemprop(work / "train.csv", args.threads, args.batch_size, args.epochs)
        gr = run_graphium(cfg, prepared, work / f"run{i}")
        for name, r in (("chemprop", cp), ("graphium_ray", gr)):
            runs[name].append(float(np.mean(r["graphs_per_s"][1:] or r["graphs_per_s"])))
            params[name] = r["parameters"]
        time.sleep(1)
    ray.shutdown()
    median = {k: float(np.median(v)) for k, v in runs.items()}
    print(json.dumps({"molecules": args.molecules, "train_graphs": prepared.manifest.splits["train"],
                      "batch_size": args.batch_size, "threads": args.threads, "parameters": params,
                      "graphs_per_s": {k: [round(x) for x in v] for k, v in runs.items()},
                      "median_graphs_per_s": {k: round(v) for k, v in median.items()},
                      "ratio_graphium_vs_chemprop_median": round(median["graphium_ray"] / median["chemprop"], 3)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
