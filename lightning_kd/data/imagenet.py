"""ImageNet (ILSVRC-2012) DataModule on an ``ImageFolder`` tree."""

from __future__ import annotations

from pathlib import Path

from torchvision import transforms as T
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes
from typing_extensions import override

from lightning_kd._validation import check_min_int, check_positive_int
from lightning_kd.data._base import KDDataModuleBase
from lightning_kd.data._common import check_directory, missing_files_error

__all__ = ["ImageNetDataModule"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HOW_TO = (
    "Expected the ImageFolder layout root/train/<class>/<image> and root/val/<class>/<image>: extract "
    "ILSVRC2012_img_train.tar / ILSVRC2012_img_val.tar from https://image-net.org (login required) and "
    "sort the validation images into class folders (e.g. with the widely used 'valprep.sh')."
)


class ImageNetDataModule(KDDataModuleBase):
    """ImageNet-1k as two :class:`~torchvision.datasets.ImageFolder` trees, ``root/train`` and ``root/val``.

    The official validation set serves as validation, test and predict split (as in the literature).
    Transforms: train ``RandomResizedCrop(image_size)`` + ``RandomHorizontalFlip``; val
    ``Resize(round(image_size / 0.875))`` (256 for 224) + ``CenterCrop(image_size)``; both then
    ``ToTensor`` and ``Normalize`` with the ImageNet mean/std.

    Labels are the indices of the sorted class-folder names, so :meth:`setup` requires ``train`` and ``val``
    to hold the same class names (when both are there): otherwise every validation label would be shifted.

    Batches: ``(x, y)`` with ``x`` float32 ``(B, 3, image_size, image_size)``, ``y`` int64 ``(B,)``.

    Args:
        root: Directory holding the ``train`` and ``val`` class-folder trees.
        batch_size: Samples per batch for every loader.
        num_workers: DataLoader worker processes (JPEG decoding is the bottleneck: use many).
        pin_memory: Pin host memory for faster GPU transfer; ``None`` means "if CUDA is available".
        image_size: Side of the square crops fed to the model.
        num_classes: Number of classes. ``None`` counts the class folders of ``root/train`` (on first
            access of :attr:`num_classes`); :meth:`setup` checks that each split has that many.
        drop_last: Drop the last incomplete training batch (fixed shapes, what ``torch.compile`` wants).

    Raises:
        ValueError: On a bad argument (``batch_size < 1``, ``image_size < 8``, a ``root`` that is a file),
            when the class folders do not match ``num_classes``, or when ``train`` and ``val`` have different
            class names (the message lists the names missing from each).
        FileNotFoundError: From ``prepare_data``/``setup`` when ``root/train`` or ``root/val`` is missing.

    Example:
        >>> dm = ImageNetDataModule(root="/data/imagenet", num_classes=1000)
        >>> dm.num_classes, dm.in_chans, dm.image_size, dm.mean
        (1000, 3, 224, (0.485, 0.456, 0.406))
    """

    def __init__(
        self,
        root: str,
        batch_size: int = 256,
        num_workers: int = 8,
        pin_memory: bool | None = None,
        image_size: int = 224,
        num_classes: int | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            num_classes=None if num_classes is None else check_positive_int("num_classes", num_classes),
            in_chans=3,
            image_size=check_min_int("image_size", image_size, 8),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            drop_last=drop_last,
        )
        self.root = check_directory("root", root)
        self.save_hyperparameters()

    def _split_dir(self, split: str) -> Path:
        path = self.root / split
        if not path.is_dir():
            raise missing_files_error("ImageNet", self.root, [f"'{split}/' ({path})"], _HOW_TO)
        return path

    @property
    def num_classes(self) -> int:
        """Number of classes: the ``num_classes`` argument, else the class folders in ``root/train``
        (``root/val`` if there is no training split, e.g. on an evaluation-only machine)."""
        if self._num_classes is None:
            split = "train" if (self.root / "train").is_dir() else "val"
            classes, _ = find_classes(str(self._split_dir(split)))
            self._num_classes = len(classes)
        return self._num_classes

    def _image_folder(self, split: str, transform: T.Compose) -> ImageFolder:
        dataset = ImageFolder(str(self._split_dir(split)), transform=transform)
        if len(dataset.classes) != self.num_classes:
            raise ValueError(
                f"Expected {self.num_classes} class folders in '{self.root / split}', but found {len(dataset.classes)}."
            )
        return dataset

    def _check_same_classes(self) -> None:
        train, val = self.root / "train", self.root / "val"
        if not (train.is_dir() and val.is_dir()):
            return
        train_classes, val_classes = set(find_classes(str(train))[0]), set(find_classes(str(val))[0])
        if train_classes == val_classes:
            return

        def listed(names: set[str]) -> str:
            shown = sorted(names)[:10]
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            return (", ".join(shown) + more) if names else "none"

        raise ValueError(
            f"Expected the same class folders in '{train}' and '{val}' (labels are indices into the sorted names), "
            f"but got {len(train_classes)} and {len(val_classes)} with different names: missing in val/: "
            f"{listed(train_classes - val_classes)}; missing in train/: {listed(val_classes - train_classes)}."
        )

    @override
    def prepare_data(self) -> None:
        """Check that ``root/train`` and ``root/val`` exist (nothing is downloaded)."""
        self._split_dir("train")
        self._split_dir("val")

    @override
    def setup(self, stage: str | None = None) -> None:
        """Index the image folders needed by ``stage`` (``"fit"``, ``"validate"``, ``"test"``, ...)."""
        self._check_same_classes()
        size = self.image_size
        if stage in (None, "fit") and self.train_set is None:
            train_tf = T.Compose(
                [
                    T.RandomResizedCrop(size),
                    T.RandomHorizontalFlip(),
                    T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                ]
            )
            self.train_set = self._image_folder("train", train_tf)
        if self.test_set is None:
            val_tf = T.Compose(
                [
                    T.Resize(round(size / 0.875)),
                    T.CenterCrop(size),
                    T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                ]
            )
            self.test_set = self._image_folder("val", val_tf)
        self.val_set = self.test_set
