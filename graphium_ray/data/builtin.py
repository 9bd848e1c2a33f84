"""Datasets that need no network: QM9 from the ``qm9pack`` package and RDKit-computed labels.

* :func:`build_quickstart` writes the quickstart mix: QM9 DFT properties (energies in Hartree,
  dipole in Debye, polarizability in bohr³) for one subset of QM9, and RDKit descriptors for a
  partly overlapping subset, so the merged mix has sparse labels across datasets.
* :func:`reference_table` is the test fixture: well-known molecules with RDKit-computed labels.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rdkit import Chem, RDLogger
from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

RDLogger.DisableLog("rdApp.*")  # every skip is reported with its reason instead

QM9_PROPERTIES = {  # qm9pack column -> our column name
    "HOMO_au": "homo",
    "LUMO_au": "lumo",
    "HOMO_LUMO_gap_au": "gap",
    "Dipole_debye": "mu",
    "Polarizability_bohr3": "alpha",
}

# ToyMix's 19 QM9 targets (Graphium's column names) from qm9pack columns; the four atomization
# energies are the total energy minus the free-atom reference energies (B3LYP/6-31G(2df,p), the
# QM9 paper's table), in kcal/mol as in ToyMix. Units: GHz, D, bohr^3, Ha, bohr^2, cal/(mol K).
QM9_TOYMIX_PROPERTIES = {
    "RotA_GHz": "A", "RotB_GHz": "B", "RotC_GHz": "C", "Dipole_debye": "mu", "Polarizability_bohr3": "alpha",
    "HOMO_au": "homo", "LUMO_au": "lumo", "HOMO_LUMO_gap_au": "gap", "R2_bohr2": "r2", "ZPVE_au": "zpve",
    "InternalEnergy_0K_au": "u0", "InternalEnergy_298K_au": "u298", "Enthalphy_298K_au": "h298",
    "GibbsFreeEnergy_298K_au": "g298", "Heatcapacity_Cv_cal_mol_K": "cv",
}  # fmt: skip
QM9_TOYMIX_COLUMNS = (*QM9_TOYMIX_PROPERTIES.values(), "u0_atom", "u298_atom", "h298_atom", "g298_atom")
ATOM_REFERENCE_HA = {  # element: (U0, U298, H298, G298)
    "H": (-0.500273, -0.498857, -0.497912, -0.510927), "C": (-37.846772, -37.845355, -37.844411, -37.861317),
    "N": (-54.583861, -54.582445, -54.581501, -54.598897), "O": (-75.064579, -75.063162, -75.062219, -75.079532),
    "F": (-99.718730, -99.717314, -99.716370, -99.733544),
}  # fmt: skip
HARTREE_TO_KCAL_MOL = 627.509474

REFERENCE_SMILES = [
    "C", "CC", "CCO", "O", "N", "C#N", "CC(=O)O", "c1ccccc1", "c1ccncc1", "c1ccc2ccccc2c1",
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O",  # (S)-ibuprofen
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O",  # glucose
    "C/C=C/C", "C/C=C\\C", "F/C=C/F",
    "[NH4+]", "[O-]C(=O)C", "[Na+].[Cl-]", "CC[N+](C)(C)C", "[O-][N+](=O)c1ccccc1",
    "OC(=O)C(F)(F)F", "ClC(Cl)(Cl)Cl", "BrCCBr", "ICI", "S=C=S", "O=S(=O)(O)O", "P(=O)(O)(O)O",
    "c1ccsc1", "c1cc[nH]c1", "C1CC1", "C1CCCCC1", "C1=CC=CC=C1C=O", "N[C@@H](C)C(=O)O",
    "CN1CCC[C@H]1c1cccnc1",  # nicotine
    "CC(C)NCC(O)COc1cccc2ccccc12",  # propranolol
    "O=C(O)c1ccccc1O",  # salicylic acid
    "CCN(CC)CC", "C[Si](C)(C)C", "B(O)(O)O", "[He]",
]  # fmt: skip


def qm9pack_files() -> list[Path]:
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'qm9pack' package is not installed: pip install qm9pack")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [data / f"qm9_part{i}.csv" for i in (1, 2, 3)]


def iter_qm9(columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Stream all 130,831 QM9 rows (in qm9pack's order) over ``columns``."""
    for path in qm9pack_files():
        options = pacsv.ConvertOptions(include_columns=columns)
        yield from pacsv.open_csv(path, convert_options=options)


