"""What a teacher-logit cache is the cache of: the teacher, the data, the teacher's input, the augmentation space
and the storage. A cache whose identity differs from the run's in any field is refused, naming the fields."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["CacheIdentity", "CacheMismatchError"]


class CacheMismatchError(ValueError):
    """A teacher-logit cache does not belong to this run (another teacher, data, input, space or storage)."""


@dataclass(frozen=True)
class CacheIdentity:
    """Everything the cached logits depend on, and how they are stored.

    Attributes:
        teacher_sha256: :func:`~lightning_kd.teacher.state_dict_sha256` of the teacher.
        data_sha256: The training split's identity (``DataModule.train_data_sha256()``): images, labels, order.
        teacher_input: The pre-process of the teacher's input: the DataModule's normalisation, the
            ``TeacherInputAdapter``, the memory format and the precision the teacher runs in.
        padding: The crop's zero padding of the augmentation space.
        flip: Whether the space has the horizontal flip.
        image_shape: ``(C, H, W)`` of the training images.
        num_samples: Training images.
        num_classes: Logits per view.
        dtype: ``"float32"`` or ``"float16"`` storage.
        top_k: ``None`` for every logit (exact), else the number of largest logits kept per view.

    Example:
        >>> a = CacheIdentity("t" * 64, "d" * 64, "normalize", 4, True, (3, 32, 32), 10, 100, "float32", None)
        >>> a.differences(dataclasses.replace(a, dtype="float16", padding=2))
        ['padding (cache 4, run 2)', "dtype (cache 'float32', run 'float16')"]
    """

    teacher_sha256: str
    data_sha256: str
    teacher_input: str
    padding: int
    flip: bool
    image_shape: tuple[int, ...]
    num_samples: int
    num_classes: int
    dtype: str
    top_k: int | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"Expected argument `dtype` to be 'float32' or 'float16', but got {self.dtype!r}.")

    @property
    def num_views(self) -> int:
        """Views per image: ``(2 * padding + 1) ** 2`` crop offsets, times 2 with the flip."""
        return (2 * self.padding + 1) ** 2 * (2 if self.flip else 1)

    def differences(self, run: CacheIdentity) -> list[str]:
        """The fields in which ``run`` differs from this (the cache's) identity, with both values."""
        return [
            f"{f.name} (cache {getattr(self, f.name)!r}, run {getattr(run, f.name)!r})"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(run, f.name)
        ]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CacheIdentity:
        data: dict[str, Any] = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
