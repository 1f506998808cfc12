"""The interface every training method implements, and the optimiser and schedule they share.

A method says what its network is, what one optimisation step's loss is, and how long an epoch
is; `taskspace.methods.training_loop` does everything else (devices, mixed precision, the optimiser,
recording, checkpoints, resuming, the progress bar). A new method is a subclass of `Method`
registered in ``taskspace.methods.METHODS`` (`taskspace.methods.registry`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from taskspace.methods._data import ImageTensor, step_generator
from taskspace.methods.config import TrainConfig


class Method:
    """One training method on one task.

    Parameters
    ----------
    config : TrainConfig
        An instance of the method's `config_class`.
    task : taskspace.tasks.Task
    split : taskspace.data.Split
        The training set is ``split.train()`` restricted to the task's classes.
    device : torch.device

    Attributes
    ----------
    x : ImageTensor
        The task's training images on the device.
    y : Tensor of int64, shape (n,)
        Their labels within the task (``Task.relabel``), on the device.
    ids : ndarray of str, shape (n,)
        Their sample ids.
    """

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[TrainConfig]] = TrainConfig
    #: Whether the method starts from another run's model (`attach_parent`).
    needs_parent: ClassVar[bool] = False

    def __init__(self, config: TrainConfig, task, split, device):
        if not isinstance(config, self.config_class):
            raise ValueError(
                f"method {self.name!r} takes a {self.config_class.__name__}, got a "
                f"{type(config).__name__}"
            )
        self.config, self.task, self.device = config, task, torch.device(device)
        train = split.train()
        mask, y = task.relabel(train.labels)
        if not mask.any():
            raise ValueError(
                f"the training set has no sample of task {task.name!r}'s classes "
                f"{list(task.class_names)}"
            )
        missing = [
            task.class_names[k] for k in np.flatnonzero(np.bincount(y, minlength=len(task)) == 0)
        ]
        if missing:
            raise ValueError(
                f"the training set has no sample of class(es) {missing} of task {task.name!r}"
            )
        subset = train.subset(np.flatnonzero(mask))
        self.x = ImageTensor(subset, self.device)
        self.y = torch.as_tensor(y).to(self.device)
        self.y_numpy = y
        self.ids = subset.ids
        #: Names of the per-step statistics `loss` returns besides the loss (for the records).
        self.stats: tuple[str, ...] = ("accuracy",)

    # ------------------------------------------------------------------ what subclasses define
    def n_outputs(self) -> int:
        """Outputs of the network's head."""
        return len(self.task)

    def init_network(self, build) -> nn.Module:
        """The network at step 0; ``build(n_outputs, name=None, options=None)`` makes a fresh one
        of the run's network (seeded)."""
        return build(self.n_outputs())

    def build_extra(self, net: nn.Module) -> nn.Module | None:
        """Modules trained with the network but not part of it (a projection head)."""
        return None

    def steps_per_epoch(self) -> int:
        """Optimisation steps in one pass over the method's data."""
        return max(1, math.ceil(len(self.x) / self.config.batch_size))

    def train_mode(self, net: nn.Module, extra: nn.Module | None) -> None:
        """Put the modules in the mode a training step needs."""
        net.train()
        if extra is not None:
            extra.train()

    def parameters(self, net: nn.Module, extra: nn.Module | None) -> list[nn.Parameter]:
        """The parameters the optimiser updates."""
        params = list(net.parameters())
        if extra is not None:
            params += list(extra.parameters())
        return params

    def loss(
        self, net: nn.Module, extra: nn.Module | None, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of optimisation step ``step`` and detached statistics named by `stats`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def generator(self, purpose: str, step: int) -> torch.Generator:
        """The CPU generator of ``purpose`` at ``step`` (see `taskspace.methods._data`)."""
        return step_generator(self.config.seed, purpose, step)


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam (L2 weight decay) or AdamW (decoupled weight decay)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the method has no trainable parameters")
    if config.optimizer == "sgd":
        nesterov = config.nesterov and config.momentum > 0
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=nesterov,
            weight_decay=config.weight_decay,
        )
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, total_steps: int):
    """``t ↦ lr(t) / lr`` for optimisation step ``t = 0 … total_steps − 1``.

    Linear warm-up ``(t + 1) / W`` for ``t < W``, then constant, cosine
    ``(1 + cos(π (t − W) / (T − W))) / 2``, or step ``γ^⌊(t − W) / every⌋``.
    """
    warmup = min(config.warmup_steps, total_steps)
    kind = config.lr_schedule
    every = config.lr_step_every or max(1, (total_steps - warmup) // 3)
    span = max(1, total_steps - warmup)
    gamma = config.lr_gamma

    def factor(t: int) -> float:
        if t < warmup:
            return (t + 1) / warmup
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(t - warmup, span) / span))
        if kind == "step":
            return gamma ** ((t - warmup) // every)
        return 1.0

    return factor


def make_scheduler(config: TrainConfig, optimizer, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, total_steps))
