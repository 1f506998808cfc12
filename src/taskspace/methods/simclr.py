"""Contrastive self-supervised learning: SimCLR."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from taskspace.methods._data import BatchStream
from taskspace.methods.augment import simclr_views
from taskspace.methods.base import Method
from taskspace.methods.config import SimCLRConfig
from taskspace.methods.losses import nt_xent


class SimCLR(Method):
    """SimCLR (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning
    of Visual Representations", ICML 2020).

    Each step takes ``batch_size`` images of the task's training set (labels unused), makes two
    augmented views of each (random resized crop, horizontal flip, intensity jitter:
    `taskspace.methods.augment.simclr_views`), encodes both with ``h = net.features``, maps them
    through a projection head ``g`` (Linear–ReLU–Linear, as in the paper) and minimises NT-Xent
    between the two views' projections ``z = g(h)`` (`taskspace.methods.losses.nt_xent`). The
    representation recorded by imprinting is the encoder's output ``h``, before the projection
    head, as the paper evaluates it. The network's classification head is not trained. One epoch
    is ``ceil(n / batch_size)`` steps. The training "accuracy" is the fraction of first views
    whose most similar second view is their own (top-1 positive-pair identification).
    """

    name = "simclr"
    config_class = SimCLRConfig

    def __init__(self, config, task, split, device):
        super().__init__(config, task, split, device)
        self.stream = BatchStream(len(self.x), config.batch_size, config.seed, "batches")

    def build_extra(self, net):
        hidden = self.config.projection_hidden or net.feature_dim
        return nn.Sequential(
            nn.Linear(net.feature_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, self.config.projection_dim),
        ).to(self.device)

    def parameters(self, net, extra):
        body = [p for name, p in net.named_parameters() if not name.startswith("head.")]
        return body + list(extra.parameters())

    def loss(self, net, extra, step):
        x = self.x[self.stream.batch(step)]
        v1, v2 = simclr_views(x, self.generator("views", step))
        z = extra(net.features(torch.cat([v1, v2])))
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, self.config.temperature)
        with torch.no_grad():
            sim = F.normalize(z1.float(), dim=1) @ F.normalize(z2.float(), dim=1).T
            target = torch.arange(len(z1), device=sim.device)
            accuracy = (sim.argmax(1) == target).float().mean()
        return loss, {"accuracy": accuracy}