def qm9_sample(n: int, columns: list[str], offset: int = 0, total: int = 130_831) -> pa.Table:
    """Every ``total // n``-th QM9 row starting at ``offset``: a deterministic spread-out sample."""
    stride = max(1, total // n)
    picked, row = [], 0
    for batch in iter_qm9(columns):
        idx = np.arange(row, row + batch.num_rows)
        keep = np.flatnonzero((idx - offset) % stride == 0) if offset < row + batch.num_rows else []
        if len(keep):
            picked.append(batch.take(pa.array(keep)))
        row += batch.num_rows
    return pa.Table.from_batches(picked).slice(0, n)


def descriptor_labels(smiles: list[str]) -> dict[str, list]:
    """RDKit descriptors: Crippen logP, TPSA (Å²), molecular weight (Da); binary: has a ring."""
    out: dict[str, list] = {"smiles": [], "logp": [], "tpsa": [], "mol_wt": [], "has_ring": []}
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            continue
        out["smiles"].append(smi)
        out["logp"].append(Crippen.MolLogP(mol))
        out["tpsa"].append(rdMolDescriptors.CalcTPSA(mol))
        out["mol_wt"].append(Descriptors.MolWt(mol))
        out["has_ring"].append(float(mol.GetRingInfo().NumRings() > 0))
    return out


def build_quickstart(out_dir: str | Path, n_molecules: int = 3000) -> dict[str, Path]:
    """Write ``qm9_quantum.parquet`` and ``descriptors.parquet`` (half of it overlapping)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"qm9": out / "qm9_quantum.parquet", "descriptors": out / "descriptors.parquet"}
    if all(p.exists() for p in paths.values()):
        return paths
    table = qm9_sample(int(n_molecules * 1.5), ["SMILES", *QM9_PROPERTIES])
    table = table.rename_columns(["smiles", *QM9_PROPERTIES.values()])
    quantum = table.slice(0, n_molecules)
    pq.write_table(quantum, paths["qm9"])
    desc_smiles = table.column("smiles").to_pylist()[n_molecules // 2 :]
    pq.write_table(pa.table(descriptor_labels(desc_smiles)), paths["descriptors"])
    return paths


def reference_table() -> pa.Table:
    """The test fixture: REFERENCE_SMILES with RDKit-computed descriptor labels."""
    return pa.table(descriptor_labels(REFERENCE_SMILES))


def _xyz_molecule(elements: list[str], coords: list[list[float]]) -> Chem.Mol | None:
    from rdkit.Chem import rdDetermineBonds

    block = f"{len(elements)}\n\n" + "\n".join(
        f"{e} {x:.10f} {y:.10f} {z:.10f}" for e, (x, y, z) in zip(elements, coords, strict=True)
    )
    mol = Chem.MolFromXYZBlock(block)
    if mol is None:
        return None
    try:
        rdDetermineBonds.DetermineBonds(mol, charge=0)
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises several types when bond orders cannot be assigned
        return None
    return mol


def _plain_key(mol: Chem.Mol) -> str:
    return Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False), isomericSmiles=False)


def qm9_charge_row(smiles: str, elements: str, xyz: str, charges: str) -> tuple[dict | None, str | None]:
    """One QM9 row → (atom-mapped explicit-H SMILES + per-atom Mulliken charges, or the skip reason).

    The charges are in XYZ atom order (hydrogens included). The molecule is rebuilt from the XYZ
    block (``rdDetermineBonds``), so its atom order is the XYZ order; it is kept only when its graph
    equals the SMILES graph (the mapping is then unambiguous). Tokens are parsed with ``float()``.
    """
    import ast

    elems = ast.literal_eval(elements)
    coords = ast.literal_eval(xyz)
    values = [float(t) for t in charges.strip()[1:-1].split(",")]
    if not (len(elems) == len(coords) == len(values)):
        return None, f"{len(elems)} elements, {len(coords)} coordinates, {len(values)} charges"
    mol = _xyz_molecule(elems, coords)
    if mol is None:
        return None, "bond orders could not be determined from the XYZ geometry"
    ref = Chem.MolFromSmiles(smiles)
    if ref is None or _plain_key(mol) != Chem.MolToSmiles(ref, isomericSmiles=False):
        return None, "the XYZ-derived graph differs from the SMILES graph"
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(atom.GetIdx() + 1)
    return {"smiles": Chem.MolToSmiles(mol, canonical=False), "charges": values}, None


def build_qm9_charges(out_dir: str | Path, n_molecules: int = 2000) -> Path:
    """Write ``qm9_mulliken.parquet`` (atom-mapped SMILES, per-atom charges in units of e) and
    ``qm9_mulliken_skipped.csv`` (QM9 index and reason for every molecule left out)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "qm9_mulliken.parquet"
    if target.exists():
        return target
    sample = qm9_sample(n_molecules, ["Index", "SMILES", "Elements", "XYZ_Ang", "Mulliken_pop"]).to_pydict()
    kept, skipped = [], []
    for i, smi, el, xyz, ch in zip(
        *(sample[k] for k in ("Index", "SMILES", "Elements", "XYZ_Ang", "Mulliken_pop")), strict=True
    ):
        row, reason = qm9_charge_row(smi, el, xyz, ch)
        (kept.append(row) if row else skipped.append({"qm9_index": i, "smiles": smi, "reason": reason}))
    pq.write_table(
        pa.Table.from_pylist(kept, schema=pa.schema([("smiles", pa.string()), ("charges", pa.list_(pa.float64()))])),
        target,
    )
    pacsv.write_csv(pa.Table.from_pylist(skipped, schema=pa.schema([("qm9_index", pa.int64()), ("smiles", pa.string()),
                                                                  ("reason", pa.string())])), out / "qm9_mulliken_skipped.csv")  # fmt: skip
    return target


def build_qm9_toymix(out_dir: str | Path, n_molecules: int = 20000) -> Path:
    """``qm9_toymix.parquet``: ``smiles`` + ToyMix's 19 QM9 targets for a spread-out QM9 sample."""
    import ast

    path = Path(out_dir) / f"qm9_toymix_{n_molecules}.parquet"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    table = qm9_sample(n_molecules, ["SMILES", "Elements", *QM9_TOYMIX_PROPERTIES])
    columns = {"smiles": table.column("SMILES")}
    columns.update({ours: table.column(theirs) for theirs, ours in QM9_TOYMIX_PROPERTIES.items()})
    refs = np.array([[sum(ATOM_REFERENCE_HA[e][k] for e in ast.literal_eval(elements)) for k in range(4)]
                     for elements in table.column("Elements").to_pylist()])  # fmt: skip
    for k, (name, total) in enumerate((("u0_atom", "u0"), ("u298_atom", "u298"), ("h298_atom", "h298"),
                                       ("g298_atom", "g298"))):  # fmt: skip
        energy = np.asarray(columns[total].to_numpy(zero_copy_only=False), np.float64)
        columns[name] = pa.array((energy - refs[:, k]) * HARTREE_TO_KCAL_MOL)
    pq.write_table(pa.table(columns), path)
    return path
