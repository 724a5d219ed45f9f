"""Argument and input checks: the one place every check of the package lives.

Every check raises early with a message in one template: "Expected argument `name` to be ..., but got ...".
Unknown registry names list the valid ones and the closest matches (:func:`unknown_name_error`).

Checks that read tensor values (non-finite logits, out-of-range targets, non-positive temperatures) cost a
host synchronisation. ``check_values=None`` (the default of the functional core) reads the values of CPU
tensors only (where a read costs little and an out-of-range index would fail less clearly later),
``True`` reads them everywhere, ``False`` never: the Lightning integration passes ``True`` during the first
steps of a run and ``False`` after them, so a training step after those reads nothing back to the host.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the tensor checks only: the name and scalar checks serve light modules
    from torch import Tensor

__all__ = [
    "check_finite_float",
    "check_fraction",
    "check_logits",
    "check_logits_pair",
    "check_min_int",
    "check_non_negative_float",
    "check_non_negative_int",
    "check_positive_float",
    "check_positive_int",
    "check_target",
    "check_temperature",
    "close_matches",
    "unknown_name_error",
]


# --------------------------------------------------------------------------------------------------------
# Names.
# --------------------------------------------------------------------------------------------------------
def close_matches(word: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Close matches of ``word`` among ``candidates``, compared case-insensitively, in their original case.

    Example:
        >>> close_matches("kdd", ["kd", "dkd", "dist"])
        ['kd', 'dkd']
    """
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    return [by_lower[m] for m in difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=cutoff)]


def unknown_name_error(argument: str, received: str, valid: Iterable[str]) -> ValueError:
    """The ValueError for an unknown registry name (the caller raises it): the valid names and the closest.

    Example:
        >>> print(unknown_name_error("divergence", "kdd", ["kd", "dkd"]))
        Expected argument `divergence` to be one of 'dkd', 'kd', but got 'kdd'. Did you mean 'kd' or 'dkd'?
    """
    names = sorted(valid)
    close = close_matches(received, names)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Expected argument `{argument}` to be one of {', '.join(repr(n) for n in names)}, but got {received!r}." + hint
    )


# --------------------------------------------------------------------------------------------------------
# Scalars.
# --------------------------------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    # ``bool`` is a subclass of ``int``; ``batch_size=True`` is a mistake, not a batch of one.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_min_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise ``ValueError``.

    Example:
        >>> check_min_int("image_size", 4, 8)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `image_size` to be an integer >= 8, but got 4.
    """
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        raise ValueError(f"Expected argument `{name}` to be an integer >= {minimum}, but got {value!r}.")
    return value  # type: ignore[return-value]


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


def check_non_negative_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number >= 0, else raise ``ValueError``.

    Example:
        >>> check_non_negative_float("kd_weight", float("inf"))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `kd_weight` to be a finite, non-negative float, but got inf.
    """
    if not _is_real(value) or not math.isfinite(value) or value < 0:  # type: ignore[arg-type, operator]
        raise ValueError(f"Expected argument `{name}` to be a finite, non-negative float, but got {value!r}.")
    return float(value)  # type: ignore[arg-type]


