"""Shared pieces of the DataModules: argument checks, the "missing files" error, batch collation,
the two-view dataset wrapper and the common LightningDataModule base class.

Private module: the public names live in :mod:`lightning_kd.data`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

__all__ = [
    "KDDataModuleBase",
    "TensorImageDataset",
    "TwoViewDataset",
    "check_directory",
    "check_fraction",
    "check_min_int",
    "check_non_negative_int",
    "check_positive_int",
    "missing_files_error",
    "tuple_collate",
]


# --------------------------------------------------------------------------------------------------------
# Argument checks. All raise ``ValueError("Expected argument `name` to be ..., but got value.")``.
# --------------------------------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    # ``bool`` is a subclass of ``int``; ``batch_size=True`` is a mistake, not a batch of one.
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ``ValueError``.

    Example:
        >>> check_positive_int("batch_size", 0)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `batch_size` to be a positive integer, but got 0.
    """
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        raise ValueError(f"Expected argument `{name}` to be a positive integer, but got {value!r}.")
    return value  # type: ignore[return-value]


def check_non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 0, else raise ``ValueError``."""
    if not _is_int(value) or value < 0:  # type: ignore[operator]
        raise ValueError(f"Expected argument `{name}` to be a non-negative integer, but got {value!r}.")
    return value  # type: ignore[return-value]


def check_min_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise ``ValueError``."""
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        raise ValueError(f"Expected argument `{name}` to be an integer >= {minimum}, but got {value!r}.")
    return value  # type: ignore[return-value]


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float if it lies in the open interval (0, 1), else raise ``ValueError``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 < value < 1.0:
        raise ValueError(f"Expected argument `{name}` to be a float in the open interval (0, 1), but got {value!r}.")
    return float(value)


def check_directory(name: str, value: str | Path) -> Path:
    """Return ``value`` as an absolute :class:`~pathlib.Path`; raise ``ValueError`` if it exists but is
    not a directory.

    A path that does not exist (yet) is accepted here: whether the data is there is checked, with a
    :class:`FileNotFoundError` explaining how to get it, in ``prepare_data``/``setup``.
    """
    if not isinstance(value, (str, Path)) or str(value) == "":
        raise ValueError(f"Expected argument `{name}` to be a directory path, but got {value!r}.")
    path = Path(value).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"Expected argument `{name}` to be a directory, but got '{path}', which exists and is not one."
        )
    return path


def missing_files_error(dataset: str, directory: Path, missing: Sequence[str], how_to_get: str) -> FileNotFoundError:
    """Build the :class:`FileNotFoundError` raised when a dataset's files are not on disk.

    Args:
        dataset: Human-readable dataset name, e.g. ``"CIFAR-100"``.
        directory: Where the files were looked for (printed as an absolute path).
        missing: The file or folder names that were not found in ``directory``.
        how_to_get: One or more sentences telling the user how to obtain the files.

    Example:
        >>> err = missing_files_error("Toy", Path("/nowhere"), ["a.bin"], "Ask a friend.")
        >>> print(err)
        Toy data not found: looked in '/nowhere', missing a.bin. Ask a friend.
    """
    return FileNotFoundError(
        f"{dataset} data not found: looked in '{directory}', missing {', '.join(missing)}. {how_to_get}"
    )


# --------------------------------------------------------------------------------------------------------
# Datasets and collation.
# --------------------------------------------------------------------------------------------------------
def _lists_to_tuples(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_lists_to_tuples(item) for item in obj)
    return obj


def tuple_collate(batch: list[Any]) -> Any:
    """:func:`~torch.utils.data.default_collate`, but nested sequences come back as tuples.

    ``default_collate`` turns a batch of ``((weak, strong), label)`` samples into lists; this returns
    exactly ``((x_weak, x_strong), y)`` (and ``(x, y)`` for single-view samples).

    Example:
        >>> batch = [((torch.zeros(2), torch.ones(2)), 0), ((torch.zeros(2), torch.ones(2)), 1)]
        >>> (weak, strong), y = tuple_collate(batch)
        >>> weak.shape, strong.shape, y.tolist()
        (torch.Size([2, 2]), torch.Size([2, 2]), [0, 1])
    """
    return _lists_to_tuples(default_collate(batch))


