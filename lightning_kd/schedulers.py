"""Learning-rate schedules that a LightningCLI config can name but torch cannot express there by itself."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

from lightning_kd._validation import check_fraction, check_min_int, check_non_negative_float, check_positive_int

__all__ = ["WarmupCosineLR"]


class WarmupCosineLR(SequentialLR):
    """A linear warm-up, then cosine annealing: torch's ``SequentialLR`` of ``LinearLR`` and ``CosineAnnealingLR``.

    For ``warmup_epochs`` steps the rate grows linearly from ``warmup_start_factor`` times the optimizer's rate
    to the full rate (``LinearLR``); then it follows a cosine from the full rate down to ``eta_min`` over the
    remaining ``max_epochs - warmup_epochs`` steps (``CosineAnnealingLR``). This is the schedule of the DeiT
    recipes (AdamW, 20 warm-up epochs from a factor 0.001, cosine to 5e-6 over 300 epochs).

    Why a class: LightningCLI builds a model's scheduler as ``class_path(optimizer, **init_args)``, but torch's
    ``SequentialLR`` takes schedulers that are already built on that optimizer, and a config cannot build them
    (jsonargparse has no way to pass the optimizer to schedulers nested in another's arguments). This subclass
    builds both from plain numbers, so ``class_path: lightning_kd.schedulers.WarmupCosineLR`` works in a recipe;
    it is a ``SequentialLR`` in every other respect (stepping, ``state_dict``, resuming).

    Args:
        optimizer: The optimizer whose rates it schedules.
        warmup_epochs: Length of the linear warm-up, in scheduler steps (epochs for the recipes).
        max_epochs: Total length of the schedule; the cosine spans ``max_epochs - warmup_epochs`` steps.
        warmup_start_factor: The fraction of the rate the warm-up starts from, in (0, 1).
        eta_min: The rate at the end of the cosine.
        last_epoch: As in torch's schedulers (``-1``: start).

    Raises:
        ValueError: On a bad argument, e.g. ``max_epochs <= warmup_epochs``.

    Example:
        >>> import torch
        >>> optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=5e-4)
        >>> scheduler = WarmupCosineLR(optimizer, warmup_epochs=2, max_epochs=6, eta_min=5e-6)
        >>> rates = []
        >>> for _ in range(6):
        ...     rates.append(optimizer.param_groups[0]["lr"])
        ...     optimizer.step()
        ...     scheduler.step()
        >>> [round(r * 1e6, 2) for r in rates]  # 500 x (0.001, 0.5005), then 5 + 495 (1 + cos(pi k / 4)) / 2
        [0.5, 250.25, 500.0, 427.51, 252.5, 77.49]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_epochs: int,
        max_epochs: int,
        warmup_start_factor: float = 0.001,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        warmup_epochs = check_positive_int("warmup_epochs", warmup_epochs)
        max_epochs = check_min_int("max_epochs", max_epochs, warmup_epochs + 1)
        start = check_fraction("warmup_start_factor", warmup_start_factor)
        eta_min = check_non_negative_float("eta_min", eta_min)
        warmup = LinearLR(optimizer, start_factor=start, end_factor=1.0, total_iters=warmup_epochs)
        cosine = CosineAnnealingLR(optimizer, T_max=max_epochs - warmup_epochs, eta_min=eta_min)
        super().__init__(optimizer, [warmup, cosine], milestones=[warmup_epochs], last_epoch=last_epoch)
        self.warmup_epochs = warmup_epochs
        self.max_epochs = max_epochs
