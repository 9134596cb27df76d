"""Vision Transformer (Dosovitskiy et al., ICLR 2021), as in torchvision's ``VisionTransformer``.

An image is cut into ``patch_size`` x ``patch_size`` patches by a strided conv (``conv_proj``), a
learned class token is prepended, learned position embeddings are added, pre-LayerNorm encoder
blocks (LayerNorm eps 1e-6, GELU MLP) follow, and a linear head reads the class token.

``vit_b_16`` is ViT-B/16 (12 layers, width 768, 12 heads, MLP 3072, 224x224): 86,567,656 parameters
and 17.56 GMACs, torchvision's numbers (its MACs include the attention products). ``vit_tiny`` is a
4-layer width-64 ViT for 8x8 (digits) or 28x28 (MNIST) inputs; ``patch_size=None`` picks
``image_size // 4``, i.e. a 4x4 grid of 16 patches.
"""
from __future__ import annotations

import torch
from torch import nn

from models.registry import image_inputs, register
from models.transformer import Block
from neurosim.errors import NeurosimError


class ViT(nn.Module):
    def __init__(self, image_size: int, patch_size: int, in_channels: int, num_classes: int, d_model: int,
                 n_layers: int, n_heads: int, d_ff: int, dropout: float, activation: str, quant_levels: int = 0):
        super().__init__()
        if image_size % patch_size:
            raise NeurosimError(f"vit: image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size = image_size
        n_patches = (image_size // patch_size) ** 2
        self.conv_proj = nn.Conv2d(in_channels, d_model, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos_embedding = nn.Parameter(torch.empty(1, n_patches + 1, d_model).normal_(std=0.02))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, prenorm=True, activation=activation, dropout=dropout, norm_eps=1e-6,
                  quant_levels=quant_levels)
            for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model, eps=1e-6)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # [B, patches, d]
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.drop(x + self.pos_embedding)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x)[:, 0])


@register("vit_b_16", family="vit", inputs=image_inputs(3, 224), reference="torchvision vit_b_16",
          description="ViT-B/16 as in torchvision: 86.6M parameters, 17.56 GMACs")
@register("vit_tiny", family="vit", inputs=image_inputs(1, 28), image_size=28, in_channels=1, num_classes=10,
          d_model=64, n_layers=4, n_heads=4, d_ff=128, patch_size=None,
          description="tiny ViT for 28x28 or 8x8 inputs: 4 layers, width 64, 16 patches")
def vit(image_size: int = 224, patch_size: int | None = 16, in_channels: int = 3, num_classes: int = 1000,
        d_model: int = 768, n_layers: int = 12, n_heads: int = 12, d_ff: int = 3072, dropout: float = 0.0,
        activation: str = "gelu", quant_levels: int = 0) -> nn.Module:
    """Vision Transformer; defaults are ViT-B/16 at 224x224 (``patch_size=None``: image_size // 4).

    ``quant_levels > 0`` quantises the attention (Q, K, V and the probabilities, QCFS with that many levels;
    :class:`models.transformer.SelfAttention`) for low-latency conversion; use with ``activation="qcfs"``."""
    return ViT(image_size, patch_size or max(1, image_size // 4), in_channels, num_classes, d_model, n_layers,
               n_heads, d_ff, dropout, activation, quant_levels)
