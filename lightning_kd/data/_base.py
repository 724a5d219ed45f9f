"""The common LightningDataModule base class: loader settings, the dataset description, and the choice between
the CPU ``DataLoader`` path and the device-resident training path.

Private module: the public names live in :mod:`lightning_kd.data`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from typing_extensions import override

from lightning_kd._validation import check_non_negative_int, check_positive_int
from lightning_kd.data._common import tuple_collate
from lightning_kd.data._device import DeviceResidentLoader
from lightning_kd.data._views import AugmentationSpace, AugmentedImageDataset

__all__ = ["KDDataModuleBase"]

DeviceResident = bool | Literal["auto"]


class KDDataModuleBase(LightningDataModule):
    """Common base of the ``lightning_kd`` DataModules (not meant to be instantiated directly).

    Holds the loader settings and the read-only dataset description (``num_classes``, ``in_chans``,
    ``image_size``, ``mean``, ``std``), and builds the four dataloaders from ``train_set``/``val_set``/
    ``test_set``, which subclasses fill in :meth:`setup`. ``predict_dataloader`` serves the test split.

    Subclasses with an in-memory training split implement ``_augmentation`` (the training augmentation as an
    :class:`AugmentationSpace`, or why it is not one) and ``_train_tensors`` (the images before normalisation);
    they get the device-resident training path (``device_resident``) and explicit views (``return_views``).
    """

    def __init__(
        self,
        *,
        batch_size: int,
        num_workers: int,
        pin_memory: bool | None,
        num_classes: int | None,
        in_chans: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        drop_last: bool = False,
        device_resident: DeviceResident = False,
        return_views: bool = False,
        channels_last: bool = False,
        shuffle_seed: int | None = None,
    ) -> None:
        super().__init__()
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_workers = check_non_negative_int("num_workers", num_workers)
        self.pin_memory = pin_memory
        self.drop_last = bool(drop_last)
        if not (isinstance(device_resident, bool) or device_resident == "auto"):
            raise ValueError(
                f"Expected argument `device_resident` to be True, False or 'auto', but got {device_resident!r}."
            )
        self.device_resident: DeviceResident = device_resident
        self.return_views = bool(return_views)
        self.channels_last = bool(channels_last)
        self.shuffle_seed = None if shuffle_seed is None else check_non_negative_int("shuffle_seed", shuffle_seed)
        self._num_classes = num_classes
        self._in_chans = in_chans
        self._image_size = image_size
        self._mean = tuple(float(m) for m in mean)
        self._std = tuple(float(s) for s in std)
        self.train_set: Dataset[Any] | None = None
        self.val_set: Dataset[Any] | None = None
        self.test_set: Dataset[Any] | None = None

    # Read-only dataset description -------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes (labels are ``0 .. num_classes - 1``)."""
        if self._num_classes is None:  # pragma: no cover - subclasses without a fixed count override this
            raise RuntimeError(f"{type(self).__name__}.num_classes is not known before `setup()`.")
        return self._num_classes

    @property
    def in_chans(self) -> int:
        """Number of image channels ``C`` of the batches."""
        return self._in_chans

    @property
    def image_size(self) -> int:
        """Side ``H == W`` of the (square) images in the batches."""
        return self._image_size

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean subtracted by the normalization (on the ``[0, 1]`` pixel scale)."""
        return self._mean

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation divided out by the normalization (``[0, 1]`` pixel scale)."""
        return self._std

    @property
    def augmentation_space(self) -> AugmentationSpace | None:
        """The training augmentation as a finite crop-and-flip space, or ``None`` when it is not one (e.g.
        ``strong_aug=True``, ImageNet's random resized crops, a subclass's own transforms)."""
        space = self._augmentation()
        return space if isinstance(space, AugmentationSpace) else None

    def train_data_sha256(self) -> str:
        """The identity of the training split: the SHA-256 of its images (before normalisation) and labels.

        A teacher-logit cache records it, and refuses data whose images, labels or order differ. Needs
        :meth:`setup` first and an in-memory training split (CIFAR-100, Fashion-MNIST, digits).

        Raises:
            ValueError: For a DataModule without an in-memory training split.
        """
        if isinstance(self._augmentation(), str) and type(self)._train_tensors is KDDataModuleBase._train_tensors:
            raise ValueError(f"Expected a DataModule with an in-memory training split, but got {type(self).__name__}.")
        images, labels = self._train_tensors()
        digest = hashlib.sha256()
        for tensor in (images, labels):
            value = tensor.detach().cpu().contiguous()
            digest.update(f"{value.dtype}|{tuple(value.shape)}|".encode())
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    # Hooks of the subclasses with an in-memory training split ----------------------------------------
    def _augmentation(self) -> AugmentationSpace | str:
        """The training augmentation as a space, or a sentence saying why it is not one."""
        return f"{type(self).__name__} has no device-resident training path"

    def _train_tensors(self) -> tuple[Tensor, Tensor]:
        """The training images ``(N, C, H, W)`` before normalisation (uint8, or float in ``[0, 1]``) and labels."""
        raise NotImplementedError  # pragma: no cover - only called when `_augmentation` returns a space

    def _check_view_options(self) -> None:
        """Refuse ``device_resident=True`` / ``return_views=True`` where the augmentation is not a crop-and-flip
        space; subclasses call this at the end of ``__init__``, so the error comes before any training."""
        reason = self._augmentation()
        if not isinstance(reason, str):
            return
        for name, value in (("device_resident", self.device_resident), ("return_views", self.return_views)):
            if value is True:
                allowed = "False or 'auto'" if name == "device_resident" else "False"
                raise ValueError(
                    f"Expected argument `{name}` to be {allowed} here, but got True: {reason}, so it cannot be "
                    f"drawn as explicit crops and flips. Pass `{name}=False` (the CPU DataLoader path)."
                )

    # Dataloaders -------------------------------------------------------------------------------------
    def uses_device_path(self) -> bool:
        """Whether :meth:`train_dataloader` returns the device-resident loader: ``device_resident=True``, or
        ``"auto"`` with a Trainer whose root device is CUDA and a crop-and-flip training augmentation."""
        if self.device_resident == "auto":
            trainer = self.trainer
            on_cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
            return on_cuda and self.augmentation_space is not None
        return bool(self.device_resident)

    def _loader(self, dataset: Dataset[Any] | None, split: str, shuffle: bool, drop_last: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError(
                f"{type(self).__name__}: the {split} split is not set up; call `setup()` first "
                "(the Trainer does this for you)."
            )
        pin = torch.cuda.is_available() if self.pin_memory is None else self.pin_memory
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=pin,
            drop_last=drop_last,
            persistent_workers=self.num_workers > 0,
            collate_fn=tuple_collate,
        )

    def _device_loader(self) -> DeviceResidentLoader:
        space = self._augmentation()
        assert isinstance(space, AugmentationSpace)  # `_check_view_options` refused the others at construction
        trainer = self.trainer
        seed = self.shuffle_seed if self.shuffle_seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        return DeviceResidentLoader(
            *self._train_tensors(),
            batch_size=self.batch_size,
            mean=self.mean,
            std=self.std,
            space=space,
            seed=seed,
            device=trainer.strategy.root_device if trainer is not None else "cpu",
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            drop_last=self.drop_last,
            channels_last=self.channels_last,
            return_views=self.return_views,
            epoch_fn=(lambda: trainer.current_epoch) if trainer is not None else None,
        )

    @override
    def train_dataloader(self) -> DataLoader | DeviceResidentLoader:
        """Shuffled training batches: the device-resident loader when :meth:`uses_device_path`, else a
        ``DataLoader`` (augmented; two views if ``strong_aug``; with the views if ``return_views``)."""
        if self.train_set is None:
            return self._loader(None, "train", shuffle=True)
        if self.uses_device_path():
            return self._device_loader()
        dataset = self.train_set
        if self.return_views:
            space = self._augmentation()
            assert isinstance(space, AugmentationSpace)  # `_check_view_options` refused the others
            dataset = AugmentedImageDataset(*self._train_tensors(), space, self.mean, self.std)
        return self._loader(dataset, "train", shuffle=True, drop_last=self.drop_last)

    @override
    def val_dataloader(self) -> DataLoader:
        """Loader over the validation split, in a fixed order."""
        return self._loader(self.val_set, "validation", shuffle=False)

    @override
    def test_dataloader(self) -> DataLoader:
        """Loader over the test split, in a fixed order."""
        return self._loader(self.test_set, "test", shuffle=False)

    @override
    def predict_dataloader(self) -> DataLoader:
        """Loader over the test split (same as :meth:`test_dataloader`)."""
        return self._loader(self.test_set, "test", shuffle=False)
