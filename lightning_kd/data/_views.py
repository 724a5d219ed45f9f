"""Explicit augmentation views: the random crop + horizontal flip of each training sample, as numbers.

The standard training augmentation of CIFAR-style datasets is a random crop of the zero-padded image and an
optional horizontal flip. Both are drawn explicitly here, so they can travel with the batch
(:class:`AugmentationViews`) and the space they come from is finite and known (:class:`AugmentationSpace`):
``(2 * padding + 1) ** 2`` crop offsets times 2 flips, 162 views per CIFAR image. One vectorised function,
:func:`crop_flip`, applies them for the device-resident loader and for the CPU dataset alike.

Private module: the public names live in :mod:`lightning_kd.data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from lightning_kd._validation import check_non_negative_int

__all__ = ["AugmentationSpace", "AugmentationViews", "AugmentedImageDataset", "crop_flip", "to_normalized_float"]


class AugmentationViews(NamedTuple):
    """The augmentation of every sample of a batch: which image, where it was cropped, whether it was flipped.

    All fields are int64 tensors of shape ``(B,)`` on the batch's device. The crop of sample ``b`` is
    ``padded[:, dy[b] : dy[b] + H, dx[b] : dx[b] + W]`` of its zero-padded image (offsets in ``0 .. 2 * padding``),
    flipped left-right after the crop when ``flip[b] == 1``. ``(index, dy, dx, flip)`` identifies the input exactly.

    Example:
        >>> views = AugmentationViews(torch.tensor([7]), torch.tensor([4]), torch.tensor([4]), torch.tensor([0]))
        >>> views.index.tolist(), views.dy.tolist(), views.flip.tolist()
        ([7], [4], [0])
    """

    index: Tensor  # type: ignore[assignment]  # the field shadows ``tuple.index`` on purpose: it is the dataset index
    """Dataset index of each sample (into the training split)."""
    dy: Tensor
    """Row offset of the crop in the zero-padded image, ``0 .. 2 * padding``."""
    dx: Tensor
    """Column offset of the crop in the zero-padded image, ``0 .. 2 * padding``."""
    flip: Tensor
    """1 where the crop was flipped horizontally, else 0."""


@dataclass(frozen=True)
class AugmentationSpace:
    """A finite training augmentation: random crop of the image zero-padded by ``padding``, optional flip.

    Example:
        >>> AugmentationSpace(padding=4, flip=True).num_views  # CIFAR: 81 offsets x 2 flips
        162
        >>> AugmentationSpace(padding=0, flip=False).num_views  # no augmentation
        1
    """

    padding: int
    """Zero padding on each side before the crop (the crop offsets are ``0 .. 2 * padding``)."""
    flip: bool
    """Whether each sample is flipped horizontally with probability 1/2."""

    def __post_init__(self) -> None:
        check_non_negative_int("padding", self.padding)

    @property
    def num_views(self) -> int:
        """Number of distinct views of one image: ``(2 * padding + 1) ** 2 * (2 if flip else 1)``."""
        return (2 * self.padding + 1) ** 2 * (2 if self.flip else 1)


def crop_flip(images: Tensor, dy: Tensor, dx: Tensor, flip: Tensor, padding: int) -> Tensor:
    """Crop each image of a batch from its zero-padded copy at ``(dy, dx)`` and flip it where ``flip`` is 1.

    Index arithmetic on the padded batch, one gather for the whole batch (no loop over samples), equal to
    torchvision's ``RandomCrop(size, padding=padding)`` (zero fill) followed by ``RandomHorizontalFlip`` for the
    same draws. The result has the values of a ``(B, C, H, W)`` tensor in the channels-last memory layout.

    Args:
        images: ``(B, C, H, W)`` images of any dtype.
        dy: ``(B,)`` integer row offsets in ``0 .. 2 * padding``.
        dx: ``(B,)`` integer column offsets in ``0 .. 2 * padding``.
        flip: ``(B,)`` integers, 1 to flip left-right after the crop.
        padding: Zero padding on each side.

    Example:
        >>> image = torch.arange(4).view(1, 1, 2, 2)  # [[0, 1], [2, 3]]
        >>> crop_flip(image, torch.tensor([1]), torch.tensor([1]), torch.tensor([1]), padding=1)[0, 0].tolist()
        [[1, 0], [3, 2]]
        >>> crop_flip(image, torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), padding=1)[0, 0].tolist()
        [[0, 0], [0, 0]]
    """
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    rows = dy.view(-1, 1) + torch.arange(height, device=images.device)  # (B, H)
    columns = torch.arange(width, device=images.device)
    columns = dx.view(-1, 1) + torch.where(flip.view(-1, 1) != 0, width - 1 - columns, columns)  # (B, W)
    samples = torch.arange(batch, device=images.device).view(-1, 1, 1)
    # Advanced indices on the three adjacent leading dims of the (B, H', W', C) view: the result is (B, H, W, C).
    return padded.permute(0, 2, 3, 1)[samples, rows.view(batch, height, 1), columns.view(batch, 1, width)].permute(
        0, 3, 1, 2
    )


def to_normalized_float(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(images / 255 - mean) / std`` for uint8 images, ``(images - mean) / std`` for float images in ``[0, 1]``.

    The same float32 operations as torchvision's ``ToTensor``/``ConvertImageDtype`` (``.float().div(255)``) and
    ``Normalize`` (``sub`` then ``div``), so the values are bitwise equal to theirs. ``mean`` and ``std`` are
    float32 tensors of shape ``(C, 1, 1)``, on the images' device: torchvision's ``normalize`` builds them from
    Python lists and tests ``std == 0`` on every call, a host synchronisation on an accelerator.

    Example:
        >>> x = to_normalized_float(torch.full((1, 1, 1), 255, dtype=torch.uint8), torch.full((1, 1, 1), 0.5),
        ...                         torch.full((1, 1, 1), 0.25))
        >>> x.item()
        2.0
    """
    x = images.to(torch.float32).div(255) if images.dtype == torch.uint8 else images.to(torch.float32)
    return torch.sub(x, mean).div_(std)


