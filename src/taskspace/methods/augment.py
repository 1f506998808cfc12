"""Batched image augmentations written with torch ops alone (no torchvision).

Every function takes a batch ``x`` of shape (B, C, H, W), floating point, values in [0, 1], with
any number of channels (1 for grayscale, 3 for RGB), and returns a new batch of the same shape,
dtype and device with values in [0, 1]. Each sample gets its own random parameters, drawn in one
call per parameter for the whole batch (no Python loop over samples); geometric transforms are one
``affine_grid`` + ``grid_sample`` over the batch.

All randomness comes from the ``generator`` argument, drawn on the generator's own device and then
moved to the batch's. The same generator state therefore gives the same parameters whether the
batch lives on the CPU or a GPU, and a CPU generator can drive CUDA batches. ``generator=None``
draws from torch's global CPU generator. The number of values drawn depends only on the batch size,
never on the pixels, so a checkpointed generator state replays exactly.
"""

from __future__ import annotations

import math

import torch

from taskspace.methods._image_ops import RANDAUGMENT_OPS, cutout, grayscale, warp

__all__ = [
    "horizontal_flip",
    "intensity_jitter",
    "random_resized_crop",
    "simclr_views",
    "strong_augment",
    "weak_augment",
]

# torchvision's RandomResizedCrop makes ten rejection-sampling attempts before its fallback.
_CROP_ATTEMPTS = 10

# SimCLR applies colour jitter to 80 % of the views (Chen et al. 2020, appendix A).
_SIMCLR_JITTER_P = 0.8

# FixMatch's weak augmentation translates by up to 12.5 % of the image (Sohn et al. 2020, §2.3).
_WEAK_TRANSLATE = 0.125

# FixMatch's RandAugment applies N = 2 transformations per image (Sohn et al. 2020, appendix).
_RANDAUGMENT_N = 2


