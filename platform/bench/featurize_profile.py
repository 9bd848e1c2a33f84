"""Where the featurizer's time goes, µs per molecule (1 core, best of --repeats, 512-molecule batches).

Drug-like molecules (micro ZINC from ../shared/data when present, else the built-in reference set):
bare ``MolFromSmiles``; our ``parse_smiles``; ``mols_to_graphs`` on parsed molecules, and inside
it the creation of RDKit's Python Atom/Bond wrapper objects and one per-property read; the batched
Laplacian (k=8) and random-walk (k=16) encodings, and the ``eigh`` calls alone; the whole
``Featurizer`` without PEs.

    python platform/bench/featurize_profile.py --molecules 2048
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rdkit import Chem

sys.path.insert(0, str(Path(__file__).resolve().parent))
from featurize_bench import drug_like  # noqa: E402

from graphium_ray.chem.graph import mols_to_graphs, parse_smiles  # noqa: E402
from graphium_ray.chem.positional import laplacian_pe_flat, random_walk_pe_flat  # noqa: E402
from graphium_ray.config import FeaturizerConfig  # noqa: E402
from graphium_ray.data.featurize import Featurizer  # noqa: E402
from graphium_ray.data.in_memory import molecule_rows  # noqa: E402

BATCH = 512


def per_molecule_us(fn, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return round(best / n * 1e6, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    smiles, source = drug_like(args.molecules)
    n, r = len(smiles), args.repeats
    cfg = FeaturizerConfig()
    features = (list(cfg.atom_onehot), list(cfg.atom_float), list(cfg.bond))
    mols = [parse_smiles(s) for s in smiles]
    chunks = [mols[i : i + BATCH] for i in range(0, n, BATCH)]
    plain = [[">" not in s and "<" not in s for s in smiles[i : i + BATCH]] for i in range(0, n, BATCH)]  # as Featurizer
    atoms = [a for m in mols for a in map(m.GetAtomWithIdx, range(m.GetNumAtoms()))]
    bonds = [b for m in mols for b in map(m.GetBondWithIdx, range(m.GetNumBonds()))]
    graphs = [mols_to_graphs(c, *features, plain_bond_orders=pl) for c, pl in zip(chunks, plain, strict=True)]
    rows = molecule_rows(smiles)
    featurizer = Featurizer(cfg, 0, 0)

    def wrappers():
        for m in mols:
            list(map(m.GetAtomWithIdx, range(m.GetNumAtoms())))
            list(map(m.GetBondWithIdx, range(m.GetNumBonds())))

    rng = np.random.default_rng(0)
    sizes = np.concatenate([g.num_nodes for g in graphs])
    stacks = []  # random symmetric matrices, one per molecule, stacked by size as the PE code does
    for size in np.unique(sizes[sizes > 0]):
        a = rng.random((int((sizes == size).sum()), size, size))
        stacks.append(a + a.transpose(0, 2, 1))

    def lap_eigh_only():
        for stack in stacks:
            np.linalg.eigh(stack)

    result = {
        "source": source,
        "molecules": n,
        "mean_atoms": round(len(atoms) / n, 1),
        "bare_MolFromSmiles": per_molecule_us(lambda: [Chem.MolFromSmiles(s) for s in smiles], n, r),
        "our_parse_smiles": per_molecule_us(lambda: [parse_smiles(s) for s in smiles], n, r),
        "mols_to_graphs": per_molecule_us(
            lambda: [mols_to_graphs(c, *features, plain_bond_orders=pl) for c, pl in zip(chunks, plain, strict=True)], n, r),
        "  atom_and_bond_wrapper_objects": per_molecule_us(wrappers, n, r),
        "  one_atom_property_read": per_molecule_us(lambda: np.fromiter(map(Chem.Atom.GetAtomicNum, atoms), np.int64), n, r),
        "  one_bond_property_read": per_molecule_us(lambda: np.fromiter(map(Chem.Bond.IsInRing, bonds), bool), n, r),
        "laplacian_pe_k8": per_molecule_us(
            lambda: [laplacian_pe_flat(g.num_nodes, g.edge_index, g.num_edges, 8) for g in graphs], n, r),
        "  eigh_on_molecule_sized_matrices": per_molecule_us(lap_eigh_only, n, r),
        "random_walk_pe_k16": per_molecule_us(
            lambda: [random_walk_pe_flat(g.num_nodes, g.edge_index, g.num_edges, 16) for g in graphs], n, r),
        "featurizer_no_pe_total": per_molecule_us(lambda: [featurizer(rows.slice(i, BATCH)) for i in range(0, n, BATCH)], n, r),
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
