"""GPS layer: :class:`GPSLayer`."""

from __future__ import annotations

import torch
from torch import nn

from graphium_ray.nn.gine import GINELayer
from graphium_ray.nn.layers import MessagePassingLayer
from graphium_ray.nn.primitives import MLP


class GPSLayer(MessagePassingLayer):
    """GPS layer (Rampášek et al., NeurIPS 2022, "Recipe for a General, Powerful, Scalable Graph Transformer").

    .. math::
        h^{M} = \\mathrm{Norm}(x + \\mathrm{GINE}(x, e)),\\qquad
        h^{T} = \\mathrm{Norm}(x + \\mathrm{MHA}_{\\text{per graph}}(x)),\\qquad
        x' = \\mathrm{FFN}(h^{M} + h^{T})

    Global attention runs within each graph only: nodes are scattered into a dense
    (G, N_max, D) tensor with a key-padding mask (PyG's ``to_dense_batch``), attended, and gathered back.

    Args:
        dim: width D. heads: attention heads (D must be divisible by it). dropout: attention dropout.
    Shapes:
        x (N, D), edge_index (2, E), edge_attr (E, D), batch (N,) → x' (N, D), edge_attr unchanged.
    """

    @classmethod
    def build(cls, dim: int, heads: int, dropout: float) -> GPSLayer:
        return cls(dim, heads, dropout)

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.hidden_dim={dim} must be divisible by model.attention_heads={heads}")
        self.local = GINELayer(dim, dim, edge_dim=dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_local, self.norm_attn = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = MLP(dim, 2 * dim, dim, layers=2)

    def global_attention(self, x_ND: torch.Tensor, batch_N: torch.Tensor, num_graphs: int) -> torch.Tensor:
        from torch_geometric.utils import to_dense_batch  # lazy: importing PyG costs ~1 s per process

        dense_GMD, mask_GM = to_dense_batch(x_ND, batch_N, batch_size=num_graphs)
        out_GMD, _ = self.attn(dense_GMD, dense_GMD, dense_GMD, key_padding_mask=~mask_GM, need_weights=False)
        return out_GMD[mask_GM]

    def forward(self, x_ND, edge_index, edge_attr_ED, batch=None, num_graphs=None):
        h_local = self.norm_local(x_ND + self.local(x_ND, edge_index, edge_attr_ED)[0])
        h_attn = self.norm_attn(x_ND + self.global_attention(x_ND, batch, num_graphs))
        return self.ffn(h_local + h_attn), edge_attr_ED
