"""U-Net (Ronneberger et al., MICCAI 2015) for per-pixel classification.

An encoder of ``depth`` levels (two 3x3 convs, then a 2x2 max-pool, doubling the width each level), a
bottleneck, and a decoder that upsamples with 2x2 transposed convs, concatenates the encoder's
feature map of the same size (the skip connection) and applies two 3x3 convs; a 1x1 conv gives
``num_classes`` logits per pixel. Unlike the paper we pad the convs ("same"), so the output has the
input's size and no cropping is needed, and we add BatchNorm (switch off with ``batchnorm=False``).
The paper's network is ``base_width=64, depth=4``; the default is a small one for 64x64 inputs.

Input ``[batch, in_channels, H, W]`` with H, W divisible by ``2**depth``; output
``[batch, num_classes, H, W]``.
"""
from __future__ import annotations

import torch
from torch import nn

from models.activations import make_activation
from models.registry import image_inputs, register
from neurosim.errors import NeurosimError


def double_conv(cin: int, cout: int, batchnorm: bool, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, base_width: int, depth: int, batchnorm: bool,
                 activation: str):
        super().__init__()
        widths = [base_width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            double_conv(in_channels if i == 0 else widths[i - 1], widths[i], batchnorm, activation)
            for i in range(depth))
        self.pools = nn.ModuleList(nn.MaxPool2d(2) for _ in range(depth))
        self.bottleneck = double_conv(widths[depth - 1], widths[depth], batchnorm, activation)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(depth)))
        self.dec = nn.ModuleList(double_conv(2 * widths[i], widths[i], batchnorm, activation)
                                 for i in reversed(range(depth)))
        self.out = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for conv, pool in zip(self.down, self.pools):
            x = conv(x)
            skips.append(x)
            x = pool(x)
        x = self.bottleneck(x)
        for up, conv, skip in zip(self.up, self.dec, reversed(skips)):
            x = conv(torch.cat([skip, up(x)], dim=1))
        return self.out(x)


@register("unet", family="unet", inputs=image_inputs(1, 64))
def unet(in_channels: int = 1, num_classes: int = 2, image_size: int = 64, base_width: int = 16, depth: int = 3,
         batchnorm: bool = True, activation: str = "relu") -> nn.Module:
    """U-Net segmenter (Ronneberger et al. 2015, padded convs); paper size: base_width=64, depth=4."""
    if depth < 1 or image_size % 2 ** depth:
        raise NeurosimError(f"unet: image_size {image_size} must be divisible by 2**depth = {2 ** depth} (depth >= 1)")
    return UNet(in_channels, num_classes, base_width, depth, batchnorm, activation)
