"""Image operations behind ``augment``: affine resampling, grey levels, FixMatch's RandAugment
operations and Cutout.

The RandAugment operations follow the list and magnitude ranges of FixMatch (Sohn et al. 2020,
appendix, table 12), which mirror PIL's ``ImageOps`` / ``ImageEnhance``. Each takes a batch ``x``
(b, C, H, W) in [0, 1] and per-image magnitudes ``m`` (b,) uniform in [0, 1), which it maps to its
own range; each returns a batch in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

# PIL's ImageFilter.SMOOTH kernel, which ImageEnhance.Sharpness blends with.
_SMOOTH = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))

_GREY = 0.5
_MAX_ROTATE_DEGREES = 30.0
_MAX_SHEAR = 0.3
_MAX_TRANSLATE = 0.3


def warp(
    x: torch.Tensor,
    theta: torch.Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    fill: float | None = None,
) -> torch.Tensor:
    """Resample ``x`` through per-image affine maps ``theta`` (B, 2, 3).

    ``theta`` maps output coordinates to input ones in ``affine_grid``'s normalised coordinates
    (``align_corners=False``: −1 and 1 are the outer edges of the border pixels, so the identity map
    samples every pixel centre exactly). With ``fill`` the area outside the input takes that value:
    sampling ``x − fill`` with zero padding and adding ``fill`` back blends the border with ``fill``
    exactly as zero padding blends it with 0.
    """
    if x.shape[0] == 0:  # affine_grid refuses an empty batch
        return x.clone()
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if fill is None:
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    out = F.grid_sample(x - fill, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out + fill


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) grey level: ITU-R 601 luma for RGB (PIL's ``convert("L")``), else the mean."""
    if x.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)


def cutout(x: torch.Tensor, size: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """Set a square of side ``size · min(H, W)`` centred at ``(cx · W, cy · H)`` to grey 0.5 in each
    image (DeVries & Taylor 2017); the square may overlap the border. All arguments are (B,)."""
    b, _, h, w = x.shape
    opts = {"device": x.device, "dtype": torch.float64}
    half = (size.to(**opts) * min(h, w) / 2.0).view(b, 1, 1, 1)
    cols = torch.arange(w, **opts).view(1, 1, 1, w) + 0.5  # pixel centres
    rows = torch.arange(h, **opts).view(1, 1, h, 1) + 0.5
    inside = ((cols - cx.to(**opts).view(b, 1, 1, 1) * w).abs() < half) & (
        (rows - cy.to(**opts).view(b, 1, 1, 1) * h).abs() < half
    )
    return torch.where(inside, torch.full_like(x, _GREY), x)


# ---------------------------------------------------------------------------------------------
# RandAugment operations


def _enhance_factor(m: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # FixMatch's range for the ImageEnhance factors: [0.05, 0.95]
    return (0.05 + 0.9 * m).to(like.dtype).view(-1, 1, 1, 1)


def _signed(m: torch.Tensor, bound: float) -> torch.Tensor:
    return (2.0 * m.double() - 1.0) * bound


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance: ``degenerate + factor · (x − degenerate)``, clipped to [0, 1]."""
    return (degenerate + factor * (x - degenerate)).clamp_(0.0, 1.0)


def _affine(
    x: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    d: torch.Tensor,
    tx: torch.Tensor,
    ty: torch.Tensor,
) -> torch.Tensor:
    theta = torch.stack([torch.stack([a, b, tx], dim=-1), torch.stack([c, d, ty], dim=-1)], dim=1)
    return warp(x, theta, fill=_GREY).clamp_(0.0, 1.0)


def identity(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return x


def autocontrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Stretch each channel's range to [0, 1]; constant channels are left alone."""
    lo = x.amin(dim=(2, 3), keepdim=True)
    span = x.amax(dim=(2, 3), keepdim=True) - lo
    return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, 1.0), x)


