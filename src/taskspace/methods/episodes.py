"""N-way K-shot episodes for episodic meta-learning (Vinyals et al. 2016; Snell et al. 2017)."""

from __future__ import annotations

import operator

import numpy as np
import torch

__all__ = ["EpisodeSampler"]


class EpisodeSampler:
    """Draw few-shot episodes from a task's labelled samples.

    An episode picks ``n_way`` distinct classes uniformly at random among those present in
    ``labels``, then ``k_shot + n_query`` distinct samples uniformly at random within each class:
    the first ``k_shot`` form the support set and the other ``n_query`` the query set. Episode
    labels are re-indexed ``0 .. n_way − 1`` in the order the classes were drawn.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        The task's labels (any integers; typically already re-indexed within the task).
    n_way : int >= 2
    k_shot : int >= 1
    n_query : int >= 1
    seed : int
        Seeds the sampler's own generator, used when ``sample`` is given none.

    Raises
    ------
    ValueError
        If the task has fewer than ``n_way`` classes, or a class has fewer than
        ``k_shot + n_query`` samples (the first such class is named).

    Attributes
    ----------
    classes : Tensor, shape (n_classes,)
        The distinct labels, sorted.
    counts : Tensor, shape (n_classes,)
        Samples per class.
    generator : torch.Generator
        The sampler's own CPU generator; ``state_dict`` / ``load_state_dict`` save and restore it.
    """

    def __init__(self, labels, n_way: int, k_shot: int, n_query: int, seed: int = 0):
        self.n_way = _check_count("n_way", n_way, 2)
        self.k_shot = _check_count("k_shot", k_shot, 1)
        self.n_query = _check_count("n_query", n_query, 1)
        labels = _as_label_tensor(labels)
        self.classes, inverse, self.counts = torch.unique(
            labels, sorted=True, return_inverse=True, return_counts=True
        )
        n_classes = len(self.classes)
        if n_classes < self.n_way:
            raise ValueError(
                f"the task has {n_classes} classes, the episode needs n_way = {self.n_way}"
            )
        need = self.k_shot + self.n_query
        short = torch.nonzero(self.counts < need).flatten()
        if len(short):
            c = int(short[0])
            raise ValueError(
                f"class {int(self.classes[c])} has {int(self.counts[c])} samples, the episode "
                f"needs k_shot + n_query = {self.k_shot} + {self.n_query} = {need} per class"
            )
        # members[c, :counts[c]] are the positions of class c's samples; the rest is padding (-1)
        order = torch.argsort(inverse, stable=True)
        starts = torch.cumsum(self.counts, 0) - self.counts
        grouped = inverse[order]
        rank = torch.arange(len(labels)) - starts[grouped]
        self._members = torch.full((n_classes, int(self.counts.max())), -1, dtype=torch.int64)
        self._members[grouped, rank] = order
        self.generator = torch.Generator().manual_seed(int(seed))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def sample(
        self, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw one episode.

        Parameters
        ----------
        generator : torch.Generator, optional
            Source of randomness (any device; the draws are moved to the CPU). Defaults to the
            sampler's own generator, seeded with ``seed``, whose state advances with each episode.

        Returns
        -------
        support_idx : int64 Tensor, shape (n_way · k_shot,)
            Positions in ``labels``, grouped by episode class (class 0's first).
        support_labels : int64 Tensor, shape (n_way · k_shot,)
            Episode labels in ``0 .. n_way − 1``.
        query_idx : int64 Tensor, shape (n_way · n_query,)
        query_labels : int64 Tensor, shape (n_way · n_query,)
        """
        g = self.generator if generator is None else generator
        device = g.device
        chosen = torch.randperm(self.n_classes, generator=g, device=device)[: self.n_way].cpu()
        # a uniform random subset of each chosen class: the smallest random keys among its
        # members, padding pushed to the end with keys above 1
        keys = torch.rand(
            self.n_way, self._members.shape[1], generator=g, device=device, dtype=torch.float64
        ).cpu()
        padding = torch.arange(self._members.shape[1]) >= self.counts[chosen].unsqueeze(1)
        keys = keys.masked_fill(padding, 2.0)
        need = self.k_shot + self.n_query
        picks = torch.argsort(keys, dim=1, stable=True)[:, :need]
        positions = self._members[chosen.unsqueeze(1), picks]
        episode_labels = torch.arange(self.n_way, dtype=torch.int64)
        return (
            positions[:, : self.k_shot].reshape(-1),
            episode_labels.repeat_interleave(self.k_shot),
            positions[:, self.k_shot :].reshape(-1),
            episode_labels.repeat_interleave(self.n_query),
        )

    def state_dict(self) -> dict:
        """The own generator's state, for checkpoints."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (
            f"EpisodeSampler(n_classes={self.n_classes}, n_way={self.n_way}, "
            f"k_shot={self.k_shot}, n_query={self.n_query})"
        )


def _check_count(name: str, value, minimum: int) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _as_label_tensor(labels) -> torch.Tensor:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu()
    else:
        labels = torch.as_tensor(np.asarray(labels))
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {tuple(labels.shape)}")
    if labels.numel() == 0:  # np.asarray([]) is float64; an empty task is caught by n_way
        return labels.to(torch.int64)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    return labels.to(torch.int64)
