"""Episodic meta-learning: Prototypical Networks."""

from __future__ import annotations

import math

import numpy as np
import torch

from taskspace.methods.augment import weak_augment
from taskspace.methods.base import Method
from taskspace.methods.config import ProtoNetConfig
from taskspace.methods.episodes import EpisodeSampler
from taskspace.methods.losses import prototypical_loss


class ProtoNet(Method):
    """Prototypical Networks (Snell, Swersky & Zemel, "Prototypical Networks for Few-shot
    Learning", NeurIPS 2017).

    Each optimisation step is one episode drawn from the task's training set: ``n_way`` classes
    of the task (all of them by default), ``k_shot`` support and ``n_query`` query samples of each
    (`taskspace.methods.episodes.EpisodeSampler`). Support and query images go through the
    embedding network ``f = net.features`` in one batch; the prototypes are the support means
    ``c_k = mean f(support of k)`` and the loss is the cross-entropy of
    ``softmax_k(−‖f(query) − c_k‖²)`` (`taskspace.methods.losses.prototypical_loss`). The
    network's head is not used and not trained. The representation that is recorded is the
    embedding itself, which is exactly what imprinting (SPEC §11) expects: imprinting is a
    prototypical classifier over the whole label space. One epoch is
    ``ceil(n / (n_way · (k_shot + n_query)))`` episodes.
    """

    name = "protonet"
    config_class = ProtoNetConfig

    def __init__(self, config, task, split, device):
        super().__init__(config, task, split, device)
        n_way = config.n_way if config.n_way is not None else len(task)
        if n_way > len(task):
            raise ValueError(
                f"protonet n_way={n_way} but task {task.name!r} has only {len(task)} classes "
                f"({', '.join(task.class_names)}); use n_way ≤ {len(task)}"
            )
        need = config.k_shot + config.n_query
        counts = np.bincount(self.y_numpy, minlength=len(task))
        short = [f"{task.class_names[k]} ({counts[k]})" for k in np.flatnonzero(counts < need)]
        if short:
            raise ValueError(
                f"protonet episodes need k_shot + n_query = {config.k_shot} + {config.n_query} = "
                f"{need} training samples per class, but task {task.name!r} has fewer in "
                f"class(es) {', '.join(short)}; lower k_shot or n_query"
            )
        self.n_way = n_way
        self.sampler = EpisodeSampler(
            self.y_numpy, n_way, config.k_shot, config.n_query, seed=config.seed
        )

    def steps_per_epoch(self) -> int:
        per_episode = self.n_way * (self.config.k_shot + self.config.n_query)
        return max(1, math.ceil(len(self.x) / per_episode))

    def parameters(self, net, extra):
        return [p for name, p in net.named_parameters() if not name.startswith("head.")]

    def loss(self, net, extra, step):
        s_idx, s_lab, q_idx, q_lab = self.sampler.sample(self.generator("episodes", step))
        x = self.x[torch.cat([s_idx, q_idx])]
        if self.config.augment:
            x = weak_augment(x, self.generator("augment", step))
        emb = net.features(x)
        n_support = s_idx.shape[0]
        loss, accuracy = prototypical_loss(
            emb[:n_support],
            s_lab.to(self.device),
            emb[n_support:],
            q_lab.to(self.device),
            self.n_way,
        )
        return loss, {"accuracy": accuracy}