def equalize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of each channel on 256 grey levels.

    Level ``v`` maps to ``(cdf(v) − cdf_min) / (n − cdf_min)`` where ``cdf_min`` is the count at the
    lowest occupied level and ``n = H · W``: the textbook CDF map, which PIL's ``ImageOps.equalize``
    approximates with integer steps. Constant channels are left alone.
    """
    b, c, h, w = x.shape
    levels = (x * 255.0).round().clamp(0, 255).long().view(b * c, h * w)
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels))
    cdf = hist.cumsum(dim=1)
    cdf_min = cdf.masked_fill(hist == 0, h * w).amin(dim=1, keepdim=True)
    denom = h * w - cdf_min
    lut = (cdf - cdf_min).clamp_min(0).double() / denom.clamp_min(1).double()
    out = lut.gather(1, levels).view(b, c, h, w).to(x.dtype)
    return torch.where((denom > 0).view(b, c, 1, 1), out, x)


def brightness(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (x * _enhance_factor(m, x)).clamp_(0.0, 1.0)


def color(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Saturation: blend with the grey image (the identity unless there are 3 channels)."""
    if x.shape[1] != 3:
        return x
    return _blend(grayscale(x), x, _enhance_factor(m, x))


def contrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(mean, x, _enhance_factor(m, x))


def sharpness(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend with the smoothed image; as in PIL the one-pixel border is not smoothed."""
    c, h, w = x.shape[1:]
    if h < 3 or w < 3:
        return x
    kernel = torch.tensor(_SMOOTH, dtype=x.dtype, device=x.device) / 13.0
    smooth = F.conv2d(x, kernel.expand(c, 1, 3, 3), groups=c)
    degenerate = x.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    return _blend(degenerate, x, _enhance_factor(m, x))


def posterize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Quantise to 8 bits and keep the top ``b ∈ {4, ..., 8}`` of them."""
    bits = (4 + torch.floor(m * 5)).clamp(max=8)
    step = torch.pow(2.0, 8 - bits).to(x.dtype).view(-1, 1, 1, 1)
    q = (x * 255.0).round()
    return torch.div(q, step, rounding_mode="floor") * step / 255.0


def solarize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Invert the pixels at or above a threshold ``t ∈ [0, 1]``."""
    t = m.to(x.dtype).view(-1, 1, 1, 1)
    return torch.where(x >= t, 1.0 - x, x)


def rotate(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Rotate by ±30° about the centre (a rotation in pixels, whatever the aspect ratio)."""
    h, w = x.shape[2:]
    angle = _signed(m, math.radians(_MAX_ROTATE_DEGREES))
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    return _affine(x, cos, -sin * (h / w), sin * (w / h), cos, zero, zero)


def shear_x(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2:]
    s = _signed(m, _MAX_SHEAR)
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    return _affine(x, one, s * (h / w), zero, one, zero, zero)


def shear_y(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2:]
    s = _signed(m, _MAX_SHEAR)
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    return _affine(x, one, zero, s * (w / h), one, zero, zero)


def translate_x(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    t = _signed(m, _MAX_TRANSLATE)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    return _affine(x, one, zero, zero, one, 2.0 * t, zero)  # the image spans 2 normalised units


def translate_y(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    t = _signed(m, _MAX_TRANSLATE)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    return _affine(x, one, zero, zero, one, zero, 2.0 * t)


#: (name, op) pairs; FixMatch's RandAugment draws two per image, uniformly.
RANDAUGMENT_OPS: tuple[tuple[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]], ...] = (
    ("identity", identity),
    ("autocontrast", autocontrast),
    ("equalize", equalize),
    ("brightness", brightness),
    ("color", color),
    ("contrast", contrast),
    ("sharpness", sharpness),
    ("posterize", posterize),
    ("solarize", solarize),
    ("rotate", rotate),
    ("shear_x", shear_x),
    ("shear_y", shear_y),
    ("translate_x", translate_x),
    ("translate_y", translate_y),
)
