"""Activation functions by name, for the small models' ``activation=`` option.

``make_activation("relu")`` returns a fresh ``nn.Module``; models call it once per use, so every
activation is its own module (ANN-to-SNN conversion replaces them one by one, and torch.fx sees a
``call_module`` node for each). Adding an activation is one decorator on a class::

    @activation("qcfs")
    class QCFS(nn.Module):
        def __init__(self, levels: int = 8): ...

Keyword options given to :func:`make_activation` go to the class's constructor.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from neurosim.errors import NeurosimError, UnknownNameError

_ACTIVATIONS: dict[str, type[nn.Module]] = {}


def activation(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register an ``nn.Module`` subclass as activation ``name``; duplicates raise."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _ACTIVATIONS:
            raise ValueError(f"activation {name!r} is already registered ({_ACTIVATIONS[name].__qualname__})")
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"activation {name!r} must be an nn.Module subclass, got {cls!r}")
        _ACTIVATIONS[name] = cls
        return cls

    return deco


def activation_names() -> list[str]:
    return sorted(_ACTIVATIONS)


def make_activation(name: str, **kw) -> nn.Module:
    """A new module for activation ``name``; ``kw`` are its constructor's options."""
    if name not in _ACTIVATIONS:
        raise UnknownNameError("activation", name, _ACTIVATIONS)
    try:
        return _ACTIVATIONS[name](**kw)
    except TypeError as e:
        raise NeurosimError(f"activation {name!r}: bad options {kw}: {e}") from e


# The torch classes themselves are registered (not subclasses), so ``isinstance(m, nn.ReLU)`` holds.
activation("relu")(nn.ReLU)
activation("gelu")(nn.GELU)  # exact erf form, as in BERT, GPT-2 (tanh approx. there) and ViT
activation("relu6")(nn.ReLU6)  # MobileNetV2
activation("silu")(nn.SiLU)
activation("tanh")(nn.Tanh)


@activation("gelu_tanh")
class GELUTanh(nn.GELU):
    """GELU with the tanh approximation (GPT-2's ``gelu_new``)."""

    def __init__(self):
        super().__init__(approximate="tanh")

# QCFS, the clip-floor-shift activation for low-latency ANN-to-SNN conversion (Bu et al., ICLR 2022)
from models.qcfs import QCFS  # noqa: E402

activation("qcfs")(QCFS)
