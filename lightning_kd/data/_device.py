"""Training batches made on the accelerator from images held there once.

Private module: the public name lives in :mod:`lightning_kd.data`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_kd._validation import check_non_negative_int, check_positive_int
from lightning_kd.data._views import AugmentationSpace, AugmentationViews, crop_flip, stats_tensor, to_normalized_float

__all__ = ["DeviceResidentLoader"]

_NO_AUGMENTATION = AugmentationSpace(padding=0, flip=False)


class DeviceResidentLoader:
    """Shuffled, augmented and normalised training batches produced on the device that holds the images.

    The images (uint8, or float in ``[0, 1]``) and labels move to ``device`` once. Every epoch draws, on the
    CPU with a :class:`torch.Generator` seeded with ``seed + epoch``, a permutation (``randperm``, as
    :class:`~torch.utils.data.DistributedSampler` draws it) and then, for every position of the epoch, a crop
    offset pair ``(dy, dx)`` uniform in ``0 .. 2 * padding`` and a flip with probability 1/2; they move to the
    device once per epoch. Each batch is then a gather, a crop (:func:`~lightning_kd.data._views.crop_flip`,
    vectorised), a conversion to float and a normalisation, all on the device, with no host synchronisation.
    The batches depend only on the seed, the epoch, the rank and the world size: the same on a CPU and a GPU.

    Sharding: rank ``r`` of ``world_size`` takes positions ``r, r + world_size, ...`` of the epoch's permutation
    padded by repetition to a multiple of ``world_size``, exactly the indices of
    ``DistributedSampler(dataset, world_size, r, shuffle=True, seed=seed, drop_last=False)`` after
    ``set_epoch(epoch)``, and as many batches as a ``DataLoader`` over that sampler (``drop_last`` as its
    ``drop_last``). Why not a ``DataLoader``: its batches come from per-sample host-side indexing and
    collation; and Lightning injects its ``DistributedSampler`` only into ``DataLoader`` objects and leaves
    any other iterable alone, so this class shards each epoch itself, the same way.

    Args:
        images: ``(N, C, H, W)`` training images, uint8 or float in ``[0, 1]``, before normalisation.
        labels: ``(N,)`` integer labels.
        batch_size: Samples per batch.
        mean: Per-channel mean of the normalisation (on the ``[0, 1]`` scale).
        std: Per-channel standard deviation of the normalisation.
        space: Crop padding and flip of the augmentation (default: none).
        seed: Seed of the permutations and augmentation draws (with the epoch).
        device: Where the images live and the batches are made; ``None`` keeps the images' device.
        rank: This process's rank, ``0 .. world_size - 1``.
        world_size: Number of processes sharing each epoch.
        drop_last: Drop the last batch of an epoch when it is smaller than ``batch_size`` (fixed shapes).
        channels_last: Return the images in the channels-last memory format (the values do not change).
        return_views: Yield ``(x, y, views)`` with the :class:`AugmentationViews` of the batch, else ``(x, y)``.
        epoch_fn: Called at the start of every iteration to get the epoch (e.g. the Trainer's ``current_epoch``);
            ``None`` uses the value given to :meth:`set_epoch` (initially 0).

    Raises:
        ValueError: On a bad argument (shapes that disagree, ``rank`` outside ``0 .. world_size - 1``, ...).

    Example:
        >>> images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
        >>> loader = DeviceResidentLoader(images, torch.arange(10), batch_size=4, mean=(0.5,) * 3, std=(0.25,) * 3,
        ...                               space=AugmentationSpace(padding=2, flip=True), return_views=True)
        >>> len(loader), [tuple(x.shape) for x, _, _ in loader]
        (3, [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)])
        >>> x, y, views = next(iter(loader))
        >>> torch.equal(y, views.index), views.dy.dtype
        (True, torch.int64)
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        space: AugmentationSpace = _NO_AUGMENTATION,
        seed: int = 0,
        device: torch.device | str | None = None,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        channels_last: bool = False,
        return_views: bool = False,
        epoch_fn: Callable[[], int] | None = None,
    ) -> None:
        if images.ndim != 4 or labels.ndim != 1 or images.shape[0] != labels.shape[0] or images.shape[0] == 0:
            raise ValueError(
                "Expected argument `images` of shape (N, C, H, W) and `labels` of shape (N,) with N >= 1, but got "
                f"{tuple(images.shape)} and {tuple(labels.shape)}."
            )
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise ValueError(f"Expected argument `images` to be uint8 or floating, but got {images.dtype}.")
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise ValueError(
                f"Expected arguments `mean` and `std` to have one value per channel ({images.shape[1]}), but got "
                f"{len(mean)} and {len(std)}."
            )
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.world_size = check_positive_int("world_size", world_size)
        if check_non_negative_int("rank", rank) >= world_size:
            raise ValueError(f"Expected argument `rank` to be in 0 .. {world_size - 1}, but got {rank}.")
        self.rank = rank
        self.seed = int(seed)
        self.space = space
        self.drop_last = bool(drop_last)
        self.channels_last = bool(channels_last)
        self.return_views = bool(return_views)
        self.epoch_fn = epoch_fn
        self.epoch = 0
        self.images = images.to(device) if device is not None else images
        self.device = self.images.device
        self.labels = labels.to(self.device, torch.int64)
        self._mean = stats_tensor(mean, self.device)
        self._std = stats_tensor(std, self.device)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next iteration when there is no ``epoch_fn`` (as ``DistributedSampler.set_epoch``)."""
        self.epoch = check_non_negative_int("epoch", epoch)

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch: ``ceil(N / world_size)`` (``DistributedSampler.num_samples``)."""
        return math.ceil(self.images.shape[0] / self.world_size)

    def __len__(self) -> int:
        """Batches per epoch on this rank, as a ``DataLoader`` over ``DistributedSampler`` would give."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def epoch_views(self, epoch: int) -> AugmentationViews:
        """This rank's samples of ``epoch`` in order, with their crop offsets and flips (CPU tensors).

        Example:
            >>> loader = DeviceResidentLoader(torch.zeros(5, 1, 2, 2), torch.zeros(5), batch_size=2, mean=(0.0,),
            ...                               std=(1.0,), rank=1, world_size=2)
            >>> len(loader.epoch_views(0).index)  # ceil(5 / 2): one index repeated to pad the epoch
            3
        """
        generator = torch.Generator().manual_seed(self.seed + epoch)
        size = self.images.shape[0]
        order = torch.randperm(size, generator=generator)
        total = self.num_samples * self.world_size
        if total > size:  # pad by repetition, as DistributedSampler(drop_last=False)
            order = torch.cat([order, order.repeat(math.ceil((total - size) / size))[: total - size]])
        high = 2 * self.space.padding + 1
        if self.space.padding:
            dy = torch.randint(0, high, (total,), generator=generator)
            dx = torch.randint(0, high, (total,), generator=generator)
        else:
            dy = dx = torch.zeros(total, dtype=torch.int64)
        flip = torch.randint(0, 2, (total,), generator=generator) if self.space.flip else torch.zeros_like(dy)
        own = slice(self.rank, total, self.world_size)
        return AugmentationViews(order[own], dy[own], dx[own], flip[own])

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        epoch = self.epoch if self.epoch_fn is None else self.epoch_fn()
        plan = AugmentationViews(*(t.to(self.device) for t in self.epoch_views(epoch)))
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        padding, augmented = self.space.padding, self.space.padding > 0 or self.space.flip
        for step in range(len(self)):
            start = step * self.batch_size
            views = AugmentationViews(*(t[start : start + self.batch_size] for t in plan))
            x = self.images[views.index]
            if augmented:
                x = crop_flip(x, views.dy, views.dx, views.flip, padding)
            x = to_normalized_float(x, self._mean, self._std).contiguous(memory_format=memory_format)
            y = self.labels[views.index]
            yield (x, y, views) if self.return_views else (x, y)
