"""Positional encodings against an independent computation (NumPy eigh / matrix powers)."""

import numpy as np
import pytest

from graphium_ray.chem.graph import mol_to_graph, parse_smiles
from graphium_ray.chem.positional import dense_adjacency, laplacian_pe, random_walk_pe

MOLS = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]", "CCO.c1ccccc1", "C", "C1CC1CC"]


def graph(smiles):
    g = mol_to_graph(parse_smiles(smiles), ["atomic-number"], [], ["in-ring"])
    return g.num_nodes, g.edge_index


@pytest.mark.parametrize("smiles", MOLS)
def test_random_walk_matches_matrix_powers(smiles):
    n, ei = graph(smiles)
    adj = dense_adjacency(n, ei)
    deg = adj.sum(1, keepdims=True)
    trans = np.divide(adj, deg, out=np.zeros_like(adj), where=deg > 0)
    (rw,) = random_walk_pe([(n, ei)], 6)
    for t in range(6):
        np.testing.assert_allclose(rw[:, t], np.diag(np.linalg.matrix_power(trans, t + 1)), atol=1e-6)


@pytest.mark.parametrize("smiles", ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "C1CC1CC"])
def test_laplacian_matches_eigh_on_connected_molecules(smiles):
    n, ei = graph(smiles)
    adj = dense_adjacency(n, ei)
    lap = np.diag(adj.sum(1)) - adj
    ref_vals, _ = np.linalg.eigh(lap)
    k = 8
    ((vec, val),) = laplacian_pe([(n, ei)], k)
    m = min(k, n)
    np.testing.assert_allclose(val[0, :m], np.clip(ref_vals[:m], 0, None), atol=1e-5)
    assert (val[:, m:] == 0).all() and (vec[:, m:] == 0).all()  # padding when n < k
    for j in range(m):  # each column is a unit eigenvector of L for its eigenvalue
        np.testing.assert_allclose(lap @ vec[:, j], val[0, j] * vec[:, j], atol=1e-4)
        assert abs(np.linalg.norm(vec[:, j]) - 1) < 1e-5
        assert vec[np.abs(vec[:, j]).argmax(), j] > 0  # sign convention


def test_laplacian_per_component_for_disconnected_molecules():
    n, ei = graph("CCO.c1ccccc1")  # 3 + 6 atoms in two components
    ((vec, val),) = laplacian_pe([(n, ei)], 4)
    ethanol, benzene = np.arange(3), np.arange(3, 9)
    assert (vec[ethanol][:, 3] == 0).all()  # 3-atom component: only 3 eigenvectors
    sub = dense_adjacency(n, ei)[np.ix_(benzene, benzene)]
    ref = np.linalg.eigh(np.diag(sub.sum(1)) - sub)[0][:4]
    np.testing.assert_allclose(val[benzene[0]], ref, atol=1e-5)
    assert np.allclose(vec[ethanol][:, 0], 1 / np.sqrt(3), atol=1e-6)  # constant first eigenvector per component


def test_single_atom():
    ((vec, val),) = laplacian_pe([(1, np.zeros((2, 0), np.int64))], 3)
    assert vec.tolist() == [[1.0, 0.0, 0.0]] and val.tolist() == [[0.0, 0.0, 0.0]]
    (rw,) = random_walk_pe([(1, np.zeros((2, 0), np.int64))], 3)
    assert (rw == 0).all()


def test_batched_encodings_equal_molecule_by_molecule():
    """One call over many molecules (sizes repeat, some disconnected) = each molecule alone."""
    from graphium_ray.data.builtin import REFERENCE_SMILES

    graphs = []
    for smiles in [*REFERENCE_SMILES, "[Na+].[Cl-]", "CCO.c1ccccc1", "C"]:
        g = mol_to_graph(parse_smiles(smiles), ["atomic-number"], [], ["in-ring"])
        graphs.append((g.num_nodes, g.edge_index))
    batched_lap, batched_rw = laplacian_pe(graphs, 5), random_walk_pe(graphs, 7)
    for graph, (vec, val), rw in zip(graphs, batched_lap, batched_rw, strict=True):
        ((vec1, val1),) = laplacian_pe([graph], 5)
        np.testing.assert_allclose(vec, vec1, atol=1e-6)
        np.testing.assert_allclose(val, val1, atol=1e-6)
        np.testing.assert_allclose(rw, random_walk_pe([graph], 7)[0], atol=1e-7)


def test_molecules_without_atoms_leave_the_others_unchanged():
    """A molecule of 0 atoms (a size-0 group) between others: same rows for the others."""
    from graphium_ray.chem.positional import laplacian_pe_flat, random_walk_pe_flat

    graphs = [graph(s) for s in ["CCO", "C", "c1ccccc1", "[Na+].[Cl-]"]]
    empty = (0, np.zeros((2, 0), np.int64))
    with_empty = [empty, graphs[0], empty, *graphs[1:], empty]

    def flat(gs):
        num_nodes = np.array([n for n, _ in gs])
        num_edges = np.array([ei.shape[1] for _, ei in gs])
        edges = np.concatenate([ei for _, ei in gs], axis=1).astype(np.int64)
        return (*laplacian_pe_flat(num_nodes, edges, num_edges, 4), random_walk_pe_flat(num_nodes, edges, num_edges, 5))

    for a, b in zip(flat(graphs), flat(with_empty), strict=True):
        assert a.shape == b.shape == (sum(n for n, _ in graphs), a.shape[1])
        np.testing.assert_array_equal(a, b)
