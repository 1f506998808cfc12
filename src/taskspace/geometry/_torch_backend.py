"""Optional PyTorch backend of ``pairwise_distances``: CUDA when available, else CPU; float64.

Imported only when ``backend="torch"`` is asked for, so the NumPy path never needs torch. Chunks are
read, validated and square-rooted exactly as for the Numba kernels (``_pairwise_stream``), then
moved to the device, where each chunk costs a batched matmul (d_B) or a batched ``cdist`` without
the ``‖a‖² + ‖b‖² − 2ab`` expansion (d_H, d_G: the chord directly, as in the Numba kernels). The
full M × M' matrix of sums is formed (no symmetry saving): on a GPU this is memory-bound anyway.
"""

from __future__ import annotations

import math

import numpy as np

from taskspace.geometry._pairwise_stream import packed_chunks


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='torch' needs PyTorch (pip install torch); the default backend does not"
        ) from exc
    return torch


def pairwise_sums_torch(
    X,
    Y,
    metric: str,
    eps: float,
    chunk_size: int | None,
    progress: bool,
    precision: str = "float64",
) -> np.ndarray:
    """Per-pair sums over samples (see ``pairwise.finish``) computed with torch, float64.

    ``precision="float32"`` (d_B only): the square roots are multiplied in float32, the floored
    coefficients logged and summed in float64.

    Returns
    -------
    ndarray of float64, shape (M, M')
        ``Σ_n log max(BC_n, eps)``, ``Σ_n s_n`` or ``Σ_n θ_n²`` for metric bhattacharyya,
        hellinger or geodesic.
    """
    torch = _torch()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    m, m_y = int(X.shape[0]), int(X.shape[0] if Y is None else Y.shape[0])
    sums = torch.zeros((m, m_y), dtype=torch.float64, device=device)
    products = torch.float32 if precision == "float32" else torch.float64
    # Per sample, besides the packed rows: the (M, M') per-sample quantities and a temporary.
    for A, B in packed_chunks(
        X, Y, "samples", chunk_size, extra=2 * m * m_y * 8, progress=progress
    ):
        S = torch.from_numpy(A[:, :m]).to(device)
        T = S if Y is None else torch.from_numpy(B[:, :m_y]).to(device)
        if metric == "bhattacharyya":
            inner = torch.bmm(S.to(products), T.to(products).transpose(1, 2)).double()
            sums += torch.log(inner.clamp_(min=eps)).sum(dim=0)
        else:
            chord = torch.cdist(S, T, compute_mode="donot_use_mm_for_euclid_dist")
            if metric == "hellinger":
                sums += (chord * chord).sum(dim=0)
            else:
                theta = 2.0 * torch.asin((0.5 * chord).clamp_(max=math.sqrt(0.5)))
                sums += (theta * theta).sum(dim=0)
    return sums.cpu().numpy()
