"""LightningDataModules for knowledge distillation experiments.

Every DataModule exposes ``num_classes``, ``in_chans``, ``image_size``, ``mean`` and ``std`` (to wire
models and teacher input adapters) and yields batches ``(x, y)`` with ``x`` float32 ``(B, C, H, W)``
normalized and ``y`` int64; with ``strong_aug=True`` training batches are ``((x_weak, x_strong), y)``, with
``return_views=True`` ``(x, y, views)`` where ``views`` are the :class:`AugmentationViews` of the batch.

The in-memory datasets (digits, Fashion-MNIST, CIFAR-100) have a device-resident training path
(:class:`DeviceResidentLoader`, option ``device_resident``, on by default on CUDA): the training images live
on the accelerator and every batch is shuffled, cropped, flipped and normalised there.

* :class:`DigitsDataModule`: scikit-learn's bundled 8x8 digits, offline, in memory (demos and tests).
* :class:`FashionMNISTDataModule`: Fashion-MNIST from the four IDX ``.gz`` files, in memory.
* :class:`CIFAR100DataModule`: CIFAR-100 from torchvision's ``cifar-100-python`` files.
* :class:`CIFAR100ViTDataModule`: CIFAR-100 at 224 px through timm's training transform (the ViT recipes).
* :class:`ImageNetDataModule`: ImageNet-1k from ``train``/``val`` ImageFolder trees.

Example:
    >>> from lightning_kd.data import DigitsDataModule
    >>> DigitsDataModule().num_classes
    10
"""

from lightning_kd.data._common import TwoViewDataset
from lightning_kd.data._device import DeviceResidentLoader
from lightning_kd.data._transforms import AddGaussianNoise, Cutout
from lightning_kd.data._views import AugmentationSpace, AugmentationViews
from lightning_kd.data.cifar import CIFAR100DataModule
from lightning_kd.data.cifar_vit import CIFAR100ViTDataModule
from lightning_kd.data.digits import DigitsDataModule
from lightning_kd.data.fashion_mnist import FashionMNISTDataModule
from lightning_kd.data.imagenet import ImageNetDataModule

__all__ = [
    "AddGaussianNoise",
    "AugmentationSpace",
    "AugmentationViews",
    "CIFAR100DataModule",
    "CIFAR100ViTDataModule",
    "Cutout",
    "DeviceResidentLoader",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageNetDataModule",
    "TwoViewDataset",
]
