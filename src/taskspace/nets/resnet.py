"""ResNets (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016), written here so
taskspace needs no torchvision: ResNet-18/50 with the standard ImageNet stem (7×7 stride-2 conv and
max-pool), and ResNet-18 with the CIFAR stem (3×3 stride-1 conv, no max-pool) for 32×32 inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from taskspace.nets.small import _WithHead


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        # stride on the 3×3 conv ("ResNet v1.5"), as in the common reference implementations
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(_WithHead):
    """A ResNet whose representation is the globally pooled output of the last stage.

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : four ints, blocks per stage
    n_classes : int
    in_channels : int
    stem : {"imagenet", "cifar"}
    """

    def __init__(
        self, block, layers, n_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet"
    ):
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        elif stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
            )
        else:
            raise ValueError(f"unknown stem {stem!r}; choose 'imagenet' or 'cifar'")
        stages, cin = [], 64
        for i, n_blocks in enumerate(layers):
            width = 64 * 2**i
            for j in range(n_blocks):
                stages.append(block(cin, width, stride=2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = cin
        self.head = nn.Linear(cin, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-initialise the last BatchNorm of every residual branch (Goyal et al. 2017, "Accurate,
        # large minibatch SGD"): each block starts as the identity, so activations do not grow
        # with depth. Without it, an untrained ResNet-50 in eval mode (running variance 1)
        # overflows float32 on small inputs and its first record is NaN.
        for m in self.stages:
            last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2
            nn.init.zeros_(last_bn.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))


def resnet18(n_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18 with the ImageNet stem (11.7 M parameters at 1000 classes)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), n_classes, in_channels, stem="imagenet")


def resnet18_cifar(n_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-18 with the CIFAR stem for 32×32 inputs."""
    return ResNet(BasicBlock, (2, 2, 2, 2), n_classes, in_channels, stem="cifar")


def resnet50(n_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-50 with the ImageNet stem (25.6 M parameters at 1000 classes)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), n_classes, in_channels, stem="imagenet")
