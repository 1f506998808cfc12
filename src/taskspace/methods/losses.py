"""Training losses, written from the papers' definitions.

- ``nt_xent``: SimCLR's normalised temperature-scaled cross-entropy (Chen et al. 2020).
- ``prototypical_loss``: Prototypical Networks (Snell et al. 2017).
- ``fixmatch_loss``: FixMatch's unlabelled loss (Sohn et al. 2020).

Each computes in float32 at least (also under autocast), and returns scalar tensors; the side
statistics (accuracy, mask rate) are detached 0-d tensors, so reading them is the caller's choice of
when to synchronise with the GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["fixmatch_loss", "nt_xent", "prototypical_loss"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent, the contrastive loss of SimCLR (Chen, Kornblith, Norouzi & Hinton, "A Simple
    Framework for Contrastive Learning of Visual Representations", ICML 2020, eq. 1 and alg. 1).

    The 2B projections ``z = [z1; z2]`` are L2-normalised and compared by cosine similarity
    ``sim(i, j) = z_iᵀ z_j / (‖z_i‖ ‖z_j‖)``. For each of the 2B anchors ``i`` with positive
    ``p(i)`` (the other view of the same image: ``i ± B``)::

        ℓ(i) = −log( exp(sim(i, p(i)) / τ) / Σ_{k ≠ i} exp(sim(i, k) / τ) )

    and the loss is the mean of ``ℓ`` over all 2B anchors. It is computed as a cross-entropy over
    the similarity rows with the diagonal removed (set to −∞), i.e. through ``logsumexp``, which is
    stable for any τ > 0.

    Parameters
    ----------
    z1, z2 : Tensor, shape (B, D)
        Projections of the two views; row ``b`` of each comes from the same image. ``B >= 1``.
    temperature : float > 0

    Returns
    -------
    Tensor, shape ()
    """
    if z1.ndim != 2 or z1.shape != z2.shape or z1.shape[0] == 0:
        raise ValueError(
            f"z1 and z2 must both have shape (B, D) with B >= 1, got {tuple(z1.shape)} and "
            f"{tuple(z2.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T) / temperature
    self_mask = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, positives)


def prototypical_loss(
    support_emb: torch.Tensor,
    support_labels: torch.Tensor,
    query_emb: torch.Tensor,
    query_labels: torch.Tensor,
    n_way: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The episode loss of Prototypical Networks (Snell, Swersky & Zemel, "Prototypical Networks
    for Few-shot Learning", NeurIPS 2017, eqs. 1–2 and alg. 1).

    Each class's prototype is the mean embedding of its support examples,
    ``c_k = (1 / |S_k|) Σ_{x ∈ S_k} f(x)``; a query ``x`` gets
    ``p(y = k | x) = softmax_k(−‖f(x) − c_k‖²)`` (squared Euclidean distance), and the loss is the
    mean cross-entropy over the queries.

    Parameters
    ----------
    support_emb : Tensor, shape (S, D)
    support_labels : int Tensor, shape (S,)
        Episode labels in ``0 .. n_way − 1``; every class must have at least one support example.
    query_emb : Tensor, shape (Q, D)
    query_labels : int Tensor, shape (Q,)
    n_way : int >= 2

    Returns
    -------
    loss : Tensor, shape ()
    accuracy : Tensor, shape ()
        Fraction of queries whose nearest prototype is their class (detached).
    """
    if n_way < 2:
        raise ValueError(f"n_way must be >= 2, got {n_way}")
    for name, emb, labels in (
        ("support", support_emb, support_labels),
        ("query", query_emb, query_labels),
    ):
        if emb.ndim != 2 or labels.ndim != 1 or emb.shape[0] != labels.shape[0] or not len(labels):
            raise ValueError(
                f"{name}_emb must have shape (n, D) and {name}_labels shape (n,) with n >= 1, got "
                f"{tuple(emb.shape)} and {tuple(labels.shape)}"
            )
        if labels.min() < 0 or labels.max() >= n_way:
            raise ValueError(
                f"{name}_labels must lie in 0 .. {n_way - 1} (n_way = {n_way}), got "
                f"values in {int(labels.min())} .. {int(labels.max())}"
            )
    if support_emb.shape[1] != query_emb.shape[1]:
        raise ValueError(
            f"support_emb and query_emb have different dimensions, "
            f"{support_emb.shape[1]} and {query_emb.shape[1]}"
        )
    support_labels, query_labels = support_labels.long(), query_labels.long()
    counts = torch.bincount(support_labels, minlength=n_way)
    if (counts == 0).any():
        missing = int(torch.nonzero(counts == 0)[0])
        raise ValueError(f"class {missing} of the episode has no support example")
    support_emb = support_emb.float()
    query_emb = query_emb.float()
    prototypes = torch.zeros(
        n_way, support_emb.shape[1], dtype=support_emb.dtype, device=support_emb.device
    )
    prototypes = prototypes.index_add(0, support_labels, support_emb)
    prototypes = prototypes / counts.to(prototypes.dtype).unsqueeze(1)
    # the difference form, not ‖q‖² − 2 q·c + ‖c‖², which cancels when queries sit near prototypes
    sq_dist = (query_emb.unsqueeze(1) - prototypes.unsqueeze(0)).pow(2).sum(dim=-1)
    logits = -sq_dist
    loss = F.cross_entropy(logits, query_labels)
    accuracy = (logits.detach().argmax(dim=1) == query_labels).float().mean()
    return loss, accuracy


def fixmatch_loss(
    logits_weak: torch.Tensor, logits_strong: torch.Tensor, threshold: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """FixMatch's unlabelled loss (Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with
    Consistency and Confidence", NeurIPS 2020, eq. 4).

    With ``q_b = softmax(logits_weak_b)`` (no gradient flows through it) and the hard pseudo-label
    ``q̂_b = argmax q_b``::

        ℓ_u = (1 / μB) Σ_b 1(max q_b ≥ τ) · H(q̂_b, softmax(logits_strong_b))

    The average is over the whole unlabelled batch (μB), confident or not, as in the paper.

    Parameters
    ----------
    logits_weak : Tensor, shape (U, C)
        Logits on the weakly augmented unlabelled images.
    logits_strong : Tensor, shape (U, C)
        Logits on the strongly augmented views of the same images.
    threshold : float in [0, 1]
        The confidence threshold τ.

    Returns
    -------
    loss : Tensor, shape ()
    mask_rate : Tensor, shape ()
        Fraction of the batch above the threshold (detached).
    """
    if logits_weak.ndim != 2 or logits_weak.shape != logits_strong.shape or not len(logits_weak):
        raise ValueError(
            f"logits_weak and logits_strong must both have shape (U, C) with U >= 1, got "
            f"{tuple(logits_weak.shape)} and {tuple(logits_strong.shape)}"
        )
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    probs = torch.softmax(logits_weak.detach().float(), dim=1)
    confidence, pseudo_labels = probs.max(dim=1)
    mask = (confidence >= threshold).float()
    per_sample = F.cross_entropy(logits_strong.float(), pseudo_labels, reduction="none")
    return (per_sample * mask).mean(), mask.mean()
