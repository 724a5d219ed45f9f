"""Binding a teacher-logit cache to a run: the checks of the data, and the run's identity."""

from __future__ import annotations

from typing import Any

from torch import nn

from lightning_kd.cache.identity import CacheIdentity
from lightning_kd.data import AugmentationSpace, AugmentationViews

__all__ = ["batch_views", "cache_identity", "describe_teacher_input"]


def _space(datamodule: Any) -> AugmentationSpace:
    """The DataModule's enumerable augmentation, or a clear error before the first step."""
    space = getattr(datamodule, "augmentation_space", None)
    if not hasattr(datamodule, "augmentation_space") or not hasattr(datamodule, "train_data_sha256"):
        raise ValueError(
            "Expected a lightning_kd DataModule with an enumerable training augmentation for `teacher_cache`"
            f" (CIFAR100DataModule, FashionMNISTDataModule, DigitsDataModule), but got {type(datamodule).__name__}."
        )
    if space is None:
        reason = datamodule._augmentation() if hasattr(datamodule, "_augmentation") else "it is not enumerable"
        raise ValueError(
            f"Expected the training augmentation to be a finite crop-and-flip space for `teacher_cache`, but {reason}"
            " (e.g. MLKD's strong view, RandAugment, mixup or another padding): its inputs cannot be enumerated, so"
            " the teacher's logits cannot be cached exactly. Remove `teacher_cache`, or use the standard augmentation."
        )
    if not getattr(datamodule, "return_views", False):
        raise ValueError(
            f"Expected the DataModule to yield each batch's augmentation views for `teacher_cache`, but"
            f" {type(datamodule).__name__} has `return_views=False`: pass `return_views=True`"
            " (`--data.init_args.return_views=true` on the command line)."
        )
    return space


def describe_teacher_input(datamodule: Any, adapter: nn.Module | None, channels_last: bool, precision: str) -> str:
    """The pre-process of the teacher's input, as a cache records it."""
    parts = [f"normalize(mean={tuple(datamodule.mean)}, std={tuple(datamodule.std)})"]
    if adapter is not None:
        tensors = {k: [round(float(v), 8) for v in t.flatten()] for k, t in adapter.named_buffers()}
        parts.append(f"{type(adapter).__name__}({tensors}, size={getattr(adapter, 'size', None)})")
    parts.append(f"channels_last={bool(channels_last)}")
    parts.append(f"precision={precision}")
    return "; ".join(parts)


def cache_identity(
    *,
    teacher_sha256: str,
    datamodule: Any,
    teacher_input: nn.Module | None,
    channels_last: bool,
    precision: str,
    num_classes: int,
) -> CacheIdentity:
    """The identity of this run's teacher logits (the cache's ``dtype`` and ``top_k`` are filled in on binding).

    Raises:
        ValueError: When the data cannot be cached (see the messages).
    """
    space = _space(datamodule)
    images, _ = datamodule._train_tensors()
    return CacheIdentity(
        teacher_sha256=teacher_sha256,
        data_sha256=datamodule.train_data_sha256(),
        teacher_input=describe_teacher_input(datamodule, teacher_input, channels_last, precision),
        padding=space.padding,
        flip=space.flip,
        image_shape=tuple(images.shape[1:]),
        num_samples=int(images.shape[0]),
        num_classes=num_classes,
        dtype="float32",
        top_k=None,
    )


def batch_views(batch: Any) -> AugmentationViews:
    """The views of a ``(x, y, views)`` batch, or an error saying how to get them."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 3 and isinstance(batch[2], AugmentationViews):
        return batch[2]
    raise ValueError(
        "Expected batches of (x, y, views) with a teacher-logit cache, but the batch has no AugmentationViews: pass"
        " `return_views=True` to the DataModule."
    )


def as_cache(cache: Any) -> Any:
    """A ``teacher_cache`` argument as a :class:`~lightning_kd.TeacherLogitCache`: a folder path gives the cache
    there with the storage it was filled with (:meth:`TeacherLogitCache.from_path`)."""
    from lightning_kd.cache.store import TeacherLogitCache

    if cache is None or isinstance(cache, TeacherLogitCache):
        return cache
    if isinstance(cache, str):
        return TeacherLogitCache.from_path(cache)
    raise TypeError(
        "Expected argument `teacher_cache` to be a TeacherLogitCache, a folder path or None, but got"
        f" {type(cache).__name__}."
    )


def bind_for_fit(
    cache: Any,
    trainer: Any,
    *,
    teacher_sha256: str,
    teacher_input: nn.Module | None,
    channels_last: bool,
    num_classes: int,
) -> None:
    """Bind ``cache`` to the fit of ``trainer`` (its DataModule, precision, device and processes)."""
    datamodule = trainer.datamodule
    if datamodule is None:
        raise ValueError(
            "Expected the fit to use a lightning_kd DataModule (`trainer.fit(module, datamodule=...)`) with"
            " `teacher_cache`, but it got dataloaders: the cache needs the data's identity and augmentation space."
        )
    identity = cache_identity(
        teacher_sha256=teacher_sha256,
        datamodule=datamodule,
        teacher_input=teacher_input,
        channels_last=channels_last,
        precision=str(trainer.precision),
        num_classes=num_classes,
    )
    cache.bind(identity, trainer.strategy.root_device, world_size=trainer.world_size)