def check_positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise ``ValueError``.

    Example:
        >>> check_positive_float("temperature", float("inf"))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `temperature` to be a finite, positive float, but got inf.
    """
    if not _is_real(value) or not math.isfinite(value) or not value > 0:  # type: ignore[arg-type, operator]
        raise ValueError(f"Expected argument `{name}` to be a finite, positive float, but got {value!r}.")
    return float(value)  # type: ignore[arg-type]


def check_finite_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number, else raise ``ValueError``."""
    if not _is_real(value) or not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"Expected argument `{name}` to be a finite float, but got {value!r}.")
    return float(value)  # type: ignore[arg-type]


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float if it lies in the open interval (0, 1), else raise ``ValueError``."""
    if not _is_real(value) or not 0.0 < value < 1.0:  # type: ignore[operator]
        raise ValueError(f"Expected argument `{name}` to be a float in the open interval (0, 1), but got {value!r}.")
    return float(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# Tensors.
# --------------------------------------------------------------------------------------------------------
def check_logits(name: str, logits: object, *, check_finite: bool | None = False) -> None:
    """Check that ``logits`` is a floating 2-D tensor (batch, classes) with at least two classes, and finite
    when ``check_finite`` is True (a host synchronisation)."""
    import torch

    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"Expected argument `{name}` to be a torch.Tensor, but got {type(logits).__name__}.")
    if logits.ndim != 2:
        raise ValueError(f"Expected argument `{name}` to be 2-D (batch, classes), but got shape {tuple(logits.shape)}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected argument `{name}` to be a floating tensor, but got dtype {logits.dtype}.")
    if logits.shape[1] < 2:
        raise ValueError(f"Expected argument `{name}` to have at least 2 classes, but got {logits.shape[1]}.")
    if check_finite is True and not bool(torch.isfinite(logits).all()):
        raise ValueError(f"Expected argument `{name}` to be finite, but it contains NaN or Inf values.")


def check_logits_pair(student_logits: object, teacher_logits: object, *, check_finite: bool | None = False) -> None:
    """Check both logit tensors and that their shapes (batch and class count) agree."""
    check_logits("student_logits", student_logits, check_finite=check_finite)
    check_logits("teacher_logits", teacher_logits, check_finite=check_finite)
    import torch

    assert isinstance(student_logits, torch.Tensor) and isinstance(teacher_logits, torch.Tensor)  # for type checkers
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "Expected arguments `student_logits` and `teacher_logits` to have the same shape (batch, classes),"
            f" but got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}."
        )


def _reads_values(check_values: bool | None, tensor: Tensor) -> bool:
    return tensor.device.type == "cpu" if check_values is None else check_values


def check_target(target: object, batch_size: int, num_classes: int, *, check_values: bool | None = None) -> None:
    """Check that ``target`` holds one integer class index per sample, inside ``[0, num_classes)`` (the
    range is read as the module docstring says for ``check_values``)."""
    import torch

    if not isinstance(target, torch.Tensor):
        raise TypeError(f"Expected argument `target` to be a torch.Tensor, but got {type(target).__name__}.")
    if target.shape != (batch_size,):
        raise ValueError(
            f"Expected argument `target` to have shape ({batch_size},) (one class index per sample),"
            f" but got {tuple(target.shape)}."
        )
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"Expected argument `target` to hold integer class indices, but got {target.dtype}.")
    if _reads_values(check_values, target) and target.numel() > 0:
        low, high = (int(v) for v in torch.aminmax(target))
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"Expected argument `target` to be in [0, {num_classes - 1}], but got values in [{low}, {high}]."
            )


def check_temperature(temperature: object, batch_size: int, *, check_values: bool | None = None) -> None:
    """Check a temperature: a finite positive number, or a tensor of shape (), (1,), (1, 1) or (batch, 1)
    (whose values are read as the module docstring says for ``check_values``)."""
    import torch

    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, torch.Tensor)):
        raise TypeError(
            "Expected argument `temperature` to be a positive float or a tensor of shape (batch, 1),"
            f" but got {type(temperature).__name__}."
        )
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1 and tuple(temperature.shape) != (batch_size, 1):
            raise ValueError(
                f"Expected argument `temperature` to be a scalar or of shape ({batch_size}, 1),"
                f" but got shape {tuple(temperature.shape)}."
            )
        valid = (temperature > 0) & torch.isfinite(temperature)
        if _reads_values(check_values, temperature) and not bool(valid.all()):
            raise ValueError(
                "Expected argument `temperature` to be finite and positive, but got a tensor with values"
                f" in [{float(temperature.min()):g}, {float(temperature.max()):g}]."
            )
    elif not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"Expected argument `temperature` to be a finite, positive float, but got {temperature}.")
