"""Adding a loss's own parameters (CTKD's temperature) to optimizers that were built without them."""

from __future__ import annotations

from collections.abc import Iterable

import lightning.pytorch as pl
from torch import nn

__all__ = ["attach_parameters"]


def attach_parameters(trainer: pl.Trainer, parameters: Iterable[nn.Parameter]) -> int:
    """Add ``parameters`` to the trainer's first optimizer as one new parameter group.

    The group takes the optimizer's defaults (its learning rate and weight decay: CTKD trains its temperature
    with the student's). Parameters already in an optimizer are skipped. Learning-rate schedulers of that
    optimizer learn of the group, so it follows the same schedule. Call it after the optimizers exist and
    before a checkpoint's optimizer state is restored (``on_fit_start`` is such a place), so resuming finds
    the same groups.

    Returns:
        The number of parameters added.
    """
    params = [p for p in parameters if p.requires_grad]
    if not params or not trainer.optimizers:
        return 0
    present = {id(p) for opt in trainer.optimizers for group in opt.param_groups for p in group["params"]}
    new = [p for p in params if id(p) not in present]
    if not new:
        return 0
    optimizer = trainer.optimizers[0]
    optimizer.add_param_group({"params": new})
    group = optimizer.param_groups[-1]
    group.setdefault("initial_lr", group["lr"])
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if getattr(scheduler, "optimizer", None) is optimizer and hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs.append(group["initial_lr"])
            last = getattr(scheduler, "_last_lr", None)
            if isinstance(last, list):
                last.append(group["lr"])
    return len(new)
