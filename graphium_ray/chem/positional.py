"""Positional encodings computed in batches with NumPy (no per-molecule Python linear algebra).

Laplacian PE (per connected component). With the combinatorial Laplacian
:math:`L = D - A` of a component of :math:`n_c` atoms, :math:`L = U \\Lambda U^T`, eigenvalues
ascending. Each atom gets the first :math:`\\min(k, n_c)` eigenvector entries of its
component (zero-padded to k) and the component's first k eigenvalues (zero-padded).
Signs are fixed so that the largest-magnitude entry of each eigenvector is positive.

Random-walk PE. With :math:`P = D^{-1} A` (rows of isolated atoms are zero), atom i gets
:math:`[(P^1)_{ii}, \\dots, (P^k)_{ii}]`, the probability that a walk returns after t steps.

Components and molecules of equal size are stacked and decomposed with one ``eigh`` call /
one chain of batched matmuls.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def dense_adjacency(num_nodes: int, edge_index: np.ndarray) -> np.ndarray:
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float64)
    adj[edge_index[0], edge_index[1]] = 1.0
    return adj


def _components(num_nodes: int, edge_index: np.ndarray) -> list[np.ndarray]:
    if num_nodes == 0:
        return []
    graph = coo_matrix((np.ones(edge_index.shape[1]), (edge_index[0], edge_index[1])), shape=(num_nodes, num_nodes))
    n_comp, labels = connected_components(graph, directed=False)
    if n_comp == 1:
        return [np.arange(num_nodes)]
    return [np.flatnonzero(labels == c) for c in range(n_comp)]


def _fix_signs(vecs: np.ndarray) -> np.ndarray:
    """vecs (B, n, m): flip each column so that its largest-|.| entry is positive."""
    idx = np.abs(vecs).argmax(axis=1, keepdims=True)
    signs = np.sign(np.take_along_axis(vecs, idx, axis=1))
    signs[signs == 0] = 1.0
    return vecs * signs


def laplacian_pe(graphs: list[tuple[int, np.ndarray]], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """graphs: [(num_nodes, edge_index (2, E))] -> [(eigvecs (N, k), eigvals (N, k))] float32."""
    out = [(np.zeros((n, k), np.float32), np.zeros((n, k), np.float32)) for n, _ in graphs]
    by_size: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for g, (n, ei) in enumerate(graphs):
        adj = dense_adjacency(n, ei)
        for nodes in _components(n, ei):
            sub = adj[np.ix_(nodes, nodes)]
            lap = np.diag(sub.sum(axis=1)) - sub
            by_size.setdefault(len(nodes), []).append((g, nodes, lap))
    for size, items in by_size.items():
        vals, vecs = np.linalg.eigh(np.stack([lap for _, _, lap in items]))
        m = min(k, size)
        vecs = _fix_signs(vecs[:, :, :m])
        for (g, nodes, _), val, vec in zip(items, vals, vecs, strict=True):
            out[g][0][nodes, :m] = vec
            out[g][1][nodes, :m] = np.clip(val[:m], 0.0, None)  # round-off can give -1e-16
    return out


def random_walk_pe(graphs: list[tuple[int, np.ndarray]], k: int) -> list[np.ndarray]:
    """graphs: [(num_nodes, edge_index)] -> [(N, k) float32 return probabilities for t=1..k]."""
    out: list[np.ndarray] = [np.zeros((n, k), np.float32) for n, _ in graphs]
    by_size: dict[int, list[int]] = {}
    for g, (n, _) in enumerate(graphs):
        if n > 0:
            by_size.setdefault(n, []).append(g)
    for n, members in by_size.items():
        adj = np.stack([dense_adjacency(n, graphs[g][1]) for g in members])
        deg = adj.sum(axis=2, keepdims=True)
        trans = np.divide(adj, deg, out=np.zeros_like(adj), where=deg > 0)
        power = trans.copy()
        for t in range(k):
            diag = np.diagonal(power, axis1=1, axis2=2)
            for j, g in enumerate(members):
                out[g][:, t] = diag[j]
            if t + 1 < k:
                power = power @ trans
    return out
