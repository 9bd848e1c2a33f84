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


def test_in_memory_split_made_contiguous_gives_the_same_batches():
    """The in-memory train path keeps the split as one chunk per column (fast random ``take``);
    the permuted batches it collates must equal those of the chunked table Ray Data hands over."""
    import pyarrow as pa

    from graphium_ray.chem.features import bond_feature_dim
    from graphium_ray.config import FeaturizerConfig
    from graphium_ray.data.in_memory import featurize_smiles
    from graphium_ray.data.reader import concat_contiguous

    rows = featurize_smiles(list(REFERENCE_SMILES), np.arange(len(REFERENCE_SMILES), dtype=np.float32)[:, None],
                            FeaturizerConfig())  # fmt: skip
    chunked = pa.Table.from_batches(rows.to_batches(max_chunksize=7))
    assert chunked.column("x").num_chunks > 1
    one = concat_contiguous(pa.Table.from_batches([b]) for b in chunked.to_batches())  # as files/batches arrive
    assert all(col.num_chunks == 1 for col in one.columns) and one.equals(chunked)
    order = pa.array(np.random.default_rng(0).permutation(chunked.num_rows)[:16])
    widths, bond_dim = {"graph": 1, "node": 0, "edge": 0}, bond_feature_dim(list(FeaturizerConfig().bond))
    a, b = (collate_arrays(t.take(order), widths, bond_dim=bond_dim) for t in (chunked, one))
    for name in ("x", "edge_index", "edge_attr", "batch"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name))
    torch.testing.assert_close(a.y["graph"][:, 0], torch.as_tensor(order.to_numpy(), dtype=torch.float32))


def test_cache_stores_small_integer_features_as_int8_and_collates_the_float_values():
    """Default features (one-hots, degree, charge, ...) are stored as int8 (4x smaller in memory);
    a non-integer feature (mass) keeps the atom block float32. Either way the collated batch holds
    exactly the float features that ``mol_to_graph`` computes molecule by molecule."""
    import pyarrow as pa

    from graphium_ray.chem.features import bond_feature_dim
    from graphium_ray.config import FeaturizerConfig
    from graphium_ray.data.in_memory import featurize_smiles

    widths = {"graph": 1, "node": 0, "edge": 0}
    for atom_float, x_type in ((None, pa.int8()), (["degree", "formal-charge", "mass"], pa.float32())):
        cfg = FeaturizerConfig() if atom_float is None else FeaturizerConfig(atom_float=atom_float)
        rows = featurize_smiles(list(REFERENCE_SMILES), np.zeros((len(REFERENCE_SMILES), 1), np.float32), cfg)
        assert rows.schema.field("x").type.value_type == x_type
        assert rows.schema.field("edge_attr").type.value_type == pa.int8()
        batch = collate_arrays(rows, widths, bond_dim=bond_feature_dim(list(cfg.bond)))
        graphs = [mol_to_graph(parse_smiles(s), list(cfg.atom_onehot), list(cfg.atom_float), list(cfg.bond))
                  for s in REFERENCE_SMILES]  # fmt: skip
        assert batch.x.dtype == batch.edge_attr.dtype == torch.float32
        torch.testing.assert_close(batch.x, torch.from_numpy(np.concatenate([g.x for g in graphs])), rtol=0, atol=0)
        torch.testing.assert_close(batch.edge_attr, torch.from_numpy(np.concatenate([g.edge_attr for g in graphs])),
                                   rtol=0, atol=0)  # fmt: skip
        if atom_float is not None:  # the masses really are fractional, so int8 could not hold them
            assert not np.array_equal(batch.x.numpy(), np.round(batch.x.numpy()))
