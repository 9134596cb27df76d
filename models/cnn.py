"""Convolutional networks: LeNet-5, AlexNet, VGG, ResNet (18/34/50 and a tiny one), MobileNetV2.

The ImageNet models reproduce torchvision's definitions layer for layer, so their parameter counts
and MACs equal torchvision's published ``num_params`` and GFLOPS (see ``tests/golden/param_counts.json``):

* AlexNet — Krizhevsky, "One weird trick for parallelizing CNNs" (2014) variant, as in torchvision:
  64-192-384-256-256 channels, ``AdaptiveAvgPool2d((6, 6))`` before the classifier.
* VGG-11/16 — Simonyan & Zisserman, ICLR 2015, configurations A and D, no BatchNorm,
  ``AdaptiveAvgPool2d((7, 7))``.
* ResNet-18/34/50 — He et al., CVPR 2016. ResNet-50 is "v1.5": the stride-2 of a downsampling
  bottleneck sits on the 3x3 conv, not the first 1x1 (torchvision's choice; 4.09 vs 3.8 GMACs).
* MobileNetV2 — Sandler et al., CVPR 2018, width 1.0, ReLU6, dropout 0.2 before the classifier.

``image_size`` and ``in_channels`` also set the example inputs (``models.example_inputs``); the
ImageNet models' adaptive pools accept any input size (AlexNet from 63x63, VGG from 32x32).

Small models for ANN-to-SNN conversion on MNIST (28x28) and digits (8x8) — ``lenet5`` (LeCun et al.
1998), ``resnet_tiny`` — use one activation module per use (``activation=``, see
:mod:`models.activations`), ``nn.Flatten`` and residual ``+`` so torch.fx traces them plainly.
"""
from __future__ import annotations

from torch import nn

from models.activations import make_activation
from models.registry import image_inputs, register
from neurosim.errors import NeurosimError

# ---- LeNet-5 ---------------------------------------------------------------------------------------


@register("lenet5", family="cnn", inputs=image_inputs(1, 28))
def lenet5(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, batchnorm: bool = False,
           pool: str = "max", activation: str = "relu") -> nn.Module:
    """LeNet-5 (LeCun et al. 1998): conv6@5x5, pool, conv16@5x5, pool, 120-84-classes.

    ``image_size`` 32 is the original input; 28 (MNIST) pads the first conv by 2 so the feature maps
    match (28 -> 28 -> 14 -> 10 -> 5). ``pool`` is "max" or "avg" (the paper's subsampling is an
    average); ``batchnorm`` adds BatchNorm2d after each conv (folded away by conversion).
    """
    if image_size not in (28, 32):
        raise NeurosimError(f"lenet5: image_size must be 28 or 32, got {image_size}")
    if pool not in ("max", "avg"):
        raise NeurosimError(f"lenet5: pool must be 'max' or 'avg', got {pool!r}")
    Pool = nn.MaxPool2d if pool == "max" else nn.AvgPool2d

    def conv(cin, cout, pad):
        layers = [nn.Conv2d(cin, cout, 5, padding=pad)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(cout))
        return layers + [make_activation(activation), Pool(2)]

    return nn.Sequential(
        *conv(in_channels, 6, 2 if image_size == 28 else 0),
        *conv(6, 16, 0),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), make_activation(activation),
        nn.Linear(120, 84), make_activation(activation),
        nn.Linear(84, num_classes),
    )


