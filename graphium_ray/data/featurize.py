"""Featurize molecule rows into flattened graph arrays (a Ray Data callable class; no Ray inside).

Output row (all arrays flattened row-major, so they are plain Arrow ``list<...>`` columns):

=============  ===========================================================
num_nodes      N
num_edges      E (= 2 × bonds, both directions)
x              N × F_atom int8 when every atom feature is a one-hot or a small integer (the
               default; exact), else float32 (e.g. mass, per-atom contributions)
edge_index     2 × E int32 (all sources, then all targets)
edge_attr      E × F_bond int8 (one-hots and booleans)
lap_vec        N × k float32 (Laplacian eigenvectors), if enabled
lap_val        N × k float32 (eigenvalues of the atom's component), if enabled
rw             N × k float32 (random-walk return probabilities), if enabled
mol_feat       D float32 molecule-level features (featurizer.molecule), if enabled; NaN = undefined
y_graph        T_graph float32 (NaN = missing)
y_node         N × T_node float32
y_edge         E × T_edge float32 (a bond's labels on both of its directed edges)
skip_reason    null, or why this molecule could not be featurized
=============  ===========================================================
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from graphium_ray.chem.cuik_graph import CuikGraphs, merge_in_row_order, takes
from graphium_ray.chem.descriptors import molecule_feature_names, molecule_features
from graphium_ray.chem.features import atom_storage_is_int8
from graphium_ray.chem.graph import (
    GraphArrays,
    ParseError,
    may_hold_dative_bonds,
    mols_to_graphs,
    no_cyclic_gc,
    parse_smiles,
)
from graphium_ray.chem.positional import laplacian_pe_flat, random_walk_pe_flat
from graphium_ray.config import FeaturizerConfig

_F32 = pa.list_(pa.float32())
_I8 = pa.list_(pa.int8())


def featurized_schema(pe_lap: bool, pe_rw: bool, mol_feat: bool = False, x_int8: bool = True) -> pa.Schema:
    fields = [
        ("mol_key", pa.string()), ("split", pa.string()), ("sources", pa.string()),
        ("num_nodes", pa.int32()), ("num_edges", pa.int32()),
        ("x", _I8 if x_int8 else _F32), ("edge_index", pa.list_(pa.int32())), ("edge_attr", _I8),
    ]  # fmt: skip
    fields += [("lap_vec", _F32), ("lap_val", _F32)] if pe_lap else []
    fields += [("rw", _F32)] if pe_rw else []
    fields += [("mol_feat", _F32)] if mol_feat else []
    fields += [("y_graph", _F32), ("y_node", _F32), ("y_edge", _F32), ("skip_reason", pa.string())]
    return pa.schema(fields)


def _list_column(values: np.ndarray, lengths: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """Flat ``values`` split into consecutive rows of ``lengths`` → an Arrow list array (no copies
    per row: one offsets buffer and one values buffer)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.ascontiguousarray(values).reshape(-1), value_type))


def _stored(values: np.ndarray, value_type: pa.DataType, name: str) -> np.ndarray:
    """float32 feature values → the dtype the cache stores them in; int8 only when exact."""
    if value_type != pa.int8():
        return values
    small = values.astype(np.int8)
    if not np.array_equal(small, values):
        bad = values[small != values][:3].tolist()
        raise ValueError(f"featurizer bug: {name} values {bad} are not the small integers its int8 storage needs")
    return small


def _rows_blocked_edges(edge_index: np.ndarray, num_edges: np.ndarray) -> np.ndarray:
    """(2, ΣE) edges → the flat per-graph layout [src of graph 0, dst of graph 0, src of graph 1, ...]."""
    starts = np.cumsum(num_edges) - num_edges
    graph = np.repeat(np.arange(len(num_edges)), num_edges)
    local = np.arange(edge_index.shape[1]) - starts[graph]
    out = np.empty(2 * edge_index.shape[1], dtype=np.int32)
    out[2 * starts[graph] + local] = edge_index[0]
    out[2 * starts[graph] + num_edges[graph] + local] = edge_index[1]
    return out


def molecule_rows(smiles: list[str] | pa.Array, y_graph: np.ndarray | None = None) -> pa.Table:
    """Rows of the Featurizer's input schema for plain SMILES (the SMILES is its own key; no
    node/edge labels), with graph labels ``y_graph`` (M, T) if given."""
    smiles = pa.array(smiles, pa.string()) if not isinstance(smiles, (pa.Array, pa.ChunkedArray)) else smiles
    n = len(smiles)
    y = np.zeros((n, 0), np.float32) if y_graph is None else np.asarray(y_graph, np.float32)
    empty = pa.array([[]] * n, pa.list_(pa.float32()))
    return pa.table({"mol_key": smiles, "split": pa.nulls(n, pa.string()), "sources": pa.nulls(n, pa.string()),
                     "smiles": smiles, "atom_mapped": pa.array([False] * n), "y_graph": pa.array(y.tolist(), pa.list_(pa.float32())),
                     "y_node": empty, "y_edge": empty})  # fmt: skip


