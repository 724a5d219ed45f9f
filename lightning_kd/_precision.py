"""Float32 loss math under mixed precision.

Losses compare probability distributions, where bf16/fp16 rounding of softmax, log-softmax and sums over
classes is large. Every loss runs its body with autocast disabled and half-precision inputs upcast to
float32 (float64 inputs stay float64, so gradcheck works), and returns a float32 (or float64) loss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["full_precision", "upcast"]

_HALF = (torch.float16, torch.bfloat16)


def upcast(tensor: Tensor) -> Tensor:
    """Return ``tensor`` in float32 if it is float16/bfloat16, else unchanged."""
    return tensor.float() if tensor.dtype in _HALF else tensor


@contextlib.contextmanager
def full_precision(tensor: Tensor) -> Iterator[None]:
    """Disable autocast on the device of ``tensor`` for the enclosed block."""
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        with torch.autocast(device_type=device_type, enabled=False):
            yield
    else:
        yield
