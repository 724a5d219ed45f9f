"""Fashion-MNIST DataModule reading the four standard IDX ``.gz`` files into memory."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision import transforms as T
from typing_extensions import override

from lightning_kd._validation import check_fraction, check_non_negative_int
from lightning_kd.data._base import DeviceResident, KDDataModuleBase
from lightning_kd.data._common import TensorImageDataset, check_directory, missing_files_error, stratified_subset
from lightning_kd.data._views import AugmentationSpace

__all__ = ["FashionMNISTDataModule", "read_idx_gz"]

FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)
DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"  # Debian package `dataset-fashion-mnist`
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049  # 0x00000803: uint8, 3 dims; 0x00000801: uint8, 1 dim


def read_idx_gz(path: str | Path, expected_magic: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes (the MNIST/Fashion-MNIST format).

    The IDX header is a big-endian int32 magic number ``0x0000 08 NN`` (``08`` = uint8 data, ``NN`` =
    number of dimensions), then ``NN`` big-endian int32 sizes, then the data. It is parsed here with
    :mod:`gzip` and NumPy rather than with torchvision's ``read_image_file``/``read_label_file``, which
    need the files decompressed on disk first (the Debian package ships only the ``.gz``) and give less
    specific errors.

    Args:
        path: The ``*-ubyte.gz`` file.
        expected_magic: ``2051`` for images ``(N, rows, cols)``, ``2049`` for labels ``(N,)``.

    Returns:
        A read-only ``uint8`` array shaped as the header says.

    Raises:
        ValueError: If the magic number or the data length does not match the header.

    Example:
        >>> import gzip, struct, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "labels.gz")
        >>> with gzip.open(path, "wb") as f:
        ...     _ = f.write(struct.pack(">ii", 2049, 3) + bytes([7, 0, 9]))
        >>> read_idx_gz(path, 2049).tolist()
        [7, 0, 9]
    """
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise ValueError(f"'{path}' is not an IDX file: only {len(raw)} bytes.")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"Expected IDX magic number {expected_magic} in '{path}', but got {magic}.")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(dims)):
        raise ValueError(
            f"Expected {int(np.prod(dims))} data bytes in '{path}' for shape {dims}, but got {len(raw) - header}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


class FashionMNISTDataModule(KDDataModuleBase):
    """Fashion-MNIST (10 classes, 28x28 grayscale; 60,000 train / 10,000 test images), held in memory.

    Reads the four standard IDX files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` from ``root`` (no torchvision
    folder layout, no download). The images stay ``uint8`` in memory (47 MB) and are converted to
    ``[0, 1]`` and normalized per sample. The test split is also the validation and predict split.

    Training augmentation is off by default (reproducible, and unnecessary for short runs); with
    ``augment=True`` the training images get ``RandomCrop(28, padding=2)`` (black padding), the usual
    shift augmentation for 28x28 digits/clothes (no flips).

    Device-resident path (``device_resident``; on by default when the Trainer's root device is CUDA): the
    uint8 training images live on the device and each batch is cropped (with ``augment``) and normalised there;
    see :class:`DeviceResidentLoader`.

    Batches: ``(x, y)`` with ``x`` float32 ``(B, 1, 28, 28)``, ``y`` int64 ``(B,)``; training batches are
    ``(x, y, views)`` with ``return_views=True``.

    Args:
        root: Directory with the four ``.gz`` files; ``None`` means ``/usr/share/datasets/fashion-mnist``,
            where the Debian package ``dataset-fashion-mnist`` installs them.
        batch_size: Samples per batch for every loader.
        num_workers: DataLoader worker processes (0 is fine: the data is in memory).
        pin_memory: Pin host memory for faster GPU transfer; ``None`` means "if CUDA is available".
        augment: Apply ``RandomCrop(28, padding=2)`` to training images.
        device_resident: ``True``/``False`` for the device-resident training path or the CPU ``DataLoader``;
            ``"auto"``: on when the Trainer's root device is CUDA.
        return_views: Training batches are ``(x, y, views)`` with the :class:`AugmentationViews` of each sample.
        drop_last: Drop the last incomplete training batch (fixed shapes, what ``torch.compile`` wants).
        channels_last: Device path: training batches in the channels-last memory format.
        shuffle_seed: Seed of the device path's permutations and augmentation draws; ``None`` takes
            ``seed_everything``'s seed (``PL_GLOBAL_SEED``), else 0.
        train_fraction: Train on this fraction of the training images, a stratified subset (the same for a
            given ``subset_seed``), e.g. ``0.1`` for a reduced transfer set; 1 for all of them.
        subset_seed: Seed of the stratified subset.

    Raises:
        ValueError: On a bad argument, or if a file is not a valid IDX file.
        FileNotFoundError: From ``prepare_data``/``setup`` when any of the four files is missing.

    Example:
        >>> dm = FashionMNISTDataModule(batch_size=32)
        >>> dm.num_classes, dm.in_chans, dm.image_size, dm.mean, dm.std
        (10, 1, 28, (0.286,), (0.353,))
    """

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        augment: bool = False,
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
            image_size=28,
            mean=FASHION_MNIST_MEAN,
            std=FASHION_MNIST_STD,
            drop_last=drop_last,
            device_resident=device_resident,
            return_views=return_views,
            channels_last=channels_last,
            shuffle_seed=shuffle_seed,
        )
        self.root = check_directory("root", DEFAULT_ROOT if root is None else root)
        self.augment = bool(augment)
        self.train_fraction = 1.0 if train_fraction == 1 else check_fraction("train_fraction", train_fraction)
        self.subset_seed = check_non_negative_int("subset_seed", subset_seed)
        self._check_view_options()
        self.save_hyperparameters()

    @override
    def _augmentation(self) -> AugmentationSpace:
        return AugmentationSpace(padding=2 if self.augment else 0, flip=False)

    @override
    def _train_tensors(self) -> tuple[Tensor, Tensor]:
        if not isinstance(self.train_set, TensorImageDataset):
            raise RuntimeError(f"{type(self).__name__}: the train split is not set up; call `setup()` first.")
        return self.train_set.images, self.train_set.labels

    def _require_files(self) -> None:
        missing = [name for pair in _FILES.values() for name in pair if not (self.root / name).is_file()]
        if missing:
            raise missing_files_error(
                "Fashion-MNIST",
                self.root,
                missing,
                "Install the Debian package `dataset-fashion-mnist` (`apt install dataset-fashion-mnist`, "
                f"files in {DEFAULT_ROOT}, the default `root`), or download the four .gz files from "
                "https://github.com/zalandoresearch/fashion-mnist and pass their directory as `root`.",
            )

    def _load(self, split: str) -> tuple[Tensor, Tensor]:
        images_file, labels_file = _FILES[split]
        images = read_idx_gz(self.root / images_file, _IMAGE_MAGIC)
        labels = read_idx_gz(self.root / labels_file, _LABEL_MAGIC)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise ValueError(
                f"Expected N 28x28 images and N labels in '{self.root}' ({split}), but got images of shape "
                f"{images.shape} and {labels.shape[0]} labels."
            )
        if labels.size and int(labels.max()) >= 10:
            raise ValueError(f"Expected labels in 0..9 in '{self.root / labels_file}', got {int(labels.max())}.")
        # np.frombuffer arrays are read-only: copy into torch-owned memory.
        return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    def _transform(self, train: bool) -> T.Compose:
        ops: list[object] = [T.RandomCrop(28, padding=2)] if train and self.augment else []
        ops += [T.ConvertImageDtype(torch.float32), T.Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)]
        return T.Compose(ops)

    @override
    def prepare_data(self) -> None:
        """Check that the four files are present (nothing is downloaded)."""
        self._require_files()

    @override
    def setup(self, stage: str | None = None) -> None:
        """Load the splits needed by ``stage`` (``"fit"``, ``"validate"``, ``"test"``, ``"predict"``)."""
        self._require_files()
        if stage in (None, "fit") and self.train_set is None:
            images, labels = stratified_subset(*self._load("train"), self.train_fraction, self.subset_seed)
            self.train_set = TensorImageDataset(images, labels, transform=self._transform(train=True))
        if self.test_set is None:
            self.test_set = TensorImageDataset(*self._load("test"), transform=self._transform(train=False))
        self.val_set = self.test_set
