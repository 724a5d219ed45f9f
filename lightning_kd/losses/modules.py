"""Divergences as thin modules: they hold and validate hyperparameters and call the functional core.

Each is registered by name (``@register_divergence``) and implements :meth:`~lightning_kd.losses.Divergence.compute`
on :class:`~lightning_kd.losses.DivergenceInputs`; the call signature is the base class's (see
:mod:`lightning_kd.losses.base`).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from lightning_kd._validation import check_non_negative_float, check_positive_float
from lightning_kd.losses import functional as LF
from lightning_kd.losses.base import Divergence, DivergenceInputs, register_divergence

__all__ = ["DIST", "DKD", "KD", "MLKD", "TTM"]


@register_divergence("kd")
class KD(Divergence):
    """Hinton KD, :func:`~lightning_kd.losses.functional.kd_kl`. Parts: ``{"kl"}``.

    (``"kd"`` is the objective's name for the sum of a divergence's parts, ``train/loss_kd``, so the single
    part of KD has a name of its own.)

    Example:
        >>> import torch
        >>> KD()(torch.zeros(2, 3), torch.zeros(2, 3), temperature=4.0)
        {'kl': tensor(0.)}
    """

    parts: ClassVar[tuple[str, ...]] = ("kl",)

    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:
        loss = LF.kd_kl(
            inputs.student_logits,
            inputs.teacher_logits,
            temperature=inputs.temperature,
            check_finite=inputs.check_finite,
        )
        return {"kl": loss}


@register_divergence("dkd")
class DKD(Divergence):
    """Decoupled KD, :func:`~lightning_kd.losses.functional.dkd`. Parts: ``{"tckd", "nckd"}``.

    Args:
        alpha: Weight of the target-class term.
        beta: Weight of the non-target-class term.

    Example:
        >>> import torch
        >>> parts = DKD(alpha=1.0, beta=8.0)(torch.randn(4, 5), torch.randn(4, 5), target=torch.tensor([0, 1, 2, 3]),
        ...                                  temperature=4.0)
        >>> sorted(parts)
        ['nckd', 'tckd']
    """

    needs_target: ClassVar[bool] = True
    parts: ClassVar[tuple[str, ...]] = ("tckd", "nckd")

    def __init__(self, alpha: float = 1.0, beta: float = 8.0) -> None:
        super().__init__()
        self.alpha = check_non_negative_float("alpha", alpha)
        self.beta = check_non_negative_float("beta", beta)

    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:
        if inputs.target is None:
            raise ValueError("Expected argument `target` to be a tensor of class indices for DKD, but got None.")
        return LF.dkd(
            inputs.student_logits,
            inputs.teacher_logits,
            inputs.target,
            alpha=self.alpha,
            beta=self.beta,
            temperature=inputs.temperature,
            check_finite=inputs.check_finite,
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"


@register_divergence("mlkd")
class MLKD(Divergence):
    """Multi-level logit distillation, :func:`~lightning_kd.losses.functional.mlkd`.

    Needs a weak and a strong augmented view of every sample (a DataModule with ``strong_aug=True``). It
    receives raw logits and applies the objective's pre-process itself (``applies_preprocess``), where the
    chosen numerics say. Parts: ``{"kd_weak", "kd_strong", "batch", "class"}``.

    Args:
        official: Reproduce the released code's numerics (default) or follow the paper; see
            :func:`~lightning_kd.losses.functional.mlkd`.

    Example:
        >>> import torch
        >>> s, t = torch.randn(4, 5), torch.randn(4, 5)
        >>> sorted(MLKD()(s, t, student_logits_strong=s, teacher_logits_strong=t, temperature=4.0))
        ['batch', 'class', 'kd_strong', 'kd_weak']
    """

    needs_views: ClassVar[bool] = True
    applies_preprocess: ClassVar[bool] = True
    parts: ClassVar[tuple[str, ...]] = ("kd_weak", "kd_strong", "batch", "class")

    def __init__(self, official: bool = True) -> None:
        super().__init__()
        self.official = bool(official)

    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:
        if inputs.student_logits_strong is None or inputs.teacher_logits_strong is None:
            raise ValueError(
                "Expected arguments `student_logits_strong` and `teacher_logits_strong` (logits of a strongly"
                " augmented view) for MLKD, but got None. Use a DataModule with `strong_aug=True`, whose"
                " batches are ((x_weak, x_strong), y)."
            )
        return LF.mlkd(
            inputs.student_logits,
            inputs.teacher_logits,
            inputs.student_logits_strong,
            inputs.teacher_logits_strong,
            temperature=inputs.temperature,
            official=self.official,
            preprocess=inputs.preprocess,
            check_finite=inputs.check_finite,
        )

    def extra_repr(self) -> str:
        return f"official={self.official}"


@register_divergence("dist")
class DIST(Divergence):
    """DIST, :func:`~lightning_kd.losses.functional.dist`. Parts: ``{"inter", "intra"}``.

    Args:
        beta: Weight of the inter-class relation.
        gamma: Weight of the intra-class relation.

    Example:
        >>> import torch
        >>> sorted(DIST()(torch.randn(4, 5), torch.randn(4, 5), temperature=1.0))
        ['inter', 'intra']
    """

    parts: ClassVar[tuple[str, ...]] = ("inter", "intra")

    def __init__(self, beta: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__()
        self.beta = check_non_negative_float("beta", beta)
        self.gamma = check_non_negative_float("gamma", gamma)

    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:
        return LF.dist(
            inputs.student_logits,
            inputs.teacher_logits,
            beta=self.beta,
            gamma=self.gamma,
            temperature=inputs.temperature,
            check_finite=inputs.check_finite,
        )

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}"


@register_divergence("ttm")
@register_divergence("wttm", weighted=True)
class TTM(Divergence):
    """Transformed teacher matching (and WTTM with ``weighted=True``), :func:`~lightning_kd.losses.functional.ttm`.

    TTM takes no temperature: its exponent ``gamma`` plays that role (``gamma = 1/T``). Parts: ``{"ttm"}``
    (``{"wttm"}`` when weighted). Registered as ``"ttm"`` and as ``"wttm"`` (``weighted=True``).

    Args:
        gamma: The power applied to the teacher's probabilities.
        weighted: WTTM's per-sample weighting.

    Example:
        >>> import torch
        >>> t = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(TTM(gamma=0.5)(0.5 * t, t)["ttm"].item(), 6)
        0.0
    """

    uses_temperature: ClassVar[bool] = False
    parts: ClassVar[tuple[str, ...]] = ("ttm", "wttm")

    def __init__(self, gamma: float = 0.25, weighted: bool = False) -> None:
        super().__init__()
        self.gamma = check_positive_float("gamma", gamma)
        self.weighted = bool(weighted)

    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:
        loss = LF.ttm(
            inputs.student_logits,
            inputs.teacher_logits,
            gamma=self.gamma,
            weighted=self.weighted,
            check_finite=inputs.check_finite,
        )
        return {"wttm" if self.weighted else "ttm": loss}

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, weighted={self.weighted}"
