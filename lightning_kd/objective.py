"""The distillation objective: pre-process ∘ temperature policy ∘ divergence, plus cross-entropy.

:class:`DistillationLoss` composes the three independent choices of a logit distillation method, so every
combination is expressible without new code:

==================  =========================================================================
method              ``DistillationLoss(...)``
==================  =========================================================================
KD                  ``divergence="kd", temperature=4.0``
KD + Z-score        ``divergence="kd", preprocess="zscore", temperature=2.0``
CTKD (+ Z-score)    ``divergence="kd", temperature=CurriculumTemperature()`` (+ ``preprocess="zscore"``)
max-logit           ``divergence="kd", preprocess="zscore", temperature=MaxLogitTemperature()``
DKD (+ Z-score)     ``divergence=DKD(alpha=1, beta=8), temperature=4.0`` (+ ``preprocess="zscore"``)
MLKD (+ Z-score)    ``divergence="mlkd", temperature=4.0`` (+ ``preprocess="zscore"``)
DIST, TTM, WTTM     ``divergence="dist"``; ``divergence=TTM(gamma=0.25), temperature=None``
==================  =========================================================================

The named settings of these methods are data in :mod:`lightning_kd.presets` (``create_loss("kd_z")``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from lightning_kd._precision import full_precision, upcast
from lightning_kd._validation import check_logits_pair, check_target, unknown_name_error
from lightning_kd.logits import PREPROCESSES, standardize
from lightning_kd.losses.base import RESERVED_PART_NAMES, Divergence, DivergenceInputs, create_divergence
from lightning_kd.temperature import FixedTemperature, TemperaturePolicy
from lightning_kd.weighting import LossWeights

__all__ = ["DistillationLoss", "DistillationOutput", "build_loss"]


@dataclass
class DistillationOutput:
    """What :class:`DistillationLoss` returns.

    Attributes:
        loss: The total, the sum of ``parts``.
        parts: Named, weighted parts: ``"ce"`` (when a target was given and ``ce_weight > 0``) and the
            divergence's parts (``"kl"`` for KD; ``"tckd"``/``"nckd"`` for DKD; ...), each already multiplied
            by its weight.
        kd: The sum of the distillation parts (everything but ``"ce"``).
        temperature: The temperature in use: a float, a scalar tensor or a (batch, 1) tensor (detached).
        extra: Scalars of the temperature policy worth logging (e.g. CTKD's ``lambda``).
        kd_scale: The factor the distillation parts were scaled with (e.g. the warm-up's).
    """

    loss: Tensor
    parts: dict[str, Tensor]
    kd: Tensor
    temperature: float | Tensor | None
    extra: dict[str, float] = field(default_factory=dict)
    kd_scale: float = 1.0


class DistillationLoss(nn.Module):
    r"""A logit distillation objective: pre-process ∘ temperature ∘ divergence, weighted, plus CE.

    .. math:: \mathcal{L} = w_{CE}\,\mathrm{CE}(z, y) + w_{KD}\cdot s \cdot
        \mathcal{D}\big(P(z), P(v); T(P(z), P(v))\big)

    with student logits :math:`z`, teacher logits :math:`v`, pre-process :math:`P` (identity, the Z-score of
    :func:`~lightning_kd.logits.standardize`, or one of its halves), temperature policy :math:`T`, divergence
    :math:`\mathcal{D}` and a schedule factor :math:`s` (e.g. a warm-up) given per call.

    The weights are this loss's defaults (:attr:`weights`); a :class:`~lightning_kd.DistillationModule` or
    callback built with other ``ce_weight``/``kd_weight`` keeps its own copy and passes it with every call,
    so one loss object can serve several users and is never changed by them.

    Args:
        divergence: A :class:`~lightning_kd.losses.Divergence` or its registered name (``"kd"``, ``"dkd"``,
            ``"mlkd"``, ``"dist"``, ``"ttm"``, ``"wttm"``).
        preprocess: ``"none"``, ``"zscore"`` (logit standardization), ``"center"``, ``"scale"`` (its two
            halves), or a callable on logits.
        temperature: A positive float, a :class:`~lightning_kd.temperature.TemperaturePolicy`, or ``None`` for
            divergences that take no temperature (TTM/WTTM).
        ce_weight: Weight of the cross-entropy on the ground truth (0 disables it).
        kd_weight: Weight of the distillation parts.
        kd_warmup_epochs: Ramp the distillation weight linearly over this many epochs (see
            :class:`~lightning_kd.weighting.LossWeights`).
        divergence_kwargs: Hyperparameters when ``divergence`` is a name, e.g. ``{"alpha": 1, "beta": 8}``.

    Raises:
        ValueError: For an unknown divergence or pre-process name, negative or non-finite weights, or a
            temperature given to a divergence that takes none.

    Example:
        >>> import torch
        >>> loss = DistillationLoss("kd", preprocess="zscore", temperature=2.0, ce_weight=0.1, kd_weight=9.0)
        >>> student, teacher = torch.randn(8, 10, requires_grad=True), torch.randn(8, 10)
        >>> out = loss(student, teacher, torch.randint(0, 10, (8,)))
        >>> sorted(out.parts)
        ['ce', 'kl']
        >>> out.loss.backward()
    """

    def __init__(
        self,
        divergence: str | Divergence = "kd",
        *,
        preprocess: str | Callable[[Tensor], Tensor] = "none",
        temperature: float | TemperaturePolicy | None = 4.0,
        ce_weight: float = 1.0,
        kd_weight: float = 1.0,
        kd_warmup_epochs: int = 0,
        divergence_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(divergence, str):
            divergence = create_divergence(divergence, **dict(divergence_kwargs or {}))
        elif divergence_kwargs:
            raise ValueError(
                "Expected argument `divergence_kwargs` to be empty when `divergence` is an object, but got"
                f" {dict(divergence_kwargs)}. Set the hyperparameters on the object."
            )
        if not isinstance(divergence, Divergence):
            raise TypeError(
                "Expected argument `divergence` to be a name or a lightning_kd.losses.Divergence, but got"
                f" {type(divergence).__name__}."
            )
        self.divergence = divergence

        self._preprocess: Callable[[Tensor], Tensor]
        if isinstance(preprocess, str):
            if preprocess not in PREPROCESSES:
                raise unknown_name_error("preprocess", preprocess, PREPROCESSES)
            self.preprocess_name = preprocess
            self._preprocess = PREPROCESSES[preprocess]
        elif callable(preprocess):
            self.preprocess_name = getattr(preprocess, "__name__", "custom")
            self._preprocess = preprocess
        else:
            raise TypeError(
                f"Expected argument `preprocess` to be a name or a callable, but got {type(preprocess).__name__}."
            )

        self.temperature: TemperaturePolicy | None
        if temperature is None:
            if divergence.uses_temperature:
                raise ValueError(
                    f"Expected argument `temperature` to be a positive float or a TemperaturePolicy for"
                    f" {type(divergence).__name__}, but got None."
                )
            self.temperature = None
        elif not divergence.uses_temperature:
            raise ValueError(
                f"Expected argument `temperature` to be None for {type(divergence).__name__}, which takes no"
                f" temperature, but got {temperature!r}."
            )
        elif isinstance(temperature, TemperaturePolicy):
            self.temperature = temperature
        else:
            self.temperature = FixedTemperature(temperature)  # validates the value

        self.weights = LossWeights(ce_weight=ce_weight, kd_weight=kd_weight, kd_warmup_epochs=kd_warmup_epochs)

    @property
    def ce_weight(self) -> float:
        """The default cross-entropy weight (``weights.ce_weight``)."""
        return self.weights.ce_weight

    @property
    def kd_weight(self) -> float:
        """The default distillation weight (``weights.kd_weight``)."""
        return self.weights.kd_weight

    @property
    def needs_views(self) -> bool:
        """Whether the divergence needs a weak and a strong view of each sample (MLKD)."""
        return self.divergence.needs_views

    @property
    def needs_target(self) -> bool:
        """Whether the divergence needs the ground truth (DKD)."""
        return self.divergence.needs_target

    def set_epoch(self, epoch: int) -> None:
        """Forward the training epoch (counted from 1) to the temperature policy."""
        if self.temperature is not None:
            self.temperature.set_epoch(epoch)

    def observe(self, out: DistillationOutput) -> None:
        """Let the temperature policy look at a logging step's temperature (see ``TemperaturePolicy.observe``)."""
        if self.temperature is not None:
            self.temperature.observe(out.temperature)

    def forward(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        target: Tensor | None = None,
        *,
        student_logits_strong: Tensor | None = None,
        teacher_logits_strong: Tensor | None = None,
        weights: LossWeights | None = None,
        kd_scale: float = 1.0,
        check_finite: bool | None = None,
    ) -> DistillationOutput:
        """Compute the weighted parts and their sum.

        Args:
            student_logits: Student logits, shape (batch, classes).
            teacher_logits: Teacher logits, same shape (no gradient is taken through them).
            target: Ground-truth class indices, shape (batch,); needed for CE and DKD.
            student_logits_strong: Student logits on a strongly augmented view (MLKD only).
            teacher_logits_strong: Teacher logits on the strong view (MLKD only).
            weights: The weights to use; default :attr:`weights`.
            kd_scale: A factor on the distillation parts, e.g. a warm-up from 0 to 1.
            check_finite: ``True``: raise on NaN/Inf logits and check value ranges (host synchronisations);
                ``False``: no value checks; ``None``: the functional core's default (CPU values only).

        Returns:
            A :class:`DistillationOutput`.
        """
        weights = self.weights if weights is None else weights
        check_logits_pair(student_logits, teacher_logits, check_finite=check_finite)
        if target is not None:
            check_target(target, *student_logits.shape, check_values=check_finite)
        elif self.divergence.needs_target:
            raise ValueError(
                f"Expected argument `target` to be a tensor of class indices for {type(self.divergence).__name__},"
                " but got None."
            )
        if (student_logits_strong is not None or teacher_logits_strong is not None) and not self.needs_views:
            raise ValueError(
                f"Expected no strong-view logits for {type(self.divergence).__name__}, which uses a single view,"
                " but got `student_logits_strong`/`teacher_logits_strong`. Use a DataModule without"
                " `strong_aug` (its cross-entropy on the strong view would silently change the objective)."
            )
        teacher_logits = teacher_logits.detach()
        if teacher_logits_strong is not None:
            teacher_logits_strong = teacher_logits_strong.detach()

        parts: dict[str, Tensor] = {}
        if target is not None and weights.ce_weight > 0:
            ce_target = target.long()  # cross_entropy needs int64 indices; check_target accepts any integer dtype
            with full_precision(student_logits):
                ce = F.cross_entropy(upcast(student_logits), ce_target)
                if student_logits_strong is not None:
                    ce = ce + F.cross_entropy(upcast(student_logits_strong), ce_target)
            parts["ce"] = weights.ce_weight * ce

        student_in, teacher_in = self._preprocess(student_logits), self._preprocess(teacher_logits)
        temperature = None
        if self.temperature is not None:
            temperature = self.temperature(student_in, teacher_in, standardized=self._preprocess is standardize)
        inputs = DivergenceInputs(
            student_in,
            teacher_in,
            target=target,
            temperature=1.0 if temperature is None else temperature,
            student_logits_strong=student_logits_strong,
            teacher_logits_strong=teacher_logits_strong,
            preprocess=self._preprocess,
            check_finite=check_finite,
        )
        if self.divergence.applies_preprocess:
            inputs = inputs.replace(student_logits=student_logits, teacher_logits=teacher_logits)
        divergence_parts = self.divergence.compute(inputs)
        reserved = RESERVED_PART_NAMES.intersection(divergence_parts)
        if reserved:
            raise ValueError(
                f"Expected the parts of {type(self.divergence).__name__} not to use the objective's names"
                f" {sorted(RESERVED_PART_NAMES)}, but got {sorted(reserved)}: rename them."
            )
        weight = weights.kd_weight * kd_scale
        kd: Tensor | None = None
        for name, value in divergence_parts.items():
            parts[name] = weight * value
            kd = parts[name] if kd is None else kd + parts[name]
        if kd is None:
            raise ValueError(f"Expected {type(self.divergence).__name__} to return at least one part, but got none.")
        loss = kd + parts["ce"] if "ce" in parts else kd
        shown = temperature.detach() if isinstance(temperature, Tensor) else temperature
        extra = self.temperature.log_values() if self.temperature is not None else {}
        return DistillationOutput(loss=loss, parts=parts, kd=kd, temperature=shown, extra=extra, kd_scale=kd_scale)

    def extra_repr(self) -> str:
        w = self.weights
        warmup = f", kd_warmup_epochs={w.kd_warmup_epochs}" if w.kd_warmup_epochs else ""
        return f"preprocess={self.preprocess_name!r}, ce_weight={w.ce_weight}, kd_weight={w.kd_weight}{warmup}"


def build_loss(
    loss: DistillationLoss | str,
    loss_kwargs: Mapping[str, Any] | None = None,
    *,
    ce_weight: float | None = None,
    kd_weight: float | None = None,
    kd_warmup_epochs: int | None = None,
) -> tuple[DistillationLoss, LossWeights]:
    """The loss a :class:`~lightning_kd.DistillationModule` or callback is given, and the weights it uses.

    ``loss`` is an object, or a divergence name with ``loss_kwargs``; ``ce_weight``, ``kd_weight`` and
    ``kd_warmup_epochs``, when given, override the loss's default :attr:`~DistillationLoss.weights` in the
    returned weights. The loss object itself is never changed.

    Example:
        >>> loss, weights = build_loss("dkd", {"divergence_kwargs": {"alpha": 1.0, "beta": 8.0}}, kd_weight=2.0)
        >>> weights.kd_weight, loss.weights.kd_weight
        (2.0, 1.0)
    """
    if isinstance(loss, str):
        loss = DistillationLoss(loss, **dict(loss_kwargs or {}))
    elif loss_kwargs:
        raise ValueError(
            f"Expected argument `loss_kwargs` to be empty when `loss` is an object, but got {dict(loss_kwargs)}."
            " Configure the object instead."
        )
    if not isinstance(loss, DistillationLoss):
        raise TypeError(
            f"Expected argument `loss` to be a DistillationLoss or a divergence name, but got {type(loss).__name__}."
        )
    weights = loss.weights.override(ce_weight=ce_weight, kd_weight=kd_weight, kd_warmup_epochs=kd_warmup_epochs)
    return loss, weights
