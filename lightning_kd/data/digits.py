"""scikit-learn's bundled 8x8 digits as an in-memory DataModule (offline; the default for demos and tests)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import TensorDataset
from torchvision import transforms as T

from lightning_kd.data._common import (
    KDDataModuleBase,
    TwoViewDataset,
    check_fraction,
    check_min_int,
)
from lightning_kd.data._transforms import AddGaussianNoise, Cutout

__all__ = ["DigitsDataModule"]

# Mean and std of ``load_digits().data / 16`` over all 1,797 images (computed once). Fixed constants
# rather than the train split's statistics, so ``mean``/``std`` are known before ``setup`` (for teacher
# input adapters) and do not change with ``seed``/``val_fraction``; they normalize every split alike.
DIGITS_MEAN = (0.3053,)
DIGITS_STD = (0.3760,)
_NOISE_STD = 0.1  # strong view: Gaussian noise std on the [0, 1] pixel scale (before normalization)


class DigitsDataModule(KDDataModuleBase):
    """The 1,797 8x8 grayscale digits bundled with scikit-learn (10 classes), held as tensors in memory.

    Loads :func:`sklearn.datasets.load_digits` (no download), scales pixels ``0..16`` to ``[0, 1]``,
    optionally upsamples to ``image_size`` (bilinear, once, so CIFAR-style CNNs with several stride-2
    stages can run, e.g. ``image_size=32``), and normalizes with the fixed :data:`DIGITS_MEAN` /
    :data:`DIGITS_STD`. A stratified split, deterministic in ``seed``, holds out ``val_fraction`` of the
    images: it is the validation, test and predict split. Without ``strong_aug`` there is no
    augmentation: loading is a :class:`~torch.utils.data.TensorDataset` lookup.

    With ``strong_aug=True`` (for MLKD) the training set yields two views, each drawn independently
    from the clean image:

    * weak: a random shift of up to ``max(1, image_size // 8)`` pixels (``RandomCrop`` with zero, i.e.
      background, padding), then normalization;
    * strong: the same kind of shift, additive Gaussian noise (std 0.1 on the ``[0, 1]`` scale),
      normalization, then a :class:`~lightning_kd.data.Cutout` square of side ``image_size // 2`` (the
      16-of-32 ratio of CIFAR). Flips and rotations are avoided: they change a digit's identity.

    Batches: ``(x, y)`` with ``x`` float32 ``(B, 1, image_size, image_size)``, ``y`` int64 ``(B,)``;
    training batches with ``strong_aug=True`` are ``((x_weak, x_strong), y)``.

    Args:
        batch_size: Samples per batch for every loader.
        val_fraction: Fraction of the images held out (stratified by class), in ``(0, 1)``.
        seed: Seed of the split; the same seed gives the same split.
        image_size: Side of the images in the batches, >= 8 (8 = native resolution).
        strong_aug: Return a weak and a strong view of each training image.
        num_workers: DataLoader worker processes (0 is best: the data is in memory).
        pin_memory: Pin host memory for faster GPU transfer; ``None`` means "if CUDA is available".

    Raises:
        ValueError: On a bad argument (``batch_size < 1``, ``val_fraction`` outside ``(0, 1)``,
            ``image_size < 8``).

    Example:
        >>> dm = DigitsDataModule(batch_size=16, image_size=32)
        >>> dm.setup("fit")
        >>> len(dm.train_set), len(dm.val_set), dm.num_classes, dm.in_chans
        (1437, 360, 10, 1)
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape, x.dtype, y.shape, y.dtype
        (torch.Size([16, 1, 32, 32]), torch.float32, torch.Size([16]), torch.int64)
        >>> two_view = DigitsDataModule(batch_size=4, strong_aug=True)
        >>> two_view.setup("fit")
        >>> (x_weak, x_strong), y = next(iter(two_view.train_dataloader()))
        >>> x_weak.shape, x_strong.shape, y.shape
        (torch.Size([4, 1, 8, 8]), torch.Size([4, 1, 8, 8]), torch.Size([4]))
    """

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.2,
        seed: int = 0,
        image_size: int = 8,
        strong_aug: bool = False,
        num_workers: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            num_classes=10,
            in_chans=1,
            image_size=check_min_int("image_size", image_size, 8),
            mean=DIGITS_MEAN,
            std=DIGITS_STD,
        )
        self.val_fraction = check_fraction("val_fraction", val_fraction)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"Expected argument `seed` to be an integer, but got {seed!r}.")
        self.seed = seed
        self.strong_aug = bool(strong_aug)
        self.train_indices: Tensor | None = None
        self.val_indices: Tensor | None = None
        self.save_hyperparameters()

    def _views(self) -> tuple[T.Compose, T.Compose]:
        size = self.image_size
        shift = T.RandomCrop(size, padding=max(1, size // 8), fill=0)
        normalize = T.Normalize(DIGITS_MEAN, DIGITS_STD)
        weak = T.Compose([shift, normalize])
        strong = T.Compose([shift, AddGaussianNoise(_NOISE_STD), normalize, Cutout(size=size // 2)])
        return weak, strong

    def setup(self, stage: str | None = None) -> None:
        """Load, resize, split and normalize the digits (all splits at once; they are tiny)."""
        if self.test_set is not None:
            return
        data, target = load_digits(return_X_y=True)
        images = torch.from_numpy((data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
        if self.image_size != 8:
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
        labels = torch.from_numpy(target.astype(np.int64))

        train_idx, val_idx = train_test_split(
            np.arange(len(target)), test_size=self.val_fraction, stratify=target, random_state=self.seed
        )
        self.train_indices = torch.from_numpy(np.sort(train_idx))
        self.val_indices = torch.from_numpy(np.sort(val_idx))

        mean, std = DIGITS_MEAN[0], DIGITS_STD[0]
        normalized = (images - mean) / std
        if self.strong_aug:
            weak, strong = self._views()
            raw = TensorDataset(images[self.train_indices], labels[self.train_indices])
            self.train_set = TwoViewDataset(raw, weak, strong)
        else:
            self.train_set = TensorDataset(normalized[self.train_indices], labels[self.train_indices])
        self.test_set = TensorDataset(normalized[self.val_indices], labels[self.val_indices])
        self.val_set = self.test_set
