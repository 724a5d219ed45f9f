"""CIFAR-100 for vision-transformer students: 224-px images through timm's ImageNet training transform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from timm.data import create_transform
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from typing_extensions import override

from lightning_kd._validation import check_positive_int
from lightning_kd.data.cifar import CIFAR100DataModule

__all__ = ["CIFAR100ViTDataModule"]

#: RandAugment policy of the DeiT training recipe, in timm's notation.
RAND_AUGMENT = "rand-m9-mstd0.5-inc1"


class CIFAR100ViTDataModule(CIFAR100DataModule):
    """CIFAR-100 upsampled to ``image_size`` px with DeiT's augmentation, for ViT students.

    The setting of the tiny-transformers experiments of Sun et al., "Logit Standardization in Knowledge
    Distillation" (CVPR 2024), whose released code (``tiny-transformers/pycls/datasets/transforms.py``) builds
    its transforms with timm's :func:`~timm.data.create_transform`, as this class does:

    * train: ``RandomResizedCrop(image_size)`` (scale 0.08-1, bicubic), horizontal flip, RandAugment
      ``rand-m9-mstd0.5-inc1``, colour jitter 0.4 (which timm, as in the released code, leaves inactive when
      RandAugment is on), ``ToTensor``, ``Normalize`` and random erasing (probability 0.25, pixel mode, one box);
    * val/test: a bilinear resize to ``image_size`` x ``image_size``, ``ToTensor``, ``Normalize``.

    Both normalize with timm's ImageNet statistics, as the released code does (:attr:`mean`, :attr:`std`). A
    teacher trained on 32-px CIFAR-100 with CIFAR-100's statistics (the shared checkpoints, or
    :class:`CIFAR100DataModule`'s teachers) sees these batches through a
    :class:`~lightning_kd.TeacherInputAdapter` that re-normalizes them and resizes them back to 32 px.

    Batches: ``(x, y)`` with ``x`` float32 ``(B, 3, image_size, image_size)``. There is no two-view (MLKD) mode.

    Args:
        root: Directory containing (or to receive, with ``download=True``) ``cifar-100-python/``.
        download: Let torchvision download the archive in ``prepare_data`` (needs internet).
        batch_size: Samples per batch for every loader.
        num_workers: DataLoader worker processes.
        pin_memory: Pin host memory for faster GPU transfer; ``None`` means "if CUDA is available".
        verify_checksums: Check the files' md5 against the official archive (``False``: only that they exist).
        image_size: Side of the student's square input images (224 for the published setting; smaller for tests).

    Raises:
        ValueError: On a bad argument, e.g. ``image_size < 1``.

    Example:
        >>> from PIL import Image
        >>> dm = CIFAR100ViTDataModule(root="data")
        >>> dm.image_size, dm.mean, dm.std
        (224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        >>> image = Image.new("RGB", (32, 32), color=(128, 64, 32))
        >>> tuple(dm.train_transform()(image).shape), tuple(dm.eval_transform()(image).shape)
        ((3, 224, 224), (3, 224, 224))
    """

    def __init__(
        self,
        root: str,
        download: bool = False,
        batch_size: int = 128,
        num_workers: int = 4,
        pin_memory: bool | None = None,
        verify_checksums: bool = True,
        image_size: int = 224,
    ) -> None:
        super().__init__(
            root=root,
            download=download,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            strong_aug=False,
            verify_checksums=verify_checksums,
        )
        self._image_size = check_positive_int("image_size", image_size)
        self._mean = tuple(float(m) for m in IMAGENET_DEFAULT_MEAN)
        self._std = tuple(float(s) for s in IMAGENET_DEFAULT_STD)

    @override
    def train_transform(self) -> Callable[[Any], Any]:
        """timm's training transform with DeiT's augmentation (see the class docstring)."""
        transform: Callable[[Any], Any] = create_transform(
            input_size=self.image_size,
            is_training=True,
            color_jitter=0.4,
            auto_augment=RAND_AUGMENT,
            re_prob=0.25,
            re_mode="pixel",
            re_count=1,
            interpolation="bicubic",
            mean=self.mean,
            std=self.std,
        )
        return transform

    @override
    def eval_transform(self) -> Callable[[Any], Any]:
        """A bilinear resize to ``image_size`` (timm's eval transform with ``crop_pct=1``: no crop), normalized."""
        transform: Callable[[Any], Any] = create_transform(
            input_size=self.image_size,
            is_training=False,
            interpolation="bilinear",
            crop_pct=1.0,
            mean=self.mean,
            std=self.std,
        )
        return transform
