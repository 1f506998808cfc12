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
from taskspace.methods.registry import METHODS, get_method

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


def __getattr__(name):
    # The training loop needs torch; the registry and the configs do not (a study config is
    # validated, and `taskspace analyze` runs, without loading it).
    if name in ("RunLockedError", "resolve_device", "train_run"):
        from taskspace.methods import training_loop

        return getattr(training_loop, name)
    raise AttributeError(f"module 'taskspace.methods' has no attribute {name!r}")
