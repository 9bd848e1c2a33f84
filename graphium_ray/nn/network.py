"""The multi-task network: encoders → stack of GNN blocks → pooling → task heads.

A block applies one message-passing layer, then normalization, ReLU, dropout and (optionally) a
residual connection, to nodes and to edges (for layers that update edges). With a virtual node,
after each block every graph's node sum updates a per-graph state that is added back to its nodes.

Molecule-level input features (``featurizer.molecule``), standardized, are concatenated to the
pooled graph embedding: the graph heads read [pool(x) ‖ z(f)].

forward(batch) → {level: predictions}: graph (G, Σ out_dim), node (N, ·), edge (E, ·).
"""

from __future__ import annotations

import torch
from torch import nn

from graphium_ray.batch import GraphBatch
from graphium_ray.config import ModelConfig
from graphium_ray.nn.encoders import InputEncoder, MoleculeFeatures
from graphium_ray.nn.heads import TaskHeads
from graphium_ray.nn.layer_registry import layer_class
from graphium_ray.nn.layers import make_layer
from graphium_ray.nn.pooling import GraphPooling
from graphium_ray.nn.primitives import MLP, apply_norm, norm_layer
from graphium_ray.nn.scatter import scatter_sum
from graphium_ray.tasks import TaskSpec


class GNNBlock(nn.Module):
    """``edges_out``: whether anything reads this block's edge output (a later block, or an edge
    head); when not, its edge norm is not created (DDP: no parameter may go unused)."""

    def __init__(self, cfg: ModelConfig, edges_out: bool = True):
        super().__init__()
        self.conv = make_layer(cfg.layer, cfg.hidden_dim, cfg.attention_heads, cfg.dropout)
        self.updates_edges = self.conv.updates_edges and edges_out
        self.norm_x = norm_layer(cfg.norm, cfg.hidden_dim)
        self.norm_e = norm_layer(cfg.norm, cfg.hidden_dim) if self.updates_edges else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.residual = cfg.residual

    def forward(self, x_ND, e_ED, batch: GraphBatch):
        h_ND, f_ED = self.conv(x_ND, batch.edge_index, e_ED, batch=batch.batch, num_graphs=batch.num_graphs)
        h_ND = self.dropout(torch.relu(apply_norm(self.norm_x, h_ND, batch.node_mask)))
        x_ND = x_ND + h_ND if self.residual else h_ND
        if self.norm_e is not None:
            f_ED = self.dropout(torch.relu(apply_norm(self.norm_e, f_ED, batch.real_rows("edge"))))
            e_ED = e_ED + f_ED if self.residual else f_ED
        return x_ND, e_ED


class VirtualNode(nn.Module):
    """vn_G ← vn_G + MLP(Σ_{i∈G} x_i);  x_i ← x_i + vn_{G(i)}."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = MLP(dim, dim, dim, layers=2)

    def forward(self, x_ND, vn_GD, batch: GraphBatch):
        vn_GD = vn_GD + self.mlp(scatter_sum(x_ND, batch.batch, batch.num_graphs))
        return x_ND + vn_GD[batch.batch], vn_GD


def _rename_legacy_keys(state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints written before layers shared one signature held GCN/GIN/GINE weights one module
    deeper (``blocks.i.conv.layer.*``, an adapter): read them as ``blocks.i.conv.*``."""
    for key in [k for k in state_dict if k.startswith(prefix) and ".conv.layer." in k]:
        state_dict[key.replace(".conv.layer.", ".conv.", 1)] = state_dict.pop(key)


class MultiTaskGNN(nn.Module):
    """Only the parameters a configuration uses are created: no bond encoder when neither the
    layers nor an edge head read bond features (GCN, GIN), no edge norm after the last block when
    no edge head reads it. Under DDP every parameter then receives a gradient every step."""

    def __init__(self, cfg: ModelConfig, atom_dim: int, bond_dim: int, tasks: list[TaskSpec],
                 laplacian_k: int = 0, random_walk_k: int = 0,
                 binary_prevalence: dict[str, float] | None = None,
                 molecule_features: dict | None = None):  # fmt: skip
        super().__init__()
        self._register_load_state_dict_pre_hook(_rename_legacy_keys)
        d = cfg.hidden_dim
        edge_heads = any(t.level == "edge" for t in tasks)
        use_edges = edge_heads or layer_class(cfg.layer).reads_edges
        self.encoder = InputEncoder(atom_dim, bond_dim, d, laplacian_k, random_walk_k, cfg.pe_dim, cfg.pe_combine,
                                    use_edges=use_edges)  # fmt: skip
        self.blocks = nn.ModuleList(
            GNNBlock(cfg, edges_out=edge_heads or i + 1 < cfg.num_layers) for i in range(cfg.num_layers)
        )
        self.virtual = nn.ModuleList(VirtualNode(d) for _ in range(cfg.num_layers)) if cfg.virtual_node else None
        self.pooling = GraphPooling(cfg.pooling)
        mol = molecule_features or {}
        self.molecule = MoleculeFeatures(mol["mean"], mol["std"]) if mol.get("names") else None
        mol_dim = self.molecule.out_dim if self.molecule is not None else 0
        in_dims = {"graph": d * len(cfg.pooling) + mol_dim, "node": d, "edge": 3 * d}
        self.heads = TaskHeads(tasks, in_dims, cfg.head_hidden_dim, cfg.head_layers, cfg.dropout, binary_prevalence,
                               cfg.head_norm if cfg.parametrization == "sp" else "none",
                               zero_output=cfg.parametrization == "sp")  # fmt: skip

    def embed(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        """Named intermediate outputs: ``layer_i`` (N, D) node embeddings, ``graph`` (G, P·D [+ M]: the
        pooled embedding, followed by the M standardized molecule features when the model reads
        them), ``edges`` (E, D)."""
        x_ND, e_ED = self.encoder(batch)
        out: dict[str, torch.Tensor] = {}
        vn_GD = x_ND.new_zeros((batch.num_graphs, x_ND.shape[1]))
        for i, block in enumerate(self.blocks):
            x_ND, e_ED = block(x_ND, e_ED, batch)
            if self.virtual is not None:
                x_ND, vn_GD = self.virtual[i](x_ND, vn_GD, batch)
            out[f"layer_{i}"] = x_ND
        x_pool = x_ND if batch.node_mask is None else x_ND * batch.node_mask.unsqueeze(-1).to(x_ND.dtype)
        out["graph"] = self.pooling(x_pool, batch.batch, batch.num_graphs)
        if self.molecule is not None:
            out["graph"] = torch.cat([out["graph"], self.molecule(batch.mol_feat).to(x_ND.dtype)], -1)
        out["nodes"] = x_ND
        if e_ED is not None:
            out["edges"] = e_ED
        return out

    def forward(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        emb = self.embed(batch)
        x_ND = emb["nodes"]
        inputs = {"graph": emb["graph"], "node": x_ND}
        if "edge" in self.heads.order:
            src, dst = batch.edge_index
            inputs["edge"] = torch.cat([x_ND[src] + x_ND[dst], (x_ND[src] - x_ND[dst]).abs(), emb["edges"]], dim=-1)
        return self.heads(inputs, {level: batch.real_rows(level) for level in self.heads.order})
