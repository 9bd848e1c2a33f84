"""Positional encodings computed in batches with NumPy (no per-molecule Python linear algebra).

Laplacian PE (per connected component). With the combinatorial Laplacian
:math:`L = D - A` of a component of :math:`n_c` atoms, :math:`L = U \\Lambda U^T`, eigenvalues
ascending. Each atom gets the first :math:`\\min(k, n_c)` eigenvector entries of its
component (zero-padded to k) and the component's first k eigenvalues (zero-padded).
Signs are fixed so that the largest-magnitude entry of each eigenvector is positive.

Random-walk PE. With :math:`P = D^{-1} A` (rows of isolated atoms are zero), atom i gets
:math:`[(P^1)_{ii}, \\dots, (P^k)_{ii}]`, the probability that a walk returns after t steps.

A whole batch of molecules is processed at once: connected components from one call on the
block-diagonal graph, and components (molecules) of equal size stacked and decomposed with one
``eigh`` call (one chain of batched matmuls); no Python work per molecule.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def dense_adjacency(num_nodes: int, edge_index: np.ndarray) -> np.ndarray:
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float64)
    adj[edge_index[0], edge_index[1]] = 1.0
    return adj


def _global_edges(num_nodes: np.ndarray, edge_index: np.ndarray, num_edges: np.ndarray) -> np.ndarray:
    """Per-molecule edge indices (2, ΣE) → indices into the concatenated nodes of all molecules."""
    node_offset = np.cumsum(num_nodes) - num_nodes
    return edge_index + np.repeat(node_offset, num_edges)[None, :]


def _fix_signs(vecs: np.ndarray) -> np.ndarray:
    """vecs (B, n, m): flip each column so that its largest-|.| entry is positive."""
    idx = np.abs(vecs).argmax(axis=1, keepdims=True)
    signs = np.sign(np.take_along_axis(vecs, idx, axis=1))
    signs[signs == 0] = 1.0
    return vecs * signs


def _size_groups(group: np.ndarray, n_groups: int, src: np.ndarray, dst: np.ndarray):
    """Groups of nodes (connected components, or molecules) stacked by size.

    group: (ΣN,) group id per node; src/dst: global edges. Yields, per distinct group size s
    (ascending), ``(s, nodes, stack, pos, adj)``: the nodes of all groups of that size, each such
    node's stack index (the group's rank among groups of that size, by id) and position within its
    group (ascending node order), and the (B, s, s) stacked adjacency.

    Nodes and edges are sorted by their group's size once, so each size is a contiguous slice:
    the work per size is proportional to that size's nodes and edges, not to the whole batch.
    """
    sizes = np.bincount(group, minlength=n_groups)
    order = np.argsort(group, kind="stable")
    position = np.empty(len(group), dtype=np.int64)
    position[order] = np.arange(len(group)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    by_size = np.argsort(sizes, kind="stable")  # groups by size, ties by id
    distinct, groups_per_size = np.unique(sizes[by_size], return_counts=True)
    slot = np.empty(n_groups, dtype=np.int64)
    slot[by_size] = np.arange(n_groups) - np.repeat(np.cumsum(groups_per_size) - groups_per_size, groups_per_size)
    node_size = sizes[group]
    edge_size = node_size[src]
    node_order = np.argsort(node_size, kind="stable")
    edge_order = np.argsort(edge_size, kind="stable")
    node_end = np.cumsum(distinct * groups_per_size)
    edge_end = np.searchsorted(edge_size[edge_order], distinct, side="right")
    node_start, edge_start = 0, 0
    for size, n_members, n_end, e_end in zip(distinct, groups_per_size, node_end, edge_end, strict=True):
        nodes = node_order[node_start:n_end]
        edges = edge_order[edge_start:e_end]
        node_start, edge_start = n_end, e_end
        if size == 0:
            continue
        e_src, e_dst = src[edges], dst[edges]
        adj = np.zeros((int(n_members), int(size), int(size)), dtype=np.float64)
        adj[slot[group[e_src]], position[e_src], position[e_dst]] = 1.0
        yield int(size), nodes, slot[group[nodes]], position[nodes], adj


def laplacian_pe_flat(num_nodes: np.ndarray, edge_index: np.ndarray, num_edges: np.ndarray, k: int):
    """All molecules at once: num_nodes (M,), per-molecule edge_index (2, ΣE), num_edges (M,) →
    (eigvecs (ΣN, k), eigvals (ΣN, k)) float32. Components come from one ``connected_components``
    call on the block-diagonal graph of the batch; components of equal size share one ``eigh``."""
    total = int(num_nodes.sum())
    vec_out, val_out = np.zeros((total, k), np.float32), np.zeros((total, k), np.float32)
    if total == 0:
        return vec_out, val_out
    src, dst = _global_edges(num_nodes, edge_index, num_edges)
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(total, total))
    n_comp, comp = connected_components(graph, directed=False)
    degree = np.bincount(src, minlength=total).astype(np.float64)
    for size, nodes, stack, pos, adj in _size_groups(comp, n_comp, src, dst):
        lap = -adj
        lap[stack, pos, pos] = degree[nodes]
        vals, vecs = np.linalg.eigh(lap)
        m = min(k, size)
        vec_out[nodes, :m] = _fix_signs(vecs[:, :, :m])[stack, pos]
        val_out[nodes, :m] = np.clip(vals[stack, :m], 0.0, None)  # round-off can give -1e-16
    return vec_out, val_out


def random_walk_pe_flat(num_nodes: np.ndarray, edge_index: np.ndarray, num_edges: np.ndarray, k: int) -> np.ndarray:
    """All molecules at once → (ΣN, k) float32 return probabilities for t = 1..k; molecules of
    equal size share one chain of batched matmuls."""
    total = int(num_nodes.sum())
    out = np.zeros((total, k), np.float32)
    if total == 0:
        return out
    src, dst = _global_edges(num_nodes, edge_index, num_edges)
    mol = np.repeat(np.arange(len(num_nodes)), num_nodes)
    for size, nodes, stack, pos, adj in _size_groups(mol, len(num_nodes), src, dst):
        deg = adj.sum(axis=2, keepdims=True)
        trans = np.divide(adj, deg, out=np.zeros_like(adj), where=deg > 0)
        returns = np.empty((len(adj), size, k), dtype=np.float64)  # (B, s, k): diag(P^t) per t
        power = trans
        for t in range(k):
            returns[:, :, t] = np.diagonal(power, axis1=1, axis2=2)
            if t + 1 < k:
                power = power @ trans
        out[nodes] = returns[stack, pos]
    return out


def _flat_inputs(graphs: list[tuple[int, np.ndarray]]):
    num_nodes = np.array([n for n, _ in graphs], dtype=np.int64)
    num_edges = np.array([ei.shape[1] for _, ei in graphs], dtype=np.int64)
    edges = np.concatenate([ei for _, ei in graphs], axis=1) if graphs else np.zeros((2, 0), np.int64)
    return num_nodes, edges.astype(np.int64), num_edges


def _split(flat: np.ndarray, num_nodes: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(num_nodes)[:-1]) if len(num_nodes) else []


def laplacian_pe(graphs: list[tuple[int, np.ndarray]], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """graphs: [(num_nodes, edge_index (2, E))] -> [(eigvecs (N, k), eigvals (N, k))] float32."""
    num_nodes, edges, num_edges = _flat_inputs(graphs)
    vec, val = laplacian_pe_flat(num_nodes, edges, num_edges, k)
    return list(zip(_split(vec, num_nodes), _split(val, num_nodes), strict=True))


def random_walk_pe(graphs: list[tuple[int, np.ndarray]], k: int) -> list[np.ndarray]:
    """graphs: [(num_nodes, edge_index)] -> [(N, k) float32 return probabilities for t=1..k]."""
    num_nodes, edges, num_edges = _flat_inputs(graphs)
    return _split(random_walk_pe_flat(num_nodes, edges, num_edges, k), num_nodes)
