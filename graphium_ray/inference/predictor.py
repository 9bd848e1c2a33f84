"""SMILES rows → predictions in real units, or embeddings, from a trained checkpoint (no Ray inside;
Ray Data runs it as a callable class on an actor pool).

Input: an Arrow table with a SMILES column (plus any columns to carry through). Output: the
carried columns, ``error`` (null, or why the molecule has no output) and either

* ``predict``: one column per task, named like the task (``qm9/gap``): graph-level regression in
  label units, binary as the probability of class 1, multiclass/ordinal as class probabilities;
  node-level tasks as one value per atom, edge-level tasks as one value per bond (RDKit order);
* ``embed``: ``embedding`` (list<float32>), the graph embedding after pooling (``graph``, default),
  or a block's node embeddings pooled the model's way (``layer_0`` … ``layer_{L-1}``).

A row whose SMILES does not parse keeps its place with null outputs and the reason in ``error``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from graphium_ray.checkpoints import checkpoint_members, load_checkpoint
from graphium_ray.config import ConfigError, FeaturizerConfig
from graphium_ray.data.cells import INPUT_ERROR
from graphium_ray.data.collate import collate_arrays
from graphium_ray.data.featurize import Featurizer
from graphium_ray.data.in_memory import molecule_rows
from graphium_ray.outputs import LabelNormalizer, column_slices, to_real_units
from graphium_ray.tasks import tasks_at
from graphium_ray.train.metrics import probabilities

LEVELS = ("graph", "node", "edge")


def read_checkpoint_files(path: str | Path) -> dict[str, bytes]:
    """The files of every member checkpoint as bytes, named ``<member>/<file>``: shipped to actors on
    any node, no shared disk needed."""
    return {f"{i}/{p.name}": p.read_bytes() for i, d in enumerate(checkpoint_members(path))
            for p in d.iterdir() if p.is_file()}  # fmt: skip


def check_loadable(checkpoint: str | Path, checkpoint_files: dict[str, bytes]) -> None:
    """Load every member once on the driver, so a checkpoint that cannot be read fails with one line
    naming it (instead of every prediction actor dying with the same traceback)."""
    try:
        _load_members(checkpoint_files)
    except Exception as err:  # noqa: BLE001 - any reason a checkpoint does not load is the user's to see
        detail = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
        raise ConfigError(f"checkpoint {checkpoint}: cannot be loaded ({type(err).__name__}: {detail[:300]})") from None


def _load_members(checkpoint_files: dict[str, bytes]) -> list[tuple]:
    members = sorted({name.split("/", 1)[0] for name in checkpoint_files}, key=int)
    loaded = []
    with tempfile.TemporaryDirectory() as tmp:
        for member in members:
            (Path(tmp) / member).mkdir()
            for name, blob in checkpoint_files.items():
                if name.startswith(f"{member}/"):
                    (Path(tmp) / name).write_bytes(blob)
            loaded.append(load_checkpoint(Path(tmp) / member))
    if any(m[1].tasks != loaded[0][1].tasks for m in loaded):
        raise ValueError("the replicate checkpoints of an ensemble must have the same tasks")
    return loaded


def embedding_layers(num_layers: int) -> list[str]:
    return ["graph", *(f"layer_{i}" for i in range(num_layers))]


class BatchPredictor:
    def __init__(self, checkpoint_files: dict[str, bytes], smiles_column: str, mode: str = "predict",
                 layer: str = "graph", batch_size: int = 256):  # fmt: skip
        members = _load_members(checkpoint_files)
        self.cfg, self.data, self.model, _ = members[0]
        self.models = [m[2].eval() for m in members]  # an ensemble when a replicated run was given
        torch.set_num_threads(1)
        self.tasks = self.data.task_specs
        self.normalizer = LabelNormalizer(self.tasks, self.data.label_stats)
        self.featurizer = Featurizer(FeaturizerConfig.model_validate(self.data.featurizer), 0, 0)
        if mode == "embed" and layer not in embedding_layers(self.cfg.model.num_layers):
            raise ValueError(f"--layer {layer!r}: choose one of {embedding_layers(self.cfg.model.num_layers)}")
        self.smiles_column, self.mode, self.layer, self.batch_size = smiles_column, mode, layer, batch_size

    def __call__(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        input_errors = [None] * n
        if INPUT_ERROR in table.column_names:  # cells that could not be read (not UTF-8, a nested value)
            input_errors = table.column(INPUT_ERROR).to_pylist()
            table = table.drop_columns([INPUT_ERROR])
        feats = self.featurizer(molecule_rows(table.column(self.smiles_column).cast(pa.string())))
        errors = [e or r for e, r in zip(input_errors, feats.column("skip_reason").to_pylist(), strict=True)]
        ok = np.flatnonzero([e is None for e in errors])
        outputs = self._outputs(feats.take(pa.array(ok, pa.int64()))) if len(ok) else {}
        out = table.append_column("error", pa.array(errors, pa.string()))
        names = ["embedding"] if self.mode == "embed" else [t.name for t in self.tasks] + self._spread_names()
        for name in names:
            values: list = [None] * n
            for i, v in zip(ok.tolist(), outputs.get(name, []), strict=False):
                values[i] = v
            out = out.append_column(name, pa.array(values, self._type(name)))
        return out

    def _spread_names(self) -> list[str]:
        """``<task>/std``: the ensemble's standard deviation, for graph-level single-value tasks."""
        if len(self.models) < 2:
            return []
        return [f"{t.name}/std" for t in self.tasks if t.level == "graph" and t.out_dim == 1]

    def _type(self, name: str) -> pa.DataType:
        if name == "embedding" or name.endswith("/std"):
            return pa.list_(pa.float32()) if name == "embedding" else pa.float64()
        task = next(t for t in self.tasks if t.name == name)
        per_molecule = pa.float64() if task.out_dim == 1 else pa.list_(pa.float64())
        return per_molecule if task.level == "graph" else pa.list_(per_molecule)

    @torch.no_grad()
    def _outputs(self, feats: pa.Table) -> dict[str, list]:
        collected: dict[str, list] = {}
        widths = {lvl: 0 for lvl in LEVELS}
        for start in range(0, feats.num_rows, self.batch_size):
            chunk = feats.slice(start, self.batch_size)
            batch = collate_arrays(chunk, widths, self.data.bond_dim)
            if self.mode == "embed":
                emb = self.model.embed(batch)
                vectors = emb["graph"] if self.layer == "graph" else self.model.pooling(
                    emb[self.layer], batch.batch, batch.num_graphs)  # fmt: skip
                collected.setdefault("embedding", []).extend(vectors.float().numpy())
                continue
            for name, values in self._ensemble_values(batch).items():
                collected.setdefault(name, []).extend(values)
        return collected

    def _ensemble_values(self, batch) -> dict[str, list]:
        """Per-task values averaged over the ensemble members (one member: its values)."""
        runs = [self._task_values(model(batch), batch) for model in self.models]
        if len(runs) == 1:
            return runs[0]
        out: dict[str, list] = {}
        for name in runs[0]:
            per_molecule = zip(*(r[name] for r in runs), strict=True)
            stacked = [np.asarray(v, dtype=np.float64) for v in per_molecule]
            out[name] = [m.mean(axis=0).tolist() for m in stacked]
            if f"{name}/std" in self._spread_names():
                out[f"{name}/std"] = [float(m.std(axis=0)) for m in stacked]
        return out

    def _task_values(self, out: dict[str, torch.Tensor], batch) -> dict[str, list]:
        """Head outputs of one batch → per-task values per molecule, in real units / probabilities."""
        values: dict[str, list] = {}
        node_counts = np.bincount(batch.batch.numpy(), minlength=batch.num_graphs)
        bond_counts = np.bincount(batch.batch[batch.edge_index[0]].numpy(), minlength=batch.num_graphs) // 2
        for level in LEVELS:
            level_tasks = tasks_at(self.tasks, level)
            if not level_tasks:
                continue
            pred = out[level].float().numpy()
            if level == "edge":
                pred = pred[::2]  # edges 2b and 2b+1 are the two directions of bond b
            real = to_real_units(level_tasks, self.normalizer, level, pred)
            for task, cols in zip(level_tasks, column_slices(level_tasks), strict=True):
                v = probabilities(task.kind, real[:, cols])
                if level == "graph":
                    values[task.name] = [float(r[0]) for r in v] if task.out_dim == 1 else v.tolist()
                else:
                    counts = node_counts if level == "node" else bond_counts
                    flat = v[:, 0] if task.out_dim == 1 else v
                    values[task.name] = [p.tolist() for p in np.split(flat, np.cumsum(counts)[:-1])]
        return values

