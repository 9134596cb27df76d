"""QCFS: the quantization-clip-floor-shift activation for low-latency ANN-to-SNN conversion.

Bu, Fang, Ding, Dai, Yu & Huang, "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency
Spiking Neural Networks", ICLR 2022. Train the ANN with this instead of ReLU::

    h(z) = lambda * clip( floor(z * L / lambda + phi) / L, 0, 1 ),   phi = 1/2

``L`` (``levels``) quantisation steps, ``lambda`` (``threshold``) a trainable upper bound per layer.
An IF neuron with threshold ``lambda``, reset by subtraction and initial membrane ``lambda/2`` that
receives the constant current ``z`` emits ``floor(z T / lambda + 1/2)`` spikes in ``T`` steps (clipped to
``[0, T]``), so at ``T = L`` its rate times ``lambda`` is exactly ``h(z)``, and for other ``T`` the
expected conversion error is zero (the paper's Theorem 2). The floor has a straight-through gradient;
``lambda`` learns through the scaling. :func:`neurosim.convert` reads ``threshold`` as the neuron
threshold (no calibration is needed for these layers).
"""
from __future__ import annotations

import torch
from torch import nn


class _FloorSTE(torch.autograd.Function):
    """floor in the forward pass, identity in the backward pass (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class QCFS(nn.Module):
    """Quantization-clip-floor-shift activation (Bu et al., ICLR 2022); see the module docstring.

    ``levels``: quantisation steps L (the paper's ablation: L = 4..8 gives the best low-T SNNs).
    ``threshold``: initial lambda (trainable). ``shift``: phi (1/2 makes the conversion unbiased).
    """

    neurosim_activation = "qcfs"  # lets the converter recognise it without importing models

    def __init__(self, levels: int = 4, threshold: float = 2.0, shift: float = 0.5):
        super().__init__()
        if int(levels) < 1 or not threshold > 0:
            raise ValueError(f"QCFS needs levels >= 1 and threshold > 0, got {levels}, {threshold}")
        self.levels = int(levels)
        self.shift = float(shift)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.threshold
        # clip first, then quantise: the same values as clip(floor(...)), but the gradient also
        # flows for 0 <= z < lambda / (2L), which rounds to 0 (else a layer can start dead)
        y = torch.clamp(x / lam, 0.0, 1.0)
        return _FloorSTE.apply(y * self.levels + self.shift) / self.levels * lam

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={float(self.threshold.detach()):.4g}, shift={self.shift}"


def register() -> None:
    """Register ``"qcfs"`` with :mod:`models.activations` (idempotent)."""
    from models import activations

    if "qcfs" not in activations.activation_names():
        activations.activation("qcfs")(QCFS)


class SignedQCFS(nn.Module):
    """QCFS for signed values (attention's Q, K, V): ``h(z) = QCFS(z) - QCFS(-z)`` with one learned lambda.

    ``L`` levels on each side, so ``2L + 1`` values in ``[-lambda, lambda]``. A pair of IF populations
    (one reading ``z``, one ``-z``, both at threshold lambda) reproduces it exactly at ``T = L`` for a
    constant input, which is how :func:`neurosim.convert` maps it (ternary values on two binary trains).
    """

    neurosim_activation = "qcfs_signed"

    def __init__(self, levels: int = 4, threshold: float = 2.0, shift: float = 0.5):
        super().__init__()
        if int(levels) < 1 or not threshold > 0:
            raise ValueError(f"SignedQCFS needs levels >= 1 and threshold > 0, got {levels}, {threshold}")
        self.levels, self.shift = int(levels), float(shift)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.threshold

        def q(z):
            return _FloorSTE.apply(torch.clamp(z / lam, 0.0, 1.0) * self.levels + self.shift) / self.levels * lam

        return q(x) - q(-x)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={float(self.threshold.detach()):.4g}, shift={self.shift}"
