"""Input encodings: how an analog sample becomes the input node's output ``e_t`` at each step.

Semantics are fixed in :mod:`neurosim.ir` (step 1); this module is the one reference implementation,
so backends that need identical Poisson spike trains (cross-backend agreement tests) call
:func:`encode` with the same generator seed rather than drawing their own.

* ``direct`` (a.k.a. real-valued or constant-current coding; Rueckauer et al., Front. Neurosci.
  2017): ``e_t = x`` at every step. The first synaptic layer does MACs on analog values; every later
  layer sees spikes. Lowest latency; the usual choice for conversion.
* ``poisson`` (rate coding; Diehl et al., IJCNN 2015): ``e_t = sign(x) * [u_t < min(|x|/max_value, 1)]``
  with ``u_t ~ U[0, 1)`` i.i.d.; the converter multiplied the weights reading the input by
  ``max_value``, so ``E[W e_t] = W x`` for ``|x| <= max_value``.
"""
from __future__ import annotations

import torch

from neurosim.errors import NeurosimError
from neurosim.ir import ENCODINGS, Encoding

__all__ = ["encode", "ENCODINGS", "Encoding"]


def encode(encoding: Encoding | str, x: torch.Tensor, timesteps: int,
           generator: torch.Generator | None = None, expand: bool = False) -> tuple[torch.Tensor, bool]:
    """Encode ``x`` [batch, ...] for ``timesteps`` steps.

    Returns ``(e, const)``: ``e`` is [T, batch, ...]; for ``direct`` it is [1, batch, ...] with
    ``const=True`` (the same tensor every step) unless ``expand=True``. Poisson draws use
    ``generator`` (CPU) so a given seed gives the same spikes on every backend.
    """
    if isinstance(encoding, str):
        encoding = Encoding(encoding)
    if timesteps < 1:
        raise NeurosimError(f"timesteps must be >= 1, got {timesteps}")
    x = torch.as_tensor(x)
    if encoding.kind == "direct":
        e = x.unsqueeze(0)
        if expand:
            return e.expand(timesteps, *x.shape).clone(), False
        return e, True
    if encoding.kind == "poisson":
        p = (x.abs() / encoding.max_value).clamp(max=1.0)
        u = torch.rand((timesteps, *x.shape), generator=generator, dtype=torch.float64).to(x.device)
        return ((u < p.unsqueeze(0).to(torch.float64)).to(x.dtype) * torch.sign(x).unsqueeze(0)), False
    raise NeurosimError(f"unknown encoding {encoding.kind!r}; valid: {', '.join(ENCODINGS)}")
