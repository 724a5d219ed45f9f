"""CIFAR-100 DataModule on the ``cifar-100-python`` pickles (torchvision's layout)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.datasets import CIFAR100
from torchvision.datasets.utils import check_integrity, download_and_extract_archive
from typing_extensions import override

from lightning_kd.data._base import DeviceResident, KDDataModuleBase
from lightning_kd.data._common import TwoViewDataset, check_directory, missing_files_error
from lightning_kd.data._transforms import Cutout
from lightning_kd.data._views import AugmentationSpace

__all__ = ["CIFAR100DataModule"]

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
CIFAR100_URL = CIFAR100.url
_FOLDER = CIFAR100.base_folder  # "cifar-100-python"
_FILES = ("train", "test", "meta")
_SPACE = AugmentationSpace(padding=4, flip=True)  # the space of the standard `train_transform`


def _official_md5(name: str) -> str:
    """The md5 of an official file, as torchvision lists it (public class attributes of its ``CIFAR100``)."""
    md5 = {**dict(CIFAR100.train_list), **dict(CIFAR100.test_list), CIFAR100.meta["filename"]: CIFAR100.meta["md5"]}
    return str(md5[name])


def read_cifar_split(path: Path) -> tuple[np.ndarray, list[int]]:
    """Read one CIFAR-100 pickle (``train`` or ``test``) into ``(N, 32, 32, 3)`` uint8 images and fine labels.

    What torchvision's :class:`~torchvision.datasets.CIFAR100` does on loading (``latin1`` pickle, ``data`` rows
    of 3072 bytes reshaped to ``CHW`` and transposed to ``HWC``, ``fine_labels``), read here directly so the
    uint8 array is at hand and the md5 check is optional without overriding torchvision's private methods.
    """
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = [int(v) for v in entry["fine_labels"]]
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Expected a CIFAR-100 pickle with 'data' and 'fine_labels': '{path}' ({err!r}).") from err
    if len(labels) != data.shape[0]:
        raise ValueError(f"Expected one label per image in '{path}', but got {data.shape[0]} images and {len(labels)}.")
    return data, labels


class _CIFARImages(Dataset[tuple[Any, int]]):
    """``(HWC uint8 image as PIL, label)`` pairs through ``transform``: torchvision's ``CIFAR100.__getitem__``."""

    def __init__(self, data: np.ndarray, labels: list[int], transform: Callable[[Any], Any] | None) -> None:
        self.data, self.labels, self.transform = data, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image: Any = Image.fromarray(self.data[index])
        return (image if self.transform is None else self.transform(image)), self.labels[index]


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


