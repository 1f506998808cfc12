"""Semi-supervised learning: FixMatch."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from taskspace.data.splits import hash_order
from taskspace.methods._data import BatchStream
from taskspace.methods.augment import strong_augment, weak_augment
from taskspace.methods.base import Method
from taskspace.methods.config import FixMatchConfig
from taskspace.methods.losses import fixmatch_loss


class FixMatch(Method):
    """FixMatch (Sohn, Berthelot, Li, Zhang, Carlini, Cubuk, Kurakin, Zhang & Raffel, "FixMatch:
    Simplifying Semi-Supervised Learning with Consistency and Confidence", NeurIPS 2020).

    ``labels_per_class`` training samples of each of the task's classes keep their labels (chosen
    by a keyed hash of their ids and the seed, `taskspace.data.hash_order`, so the subset is the
    same on every machine); the rest of the task's training samples are unlabelled. Each step takes
    ``B = batch_size`` labelled and ``μB`` unlabelled images and minimises
    ``ℓ_s + λ_u ℓ_u``: ``ℓ_s`` the cross-entropy on weakly augmented labelled images, ``ℓ_u`` the
    cross-entropy of the strongly augmented unlabelled images against the pseudo-labels of their
    weak views where those are at least ``threshold`` confident, averaged over all μB
    (`taskspace.methods.losses.fixmatch_loss`; augmentations in `taskspace.methods.augment`). As
    in the paper, the three batches go through the network together (one batch-norm batch). One
    epoch is ``ceil(n_unlabelled / (μB))`` steps. Records carry ``mask_rate``, the fraction of
    unlabelled images above the threshold.
    """

    name = "fixmatch"
    config_class = FixMatchConfig

    def __init__(self, config, task, split, device):
        super().__init__(config, task, split, device)
        labelled, unlabelled = [], []
        for k in range(len(task)):
            members = np.flatnonzero(self.y_numpy == k)
            if members.size <= config.labels_per_class:
                raise ValueError(
                    f"fixmatch labels_per_class={config.labels_per_class} but class "
                    f"{task.class_names[k]!r} of task {task.name!r} has only {members.size} "
                    "training samples, which leaves none unlabelled; lower labels_per_class"
                )
            ordered = members[hash_order(self.ids[members], config.seed, "fixmatch-labelled")]
            labelled.append(ordered[: config.labels_per_class])
            unlabelled.append(ordered[config.labels_per_class :])
        self.labelled = torch.as_tensor(np.sort(np.concatenate(labelled)))
        self.unlabelled = torch.as_tensor(np.sort(np.concatenate(unlabelled)))
        self.labelled_stream = BatchStream(
            len(self.labelled), config.batch_size, config.seed, "labelled"
        )
        self.unlabelled_stream = BatchStream(
            len(self.unlabelled), config.mu * config.batch_size, config.seed, "unlabelled"
        )
        self.stats = ("accuracy", "mask_rate")

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.unlabelled) / (self.config.mu * self.config.batch_size)))

    def loss(self, net, extra, step):
        li = self.labelled[self.labelled_stream.batch(step)]
        ui = self.unlabelled[self.unlabelled_stream.batch(step)]
        g = self.generator("augment", step)
        x_l = weak_augment(self.x[li], g)
        x_u = self.x[ui]
        u_weak, u_strong = weak_augment(x_u, g), strong_augment(x_u, g)
        logits = net(torch.cat([x_l, u_weak, u_strong]))
        n_l, n_u = len(li), len(ui)
        logits_l = logits[:n_l].float()
        logits_weak, logits_strong = logits[n_l : n_l + n_u], logits[n_l + n_u :]
        y = self.y[li.to(self.device)]
        loss_u, mask_rate = fixmatch_loss(logits_weak, logits_strong, self.config.threshold)
        loss = F.cross_entropy(logits_l, y) + self.config.lambda_u * loss_u
        with torch.no_grad():
            accuracy = (logits_l.argmax(1) == y).float().mean()
        return loss, {"accuracy": accuracy, "mask_rate": mask_rate}
