"""The registry of training methods: name → class, without importing torch.

``METHODS`` is what a study config may name; the classes (and torch) are imported only when a
run asks for one (`get_method`).
"""

from __future__ import annotations

import importlib

#: Registered methods: name → "module:class" (imported on first use).
METHODS: dict[str, str] = {
    "supervised": "taskspace.methods.supervised:Supervised",
    "finetune": "taskspace.methods.finetune:Finetune",
    "protonet": "taskspace.methods.protonet:ProtoNet",
    "simclr": "taskspace.methods.simclr:SimCLR",
    "fixmatch": "taskspace.methods.fixmatch:FixMatch",
}


def get_method(name: str) -> type:
    """The `taskspace.methods.base.Method` subclass registered as ``name``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)
