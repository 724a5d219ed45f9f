"""The non-finite guard: NaN/Inf checked on every training step, reading the device only now and then.

Checking ``torch.isfinite(loss)`` with ``bool()`` every step would stall an accelerator's queue every step.
Instead each step writes a few scalars (the loss and the sums of the logits: a sum is finite exactly when its
terms are, short of overflow) into a small device buffer, one slot per step; the buffer is read back once it
is full (every ``window`` steps: with ``window = log_every_n_steps`` that is a logging step, which reads the
device anyway), at the end of every epoch and at the end of fit. A non-finite value stops the run with an
error that names the first bad step, its batch and epoch, and which tensor went non-finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["NonFiniteError", "NonFiniteGuard"]


class NonFiniteError(FloatingPointError):
    """A NaN or Inf appeared during training (raised by :class:`NonFiniteGuard`)."""


class NonFiniteGuard:
    """Record scalars per step on the device; raise :class:`NonFiniteError` when one of them was not finite.

    Args:
        names: What each recorded scalar is (e.g. ``("loss", "student_logits", "teacher_logits")``).
        window: Steps per buffer (read back when full).
        hint: A sentence appended to the error (what to try).

    Example:
        >>> guard = NonFiniteGuard(("loss",), window=4)
        >>> guard.record([torch.tensor(1.0)], step=0, batch_idx=0, epoch=0)
        >>> guard.record([torch.tensor(float("nan"))], step=1, batch_idx=1, epoch=0)
        >>> guard.check()
        Traceback (most recent call last):
        ...
        lightning_kd.guard.NonFiniteError: Non-finite loss (NaN or Inf) at training step 1 (epoch 0, batch 1).
    """

    def __init__(self, names: Sequence[str], window: int = 50, hint: str = "") -> None:
        self.names = tuple(names)
        self.window = max(1, int(window))
        self.hint = hint
        self._buffer: Tensor | None = None
        self._where: list[tuple[int, int, int] | None] = [None] * self.window
        self._filled = 0

    def reset(self) -> None:
        """Forget what was recorded (at the start of a fit)."""
        self._buffer = None
        self._where = [None] * self.window
        self._filled = 0

    def record(self, values: Sequence[Tensor], *, step: int, batch_idx: int, epoch: int) -> None:
        """Write this step's scalars into the next slot (no host synchronisation); check when the buffer is full."""
        if len(values) != len(self.names):
            raise ValueError(f"Expected {len(self.names)} values ({', '.join(self.names)}), but got {len(values)}.")
        row = torch.stack([v.detach().float().reshape(()) for v in values])
        if self._buffer is None or self._buffer.device != row.device:
            self._buffer = row.new_zeros(self.window, len(self.names))
        slot = self._filled
        self._buffer[slot] = row
        self._where[slot] = (step, epoch, batch_idx)
        self._filled += 1
        if self._filled == self.window:
            self.check()

    def check(self) -> None:
        """Read the recorded scalars back (one host synchronisation) and raise on the first non-finite one."""
        filled, buffer = self._filled, self._buffer
        self._filled = 0
        if buffer is None or filled == 0:
            return
        finite = torch.isfinite(buffer[:filled])
        if bool(finite.all()):
            return
        bad_rows = (~finite).any(dim=1).nonzero().flatten().tolist()
        row = int(bad_rows[0])
        where = self._where[row]
        assert where is not None
        step, epoch, batch_idx = where
        tensors = [name for name, ok in zip(self.names, finite[row].tolist(), strict=True) if not ok]
        message = (
            f"Non-finite {', '.join(tensors)} (NaN or Inf) at training step {step} (epoch {epoch}, batch {batch_idx})."
        )
        raise NonFiniteError(message + (f" {self.hint}" if self.hint else ""))