class Featurizer:
    """Callable on an Arrow table of molecule rows → Arrow table of featurized rows.

    The whole table is featurized as one batch: RDKit parses each SMILES, atom and bond values are
    gathered per property over all molecules (:func:`mols_to_graphs`), and the output list columns
    are built from flat arrays and offsets, never from per-row Python objects.
    """

    def __init__(self, cfg: FeaturizerConfig, num_node_tasks: int, num_edge_tasks: int):
        self.cfg = cfg
        self.t_node = num_node_tasks
        self.t_edge = num_edge_tasks
        pe = cfg.positional_encodings
        self.mol_sets = list(cfg.molecule)
        self.mol_dim = len(molecule_feature_names(self.mol_sets))
        self.schema = featurized_schema(pe.laplacian_k > 0, pe.random_walk_k > 0, bool(self.mol_sets),
                                        x_int8=atom_storage_is_int8(list(cfg.atom_float)))  # fmt: skip
        self.features = (list(cfg.atom_onehot), list(cfg.atom_float), list(cfg.bond))
        self.cuik = CuikGraphs(*self.features) if cfg.backend == "cuik" else None  # the compiled path

    def __call__(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        reasons: list[str | None] = [None] * n
        ok, g, mols = self._graphs(table, reasons)
        y_node, y_edge = self._item_labels(table, ok, g, reasons)
        keep = np.array([reasons[i] is None for i in ok], dtype=bool)
        node_keep, edge_keep = np.repeat(keep, g.num_nodes), np.repeat(keep, g.num_edges)
        ok_rows = np.asarray(ok, dtype=np.int64)[keep]
        num_nodes = np.zeros(n, np.int64)
        num_edges = np.zeros(n, np.int64)
        num_nodes[ok_rows], num_edges[ok_rows] = g.num_nodes[keep], g.num_edges[keep]
        x, edge_attr = g.x[node_keep], g.edge_attr[edge_keep]
        edge_index = g.edge_index[:, edge_keep]
        cols = {name: table.column(name) for name in ("mol_key", "split", "sources", "y_graph")}
        cols["num_nodes"] = pa.array(num_nodes, pa.int32())
        cols["num_edges"] = pa.array(num_edges, pa.int32())
        x_type, bond_type = self.schema.field("x").type.value_type, self.schema.field("edge_attr").type.value_type
        cols["x"] = _list_column(_stored(x, x_type, "atom feature"), num_nodes * x.shape[1], x_type)
        cols["edge_index"] = _list_column(_rows_blocked_edges(edge_index, num_edges[ok_rows]), 2 * num_edges, pa.int32())
        cols["edge_attr"] = _list_column(_stored(edge_attr, bond_type, "bond feature"), num_edges * edge_attr.shape[1], bond_type)
        cols["y_node"] = _list_column(y_node[node_keep], num_nodes * self.t_node, pa.float32())
        cols["y_edge"] = _list_column(y_edge[edge_keep], num_edges * self.t_edge, pa.float32())
        cols["skip_reason"] = pa.array(reasons, pa.string())
        cols.update(self._pes(edge_index, num_nodes, num_edges, ok_rows))
        if self.mol_sets:
            kept = [m for m, k in zip(mols, keep, strict=True) if k]
            lengths = np.zeros(n, np.int64)
            lengths[ok_rows] = self.mol_dim
            cols["mol_feat"] = _list_column(molecule_features(kept, self.mol_sets), lengths, pa.float32())
        return pa.table({name: cols[name].cast(self.schema.field(name).type) for name in self.schema.names})

    def _graphs(self, table: pa.Table, reasons: list) -> tuple[list[int], GraphArrays, list]:
        """(rows featurized, their graphs in row order, their RDKit molecules (reference path only));
        an unparsable row gets its reason in ``reasons``."""
        smiles = table.column("smiles").to_pylist()
        mapped = table.column("atom_mapped").to_pylist()
        if self.cuik is not None:
            with no_cyclic_gc():
                fast = [i for i, (s, m) in enumerate(zip(smiles, mapped, strict=True)) if takes(s, bool(m))]
            parts = self._cuik_parts(fast, smiles)
            if parts:
                taken = {i for rows, _ in parts for i in rows}
                rest = [i for i in range(len(smiles)) if i not in taken]
                ok, graphs, _ = self._reference_graphs(rest, smiles, mapped, reasons)
                ok, merged = merge_in_row_order([*parts, (ok, graphs)])
                return ok, merged, []
        return self._reference_graphs(range(len(smiles)), smiles, mapped, reasons)

    def _cuik_parts(self, rows: list[int], smiles: list) -> list[tuple[list[int], GraphArrays]]:
        """cuik-molmaker's graphs of ``rows``, as (rows, graphs) parts; a batch it rejects (one bad
        molecule fails the call) is halved until the rows left out are few (≤ 16 per bad molecule;
        the reference path takes them)."""
        if not rows:
            return []
        graphs = self.cuik([smiles[i] for i in rows])
        if graphs is not None:
            return [(rows, graphs)]
        if len(rows) <= 16:
            return []
        half = len(rows) // 2
        return self._cuik_parts(rows[:half], smiles) + self._cuik_parts(rows[half:], smiles)

    def _reference_graphs(self, rows, smiles: list, mapped: list, reasons: list) -> tuple[list[int], GraphArrays, list]:
        """RDKit's Python API: parse each SMILES, then read atoms and bonds batch-wide."""
        mols, ok, plain = [], [], []
        with no_cyclic_gc():  # parsing allocates many short-lived objects; see no_cyclic_gc
            for i in rows:
                try:
                    mols.append(parse_smiles(smiles[i], hydrogens=self.cfg.hydrogens, atom_mapped=bool(mapped[i])))
                    ok.append(i)
                    plain.append(not may_hold_dative_bonds(smiles[i]))
                except ParseError as err:
                    reasons[i] = f"unparsable SMILES: {err}"
            return ok, mols_to_graphs(mols, *self.features, plain_bond_orders=plain), mols

    def _item_labels(self, table: pa.Table, ok: list[int], g, reasons: list) -> tuple[np.ndarray, np.ndarray]:
        """Per-atom (ΣN·T_node) and per-directed-edge (ΣE·T_edge) labels of the parsed molecules,
        checked against each molecule (a wrong length marks the row skipped with the reason)."""
        if not self.t_node and not self.t_edge:  # no per-atom/bond labels: nothing to read or check
            return np.zeros((int(g.num_nodes.sum()), 0), np.float32), np.zeros((int(g.num_edges.sum()), 0), np.float32)
        per_node, per_edge = [], []
        y_node_col = table.column("y_node").to_pylist() if self.t_node else None
        y_edge_col = table.column("y_edge").to_pylist() if self.t_edge else None
        for j, i in enumerate(ok):
            n_atoms, n_edges = int(g.num_nodes[j]), int(g.num_edges[j])
            try:
                node = self._items(y_node_col[i] if y_node_col else [], n_atoms, self.t_node, "atoms", 1)
                edge = self._items(y_edge_col[i] if y_edge_col else [], n_edges // 2, self.t_edge, "bonds", 2)
            except ValueError as err:
                reasons[i] = str(err)
                node = np.full(n_atoms * self.t_node, np.nan, np.float32)
                edge = np.full(n_edges * self.t_edge, np.nan, np.float32)
            per_node.append(node.reshape(n_atoms, self.t_node))
            per_edge.append(edge.reshape(n_edges, self.t_edge))
        cat = lambda parts, t: np.concatenate(parts) if parts else np.zeros((0, t), np.float32)  # noqa: E731
        return cat(per_node, self.t_node), cat(per_edge, self.t_edge)

    def _items(self, values: list, n_items: int, n_tasks: int, what: str, repeat: int) -> np.ndarray:
        """Per-item labels (n_items × n_tasks), checked against the molecule; NaN when absent."""
        if n_tasks == 0:
            return np.zeros(0, np.float32)
        if not values:
            return np.full(n_items * repeat * n_tasks, np.nan, np.float32)
        given = len(values) // n_tasks
        if given != n_items:
            hint = ""
            if self.cfg.hydrogens == "implicit":
                hint = " (labels that include hydrogens need featurizer.hydrogens: explicit or as_written)"
            raise ValueError(f"label list has {given} entries but the molecule has {n_items} {what}{hint}")
        arr = np.asarray(values, np.float32).reshape(n_items, n_tasks)
        return np.repeat(arr, repeat, axis=0).reshape(-1)

    def _pes(self, edge_index: np.ndarray, num_nodes: np.ndarray, num_edges: np.ndarray, ok_rows) -> dict:
        pe = self.cfg.positional_encodings
        nodes, edges = num_nodes[ok_rows], num_edges[ok_rows]
        out = {}
        if pe.laplacian_k:
            vec, val = laplacian_pe_flat(nodes, edge_index, edges, pe.laplacian_k)
            out["lap_vec"] = _list_column(vec, num_nodes * pe.laplacian_k, pa.float32())
            out["lap_val"] = _list_column(val, num_nodes * pe.laplacian_k, pa.float32())
        if pe.random_walk_k:
            rw = random_walk_pe_flat(nodes, edge_index, edges, pe.random_walk_k)
            out["rw"] = _list_column(rw, num_nodes * pe.random_walk_k, pa.float32())
        return out
