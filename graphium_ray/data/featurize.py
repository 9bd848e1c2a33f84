"""Featurize molecule rows into flattened graph arrays (a Ray Data callable class; no Ray inside).

Output row (all arrays flattened row-major, so they are plain Arrow ``list<...>`` columns):

=============  ===========================================================
num_nodes      N
num_edges      E (= 2 × bonds, both directions)
x              N × F_atom float32
edge_index     2 × E int32 (all sources, then all targets)
edge_attr      E × F_bond float32
lap_vec        N × k float32 (Laplacian eigenvectors), if enabled
lap_val        N × k float32 (eigenvalues of the atom's component), if enabled
rw             N × k float32 (random-walk return probabilities), if enabled
y_graph        T_graph float32 (NaN = missing)
y_node         N × T_node float32
y_edge         E × T_edge float32 (a bond's labels on both of its directed edges)
skip_reason    null, or why this molecule could not be featurized
=============  ===========================================================
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from graphium_ray.chem.graph import MolGraph, ParseError, mol_to_graph, parse_smiles
from graphium_ray.chem.positional import laplacian_pe, random_walk_pe
from graphium_ray.config import FeaturizerConfig

_F32 = pa.list_(pa.float32())


def featurized_schema(pe_lap: bool, pe_rw: bool) -> pa.Schema:
    fields = [
        ("mol_key", pa.string()), ("split", pa.string()), ("sources", pa.string()),
        ("num_nodes", pa.int32()), ("num_edges", pa.int32()),
        ("x", _F32), ("edge_index", pa.list_(pa.int32())), ("edge_attr", _F32),
    ]  # fmt: skip
    fields += [("lap_vec", _F32), ("lap_val", _F32)] if pe_lap else []
    fields += [("rw", _F32)] if pe_rw else []
    fields += [("y_graph", _F32), ("y_node", _F32), ("y_edge", _F32), ("skip_reason", pa.string())]
    return pa.schema(fields)


class Featurizer:
    """Callable on an Arrow table of molecule rows → Arrow table of featurized rows."""

    def __init__(self, cfg: FeaturizerConfig, num_node_tasks: int, num_edge_tasks: int):
        self.cfg = cfg
        self.t_node = num_node_tasks
        self.t_edge = num_edge_tasks
        pe = cfg.positional_encodings
        self.schema = featurized_schema(pe.laplacian_k > 0, pe.random_walk_k > 0)

    def graph(self, smiles: str, atom_mapped: bool) -> MolGraph:
        mol = parse_smiles(smiles, hydrogens=self.cfg.hydrogens, atom_mapped=atom_mapped)
        return mol_to_graph(mol, list(self.cfg.atom_onehot), list(self.cfg.atom_float), list(self.cfg.bond))

    def __call__(self, table: pa.Table) -> pa.Table:
        rows = table.select(["mol_key", "split", "sources", "smiles", "atom_mapped", "y_graph", "y_node", "y_edge"])
        out: dict[str, list] = {name: [] for name in self.schema.names}
        graphs: list[tuple[int, np.ndarray]] = []
        for row in rows.to_pylist():
            graph, y_node, y_edge, reason = self._one(row)
            for k in ("mol_key", "split", "sources", "y_graph"):
                out[k].append(row[k])
            out["num_nodes"].append(graph.num_nodes)
            out["num_edges"].append(graph.num_edges)
            out["x"].append(graph.x.reshape(-1))
            out["edge_index"].append(graph.edge_index.astype(np.int32).reshape(-1))
            out["edge_attr"].append(graph.edge_attr.reshape(-1))
            out["y_node"].append(y_node)
            out["y_edge"].append(y_edge)
            out["skip_reason"].append(reason)
            graphs.append((graph.num_nodes, graph.edge_index))
        self._add_pes(out, graphs)
        return pa.table({name: pa.array(out[name], self.schema.field(name).type) for name in self.schema.names})

    def _one(self, row: dict) -> tuple[MolGraph, np.ndarray, np.ndarray, str | None]:
        empty = MolGraph(np.zeros((0, 0), np.float32), np.zeros((2, 0), np.int64), np.zeros((0, 0), np.float32))
        nothing = np.zeros(0, np.float32)
        try:
            graph = self.graph(row["smiles"], row["atom_mapped"])
        except ParseError as err:
            return empty, nothing, nothing, f"unparsable SMILES: {err}"
        try:
            y_node = self._items(row["y_node"], graph.num_nodes, self.t_node, "atoms", 1)
            y_edge = self._items(row["y_edge"], graph.num_edges // 2, self.t_edge, "bonds", 2)
        except ValueError as err:
            return empty, nothing, nothing, str(err)
        return graph, y_node, y_edge, None

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

    def _add_pes(self, out: dict[str, list], graphs: list[tuple[int, np.ndarray]]) -> None:
        pe = self.cfg.positional_encodings
        if pe.laplacian_k:
            for vec, val in laplacian_pe(graphs, pe.laplacian_k):
                out["lap_vec"].append(vec.reshape(-1))
                out["lap_val"].append(val.reshape(-1))
        if pe.random_walk_k:
            out["rw"].extend(p.reshape(-1) for p in random_walk_pe(graphs, pe.random_walk_k))