# ---- AlexNet ---------------------------------------------------------------------------------------


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, activation: str = "relu"):
        super().__init__()
        act = lambda: make_activation(activation)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), act(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), act(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), act(),
            nn.Conv2d(384, 256, 3, padding=1), act(),
            nn.Conv2d(256, 256, 3, padding=1), act(), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), act(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), act(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register("alexnet", family="cnn", inputs=image_inputs(3, 224), reference="torchvision alexnet")
def alexnet(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224, dropout: float = 0.5,
            activation: str = "relu") -> nn.Module:
    """AlexNet as in torchvision (61.1M parameters, 0.71 GMACs at 224x224)."""
    return AlexNet(num_classes, in_channels, dropout, activation)


# ---- VGG -------------------------------------------------------------------------------------------

VGG_CONFIGS = {  # Simonyan & Zisserman 2015, Table 1; "M" is a 2x2 max-pool
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, cfg: list, num_classes: int = 1000, in_channels: int = 3, batchnorm: bool = False,
                 dropout: float = 0.5, activation: str = "relu"):
        super().__init__()
        layers, c = [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(c, v, 3, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(make_activation(activation))
            c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(c * 7 * 7, 4096), make_activation(activation), nn.Dropout(dropout),
            nn.Linear(4096, 4096), make_activation(activation), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register("vgg11", family="cnn", inputs=image_inputs(3, 224), reference="torchvision vgg11", config="A",
          description="VGG-11 (config A) as in torchvision: 132.9M parameters, 7.61 GMACs")
@register("vgg16", family="cnn", inputs=image_inputs(3, 224), reference="torchvision vgg16", config="D",
          description="VGG-16 (config D) as in torchvision: 138.4M parameters, 15.47 GMACs")
def vgg(config: str = "D", num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
        batchnorm: bool = False, dropout: float = 0.5, activation: str = "relu") -> nn.Module:
    """VGG (Simonyan & Zisserman 2015) as in torchvision; ``config`` "A" is VGG-11, "D" VGG-16."""
    if config not in VGG_CONFIGS:
        raise NeurosimError(f"vgg: config must be one of {sorted(VGG_CONFIGS)}, got {config!r}")
    return VGG(VGG_CONFIGS[config], num_classes, in_channels, batchnorm, dropout, activation)


# ---- ResNet ----------------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut: ``act(bn(conv(act(bn(conv(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(cin, width, 3, stride)
        self.act1 = make_activation(activation)
        self.conv2, self.bn2 = _conv_bn(width, cout, 3)
        self.downsample = nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else None
        self.act2 = make_activation(activation)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride: ResNet v1.5), 1x1 expand by 4, plus the shortcut."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(cin, width, 1)
        self.act1 = make_activation(activation)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.act2 = make_activation(activation)
        self.conv3, self.bn3 = _conv_bn(width, cout, 1)
        self.downsample = nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else None
        self.act3 = make_activation(activation)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(out + identity)


class ResNet(nn.Module):
    """A ResNet: stem, stages of residual blocks (the first block of stages 2+ strides by 2), global
    average pool, linear classifier.

    ``stem="imagenet"`` is the 7x7/2 conv + 3x3/2 max-pool of He et al.; ``stem="small"`` is a single
    3x3/1 conv, for 8x8 to 32x32 inputs (as in the paper's CIFAR networks).
    """

    def __init__(self, block: type[nn.Module], layers: list[int], widths: list[int], num_classes: int = 1000,
                 in_channels: int = 3, stem: str = "imagenet", activation: str = "relu"):
        super().__init__()
        if len(layers) != len(widths):
            raise NeurosimError(f"resnet: layers {layers} and widths {widths} must have the same length")
        c = widths[0]
        if stem == "imagenet":
            self.stem = nn.Sequential(*_conv_bn(in_channels, c, 7, 2), make_activation(activation),
                                      nn.MaxPool2d(3, 2, padding=1))
        elif stem == "small":
            self.stem = nn.Sequential(*_conv_bn(in_channels, c, 3, 1), make_activation(activation))
        else:
            raise NeurosimError(f"resnet: stem must be 'imagenet' or 'small', got {stem!r}")
        stages = []
        for i, (n, w) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                blocks.append(block(c, w, 2 if (i > 0 and j == 0) else 1, activation))
                c = w * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():  # He init; zero-init of the last BN is not used (torchvision default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.layers(self.stem(x)))))


_RESNETS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3])}


@register("resnet18", family="cnn", inputs=image_inputs(3, 224), reference="torchvision resnet18", depth=18,
          description="ResNet-18 as in torchvision: 11.7M parameters, 1.81 GMACs")
@register("resnet34", family="cnn", inputs=image_inputs(3, 224), reference="torchvision resnet34", depth=34,
          description="ResNet-34 as in torchvision: 21.8M parameters, 3.66 GMACs")
@register("resnet50", family="cnn", inputs=image_inputs(3, 224), reference="torchvision resnet50", depth=50,
          description="ResNet-50 v1.5 as in torchvision: 25.6M parameters, 4.09 GMACs")
