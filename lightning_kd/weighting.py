"""The weights of a distillation objective and their schedule: one definition, used everywhere.

:class:`LossWeights` holds the cross-entropy weight, the distillation weight and DKD's linear warm-up of the
distillation weight. A :class:`~lightning_kd.DistillationLoss` carries its default weights; the
:class:`~lightning_kd.DistillationModule`, the :class:`~lightning_kd.KnowledgeDistillation` callback and the
arms of an ablation each hold their own copy (:meth:`LossWeights.override`), so one loss object can serve
several of them with different weights and is never changed by any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_kd._validation import check_non_negative_float, check_non_negative_int

__all__ = ["LossWeights", "kd_warmup"]


def kd_warmup(epoch: int, warmup_epochs: int) -> float:
    """DKD's linear warm-up of the distillation weight: ``min(epoch / warmup_epochs, 1)``, epochs from 1.

    Example:
        >>> [kd_warmup(e, 20) for e in (1, 10, 20, 30)]
        [0.05, 0.5, 1.0, 1.0]
        >>> kd_warmup(1, 0)
        1.0
    """
    return 1.0 if warmup_epochs <= 0 else min(epoch / warmup_epochs, 1.0)


@dataclass(frozen=True)
class LossWeights:
    r"""Weights of :math:`\mathcal{L} = w_{CE}\,\mathrm{CE} + w_{KD}\cdot\mathrm{warmup}(e)\cdot\mathcal{L}_{KD}`.

    Attributes:
        ce_weight: Weight of the cross-entropy on the ground truth (0 disables it).
        kd_weight: Weight of the distillation parts.
        kd_warmup_epochs: Ramp the distillation weight linearly over this many epochs (DKD uses 20; 0: none).

    Raises:
        ValueError: For a negative or non-finite weight, or a negative warm-up.

    Example:
        >>> weights = LossWeights(ce_weight=1.0, kd_weight=2.0, kd_warmup_epochs=4)
        >>> weights.kd_scale(epoch=2), weights.override(kd_weight=0.5).kd_weight, weights.kd_weight
        (0.5, 0.5, 2.0)
    """

    ce_weight: float = 1.0
    kd_weight: float = 1.0
    kd_warmup_epochs: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ce_weight", check_non_negative_float("ce_weight", self.ce_weight))
        object.__setattr__(self, "kd_weight", check_non_negative_float("kd_weight", self.kd_weight))
        check_non_negative_int("kd_warmup_epochs", self.kd_warmup_epochs)

    def kd_scale(self, epoch: int) -> float:
        """The warm-up factor of the distillation weight in ``epoch`` (counted from 1)."""
        return kd_warmup(epoch, self.kd_warmup_epochs)

    def override(
        self,
        *,
        ce_weight: float | None = None,
        kd_weight: float | None = None,
        kd_warmup_epochs: int | None = None,
    ) -> LossWeights:
        """A copy with the given values replaced (``None`` keeps a value); this object is unchanged."""
        if ce_weight is None and kd_weight is None and kd_warmup_epochs is None:
            return self
        return LossWeights(
            ce_weight=self.ce_weight if ce_weight is None else ce_weight,
            kd_weight=self.kd_weight if kd_weight is None else kd_weight,
            kd_warmup_epochs=self.kd_warmup_epochs if kd_warmup_epochs is None else kd_warmup_epochs,
        )
