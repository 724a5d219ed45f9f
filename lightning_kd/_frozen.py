"""A frozen teacher kept outside the module tree of the model that uses it.

The teacher is held by a plain object, not registered as a submodule, so by construction it is never in
``parameters()`` (hence never in an optimizer or DDP's gradient buckets), never in ``state_dict()``, never
switched to train mode by ``model.train()`` or ``unfreeze()``, and never reported by Lightning as a module
left in eval mode. The owning module forwards device and dtype moves to it (see ``_apply``).

:meth:`FrozenTeacher.logits` is the one implementation of "the teacher's logits for the student's input"
(input adapter, memory format, where the logits are in the output) shared by the module, the callback and the
ablation arms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightning_kd._batch import extract_logits
from lightning_kd.teacher import freeze

__all__ = ["FrozenTeacher"]


def _clone_tensors(output: object) -> object:
    """The tensors of a model output cloned out of inference mode (tuples, lists and dicts kept)."""
    if isinstance(output, Tensor):
        return output.clone()
    if isinstance(output, tuple) and hasattr(output, "_fields"):  # a named tuple
        return type(output)(*[_clone_tensors(item) for item in output])  # type: ignore[arg-type]
    if isinstance(output, (tuple, list)):
        return type(output)(_clone_tensors(item) for item in output)
    if isinstance(output, dict):
        return {key: _clone_tensors(value) for key, value in output.items()}
    return output


class FrozenTeacher:
    """Holds a teacher network in eval mode without gradients; calling it runs it under ``no_grad``.

    Eager, it runs under ``no_grad``; compiled (:meth:`compile`), under ``inference_mode`` with its output
    cloned: inference tensors cannot be saved for a backward pass, and the teacher's logits meet tensors that
    require grad inside some losses (e.g. CTKD's learnable temperature divides them); the clone is an ordinary
    tensor, a (batch, classes) copy.

    Args:
        module: The teacher (frozen here; pass a copy if the caller's object must stay as it is, as
            :func:`lightning_kd.load_teacher` does).
        input_adapter: Maps the student's input to the teacher's (re-normalisation, resizing), or ``None``.
        logits_key: Where the logits are in the teacher's output (see :func:`lightning_kd._batch.extract_logits`).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        input_adapter: nn.Module | None = None,
        logits_key: str | int | None = None,
    ) -> None:
        self.module = freeze(module)
        self.input_adapter = input_adapter
        self.logits_key = logits_key
        self.channels_last = False
        self.compiled: Callable[[Tensor], object] | None = None

    def __call__(self, x: Tensor) -> object:
        if self.module.training:  # someone called .train() on the teacher itself
            self.module.eval()
        if self.compiled is None:
            with torch.no_grad():
                return self.module(x)
        with torch.inference_mode():
            output = self.compiled(x)
        return _clone_tensors(output)

    def logits(self, x: Tensor) -> Tensor:
        """The teacher's logits for the student's input ``x`` (adapted by ``input_adapter``), no gradient."""
        if self.input_adapter is not None:
            x = self.input_adapter(x)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return extract_logits(self(x), self.logits_key)

    def apply(self, fn: Callable[[Tensor], Tensor]) -> None:
        """Apply a tensor function (device/dtype move) to the teacher's parameters and buffers (the input adapter
        is moved by its owner: a submodule of the DistillationModule, or by the callback)."""
        self.module._apply(fn)
        self.module.requires_grad_(False)

    def use_channels_last(self) -> None:
        """Switch the teacher and its inputs to the channels-last memory format."""
        self.channels_last = True
        self.module.to(memory_format=torch.channels_last)

    def compile(self, mode: str | None = None) -> None:
        """``torch.compile`` the teacher's forward (once), with a ``torch.compile`` ``mode``."""
        if self.compiled is None:
            self.compiled = torch.compile(self.module, mode=mode)
