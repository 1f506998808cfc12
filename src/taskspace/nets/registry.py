"""Networks by name, for study configs.

The registry itself does not import torch: a study config is checked against ``NETWORKS`` without
loading it; each builder imports its architecture (and torch) when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def _mlp(n_classes: int, in_channels: int = 1, image_size: int = 8, **kw) -> nn.Module:
    from taskspace.nets.small import MLP

    return MLP(in_features=in_channels * image_size * image_size, n_classes=n_classes, **kw)


def _cnn(n_classes: int, in_channels: int = 1, image_size: int = 28, **kw) -> nn.Module:
    from taskspace.nets.small import SmallCNN

    return SmallCNN(in_channels=in_channels, n_classes=n_classes, **kw)


def _resnet(factory: str):
    def build(n_classes: int, in_channels: int = 3, image_size: int = 32, **kw) -> nn.Module:
        from taskspace.nets import resnet

        return getattr(resnet, factory)(n_classes=n_classes, in_channels=in_channels, **kw)

    return build


#: name → builder ``(n_classes, in_channels, image_size, **kwargs) -> nn.Module``.
NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "small-cnn": _cnn,
    "resnet18-cifar": _resnet("resnet18_cifar"),
    "resnet18": _resnet("resnet18"),
    "resnet50": _resnet("resnet50"),
}


def build_network(
    name: str, n_classes: int, in_channels: int = 1, image_size: int = 28, **kwargs
) -> nn.Module:
    """Build a registered network; unknown names raise ``ValueError`` listing the known ones."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(sorted(NETWORKS))}")
    if n_classes < 2:
        raise ValueError(f"a network needs at least 2 classes, got {n_classes}")
    return NETWORKS[name](n_classes, in_channels=in_channels, image_size=image_size, **kwargs)
