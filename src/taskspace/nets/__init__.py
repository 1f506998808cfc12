"""Network architectures, each with ``features(x)`` (the representation used for imprinting) and a
``head`` (a linear layer over the task's classes), and a registry by name for configs.

The registry (``NETWORKS``, ``build_network``) is importable without torch; the architectures
import it when first named (``taskspace.nets.MLP``) or built. The geometry never imports it.
"""

from taskspace.nets.registry import NETWORKS, build_network

#: Architectures, by the module that defines them (imported on first use: they need torch).
_ARCHITECTURES = {
    "MLP": "small",
    "SmallCNN": "small",
    "ResNet": "resnet",
    "resnet18": "resnet",
    "resnet18_cifar": "resnet",
    "resnet50": "resnet",
}

__all__ = [
    "MLP",
    "NETWORKS",
    "ResNet",
    "SmallCNN",
    "build_network",
    "resnet18",
    "resnet18_cifar",
    "resnet50",
]


def __getattr__(name):
    if name in _ARCHITECTURES:
        import importlib

        return getattr(importlib.import_module(f"taskspace.nets.{_ARCHITECTURES[name]}"), name)
    raise AttributeError(f"module 'taskspace.nets' has no attribute {name!r}")
