"""Offline pretraining data: drug-like MOSES molecules with RDKit descriptors, plus QM9 from ``qm9pack``.

``graphium-ray make-data pretrain --molecules N`` writes a multi-task, multi-level mix from
registry packages only (no network):

* ``moses_descriptors.parquet``: N drug-like ZINC molecules from the MOSES training set (the
  ``molsets`` wheel, 1,584,663 SMILES; every ``1,584,663 // N``-th row, so any N is a deterministic,
  spread-out sample) with RDKit's 2D descriptors as graph-level regression targets, each passed
  through ``asinh`` (as :mod:`graphium_ray.chem.descriptors` does for inputs: heavy tails such as
  ``Ipc`` stay finite, counts keep their order). Training standardises every target with its
  train-split mean and standard deviation (``normalize``), so the file keeps the ``asinh`` units.
  A descriptor that is **constant** on the sample (standard deviation < 1e-6) or **undefined**
  (non-finite) for more than 1 % of the molecules is dropped; the remaining undefined values are
  missing labels (NaN). ``descriptors_kept.json`` lists the kept and dropped names with the reason.
* ``qm9_toymix_<n>.parquet``: ToyMix's 19 QM9 DFT properties (graph level) and
  ``qm9_group_charges_<n>.parquet``: per-heavy-atom Mulliken charges (node level) from ``qm9pack``,
  each hydrogen's charge added to the heavy atom it is bonded to (the united-atom charge
  q_i + Σ_{H bonded to i} q_H). The model then needs no explicit hydrogens, so fine-tuning on any
  SMILES file uses the default featurizer.

The descriptors are computed by Ray tasks over chunks of SMILES with a bounded number in flight,
each chunk written as its own Parquet part: memory stays flat in N and the same command spreads
over a Ray cluster (``RAY_ADDRESS``). Unparsable SMILES are counted and written, with their row,
to ``moses_skipped.csv``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graphium_ray.data.builtin import build_qm9_charges, build_qm9_toymix

MOSES_TRAIN_ROWS = 1_584_663
CHUNK_ROWS = 2_000
MAX_UNDEFINED_FRACTION = 0.01
MIN_STD = 1e-6


def moses_train_file() -> Path:
    """The MOSES training SMILES inside the ``molsets`` wheel, located without importing it (its
    declared dependencies do not build: install it with ``pip install --no-deps molsets``)."""
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'molsets' package is not installed: pip install --no-deps molsets")
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset" / "data" / "train.csv.gz"
    if not path.is_file():
        raise RuntimeError(f"molsets is installed but {path} is missing: reinstall with pip install --no-deps molsets")
    return path


def moses_sample(n_molecules: int, path: Path | None = None) -> Iterator[tuple[np.ndarray, list[str]]]:
    """(MOSES row numbers, SMILES) in chunks of ≤ ``CHUNK_ROWS``: every ``total // n``-th row, n in all."""
    stride = max(1, MOSES_TRAIN_ROWS // n_molecules)
    row, taken = 0, 0
    reader = pacsv.open_csv(path or moses_train_file(), convert_options=pacsv.ConvertOptions(include_columns=["SMILES"]))
    rows, smiles = [], []
    for batch in reader:
        idx = np.arange(row, row + batch.num_rows)
        keep = np.flatnonzero(idx % stride == 0)[: n_molecules - taken]
        row += batch.num_rows
        if len(keep):
            taken += len(keep)
            rows.extend(idx[keep].tolist())
            smiles.extend(batch.column(0).take(pa.array(keep)).to_pylist())
        while len(rows) >= CHUNK_ROWS:
            yield np.asarray(rows[:CHUNK_ROWS]), smiles[:CHUNK_ROWS]
            rows, smiles = rows[CHUNK_ROWS:], smiles[CHUNK_ROWS:]
        if taken >= n_molecules:
            break
    if rows:
        yield np.asarray(rows), smiles


def descriptor_chunk(rows: np.ndarray, smiles: list[str]) -> tuple[pa.Table, list[dict]]:
    """(table: ``moses_row``, ``smiles`` and one float column per RDKit 2D descriptor (``asinh``),
    skipped rows with the reason)."""
    from rdkit import Chem, RDLogger

    from graphium_ray.chem.descriptors import molecule_feature_names, molecule_features

    RDLogger.DisableLog("rdApp.*")
    kept_rows, kept_smiles, mols, skipped = [], [], [], []
    for row, smi in zip(rows.tolist(), smiles, strict=True):
        mol = Chem.MolFromSmiles(smi) if smi else None
        if mol is None:
            skipped.append({"moses_row": row, "smiles": smi, "reason": "RDKit could not parse the SMILES"})
            continue
        kept_rows.append(row)
        kept_smiles.append(smi)
        mols.append(mol)
    values = molecule_features(mols, ["rdkit2d"])
    names = [name.split(":", 1)[1] for name in molecule_feature_names(["rdkit2d"])]
    columns = {"moses_row": pa.array(kept_rows, pa.int64()), "smiles": pa.array(kept_smiles, pa.string())}
    columns.update({name: pa.array(values[:, j], pa.float32()) for j, name in enumerate(names)})
    return pa.table(columns), skipped


class ColumnStats:
    """Streaming per-column count of finite values, sum and sum of squares (float64)."""

    def __init__(self, names: list[str]):
        self.names = names
        self.finite = np.zeros(len(names))
        self.total = np.zeros(len(names))
        self.squares = np.zeros(len(names))
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        values = np.column_stack([table.column(n).to_numpy(zero_copy_only=False) for n in self.names]).astype(np.float64)
        ok = np.isfinite(values)
        clean = np.where(ok, values, 0.0)
        self.finite += ok.sum(0)
        self.total += clean.sum(0)
        self.squares += (clean**2).sum(0)
        self.rows += table.num_rows


def _descriptor_parts(n_molecules: int, parts_dir: Path, max_in_flight: int, stats: ColumnStats) -> list[dict]:
    """Compute every chunk with a Ray task (≤ ``max_in_flight`` at once), one Parquet part each;
    the column statistics are taken while each chunk is in memory (no second read of the parts)."""
    import ray

    compute = ray.remote(num_cpus=1)(descriptor_chunk)
    pending, skipped, index = [], [], 0

    def drain(until: int) -> None:
        while len(pending) > until:
            done, _ = ray.wait([ref for ref, _ in pending], num_returns=1)
            pos = next(i for i, (ref, _) in enumerate(pending) if ref == done[0])
            ref, part = pending.pop(pos)
            table, chunk_skipped = ray.get(ref)
            pq.write_table(table, part)
            stats.add(table)
            skipped.extend(chunk_skipped)

    for rows, smiles in moses_sample(n_molecules):
        pending.append((compute.remote(rows, smiles), parts_dir / f"part-{index:05d}.parquet"))
        index += 1
        drain(max_in_flight)
    drain(0)
    return skipped


def select_descriptors(stats: ColumnStats) -> tuple[list[str], dict[str, str]]:
    """(kept names, dropped name → reason): undefined for > 1 % of molecules, or constant."""
    finite, total, squares, n_rows = stats.finite, stats.total, stats.squares, stats.rows
    kept, dropped = [], {}
    for j, name in enumerate(stats.names):
        if n_rows == 0 or finite[j] < (1 - MAX_UNDEFINED_FRACTION) * n_rows:
            dropped[name] = f"undefined for {n_rows - int(finite[j])} of {n_rows} molecules"
            continue
        mean = total[j] / finite[j]
        std = float(np.sqrt(max(squares[j] / finite[j] - mean**2, 0.0)))
        if std < MIN_STD:
            dropped[name] = f"constant ({mean:.6g}) on the sample"
        else:
            kept.append(name)
    return kept, dropped


def build_moses_descriptors(out_dir: str | Path, n_molecules: int, max_in_flight: int = 8) -> dict[str, Path]:
    """Write ``moses_descriptors.parquet`` (``smiles``, ``moses_row``, kept descriptors as ``d_<name>``),
    ``descriptors_kept.json`` and ``moses_skipped.csv``; reused when it exists for the same N."""
    from graphium_ray.chem.descriptors import molecule_feature_names

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"moses": out / "moses_descriptors.parquet", "kept": out / "descriptors_kept.json",
             "skipped": out / "moses_skipped.csv"}  # fmt: skip
    if paths["moses"].exists() and paths["kept"].exists():
        if json.loads(paths["kept"].read_text()).get("requested_molecules") == n_molecules:
            return paths
    parts_dir = out / "_moses_parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir()
    stats = ColumnStats([name.split(":", 1)[1] for name in molecule_feature_names(["rdkit2d"])])
    skipped = _descriptor_parts(n_molecules, parts_dir, max_in_flight, stats)
    parts = sorted(parts_dir.glob("part-*.parquet"))
    kept, dropped = select_descriptors(stats)
    schema = pa.schema([("smiles", pa.string()), ("moses_row", pa.int64()), *((f"d_{n}", pa.float32()) for n in kept)])
    tmp = paths["moses"].with_suffix(".parquet.tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            table = pq.read_table(part, columns=["smiles", "moses_row", *kept])
            writer.write_table(table.rename_columns(schema.names))
    tmp.replace(paths["moses"])
    skipped_schema = pa.schema([("moses_row", pa.int64()), ("smiles", pa.string()), ("reason", pa.string())])
    pacsv.write_csv(pa.Table.from_pylist(skipped, schema=skipped_schema), paths["skipped"])
    paths["kept"].write_text(json.dumps({
        "requested_molecules": n_molecules, "molecules": stats.rows, "skipped": len(skipped),
        "transform": "asinh", "kept": [f"d_{n}" for n in kept], "dropped": dropped}, indent=1))  # fmt: skip
    shutil.rmtree(parts_dir)
    return paths


def group_charges(smiles_with_h: str, charges: list[float]) -> tuple[str, list[float]]:
    """Atom-mapped explicit-H SMILES + per-atom charges (map k ↔ ``charges[k-1]``) → atom-mapped
    heavy-atom SMILES + united-atom charges (map k ↔ value k-1). Total charge is conserved."""
    from rdkit import Chem

    params = Chem.SmilesParserParams()
    params.removeHs = False
    mol = Chem.MolFromSmiles(smiles_with_h, params)
    heavy = [a for a in mol.GetAtoms() if a.GetAtomicNum() != 1]
    values = []
    for atom in heavy:
        hydrogens = [n for n in atom.GetNeighbors() if n.GetAtomicNum() == 1]
        values.append(charges[atom.GetAtomMapNum() - 1] + sum(charges[h.GetAtomMapNum() - 1] for h in hydrogens))
    for new_index, atom in enumerate(heavy):
        atom.SetIntProp("_heavy", new_index)
    stripped = Chem.RemoveHs(mol)
    order = [a.GetIntProp("_heavy") for a in stripped.GetAtoms()]
    for atom in stripped.GetAtoms():
        atom.SetAtomMapNum(atom.GetIdx() + 1)
    return Chem.MolToSmiles(stripped, canonical=False), [values[i] for i in order]


def build_group_charges(out_dir: str | Path, n_molecules: int) -> Path:
    """``qm9_group_charges_<n>.parquet`` from ``qm9_mulliken.parquet`` (see :func:`group_charges`)."""
    out = Path(out_dir)
    target = out / f"qm9_group_charges_{n_molecules}.parquet"
    if target.exists():
        return target
    source = pq.read_table(build_qm9_charges(out, n_molecules)).to_pydict()
    rows = [group_charges(smi, ch) for smi, ch in zip(source["smiles"], source["charges"], strict=True)]
    schema = pa.schema([("smiles", pa.string()), ("charges", pa.list_(pa.float64()))])
    pq.write_table(pa.Table.from_pylist([{"smiles": s, "charges": c} for s, c in rows], schema=schema), target)
    return target


def build_pretrain(out_dir: str | Path, n_molecules: int, qm9_molecules: int = 20_000) -> dict[str, Path]:
    """The whole offline pretraining mix (see the module docstring)."""
    paths = build_moses_descriptors(out_dir, n_molecules)
    paths["qm9"] = build_qm9_toymix(out_dir, qm9_molecules)
    paths["charges"] = build_group_charges(out_dir, qm9_molecules)
    return paths
