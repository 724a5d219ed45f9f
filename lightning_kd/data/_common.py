"""Shared pieces of the DataModules: the directory check, the "missing files" error, batch collation and the
in-memory and two-view datasets.

Private module: the public names live in :mod:`lightning_kd.data`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from lightning_kd._validation import check_fraction, check_min_int, check_non_negative_int, check_positive_int

__all__ = [
    "TensorImageDataset",
    "TwoViewDataset",
    "check_directory",
    "check_fraction",
    "check_min_int",
    "check_non_negative_int",
    "check_positive_int",
    "missing_files_error",
    "stratified_subset",
    "tuple_collate",
]


# --------------------------------------------------------------------------------------------------------
# Argument checks: the integer and fraction checks live in ``lightning_kd._validation`` (re-exported above).
# --------------------------------------------------------------------------------------------------------
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
        >>> import torch
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
        >>> import torch
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
        >>> import torch
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


def stratified_subset(images: Tensor, labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """A stratified ``fraction`` of ``(images, labels)`` (every class in proportion), in dataset order; the same
    subset for the same ``seed``. ``fraction == 1`` returns the inputs.

    Example:
        >>> labels = torch.tensor([0] * 6 + [1] * 4)
        >>> _, y = stratified_subset(torch.arange(10), labels, 0.5, seed=0)
        >>> sorted(y.tolist())
        [0, 0, 0, 1, 1]
    """
    if fraction >= 1:
        return images, labels
    from sklearn.model_selection import train_test_split  # a dependency; imported where it is used

    keep, _ = train_test_split(np.arange(len(labels)), train_size=fraction, stratify=labels.numpy(), random_state=seed)
    index = torch.from_numpy(np.sort(keep))
    return images[index], labels[index]
