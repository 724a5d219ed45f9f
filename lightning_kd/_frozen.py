"""A frozen teacher kept outside the module tree of the model that uses it.

The teacher is held by a plain object, not registered as a submodule, so by construction it is never in
``parameters()`` (hence never in an optimizer or DDP's gradient buckets), never in ``state_dict()``, never
switched to train mode by ``model.train()`` or ``unfreeze()``, and never reported by Lightning as a module
left in eval mode. The owning module forwards device and dtype moves to it (see ``_apply``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightning_kd.teacher import freeze

__all__ = ["FrozenTeacher"]


class FrozenTeacher:
    """Holds a teacher network in eval mode without gradients; calling it runs it under ``no_grad``.

    ``no_grad`` rather than ``inference_mode``: the teacher's logits meet tensors that require grad inside the
    loss (e.g. CTKD's learnable temperature), which inference tensors cannot.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = freeze(module)
        self.compiled: Callable[[Tensor], object] | None = None

    def __call__(self, x: Tensor) -> object:
        if self.module.training:  # someone called .train() on the teacher itself
            self.module.eval()
        with torch.no_grad():
            return (self.compiled if self.compiled is not None else self.module)(x)

    def apply(self, fn: Callable[[Tensor], Tensor]) -> None:
        """Apply a tensor function (device/dtype move) to the teacher's parameters and buffers."""
        self.module._apply(fn)
        self.module.requires_grad_(False)