def resnet(depth: int = 50, num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
           activation: str = "relu") -> nn.Module:
    """ResNet-18/34/50 (He et al. 2016) as in torchvision (ResNet-50 v1.5)."""
    if depth not in _RESNETS:
        raise NeurosimError(f"resnet: depth must be one of {sorted(_RESNETS)}, got {depth}")
    block, layers = _RESNETS[depth]
    return ResNet(block, layers, [64, 128, 256, 512], num_classes, in_channels, "imagenet", activation)


@register("resnet_tiny", family="cnn", inputs=image_inputs(1, 28))
def resnet_tiny(num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                widths: tuple = (16, 32, 64), blocks: tuple = (1, 1, 1), activation: str = "relu") -> nn.Module:
    """A small ResNet for digits/MNIST: 3x3 stem, BasicBlock stages, BatchNorm, avg-pool (~78k params)."""
    return ResNet(BasicBlock, list(blocks), list(widths), num_classes, in_channels, "small", activation)


# ---- MobileNetV2 -----------------------------------------------------------------------------------


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8, never below 90% of ``v`` (the MobileNet reference code)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class InvertedResidual(nn.Module):
    """1x1 expand (x t) + ReLU6, 3x3 depthwise + ReLU6, 1x1 linear projection; residual if shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(cin, hidden, 1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(), *_conv_bn(hidden, cout, 1)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    # (t expansion, c channels, n repeats, s stride of the first) — Sandler et al. 2018, Table 2
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        c = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(in_channels, c, 3, 2), nn.ReLU6())]
        for t, ch, n, s in self.SETTINGS:
            cout = _make_divisible(ch * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                c = cout
        layers.append(nn.Sequential(*_conv_bn(c, last, 1), nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register("mobilenet_v2", family="cnn", inputs=image_inputs(3, 224), reference="torchvision mobilenet_v2")
def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224, width_mult: float = 1.0,
                 dropout: float = 0.2) -> nn.Module:
    """MobileNetV2 (Sandler et al. 2018) as in torchvision (3.5M parameters, 0.30 GMACs)."""
    return MobileNetV2(num_classes, in_channels, width_mult, dropout)


# ---- deeper conversion benchmarks on MNIST-sized inputs -----------------------------------------------


@register("resnet18_small", family="cnn", inputs=image_inputs(1, 28),
          description="ResNet-18-shaped for 28x28: 3x3 stem, four stages of two BasicBlocks, 16-32-64-128 (~0.7M params)")
def resnet18_small(num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                   widths: tuple = (16, 32, 64, 128), activation: str = "relu") -> nn.Module:
    """ResNet-18's layout (He et al. 2016: four stages of two BasicBlocks, 17 convs + the classifier) at
    MNIST size: the CIFAR-style 3x3/1 stem, widths 16-32-64-128, BatchNorm, global average pool."""
    if len(widths) != 4:
        raise NeurosimError(f"resnet18_small: widths needs four stages, got {widths}")
    return ResNet(BasicBlock, [2, 2, 2, 2], list(widths), num_classes, in_channels, "small", activation)


VGG11_SMALL = [16, "M", 32, "M", 64, 64, "M", 128, 128, "M", 128, 128]


@register("vgg11_small", family="cnn", inputs=image_inputs(1, 28),
          description="VGG-11 (config A) for 28x28: eight 3x3 convs with BatchNorm, max-pool, 16-128 wide")
def vgg11_small(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 16,
                activation: str = "relu") -> nn.Module:
    """VGG-11's configuration A (Simonyan & Zisserman 2015: eight 3x3 convs in five groups, max-pool between
    groups) with BatchNorm, at MNIST size: widths 64-128-256-512-512 divided by ``64 / width`` (16-32-64-128-128)
    and four 2x2 max-pools (28 -> 14 -> 7 -> 3 -> 1; a fifth has nothing left to pool), then a 128-unit hidden
    layer and the classifier (VGG's 4096-4096 head scaled down)."""
    if image_size != 28:
        raise NeurosimError(f"vgg11_small: image_size must be 28, got {image_size}")
    f = int(width) / 16
    cfg = [v if v == "M" else max(1, int(v * f)) for v in VGG11_SMALL]
    net = VGG(cfg, num_classes, in_channels, batchnorm=True, dropout=0.0, activation=activation)
    c = cfg[-1]
    net.avgpool = nn.Identity()
    net.classifier = nn.Sequential(nn.Linear(c, 128), make_activation(activation), nn.Linear(128, num_classes))
    return net
