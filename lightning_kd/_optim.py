"""Adding a loss's own parameters (CTKD's temperature) to optimizers that were built without them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import lightning.pytorch as pl
from torch import nn

__all__ = ["attach_parameters"]


def attach_parameters(trainer: pl.Trainer, parameters: Iterable[nn.Parameter]) -> int:
    """Add ``parameters`` to the trainer's first optimizer as one new parameter group.

    The group takes the optimizer's defaults (its learning rate and weight decay: CTKD trains its temperature
    with the student's). Parameters already in an optimizer are skipped. Learning-rate schedulers of that
    optimizer learn of the group, so it follows the same schedule (from the point the first group is at: a
    warm-up that already lowered the rates lowers the new group's too). Call it after the optimizers exist and
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
    first = optimizer.param_groups[0]
    optimizer.add_param_group({"params": new})
    group = optimizer.param_groups[-1]
    base_lr = group["lr"]
    group["initial_lr"] = base_lr
    if first.get("initial_lr"):
        # A scheduler may already have moved the learning rates (a warm-up's LinearLR starts at a fraction of
        # them): the new group starts at the same point of the schedule. Chainable schedulers then scale it
        # from there like the others, instead of from the full rate.
        group["lr"] = base_lr * first["lr"] / first["initial_lr"]
    for config in trainer.lr_scheduler_configs:
        for scheduler in _with_nested(config.scheduler):
            if getattr(scheduler, "optimizer", None) is optimizer and isinstance(
                getattr(scheduler, "base_lrs", None), list
            ):
                scheduler.base_lrs.append(group["initial_lr"])
                last = getattr(scheduler, "_last_lr", None)
                if isinstance(last, list):
                    last.append(group["lr"])
    return len(new)


def _with_nested(scheduler: Any) -> Iterator[Any]:
    """A scheduler and those it drives (SequentialLR's and ChainedScheduler's ``_schedulers``), recursively."""
    yield scheduler
    for inner in getattr(scheduler, "_schedulers", None) or ():
        yield from _with_nested(inner)