def stats_tensor(values: Sequence[float], device: torch.device | str | None = None) -> Tensor:
    """Per-channel statistics as a float32 ``(C, 1, 1)`` tensor (as torchvision's ``Normalize`` shapes them)."""
    return torch.tensor(values, dtype=torch.float32, device=device).view(-1, 1, 1)


class AugmentedImageDataset(Dataset[tuple[Tensor, Tensor, AugmentationViews]]):
    """In-memory images with an explicit random crop + flip per sample, returned with the sample's views.

    The CPU counterpart of the device-resident loader for ``return_views=True``. ``__getitem__`` draws the crop
    offsets and the flip from torch's global RNG in torchvision's order (``RandomCrop.get_params``: row, then
    column, both skipped when ``padding == 0``; then ``RandomHorizontalFlip``'s ``torch.rand(1) < 0.5``), so with
    the same torch seed it yields the same images as the DataModule's torchvision transforms, plus the views.

    Args:
        images: ``(N, C, H, W)`` uint8 images, or float images in ``[0, 1]``, before normalisation.
        labels: ``(N,)`` integer labels.
        space: The crop padding and whether to flip.
        mean: Per-channel mean of the normalisation.
        std: Per-channel standard deviation of the normalisation.

    Example:
        >>> ds = AugmentedImageDataset(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 2]),
        ...                            AugmentationSpace(padding=1, flip=True), mean=(0.0,), std=(1.0,))
        >>> x, y, views = ds[2]
        >>> x.shape, y.item(), views.index.item(), 0 <= views.dy.item() <= 2, views.flip.item() in (0, 1)
        (torch.Size([1, 4, 4]), 2, 2, True, True)
    """

    def __init__(
        self, images: Tensor, labels: Tensor, space: AugmentationSpace, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        self.images = images
        self.labels = labels
        self.space = space
        self._mean = stats_tensor(mean)
        self._std = stats_tensor(std)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, AugmentationViews]:
        padding = self.space.padding
        dy = int(torch.randint(0, 2 * padding + 1, size=(1,)).item()) if padding else 0
        dx = int(torch.randint(0, 2 * padding + 1, size=(1,)).item()) if padding else 0
        flip = int(bool(torch.rand(1) < 0.5)) if self.space.flip else 0
        image = self.images[index : index + 1]
        if padding or flip:
            image = crop_flip(image, torch.tensor([dy]), torch.tensor([dx]), torch.tensor([flip]), padding)
        x = to_normalized_float(image[0].contiguous(), self._mean, self._std)
        # 0-d int64 tensors: ``default_collate`` stacks them into the (B,) fields of the batch's views.
        views = AugmentationViews(*(torch.tensor(v, dtype=torch.int64) for v in (index, dy, dx, flip)))
        return x, self.labels[index], views
