"""Training methods, each a resumable loop that records itself into a store.

``train_run(store, split, task, method, network, config)`` trains one run and records its
trajectory (imprinted onto the whole label space, SPEC §11) on its checkpoint schedule (SPEC §13);
calling it again continues an interrupted run and does nothing for a finished one.

Methods (``METHODS``): ``"supervised"`` (cross-entropy on the task's classes), ``"finetune"``
(from another run's model at one of its record steps), ``"protonet"`` (Prototypical Networks,
Snell et al. 2017), ``"simclr"`` (SimCLR, Chen et al. 2020), ``"fixmatch"`` (FixMatch, Sohn et al.
2020). Their configs are in `taskspace.methods.config`; the losses, augmentations and episodes
they use in `losses`, `augment` and `episodes`.

Examples
--------
>>> from taskspace.methods import train_run                                   # doctest: +SKIP
>>> run = train_run(store, split, task, "supervised", "mlp",
...                 {"lr": 0.1, "epochs": 5, "seed": 0})                     # doctest: +SKIP
>>> child = train_run(store, split, other_task, "finetune", parent=run, parent_step=40,
...                   config={"epochs": 2})                                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from taskspace.methods.config import (
    CONFIGS,
    FinetuneConfig,
    FixMatchConfig,
    ProtoNetConfig,
    SimCLRConfig,
    SupervisedConfig,
    TrainConfig,
    make_config,
)
from taskspace.methods.runner import RunLockedError, resolve_device, train_run

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


__all__ = [
    "CONFIGS",
    "METHODS",
    "FinetuneConfig",
    "FixMatchConfig",
    "ProtoNetConfig",
    "RunLockedError",
    "SimCLRConfig",
    "SupervisedConfig",
    "TrainConfig",
    "get_method",
    "make_config",
    "resolve_device",
    "train_run",
]
