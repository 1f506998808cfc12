"""Training data on the device, and randomness that is a pure function of (seed, purpose, step).

Every random draw of a run — the data order, augmentations, episodes, the labelled subset of
FixMatch — comes from a generator seeded by a keyed hash of ``(seed, purpose, step)`` (or of the
epoch, for data order) instead of one long-lived generator. The draws of step ``t`` therefore do
not depend on how the run got to step ``t``: a run resumed from a checkpoint replays exactly the
draws an uninterrupted run makes, with no generator state to save, and on any device.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, purpose: str, *keys: int) -> int:
    """A 63-bit seed from ``blake2b(f"{seed}/{purpose}/{keys...}")``."""
    text = "/".join([str(int(seed)), purpose, *(str(int(k)) for k in keys)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def step_generator(seed: int, purpose: str, step: int) -> torch.Generator:
    """A fresh CPU generator for the draws of ``purpose`` at ``step``."""
    return torch.Generator().manual_seed(derive_seed(seed, purpose, step))


class BatchStream:
    """Batches of ``batch_size`` positions in ``[0, n)`` read off an endless stream of epochs.

    Each epoch is a random permutation of ``range(n)`` drawn from ``derive_seed(seed, purpose,
    epoch)``; batch ``t`` is positions ``t·B … t·B + B − 1`` of the concatenated epochs, so every
    batch is full (one may straddle two epochs) and batch ``t`` is computed without the ones
    before it.
    """

    def __init__(self, n: int, batch_size: int, seed: int, purpose: str):
        if n < 1:
            raise ValueError(f"nothing to draw batches from ({purpose}: 0 samples)")
        self.n, self.batch_size, self.seed, self.purpose = int(n), int(batch_size), seed, purpose
        self._cache: dict[int, torch.Tensor] = {}

    def epoch_order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.pop(min(self._cache))
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.purpose, epoch))
            self._cache[epoch] = torch.randperm(self.n, generator=g)
        return self._cache[epoch]

    def batch(self, step: int) -> torch.Tensor:
        """int64 positions (batch_size,) of batch ``step``."""
        start = int(step) * self.batch_size
        stop = start + self.batch_size
        parts = []
        while start < stop:
            epoch, offset = divmod(start, self.n)
            take = min(stop - start, self.n - offset)
            parts.append(self.epoch_order(epoch)[offset : offset + take])
            start += take
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def channels_first(images: np.ndarray) -> np.ndarray:
    """(S, H, W) → (S, 1, H, W); (S, H, W, C) → (S, C, H, W)."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    raise ValueError(f"images must be (S, H, W) or (S, H, W, C), got shape {images.shape}")


def float_tensor(dataset) -> torch.Tensor:
    """A whole `Dataset`'s images as a float32 (S, C, H, W) CPU tensor in [0, 1]."""
    return torch.from_numpy(channels_first(dataset.float_images(dtype=np.float32)))


class ImageTensor:
    """A dataset's images on the training device, indexed by batches of positions.

    In-memory images are moved to the device once (uint8 stays uint8, a quarter of the float
    size) and converted to float32 in [0, 1] per batch; lazy images (ImageFolder) are decoded per
    batch.
    """

    def __init__(self, dataset, device):
        self.device = torch.device(device)
        self._lazy = None
        images = dataset.images
        if isinstance(images, np.ndarray):
            arr = channels_first(images)
            if arr.dtype != np.uint8:
                arr = arr.astype(np.float32)
            self._data = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
            shape = tuple(self._data.shape)
        else:
            self._lazy = dataset
            shape = (len(dataset), *channels_first(dataset.float_images([0])).shape[1:])
        self.shape = shape

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def in_channels(self) -> int:
        return self.shape[1]

    @property
    def image_size(self) -> int:
        return self.shape[2]

    def __getitem__(self, idx) -> torch.Tensor:
        """float32 (B, C, H, W) on the device for int64 positions ``idx``."""
        if self._lazy is not None:
            x = channels_first(self._lazy.float_images(np.asarray(idx), dtype=np.float32))
            return torch.from_numpy(x).to(self.device, non_blocking=True)
        x = self._data[idx.to(self.device)]
        if x.dtype == torch.uint8:
            return x.float().div_(255.0)
        return x
