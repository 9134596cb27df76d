"""Multi-layer perceptrons: ``Flatten -> (Linear -> activation)* -> Linear``.

The classic network of ANN-to-SNN conversion (Diehl et al., IJCNN 2015 used 784-1200-1200-10);
``hidden=(500,)`` gives 784-500-10, the default ``(256, 256)`` gives 784-256-256-10. The input may be
flat ``[batch, in_features]`` or an image ``[batch, 1, 28, 28]``: ``nn.Flatten`` handles both.
"""
from __future__ import annotations

from torch import nn

from models.activations import make_activation
from models.registry import vector_inputs, register
from neurosim.errors import NeurosimError


@register("mlp", family="mlp", inputs=vector_inputs("in_features"))
def mlp(in_features: int = 784, hidden: tuple = (256, 256), num_classes: int = 10, activation: str = "relu",
        bias: bool = True, dropout: float = 0.0) -> nn.Module:
    """MLP classifier, e.g. 784-256-256-10 (``hidden`` sets the widths of the hidden layers)."""
    hidden = (int(hidden),) if isinstance(hidden, (int, float)) else tuple(int(h) for h in hidden)
    if in_features < 1 or num_classes < 1 or any(h < 1 for h in hidden):
        raise NeurosimError(f"mlp: widths must be positive, got in_features={in_features}, hidden={hidden}, "
                            f"num_classes={num_classes}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h, bias=bias), make_activation(activation)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes, bias=bias))
    return nn.Sequential(*layers)
