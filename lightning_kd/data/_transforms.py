"""Small tensor transforms shared by the DataModules' strong (MLKD) augmentation.

Private module: the public names are re-exported by :mod:`lightning_kd.data`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_kd._validation import check_non_negative_float, check_positive_int

__all__ = ["AddGaussianNoise", "Cutout"]


class Cutout:
    """Cutout (DeVries & Taylor, 2017): zero one ``size`` x ``size`` square of a ``(..., H, W)`` tensor.

    The square's *centre* is drawn uniformly over all pixels and the square is clipped at the image
    border, so near the edges less than ``size**2`` pixels are erased; it is always applied. Use it after
    ``Normalize``: zero then means "the dataset mean", as in the original code and in MLKD.

    Why not :class:`torchvision.transforms.RandomErasing`: that op draws a rectangle of random area
    *and* aspect ratio, always fully inside the image, applies it only with probability ``p`` and fills
    with a constant or noise; it is a different augmentation with different statistics, so the Cutout
    used by the KD literature is reimplemented here (a few lines).

    Args:
        size: Side of the square hole in pixels.
        fill: Value written into the hole.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> out = Cutout(size=2)(torch.ones(3, 8, 8))
        >>> out.shape, 0 < int((out == 0).sum()) <= 3 * 4
        (torch.Size([3, 8, 8]), True)
    """

    def __init__(self, size: int = 16, fill: float = 0.0) -> None:
        self.size = check_positive_int("size", size)
        self.fill = float(fill)

    def __call__(self, image: Tensor) -> Tensor:
        """Return a copy of ``image`` with one square (across all channels) set to ``fill``."""
        height, width = image.shape[-2], image.shape[-1]
        # Random draws from torch's global RNG: seeded per DataLoader worker and by ``seed_everything``.
        cy = int(torch.randint(height, (1,)).item())
        cx = int(torch.randint(width, (1,)).item())
        half = self.size // 2
        y0, y1 = max(cy - half, 0), min(cy - half + self.size, height)
        x0, x1 = max(cx - half, 0), min(cx - half + self.size, width)
        out = image.clone()
        out[..., y0:y1, x0:x1] = self.fill
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, fill={self.fill})"


class AddGaussianNoise:
    """Add i.i.d. Gaussian noise ``N(0, std**2)`` to every element of a float tensor.

    Args:
        std: Standard deviation of the noise, in the units of the input tensor.

    Example:
        >>> noisy = AddGaussianNoise(std=0.1)(torch.zeros(1, 32, 32))
        >>> noisy.shape, 0.05 < noisy.std().item() < 0.15
        (torch.Size([1, 32, 32]), True)
    """

    def __init__(self, std: float = 0.1) -> None:
        self.std = check_non_negative_float("std", std)

    def __call__(self, image: Tensor) -> Tensor:
        """Return ``image + std * randn_like(image)``."""
        return image + self.std * torch.randn_like(image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(std={self.std})"
