"""Input checks shared by the functional core.

Every check raises early with a message in one template: "Expected argument `name` to be ..., but got ...".
Checks that read tensor values (non-finite logits, out-of-range targets) cost a host synchronisation on an
accelerator, so they run on CPU tensors always and elsewhere only when ``check_finite=True``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_logits", "check_logits_pair", "check_target", "check_temperature"]


def check_logits(name: str, logits: object, *, check_finite: bool = False) -> None:
    """Check that ``logits`` is a floating 2-D tensor (batch, classes) with at least two classes."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"Expected argument `{name}` to be a torch.Tensor, but got {type(logits).__name__}.")
    if logits.ndim != 2:
        raise ValueError(f"Expected argument `{name}` to be 2-D (batch, classes), but got shape {tuple(logits.shape)}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected argument `{name}` to be a floating tensor, but got dtype {logits.dtype}.")
    if logits.shape[1] < 2:
        raise ValueError(f"Expected argument `{name}` to have at least 2 classes, but got {logits.shape[1]}.")
    if check_finite and not bool(torch.isfinite(logits).all()):
        raise ValueError(f"Expected argument `{name}` to be finite, but it contains NaN or Inf values.")


def check_logits_pair(student_logits: object, teacher_logits: object, *, check_finite: bool = False) -> None:
    """Check both logit tensors and that their shapes (batch and class count) agree."""
    check_logits("student_logits", student_logits, check_finite=check_finite)
    check_logits("teacher_logits", teacher_logits, check_finite=check_finite)
    assert isinstance(student_logits, Tensor) and isinstance(teacher_logits, Tensor)  # for type checkers
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "Expected arguments `student_logits` and `teacher_logits` to have the same shape (batch, classes),"
            f" but got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}."
        )


def check_target(target: object, batch_size: int, num_classes: int, *, check_values: bool = False) -> None:
    """Check that ``target`` holds one integer class index per sample, inside ``[0, num_classes)``."""
    if not isinstance(target, Tensor):
        raise TypeError(f"Expected argument `target` to be a torch.Tensor, but got {type(target).__name__}.")
    if target.shape != (batch_size,):
        raise ValueError(
            f"Expected argument `target` to have shape ({batch_size},) (one class index per sample),"
            f" but got {tuple(target.shape)}."
        )
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"Expected argument `target` to hold integer class indices, but got {target.dtype}.")
    if (check_values or target.device.type == "cpu") and target.numel() > 0:
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"Expected argument `target` to be in [0, {num_classes - 1}], but got values in [{low}, {high}]."
            )


def check_temperature(temperature: object, batch_size: int, *, check_values: bool = False) -> None:
    """Check a temperature: a positive number, or a tensor of shape (), (1,), (1, 1) or (batch, 1)."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, Tensor)):
        raise TypeError(
            "Expected argument `temperature` to be a positive float or a tensor of shape (batch, 1),"
            f" but got {type(temperature).__name__}."
        )
    if isinstance(temperature, Tensor):
        if temperature.numel() != 1 and tuple(temperature.shape) != (batch_size, 1):
            raise ValueError(
                f"Expected argument `temperature` to be a scalar or of shape ({batch_size}, 1),"
                f" but got shape {tuple(temperature.shape)}."
            )
        if (check_values or temperature.device.type == "cpu") and not bool((temperature > 0).all()):
            raise ValueError(
                "Expected argument `temperature` to be positive, but got a tensor with values <= 0"
                f" (min {float(temperature.min()):g})."
            )
    elif not temperature > 0:
        raise ValueError(f"Expected argument `temperature` to be positive, but got {temperature}.")
