"""Divergences as thin modules: they hold and validate hyperparameters and call the functional core.

Every divergence has the same call signature, so :class:`lightning_kd.DistillationLoss` can compose any of
them with any pre-process and temperature policy::

    divergence(student_logits, teacher_logits, target=..., temperature=...,
               student_logits_strong=..., teacher_logits_strong=...) -> dict[str, Tensor]

Class attributes declare what a divergence needs: ``uses_temperature``, ``needs_target``, ``needs_views``
(a weak and a strong augmented view, MLKD) and ``applies_preprocess`` (it applies the Z-score itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

from lightning_kd._names import unknown_name_error
from lightning_kd.losses import functional as LF

__all__ = ["DIST", "DIVERGENCES", "DKD", "KD", "MLKD", "TTM", "Divergence", "create_divergence"]


def _check_non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"Expected argument `{name}` to be a non-negative float, but got {value!r}.")
    return float(value)


class Divergence(nn.Module):
    """Base class of the divergences composed by :class:`lightning_kd.DistillationLoss`."""

    uses_temperature: ClassVar[bool] = True
    needs_target: ClassVar[bool] = False
    needs_views: ClassVar[bool] = False
    applies_preprocess: ClassVar[bool] = False

    def forward(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        *,
        target: Tensor | None = None,
        temperature: float | Tensor = 1.0,
        student_logits_strong: Tensor | None = None,
        teacher_logits_strong: Tensor | None = None,
        standardize_logits: bool = False,
        check_finite: bool = False,
    ) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class KD(Divergence):
    """Hinton KD, :func:`~lightning_kd.losses.functional.kd_kl`. Parts: ``{"kd"}``.

    Example:
        >>> import torch
        >>> KD()(torch.zeros(2, 3), torch.zeros(2, 3), temperature=4.0)
        {'kd': tensor(0.)}
    """

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        loss = LF.kd_kl(
            student_logits,
            teacher_logits,
            temperature=kwargs.get("temperature", 1.0),
            check_finite=kwargs.get("check_finite", False),
        )
        return {"kd": loss}


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

    def __init__(self, alpha: float = 1.0, beta: float = 8.0) -> None:
        super().__init__()
        self.alpha = _check_non_negative("alpha", alpha)
        self.beta = _check_non_negative("beta", beta)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        target = kwargs.get("target")
        if target is None:
            raise ValueError("Expected argument `target` to be a tensor of class indices for DKD, but got None.")
        return LF.dkd(
            student_logits,
            teacher_logits,
            target,
            alpha=self.alpha,
            beta=self.beta,
            temperature=kwargs.get("temperature", 1.0),
            check_finite=kwargs.get("check_finite", False),
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"


class MLKD(Divergence):
    """Multi-level logit distillation, :func:`~lightning_kd.losses.functional.mlkd`.

    Needs a weak and a strong augmented view of every sample (a DataModule with ``strong_aug=True``).
    Parts: ``{"kd_weak", "kd_strong", "batch", "class"}``.

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

    def __init__(self, official: bool = True) -> None:
        super().__init__()
        self.official = bool(official)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        student_strong = kwargs.get("student_logits_strong")
        teacher_strong = kwargs.get("teacher_logits_strong")
        if student_strong is None or teacher_strong is None:
            raise ValueError(
                "Expected arguments `student_logits_strong` and `teacher_logits_strong` (logits of a strongly"
                " augmented view) for MLKD, but got None. Use a DataModule with `strong_aug=True`, whose"
                " batches are ((x_weak, x_strong), y)."
            )
        return LF.mlkd(
            student_logits,
            teacher_logits,
            student_strong,
            teacher_strong,
            temperature=kwargs.get("temperature", 1.0),
            official=self.official,
            standardize_logits=kwargs.get("standardize_logits", False),
            check_finite=kwargs.get("check_finite", False),
        )

    def extra_repr(self) -> str:
        return f"official={self.official}"


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

    def __init__(self, beta: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__()
        self.beta = _check_non_negative("beta", beta)
        self.gamma = _check_non_negative("gamma", gamma)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        return LF.dist(
            student_logits,
            teacher_logits,
            beta=self.beta,
            gamma=self.gamma,
            temperature=kwargs.get("temperature", 1.0),
            check_finite=kwargs.get("check_finite", False),
        )

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}"


class TTM(Divergence):
    """Transformed teacher matching (and WTTM with ``weighted=True``), :func:`~lightning_kd.losses.functional.ttm`.

    TTM takes no temperature: its exponent ``gamma`` plays that role (``gamma = 1/T``). Parts: ``{"ttm"}``.

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

    def __init__(self, gamma: float = 0.25, weighted: bool = False) -> None:
        super().__init__()
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0:
            raise ValueError(f"Expected argument `gamma` to be a positive float, but got {gamma!r}.")
        self.gamma = float(gamma)
        self.weighted = bool(weighted)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        loss = LF.ttm(
            student_logits,
            teacher_logits,
            gamma=self.gamma,
            weighted=self.weighted,
            check_finite=kwargs.get("check_finite", False),
        )
        return {"wttm" if self.weighted else "ttm": loss}

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, weighted={self.weighted}"


def _wttm(**kwargs: Any) -> TTM:
    return TTM(weighted=True, **kwargs)


#: Divergences by name: the names a recipe or ``DistillationLoss(divergence=...)`` accepts.
DIVERGENCES: dict[str, Callable[..., Divergence]] = {
    "kd": KD,
    "dkd": DKD,
    "mlkd": MLKD,
    "dist": DIST,
    "ttm": TTM,
    "wttm": _wttm,
}


def create_divergence(name: str, **kwargs: Any) -> Divergence:
    """Build a divergence by name with its hyperparameters.

    Example:
        >>> create_divergence("dkd", alpha=1.0, beta=8.0)
        DKD(alpha=1.0, beta=8.0)
        >>> create_divergence("kdd")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `divergence` to be one of ..., but got 'kdd'. Did you mean 'kd' or ...?
    """
    if name not in DIVERGENCES:
        raise unknown_name_error("divergence", name, DIVERGENCES)
    return DIVERGENCES[name](**kwargs)
