"""Graph Convolutional Network (Kipf & Welling, ICLR 2017), dense form.

One layer is ``H' = act(Â H W + b)`` with the renormalised adjacency
``Â = D^-1/2 (A + I) D^-1/2`` (``D`` the degree matrix of ``A + I``). We apply ``W`` first, then
``Â`` (cheaper when the layer narrows the features, as the paper does). The adjacency is a dense
``[N, N]`` tensor, so the propagation is one matmul the workload tracer sees; build it with
:func:`normalized_adjacency` from an edge list.

``forward(x [N, F], adj [N, N]) -> logits [N, num_classes]`` (one logit row per node). Defaults are the
paper's Cora model: 1433 input features, 16 hidden units, 7 classes, dropout 0.5, 2708 nodes.
Example inputs for ``batch`` b are b disjoint ring graphs of ``num_nodes`` nodes each (one
block-diagonal adjacency of ``b * num_nodes`` nodes).
"""
from __future__ import annotations

import torch
from torch import nn

from models.activations import make_activation
from models.registry import register
from neurosim.errors import NeurosimError


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int, symmetric: bool = True) -> torch.Tensor:
    """Dense ``Â = D^-1/2 (A + I) D^-1/2`` from ``edge_index [2, E]`` (source row, target row).

    ``symmetric`` adds every edge in both directions (an undirected graph); repeated edges count once.
    """
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise NeurosimError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    src, dst = edge_index[0].long(), edge_index[1].long()
    a = torch.zeros(num_nodes, num_nodes, device=edge_index.device)
    ones = torch.ones(src.shape[0], device=edge_index.device)
    a = a.index_put((src, dst), ones)
    if symmetric:
        a = a.index_put((dst, src), ones)
    a = a + torch.eye(num_nodes, device=edge_index.device)
    d = a.sum(dim=1).rsqrt()
    return d[:, None] * a * d[None, :]


class GCNLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.linear.weight)  # Glorot & Bengio 2010, as in the paper

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return adj @ self.linear(x) + self.bias


class GCN(nn.Module):
    def __init__(self, in_features: int, hidden: tuple, num_classes: int, dropout: float, activation: str):
        super().__init__()
        widths = [in_features, *hidden, num_classes]
        self.layers = nn.ModuleList(GCNLayer(widths[i], widths[i + 1]) for i in range(len(widths) - 1))
        self.acts = nn.ModuleList(make_activation(activation) for _ in hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(self.drop(x), adj)
            if i < len(self.acts):
                x = self.acts[i](x)
        return x


def graph_inputs(batch: int, seq, cfg: dict) -> tuple:
    """``(x [b*N, F], adj [b*N, b*N])``: b disjoint rings of N = cfg['num_nodes'] nodes."""
    n = cfg["num_nodes"] * batch
    node = torch.arange(n)
    ring_next = node - node % cfg["num_nodes"] + (node % cfg["num_nodes"] + 1) % cfg["num_nodes"]
    adj = normalized_adjacency(torch.stack([node, ring_next]), n)
    return torch.randn(n, cfg["in_features"]), adj


@register("gcn", family="gcn", inputs=graph_inputs)
def gcn(in_features: int = 1433, hidden: tuple = (16,), num_classes: int = 7, num_nodes: int = 2708,
        dropout: float = 0.5, activation: str = "relu") -> nn.Module:
    """Two-layer GCN (Kipf & Welling 2017); defaults are the paper's Cora model (1433-16-7)."""
    hidden = (int(hidden),) if isinstance(hidden, (int, float)) else tuple(int(h) for h in hidden)
    return GCN(in_features, hidden, num_classes, dropout, activation)