def random_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator | None,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Crop a random region of each image and resize it back to (H, W) (bilinear).

    The region's area is ``s · H · W`` with ``s ~ U(scale)`` and its aspect ratio ``w / h = r`` with
    ``log r ~ U(log ratio)``, as in torchvision's ``RandomResizedCrop``: ten (s, r) pairs are drawn
    per image and the first that fits inside the image is used; if none fits the whole image is
    kept. The position is uniform among those that fit. Unlike torchvision the crop is not snapped
    to whole pixels: it is a continuous affine resampling, which changes nothing in distribution
    that matters and keeps the batch vectorised.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
        Floating images in [0, 1].
    generator : torch.Generator or None
    scale : (float, float)
        Range of the area fraction, ``0 < scale[0] <= scale[1] <= 1``.
    ratio : (float, float)
        Range of the aspect ratio ``w / h``, ``0 < ratio[0] <= ratio[1]``.

    Returns
    -------
    Tensor, shape (B, C, H, W)
        ``scale=(1, 1), ratio=(1, 1)`` on square images is the identity (up to float rounding).
    """
    _check_batch(x)
    lo, hi = _check_range("scale", scale, upper=1.0)
    rlo, rhi = _check_range("ratio", ratio)
    b, _, h, w = x.shape
    s = _uniform(generator, (b, _CROP_ATTEMPTS), lo, hi)
    r = torch.exp(_uniform(generator, (b, _CROP_ATTEMPTS), math.log(rlo), math.log(rhi)))
    # fractions of the image's width and height: (wf · W)(hf · H) = s · H · W, wf·W / (hf·H) = r
    wf = torch.sqrt(s * r * (h / w))
    hf = torch.sqrt(s / r * (w / h))
    fits = (wf <= 1.0) & (hf <= 1.0)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # argmax returns the first maximum
    any_fit = fits.any(dim=1)
    wf = torch.where(any_fit, wf.gather(1, first).squeeze(1), 1.0)
    hf = torch.where(any_fit, hf.gather(1, first).squeeze(1), 1.0)
    left = _uniform(generator, (b,), 0.0, 1.0) * (1.0 - wf)
    top = _uniform(generator, (b,), 0.0, 1.0) * (1.0 - hf)
    # affine_grid maps output coordinates in [-1, 1] to input ones: scale by the crop's size and
    # shift to its centre
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = wf
    theta[:, 0, 2] = 2.0 * (left + wf / 2.0) - 1.0
    theta[:, 1, 1] = hf
    theta[:, 1, 2] = 2.0 * (top + hf / 2.0) - 1.0
    return warp(x, theta).clamp_(0.0, 1.0)


def horizontal_flip(
    x: torch.Tensor, generator: torch.Generator | None, p: float = 0.5
) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` (exact: no resampling).

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
    generator : torch.Generator or None
    p : float in [0, 1]

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    _check_batch(x)
    _check_probability("p", p)
    flip = _bernoulli(generator, x.shape[0], p).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


def intensity_jitter(
    x: torch.Tensor,
    generator: torch.Generator | None,
    brightness: float = 0.4,
    contrast: float = 0.4,
) -> torch.Tensor:
    """Random brightness, then random contrast, each image with its own factors.

    With ``b ~ U[max(0, 1 − brightness), 1 + brightness]`` and
    ``c ~ U[max(0, 1 − contrast), 1 + contrast]`` (torchvision's ``ColorJitter`` ranges):
    ``y = clamp(b · x)``, then ``out = clamp(c · y + (1 − c) · m)`` where ``m`` is the mean grey
    level of ``y`` (ITU-R 601 luma for 3 channels, the channel mean otherwise). Zero strengths give
    factors of exactly 1, hence exactly the identity. The order is fixed (torchvision draws it at
    random); saturation and hue, which SimCLR also jitters, are left out because the images here
    may be grayscale.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
    generator : torch.Generator or None
    brightness, contrast : float >= 0

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    _check_batch(x)
    for name, value in (("brightness", brightness), ("contrast", contrast)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    b = x.shape[0]
    fb = _uniform(generator, (b,), max(0.0, 1.0 - brightness), 1.0 + brightness)
    fc = _uniform(generator, (b,), max(0.0, 1.0 - contrast), 1.0 + contrast)
    y = (x * _per_sample(fb, x)).clamp_(0.0, 1.0)
    mean = grayscale(y).mean(dim=(1, 2, 3), keepdim=True)
    c = _per_sample(fc, x)
    # c·y + (1 − c)·m rather than m + c·(y − m): exact when c = 1
    return (c * y + (1.0 - c) * mean).clamp_(0.0, 1.0)


def simclr_views(
    x: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently augmented views of each image, for SimCLR (Chen et al. 2020).

    Each view is ``random_resized_crop`` (scale (0.2, 1)), ``horizontal_flip`` (p = 0.5) and
    ``intensity_jitter`` (brightness and contrast 0.4, SimCLR's strength s = 0.5), the jitter
    applied to each image with probability 0.8 as in the paper. SimCLR's random grayscale,
    saturation/hue jitter and blur are omitted (the issue asks for crop, flip and intensity jitter,
    and the data may be grayscale).

    Returns
    -------
    (Tensor, Tensor), each of shape (B, C, H, W)
    """
    return _simclr_view(x, generator), _simclr_view(x, generator)


def weak_augment(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """FixMatch's weak augmentation (Sohn et al. 2020, §2.3): flip, then translate.

    A horizontal flip with probability 0.5, then a shift by a whole number of pixels drawn uniformly
    in ``[−m, m]`` on each axis, ``m = round(0.125 · size)`` (4 pixels on 32×32 images), with the
    border reflected into the gap, as the paper's pad-and-crop does. Whole-pixel shifts with nearest
    sampling copy pixels exactly.

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    _check_batch(x)
    b, _, h, w = x.shape
    x = horizontal_flip(x, generator)
    mx, my = round(_WEAK_TRANSLATE * w), round(_WEAK_TRANSLATE * h)
    dx = _randint(generator, (b,), -mx, mx + 1).double()
    dy = _randint(generator, (b,), -my, my + 1).double()
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 2.0 * dx / w  # one pixel is 2 / size in normalised coordinates
    theta[:, 1, 2] = 2.0 * dy / h
    return warp(x, theta, mode="nearest", padding_mode="reflection")


def strong_augment(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """FixMatch's strong augmentation (Sohn et al. 2020, §2.3 and appendix, table 12).

    ``weak_augment`` (flip and translate), then RandAugment with random magnitudes: two operations
    per image, each drawn uniformly from the 14 below with its magnitude drawn uniformly from the
    paper's range, then Cutout.

    ====================  =============================================================
    identity              —
    autocontrast          per-channel min–max stretch to [0, 1]
    equalize              per-channel histogram equalisation on 256 levels (a CDF map)
    brightness            ``f · x``, f ∈ [0.05, 0.95]
    color                 blend with the grey image, f ∈ [0.05, 0.95] (identity for C ≠ 3)
    contrast              blend with the mean grey level, f ∈ [0.05, 0.95]
    sharpness             blend with PIL's 3×3 smoothing filter, f ∈ [0.05, 0.95]
    posterize             keep the top b bits of 8, b ∈ {4, ..., 8}
    solarize              ``1 − x`` where ``x ≥ t``, t ∈ [0, 1]
    rotate                ±30°
    shear_x, shear_y      shear factor in [−0.3, 0.3]
    translate_x, _y       shift by [−0.3, 0.3] of the image size
    ====================  =============================================================

    Geometric operations fill the uncovered area with grey (0.5). Cutout (DeVries & Taylor 2017)
    then sets a square of side ``L · min(H, W)``, ``L ∈ [0, 0.5]``, centred uniformly in the image
    (it may overlap the border), to grey 0.5. The operations are applied group by group to the
    images that drew them (one pass per operation, not per image).

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    x = weak_augment(x, generator)
    b = x.shape[0]
    ops = _randint(generator, (_RANDAUGMENT_N, b), 0, len(RANDAUGMENT_OPS)).cpu()
    magnitudes = _uniform(generator, (_RANDAUGMENT_N, b), 0.0, 1.0)
    cut = _uniform(generator, (3, b), 0.0, 1.0)
    for round_ops, round_magnitudes in zip(ops, magnitudes, strict=True):
        for k, (_, op) in enumerate(RANDAUGMENT_OPS):
            chosen = torch.nonzero(round_ops == k).squeeze(1)
            if chosen.numel() == 0:
                continue
            m = round_magnitudes[chosen].to(x.device)
            chosen = chosen.to(x.device)
            x = x.index_copy(0, chosen, op(x.index_select(0, chosen), m).to(x.dtype))
    return cutout(x, cut[0] * 0.5, cut[1], cut[2])


def _simclr_view(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    v = random_resized_crop(x, generator)
    v = horizontal_flip(v, generator)
    jittered = intensity_jitter(v, generator)
    apply = _bernoulli(generator, x.shape[0], _SIMCLR_JITTER_P).to(x.device).view(-1, 1, 1, 1)
    return torch.where(apply, jittered, v)


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(
    generator: torch.Generator | None, shape: tuple[int, ...], low: float, high: float
) -> torch.Tensor:
    """U[low, high) in float64 on the CPU (drawn on the generator's device, then moved)."""
    u = torch.rand(
        shape, generator=generator, device=_generator_device(generator), dtype=torch.float64
    ).cpu()
    return low + (high - low) * u


def _randint(
    generator: torch.Generator | None, shape: tuple[int, ...], low: int, high: int
) -> torch.Tensor:
    return torch.randint(
        low, high, shape, generator=generator, device=_generator_device(generator)
    ).cpu()


def _bernoulli(generator: torch.Generator | None, n: int, p: float) -> torch.Tensor:
    return _uniform(generator, (n,), 0.0, 1.0) < p


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}")
    if x.ndim != 4 or 0 in x.shape[1:]:
        raise ValueError(
            f"x must have shape (B, C, H, W) with C, H, W >= 1, got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating tensor with values in [0, 1], got {x.dtype}")


def _check_range(
    name: str, bounds: tuple[float, float], upper: float = math.inf
) -> tuple[float, float]:
    lo, hi = (float(v) for v in bounds)
    if not 0 < lo <= hi <= upper:
        limit = "" if upper == math.inf else f" <= {upper:g}"
        raise ValueError(f"{name} must satisfy 0 < {name}[0] <= {name}[1]{limit}, got {bounds}")
    return lo, hi


def _check_probability(name: str, p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
