"""Input encoders: atoms, bonds and positional encodings into the hidden width.

Positional encodings (Dwivedi et al. 2022; Rampášek et al. 2022, GPS):
* Laplacian: per node ``[eigvec_k ‖ eigval_k]`` (N, 2k) → MLP → (N, pe_dim). During training
  each eigenvector's sign is flipped at random per graph (its sign is arbitrary).
* Random walk: return probabilities (N, k) → MLP → (N, pe_dim).
The PE embedding p is added to (``add``) or concatenated with (``concat``) the atom embedding,
and transferred to edges as ``Linear([p_i + p_j ‖ |p_i - p_j|])`` added to the bond embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from graphium_ray.batch import GraphBatch
from graphium_ray.nn.primitives import MLP, MuLinear


class PositionalEncoder(nn.Module):
    def __init__(self, laplacian_k: int, random_walk_k: int, pe_dim: int):
        super().__init__()
        self.lap = MLP(2 * laplacian_k, pe_dim, pe_dim, layers=2) if laplacian_k else None
        self.rw = MLP(random_walk_k, pe_dim, pe_dim, layers=2) if random_walk_k else None
        self.out_dim = pe_dim * (int(bool(laplacian_k)) + int(bool(random_walk_k)))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        parts = []
        if self.lap is not None:
            vec = batch.pe["lap_vec"]
            if self.training:
                signs = torch.randint(0, 2, (batch.num_graphs, vec.shape[1]), device=vec.device) * 2 - 1
                vec = vec * signs[batch.batch].to(vec.dtype)
            parts.append(self.lap(torch.cat([vec, batch.pe["lap_val"]], dim=-1)))
        if self.rw is not None:
            parts.append(self.rw(batch.pe["rw"]))
        return torch.cat(parts, dim=-1)


class InputEncoder(nn.Module):
    """Batch → (node embeddings (N, D), edge embeddings (E, D)); ``use_edges=False``: no bond encoder."""

    def __init__(self, atom_dim: int, bond_dim: int, hidden_dim: int, laplacian_k: int = 0,
                 random_walk_k: int = 0, pe_dim: int = 16, pe_combine: str = "add", use_edges: bool = True):  # fmt: skip
        super().__init__()
        self.pe = PositionalEncoder(laplacian_k, random_walk_k, pe_dim) if laplacian_k or random_walk_k else None
        pe_out = self.pe.out_dim if self.pe is not None else 0
        self.combine = pe_combine
        atom_in = atom_dim + (pe_out if pe_combine == "concat" else 0)
        self.atom = MuLinear(atom_in, hidden_dim)
        self.pe_to_node = MuLinear(pe_out, hidden_dim) if self.pe is not None and pe_combine == "add" else None
        self.bond = MuLinear(max(bond_dim, 1), hidden_dim) if use_edges else None
        self.pe_to_edge = MuLinear(2 * pe_out, hidden_dim) if self.pe is not None and use_edges else None

    def forward(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(node embeddings (N, D), edge embeddings (E, D) or None when no part of the model reads bonds)."""
        x_in = batch.x
        p_NP = self.pe(batch) if self.pe is not None else None
        if p_NP is not None and self.combine == "concat":
            x_in = torch.cat([x_in, p_NP], dim=-1)
        h_ND = self.atom(x_in)
        if self.pe_to_node is not None:
            h_ND = h_ND + self.pe_to_node(p_NP)
        if self.bond is None:
            return h_ND, None
        edge_in = (
            batch.edge_attr if batch.edge_attr.shape[1] else batch.edge_attr.new_ones((batch.edge_attr.shape[0], 1))
        )
        e_ED = self.bond(edge_in)
        if self.pe_to_edge is not None:
            src, dst = batch.edge_index
            e_ED = e_ED + self.pe_to_edge(torch.cat([p_NP[src] + p_NP[dst], (p_NP[src] - p_NP[dst]).abs()], dim=-1))
        return h_ND, e_ED


class MoleculeFeatures(nn.Module):
    """Molecule-level inputs (G, D) → standardized (G, D): ``clamp((f - μ) / σ, ±c)``, with μ, σ the
    train-split statistics (buffers: they travel with the weights) and NaN (undefined) read as μ,
    i.e. 0. No parameters: the heads' first linear layer reads them next to the pooled embedding,
    as chemprop concatenates its molecule features to the aggregated message-passing output."""

    def __init__(self, mean: list[float], std: list[float], clamp: float = 6.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.clamp = clamp
        self.out_dim = len(mean)

    def forward(self, feat_GD: torch.Tensor | None) -> torch.Tensor:
        if feat_GD is None:
            raise ValueError(f"the model reads {self.out_dim} molecule features (featurizer.molecule) "
                             "but the batch has none")  # fmt: skip
        z = (feat_GD.to(self.mean.dtype) - self.mean) / self.std
        return torch.nan_to_num(z, nan=0.0).clamp(-self.clamp, self.clamp)
