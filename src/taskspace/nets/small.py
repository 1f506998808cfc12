"""Small networks for 8×8 digits and 28×28 / 32×32 images."""

from __future__ import annotations

import torch
from torch import nn


class _WithHead(nn.Module):
    """``forward(x) = head(features(x))``; ``replace_head(k)`` for fine-tuning on a new task."""

    feature_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def replace_head(self, n_classes: int) -> None:
        """A fresh linear head over ``n_classes`` (on the same device and dtype)."""
        old = self.head
        self.head = nn.Linear(self.feature_dim, n_classes).to(old.weight.device, old.weight.dtype)


class MLP(_WithHead):
    """Two hidden layers for flat inputs (the 8×8 digits: ``in_features=64``).

    Parameters
    ----------
    in_features : int
    n_classes : int
    hidden : int
        Width of both hidden layers; the representation is the second one (``hidden`` dims).
    """

    def __init__(self, in_features: int = 64, n_classes: int = 10, hidden: int = 128):
        super().__init__()
        self.feature_dim = hidden
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SmallCNN(_WithHead):
    """Four 3×3 conv blocks (BatchNorm, ReLU, two 2×2 max-pools) and global average pooling.

    Works for 1- or 3-channel 28×28 and 32×32 inputs; the representation is the pooled
    ``width * 2``-dimensional vector.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, width: int = 32):
        super().__init__()

        def block(cin, cout):
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.feature_dim = 2 * width
        self.body = nn.Sequential(
            *block(in_channels, width),
            *block(width, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            *block(2 * width, 2 * width),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(self.feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
