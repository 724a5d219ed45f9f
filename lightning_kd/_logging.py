"""When to log diagnostics."""

from __future__ import annotations

import lightning.pytorch as pl

__all__ = ["is_logging_step"]


def is_logging_step(trainer: pl.Trainer | None) -> bool:
    """Whether this training step's values reach the logger: the first step and every
    ``Trainer(log_every_n_steps)`` steps after it.

    Diagnostics (logit statistics, temperatures, agreement) are computed and logged on these steps only: each
    ``self.log`` call costs host time, which at small batch sizes is a large part of a training step.
    """
    if trainer is None:
        return True
    every = max(1, int(getattr(trainer, "log_every_n_steps", 50)))
    return trainer.global_step == 0 or (trainer.global_step + 1) % every == 0
