"""Recurrent sequence classifiers: LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014).

The cells are written out with ``nn.Linear`` (PyTorch's gate layout and both biases, so parameter
counts equal ``nn.LSTM``/``nn.GRU``): the input projection of all timesteps is one matmul, then one
``hidden x gates`` matmul per step. That keeps every MAC visible to the workload tracer and the model
runnable on the meta device (the loop length is the input's static length).

LSTM, per step (sigma = logistic)::

    i, f, g, o = split(W_ih x_t + b_ih + W_hh h + b_hh)
    c = sigma(f) * c + sigma(i) * tanh(g);   h = sigma(o) * tanh(c)

GRU, per step::

    r = sigma(W_ir x + b_ir + W_hr h + b_hr);   z = sigma(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn));   h = (1 - z) * n + z * h

Input ``[batch, seq, input_size]`` (real-valued, e.g. one-hot symbols of the ``majority`` task in
:mod:`models.data`); output: logits ``[batch, num_classes]`` from the last step's top hidden state, or
the top layer's hidden sequence ``[batch, seq, hidden_size]`` when ``num_classes=0``.
"""
from __future__ import annotations

import torch
from torch import nn

from models.registry import register, sequence_inputs
from neurosim.errors import NeurosimError


class LSTMLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 4 * hidden_size)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        xi = self.ih(x)  # [B, T, 4H] for all steps at once
        h = x.new_zeros(b, self.hidden_size)
        c = x.new_zeros(b, self.hidden_size)
        outs = []
        for step in range(t):
            i, f, g, o = (xi[:, step] + self.hh(h)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1)


class GRULayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 3 * hidden_size)
        self.hh = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        xi = self.ih(x)
        h = x.new_zeros(b, self.hidden_size)
        outs = []
        for step in range(t):
            xr, xz, xn = xi[:, step].chunk(3, dim=-1)
            hr, hz, hn = self.hh(h).chunk(3, dim=-1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            outs.append(h)
        return torch.stack(outs, dim=1)


class RecurrentClassifier(nn.Module):
    def __init__(self, cell: type[nn.Module], input_size: int, hidden_size: int, num_layers: int, num_classes: int,
                 dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(cell(input_size if i == 0 else hidden_size, hidden_size) for i in range(num_layers))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes) if num_classes > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(self.drop(x) if i else x)
        return x if self.head is None else self.head(x[:, -1])


@register("lstm", family="recurrent", inputs=sequence_inputs(16), cell="lstm",
          description="LSTM sequence classifier (last hidden state -> linear)")
@register("gru", family="recurrent", inputs=sequence_inputs(16), cell="gru",
          description="GRU sequence classifier (last hidden state -> linear)")
def recurrent(cell: str = "lstm", input_size: int = 4, hidden_size: int = 64, num_layers: int = 1,
              num_classes: int = 4, dropout: float = 0.0) -> nn.Module:
    """LSTM or GRU sequence classifier (last step's hidden state -> linear)."""
    cells = {"lstm": LSTMLayer, "gru": GRULayer}
    if cell not in cells:
        raise NeurosimError(f"recurrent: cell must be one of {sorted(cells)}, got {cell!r}")
    return RecurrentClassifier(cells[cell], input_size, hidden_size, num_layers, num_classes, dropout)