class TwoViewDataset(Dataset[tuple[tuple[Any, Any], Any]]):
    """Wrap a dataset of ``(image, label)`` so each sample yields ``((weak(image), strong(image)), label)``.

    Both transforms are applied independently to the same *untransformed* image (as MLKD's
    ``MultipleApply`` does), so the two views of a sample generally differ even in their weak part.

    Args:
        dataset: A map-style dataset returning ``(image, label)`` with no transform applied.
        weak: Transform producing the weak view.
        strong: Transform producing the strong view.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> base = TensorDataset(torch.ones(4, 1, 2, 2), torch.arange(4))
        >>> ds = TwoViewDataset(base, weak=lambda x: x, strong=lambda x: -x)
        >>> (weak, strong), label = ds[1]
        >>> weak.sum().item(), strong.sum().item(), label.item(), len(ds)
        (4.0, -4.0, 1, 4)
    """

    def __init__(self, dataset: Dataset[Any], weak: Callable[[Any], Any], strong: Callable[[Any], Any]) -> None:
        self.dataset = dataset
        self.weak = weak
        self.strong = strong

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[tuple[Any, Any], Any]:
        image, label = self.dataset[index]
        return (self.weak(image), self.strong(image)), label


class TensorImageDataset(Dataset[tuple[Tensor, Tensor]]):
    """In-memory images ``(N, C, H, W)`` and labels ``(N,)`` with an optional per-sample transform.

    Unlike :class:`~torch.utils.data.TensorDataset` it applies ``transform`` to each image, so the images
    can be kept compactly (e.g. ``uint8``) and normalized or augmented on the fly.

    Args:
        images: Tensor of shape ``(N, C, H, W)``.
        labels: Integer tensor of shape ``(N,)``.
        transform: Optional callable applied to each ``(C, H, W)`` image.

    Example:
        >>> ds = TensorImageDataset(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2]),
        ...                         transform=lambda x: x.float() + 1)
        >>> x, y = ds[2]
        >>> x.dtype, x.sum().item(), y.item()
        (torch.float32, 4.0, 2)
    """

    def __init__(self, images: Tensor, labels: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if images.ndim != 4 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                "Expected `images` of shape (N, C, H, W) and `labels` of shape (N,), but got "
                f"{tuple(images.shape)} and {tuple(labels.shape)}."
            )
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


# --------------------------------------------------------------------------------------------------------
# Base DataModule.
# --------------------------------------------------------------------------------------------------------
class KDDataModuleBase(LightningDataModule):
    """Common base of the ``lightning_kd`` DataModules (not meant to be instantiated directly).

    Holds the loader settings and the read-only dataset description (``num_classes``, ``in_chans``,
    ``image_size``, ``mean``, ``std``), and builds the four dataloaders from ``train_set``/``val_set``/
    ``test_set``, which subclasses fill in :meth:`setup`. ``predict_dataloader`` serves the test split.
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
    ) -> None:
        super().__init__()
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_workers = check_non_negative_int("num_workers", num_workers)
        self.pin_memory = pin_memory
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

    # Dataloaders -------------------------------------------------------------------------------------
    def _loader(self, dataset: Dataset[Any] | None, split: str, shuffle: bool) -> DataLoader[Any]:
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
            persistent_workers=self.num_workers > 0,
            collate_fn=tuple_collate,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled loader over the training split (augmented; two views if ``strong_aug``)."""
        return self._loader(self.train_set, "train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Loader over the validation split, in a fixed order."""
        return self._loader(self.val_set, "validation", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Loader over the test split, in a fixed order."""
        return self._loader(self.test_set, "test", shuffle=False)

    def predict_dataloader(self) -> DataLoader[Any]:
        """Loader over the test split (same as :meth:`test_dataloader`)."""
        return self._loader(self.test_set, "test", shuffle=False)