class CIFAR100DataModule(KDDataModuleBase):
    """CIFAR-100 (100 classes, 32x32 RGB; 50,000 train / 10,000 test images).

    Reads torchvision's layout ``root/cifar-100-python/{train,test,meta}`` (the extracted
    ``cifar-100-python.tar.gz``). As in the KD literature, the validation split *is* the test split;
    ``predict_dataloader`` serves it too.

    Transforms (CPU path): :meth:`train_transform` ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``,
    ``ToTensor``, ``Normalize(mean, std)``; :meth:`eval_transform` ``ToTensor`` + ``Normalize``. A subclass may
    override either. With ``strong_aug=True`` (MLKD) the training set yields a weak view (the train transform)
    and a strong view (the same crop/flip, then ``RandAugment(num_ops=2, magnitude=10)``, ``ToTensor``,
    ``Normalize`` and a 16x16 :class:`~lightning_kd.data.Cutout`), each drawn independently from the original;
    with ``strong_view="standard"`` the strong view is a second, independent draw of the train transform (the
    "same-schedule" MLKD comparison with standard augmentation).

    Device-resident path (``device_resident``; on by default when the Trainer's root device is CUDA): the
    50,000 uint8 training images (150 MB) live on the device and each batch is cropped, flipped and normalised
    there, with the same crop/flip distribution as :meth:`train_transform`; see :class:`DeviceResidentLoader`.

    Batches: ``(x, y)`` with ``x`` float32 ``(B, 3, 32, 32)`` and ``y`` int64 ``(B,)``; training batches are
    ``((x_weak, x_strong), y)`` with ``strong_aug=True``, and ``(x, y, views)`` with ``return_views=True``.

    Args:
        root: Directory containing (or to receive, with ``download=True``) ``cifar-100-python/``.
        download: Download and extract the archive into ``root`` in ``prepare_data`` if the files are missing
            (needs internet).
        batch_size: Samples per batch for every loader.
        num_workers: DataLoader worker processes.
        pin_memory: Pin host memory for faster GPU transfer; ``None`` means "if CUDA is available".
        strong_aug: Return a weak and a strong view of each training image (for MLKD; CPU path only).
        strong_view: The strong view with ``strong_aug``: ``"randaugment"`` (MLKD's: RandAugment and Cutout after
            the crop and flip) or ``"standard"`` (another draw of the standard crop and flip).
        verify_checksums: Check the files' md5 against the official archive. ``False`` only checks that they
            exist, for re-packed or synthetic copies.
        device_resident: ``True``/``False`` for the device-resident training path or the CPU ``DataLoader``;
            ``"auto"``: on when the Trainer's root device is CUDA (and the augmentation is the standard one).
        return_views: Training batches are ``(x, y, views)`` with the :class:`AugmentationViews` of each sample.
        drop_last: Drop the last incomplete training batch (fixed shapes, what ``torch.compile`` wants).
        channels_last: Device path: training batches in the channels-last memory format.
        shuffle_seed: Seed of the device path's permutations and augmentation draws; ``None`` takes
            ``seed_everything``'s seed (``PL_GLOBAL_SEED``), else 0.

    Raises:
        ValueError: On a bad argument, e.g. ``batch_size < 1``, a ``root`` that is a file, or
            ``device_resident=True`` with ``strong_aug=True``.
        FileNotFoundError: From ``prepare_data``/``setup`` when the files are missing and not downloaded.

    Example:
        >>> dm = CIFAR100DataModule(root="data", batch_size=128)
        >>> dm.num_classes, dm.in_chans, dm.image_size
        (100, 3, 32)
        >>> dm.mean, dm.std
        ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))
        >>> dm.augmentation_space.num_views
        162
    """

    def __init__(
        self,
        root: str,
        download: bool = False,
        batch_size: int = 64,
        num_workers: int = 4,
        pin_memory: bool | None = None,
        strong_aug: bool = False,
        strong_view: Literal["randaugment", "standard"] = "randaugment",
        verify_checksums: bool = True,
        device_resident: DeviceResident = "auto",
        return_views: bool = False,
        drop_last: bool = False,
        channels_last: bool = False,
        shuffle_seed: int | None = None,
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
            drop_last=drop_last,
            device_resident=device_resident,
            return_views=return_views,
            channels_last=channels_last,
            shuffle_seed=shuffle_seed,
        )
        self.root = check_directory("root", root)
        self.download = bool(download)
        self.strong_aug = bool(strong_aug)
        if strong_view not in ("randaugment", "standard"):
            raise ValueError(
                f"Expected argument `strong_view` to be 'randaugment' or 'standard', but got {strong_view!r}."
            )
        self.strong_view = strong_view
        self.verify_checksums = bool(verify_checksums)
        self._train_data: tuple[np.ndarray, list[int]] | None = None
        self._check_view_options()
        self.save_hyperparameters()

    @property
    def data_dir(self) -> Path:
        """The folder holding the pickles: ``root/cifar-100-python`` (absolute)."""
        return self.root / _FOLDER

    def train_transform(self) -> Callable[[Any], Any]:
        """The CPU path's training transform of a PIL image (override to change it; the device path then refuses)."""
        return T.Compose(
            [
                T.RandomCrop(32, padding=4),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(CIFAR100_MEAN, CIFAR100_STD),
            ]
        )

    def eval_transform(self) -> Callable[[Any], Any]:
        """The transform of the validation/test images (a PIL image to a normalised tensor)."""
        return T.Compose([T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)])

    @override
    def _augmentation(self) -> AugmentationSpace | str:
        if self.strong_aug:
            return "`strong_aug=True` adds MLKD's strong view, which runs on the CPU path only"
        if type(self).train_transform is not CIFAR100DataModule.train_transform:
            return f"{type(self).__name__} overrides `train_transform()`"
        return _SPACE

    @override
    def _train_tensors(self) -> tuple[Tensor, Tensor]:
        if self._train_data is None:
            raise RuntimeError(f"{type(self).__name__}: the train split is not set up; call `setup()` first.")
        data, labels = self._train_data
        return torch.from_numpy(data).permute(0, 3, 1, 2), torch.tensor(labels, dtype=torch.int64)

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

    def _check_md5(self, name: str) -> None:
        path, md5 = self.data_dir / name, _official_md5(name)
        if self.verify_checksums and not check_integrity(str(path), md5):
            raise RuntimeError(
                f"CIFAR-100 file '{path}' failed the md5 check (expected {md5}). Re-extract {CIFAR100_URL}, "
                "or pass `verify_checksums=False` to accept files that are not byte-identical to the official archive."
            )

    def _load(self, name: str) -> tuple[np.ndarray, list[int]]:
        self._check_md5(name)
        return read_cifar_split(self.data_dir / name)

    @override
    def prepare_data(self) -> None:
        """Download and extract the archive if ``download=True`` and files are missing; then check they are there."""
        if self.download and not all((self.data_dir / name).is_file() for name in _FILES):
            download_and_extract_archive(CIFAR100_URL, str(self.root), filename=CIFAR100.filename, md5=CIFAR100.tgz_md5)
        self._require_files()

    @override
    def setup(self, stage: str | None = None) -> None:
        """Load the splits needed by ``stage`` (``"fit"``, ``"validate"``, ``"test"``, ``"predict"``)."""
        self._require_files()
        self._check_md5("meta")
        if stage in (None, "fit") and self.train_set is None:
            self._train_data = data, labels = self._load("train")
            if self.strong_aug:
                raw = _CIFARImages(data, labels, None)
                strong = _strong_transform() if self.strong_view == "randaugment" else self.train_transform()
                self.train_set = TwoViewDataset(raw, self.train_transform(), strong)
            else:
                self.train_set = _CIFARImages(data, labels, self.train_transform())
        if self.test_set is None:  # every stage needs the test split (it is also the validation split)
            self.test_set = _CIFARImages(*self._load("test"), self.eval_transform())
        self.val_set = self.test_set
