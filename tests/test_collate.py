"""Our flattened-column collate against PyG's Batch.from_data_list on the same molecules."""

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from graphium_ray.chem.graph import mol_to_graph, parse_smiles
from graphium_ray.data.builtin import REFERENCE_SMILES
from graphium_ray.data.collate import collate_arrays

SMILES = REFERENCE_SMILES[:20]


def test_collate_matches_pyg_batch():
    graphs = [
        mol_to_graph(parse_smiles(s), ["atomic-number", "period"], ["degree"], ["bond-type-onehot"]) for s in SMILES
    ]
    y = np.arange(len(graphs) * 2, dtype=np.float32).reshape(-1, 2)
    node_y = [np.full(g.num_nodes, i, np.float32) for i, g in enumerate(graphs)]
    batch = {
        "num_nodes": np.array([g.num_nodes for g in graphs]),
        "num_edges": np.array([g.num_edges for g in graphs]),
        "x": np.array([g.x.reshape(-1) for g in graphs], dtype=object),
        "edge_index": np.array([g.edge_index.astype(np.int32).reshape(-1) for g in graphs], dtype=object),
        "edge_attr": np.array([g.edge_attr.reshape(-1) for g in graphs], dtype=object),
        "y_graph": y,  # equal-length lists arrive as a 2-D array
        "y_node": np.array(node_y, dtype=object),
    }
    ours = collate_arrays(batch, {"graph": 2, "node": 1, "edge": 0}, bond_dim=5)
    ref = Batch.from_data_list([
        Data(x=torch.from_numpy(g.x), edge_index=torch.from_numpy(g.edge_index), edge_attr=torch.from_numpy(g.edge_attr))
        for g in graphs
    ])  # fmt: skip
    torch.testing.assert_close(ours.x, ref.x)
    torch.testing.assert_close(ours.edge_index, ref.edge_index)
    torch.testing.assert_close(ours.edge_attr, ref.edge_attr)
    torch.testing.assert_close(ours.batch, ref.batch)
    assert ours.num_graphs == ref.num_graphs == len(SMILES)
    torch.testing.assert_close(ours.y["graph"], torch.from_numpy(y))
    torch.testing.assert_close(ours.y["node"][:, 0], ref.batch.float())
