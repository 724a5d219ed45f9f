"""CIFAR-100 DataModule on torchvision's ``cifar-100-python`` files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from torchvision import transforms as T
from torchvision.datasets import CIFAR100

from lightning_kd.data._common import (
    KDDataModuleBase,
    TwoViewDataset,
    check_directory,
    missing_files_error,
)
from lightning_kd.data._transforms import Cutout

__all__ = ["CIFAR100DataModule"]

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
_FOLDER = "cifar-100-python"
_FILES = ("train", "test", "meta")


class _CIFAR100FilesOnly(CIFAR100):
    """torchvision's :class:`~torchvision.datasets.CIFAR100` that checks the files exist, not their md5.

    torchvision verifies the md5 of ``train``/``test`` in ``_check_integrity`` and of ``meta`` in
    ``_load_meta`` (through the module-level ``check_integrity``). Files that are valid but not
    byte-identical to the official archive (re-pickled copies, the tiny fixtures of the tests) would be
    rejected, so ``verify_checksums=False`` uses this subclass: both hooks only test for existence, and
    everything else (pickle parsing, ``HWC`` reshaping, PIL conversion) is torchvision's own code.
    """

    def _check_integrity(self) -> bool:
        folder = os.path.join(self.root, self.base_folder)
        return all(os.path.isfile(os.path.join(folder, name)) for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        # Same as torchvision's CIFAR10._load_meta, without the md5 check.
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        if not os.path.isfile(path):
            raise RuntimeError(f"Dataset metadata file not found: {path}")
        with open(path, "rb") as infile:
            data = pickle.load(infile, encoding="latin1")
        self.classes = data[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def _train_transform() -> T.Compose:
    return T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(CIFAR100_MEAN, CIFAR100_STD),
        ]
    )


def _strong_transform() -> T.Compose:
    return T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.RandAugment(num_ops=2, magnitude=10),
            T.ToTensor(),
            T.Normalize(CIFAR100_MEAN, CIFAR100_STD),
            Cutout(size=16),
        ]
    )


def _test_transform() -> T.Compose:
    return T.Compose([T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)])


class CIFAR100DataModule(KDDataModuleBase):
    """CIFAR-100 (100 classes, 32x32 RGB; 50,000 train / 10,000 test images).

    Reads torchvision's layout ``root/cifar-100-python/{train,test,meta}`` (the extracted
    ``cifar-100-python.tar.gz``). As in the KD literature, the validation split *is* the test split;
    ``predict_dataloader`` serves it too.

    Transforms: train ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``,
    ``Normalize(mean, std)``; val/test ``ToTensor`` + ``Normalize``. With ``strong_aug=True`` (MLKD) the
    training set yields a weak view (the train transform) and a strong view (the same crop/flip, then
    ``RandAugment(num_ops=2, magnitude=10)``, ``ToTensor``, ``Normalize`` and a 16x16
    :class:`~lightning_kd.data.Cutout`), each drawn independently from the original image.

    Batches: ``(x, y)`` with ``x`` float32 ``(B, 3, 32, 32)`` and ``y`` int64 ``(B,)``; training batches
    with ``strong_aug=True`` are ``((x_weak, x_strong), y)``.

    Args:
        root: Directory containing (or to receive, with ``download=True``) ``cifar-100-python/``.
        download: Let torchvision download and extract the archive into ``root`` in ``prepare_data``
            (needs internet; skipped if the files are already there).
        batch_size: Samples per batch for every loader.
        num_workers: DataLoader worker processes.
        pin_memory: Pin host memory for faster GPU transfer; ``None`` means "if CUDA is available".
        strong_aug: Return a weak and a strong view of each training image (for MLKD).
        verify_checksums: Check the files' md5 against the official archive (torchvision's check).
            ``False`` only checks that they exist, for re-packed or synthetic copies.

    Raises:
        ValueError: On a bad argument, e.g. ``batch_size < 1`` or a ``root`` that is a file.
        FileNotFoundError: From ``prepare_data``/``setup`` when the files are missing and not downloaded.

    Example:
        >>> dm = CIFAR100DataModule(root="data", batch_size=128)
        >>> dm.num_classes, dm.in_chans, dm.image_size
        (100, 3, 32)
        >>> dm.mean, dm.std
        ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))
    """

    def __init__(
        self,
        root: str,
        download: bool = False,
        batch_size: int = 64,
        num_workers: int = 4,
        pin_memory: bool | None = None,
        strong_aug: bool = False,
        verify_checksums: bool = True,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            num_classes=100,
            in_chans=3,
            image_size=32,
            mean=CIFAR100_MEAN,
            std=CIFAR100_STD,
        )
        self.root = check_directory("root", root)
        self.download = bool(download)
        self.strong_aug = bool(strong_aug)
        self.verify_checksums = bool(verify_checksums)
        self.save_hyperparameters()

    @property
    def data_dir(self) -> Path:
        """The folder holding the pickles: ``root/cifar-100-python`` (absolute)."""
        return self.root / _FOLDER

    def _require_files(self) -> None:
        missing = [name for name in _FILES if not (self.data_dir / name).is_file()]
        if missing:
            raise missing_files_error(
                "CIFAR-100",
                self.data_dir,
                missing,
                "Pass `download=True` on a machine with internet access, or download "
                f"{CIFAR100_URL} and extract it into '{self.root}' (it unpacks to '{_FOLDER}/').",
            )

    def _dataset(self, train: bool, transform: Any) -> CIFAR100:
        cls = CIFAR100 if self.verify_checksums else _CIFAR100FilesOnly
        try:
            return cls(str(self.root), train=train, transform=transform, download=False)
        except RuntimeError as err:  # torchvision's md5 mismatch ("not found or corrupted")
            raise RuntimeError(
                f"CIFAR-100 files in '{self.data_dir}' failed torchvision's md5 check ({err}). Re-extract "
                f"{CIFAR100_URL}, or pass `verify_checksums=False` to accept files that are not "
                "byte-identical to the official archive."
            ) from err

    def prepare_data(self) -> None:
        """Download the archive if ``download=True``; then check that the files are present."""
        if self.download:
            cls = CIFAR100 if self.verify_checksums else _CIFAR100FilesOnly
            cls(str(self.root), train=False, download=True)  # fetches and extracts the whole archive
        self._require_files()

    def setup(self, stage: str | None = None) -> None:
        """Load the splits needed by ``stage`` (``"fit"``, ``"validate"``, ``"test"``, ``"predict"``)."""
        self._require_files()
        if stage in (None, "fit") and self.train_set is None:
            if self.strong_aug:
                raw = self._dataset(train=True, transform=None)
                self.train_set = TwoViewDataset(raw, _train_transform(), _strong_transform())
            else:
                self.train_set = self._dataset(train=True, transform=_train_transform())
        if self.test_set is None:  # every stage needs the test split (it is also the validation split)
            self.test_set = self._dataset(train=False, transform=_test_transform())
        self.val_set = self.test_set
