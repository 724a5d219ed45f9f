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
from typing_extensions import override

from lightning_kd._validation import check_fraction, check_min_int, check_non_negative_int
from lightning_kd.data._base import DeviceResident, KDDataModuleBase
from lightning_kd.data._common import TwoViewDataset, stratified_subset
from lightning_kd.data._transforms import AddGaussianNoise, Cutout
from lightning_kd.data._views import AugmentationSpace

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

    Device-resident path (``device_resident``; on by default when the Trainer's root device is CUDA, and
    not with ``strong_aug``): the float training images in ``[0, 1]`` live on the device and each batch is
    shuffled and normalised there; see :class:`DeviceResidentLoader`.

    Batches: ``(x, y)`` with ``x`` float32 ``(B, 1, image_size, image_size)``, ``y`` int64 ``(B,)``;
    training batches with ``strong_aug=True`` are ``((x_weak, x_strong), y)``, with ``return_views=True``
    ``(x, y, views)`` (no augmentation: the views hold the index, offsets 0 and no flip).

    Args:
        batch_size: Samples per batch for every loader.
        val_fraction: Fraction of the images held out (stratified by class), in ``(0, 1)``.
        seed: Seed of the split; the same seed gives the same split (whatever ``seed_everything`` says).
        image_size: Side of the images in the batches, >= 8 (8 = native resolution).
        strong_aug: Return a weak and a strong view of each training image.
        num_workers: DataLoader worker processes (0 is best: the data is in memory).
        pin_memory: Pin host memory for faster GPU transfer; ``None`` means "if CUDA is available".
        device_resident: ``True``/``False`` for the device-resident training path or the CPU ``DataLoader``;
            ``"auto"``: on when the Trainer's root device is CUDA and ``strong_aug`` is off.
        return_views: Training batches are ``(x, y, views)`` with the :class:`AugmentationViews` of each sample.
        drop_last: Drop the last incomplete training batch (fixed shapes, what ``torch.compile`` wants).
        channels_last: Device path: training batches in the channels-last memory format.
        shuffle_seed: Seed of the device path's permutations; ``None`` takes ``seed_everything``'s seed
            (``PL_GLOBAL_SEED``), else 0.
        train_fraction: Train on this stratified fraction of the training split (the transfer set; the demo's
            students see 0.25); 1 for all of it. The validation split is not changed.
        subset_seed: Seed of that stratified subset.

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
        device_resident: DeviceResident = "auto",
        return_views: bool = False,
        drop_last: bool = False,
        channels_last: bool = False,
        shuffle_seed: int | None = None,
        train_fraction: float = 1.0,
        subset_seed: int = 0,
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
            drop_last=drop_last,
            device_resident=device_resident,
            return_views=return_views,
            channels_last=channels_last,
            shuffle_seed=shuffle_seed,
        )
        self.val_fraction = check_fraction("val_fraction", val_fraction)
        self.seed = check_non_negative_int("seed", seed)
        self.strong_aug = bool(strong_aug)
        self.train_fraction = 1.0 if train_fraction == 1 else check_fraction("train_fraction", train_fraction)
        self.subset_seed = check_non_negative_int("subset_seed", subset_seed)
        self.train_indices: Tensor | None = None
        self.val_indices: Tensor | None = None
        self._train_raw: tuple[Tensor, Tensor] | None = None
        self._check_view_options()
        self.save_hyperparameters()

    @override
    def _augmentation(self) -> AugmentationSpace | str:
        if self.strong_aug:
            return "`strong_aug=True` adds a strong view (noise, Cutout), which runs on the CPU path only"
        return AugmentationSpace(padding=0, flip=False)

    @override
    def _train_tensors(self) -> tuple[Tensor, Tensor]:
        if self._train_raw is None:
            raise RuntimeError(f"{type(self).__name__}: the train split is not set up; call `setup()` first.")
        return self._train_raw

    def _views(self) -> tuple[T.Compose, T.Compose]:
        size = self.image_size
        shift = T.RandomCrop(size, padding=max(1, size // 8), fill=0)
        normalize = T.Normalize(DIGITS_MEAN, DIGITS_STD)
        weak = T.Compose([shift, normalize])
        strong = T.Compose([shift, AddGaussianNoise(_NOISE_STD), normalize, Cutout(size=size // 2)])
        return weak, strong

    @override
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
        if self.train_fraction < 1:  # a stratified transfer set of the training split (the demo's, at 0.25)
            self.train_indices, _ = stratified_subset(
                self.train_indices, labels[self.train_indices], self.train_fraction, self.subset_seed
            )

        self._train_raw = (images[self.train_indices], labels[self.train_indices])
        mean, std = DIGITS_MEAN[0], DIGITS_STD[0]
        normalized = (images - mean) / std
        if self.strong_aug:
            weak, strong = self._views()
            self.train_set = TwoViewDataset(TensorDataset(*self._train_raw), weak, strong)
        else:
            self.train_set = TensorDataset(normalized[self.train_indices], labels[self.train_indices])
        self.test_set = TensorDataset(normalized[self.val_indices], labels[self.val_indices])
        self.val_set = self.test_set
