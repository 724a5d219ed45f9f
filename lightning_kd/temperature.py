r"""Temperature policies: fixed, the max-logit adaptive temperature, and CTKD's curriculum temperature.

A policy maps the (pre-processed) logits of a batch to the temperature a loss uses: a float, a scalar
tensor, or a per-sample tensor of shape (batch, 1). Every loss in :mod:`lightning_kd.losses.functional`
accepts all three, so any policy composes with any temperature-taking loss.

* A fixed temperature is a plain float (:class:`FixedTemperature` wraps one where a module is needed).
* :func:`max_logit_temperature` / :class:`MaxLogitTemperature`: :math:`T_i = \frac{1+\sqrt3}{2} m_i` from
  the largest standardized logit of each sample ("Adaptive Temperature Based on Logits Correlation in
  Knowledge Distillation", Matsuyama et al.).
* :class:`CurriculumTemperature` / :class:`InstanceCurriculumTemperature`: CTKD (Li et al., AAAI 2023), a
  learnable temperature trained adversarially through a gradient-reversal layer whose strength follows a
  cosine curriculum over epochs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_kd._precision import full_precision, upcast
from lightning_kd._validation import (
    check_finite_float,
    check_logits_pair,
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
)
from lightning_kd.logits import standardize

__all__ = [
    "CurriculumTemperature",
    "FixedTemperature",
    "InstanceCurriculumTemperature",
    "MaxLogitTemperature",
    "TemperaturePolicy",
    "TemperatureRunawayError",
    "cosine_lambda",
    "gradient_reversal",
    "max_logit_temperature",
]

#: The lower bound :math:`(1+\sqrt{3})/2` of the max-logit paper's Eq. 20.
MAX_LOGIT_FACTOR = (1.0 + math.sqrt(3.0)) / 2.0


class TemperaturePolicy(nn.Module):
    """Base class of temperature policies.

    Subclasses implement :meth:`forward`, returning a float, a scalar tensor or a (batch, 1) tensor.
    :class:`~lightning_kd.DistillationLoss` calls a policy on the pre-processed logits, and says with
    ``standardized=True`` when the pre-process was the Z-score, so a policy that reads standardized logits
    (:class:`MaxLogitTemperature`) standardizes once, not twice. Policies that change with training progress
    override :meth:`set_epoch`, which the Lightning integration calls at the start of every training epoch
    (epochs counted from 1).
    """

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, *, standardized: bool = False
    ) -> Tensor | float:  # pragma: no cover
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Tell the policy which training epoch (counted from 1) starts."""

    def log_values(self) -> dict[str, float]:
        """Scalars worth logging besides the temperature itself (e.g. CTKD's lambda)."""
        return {}

    def observe(self, temperature: float | Tensor | None) -> None:
        """Look at the temperature of a logging step (reading it back from the device is allowed here).

        The Lightning integration calls it on its logging steps only. The default does nothing; the learned
        temperatures check that they are not running away (see :class:`CurriculumTemperature`).
        """


class FixedTemperature(TemperaturePolicy):
    """A constant temperature.

    Args:
        value: The temperature, positive.

    Example:
        >>> import torch
        >>> FixedTemperature(4.0)(torch.zeros(2, 3), torch.zeros(2, 3))
        4.0
    """

    def __init__(self, value: float = 4.0) -> None:
        super().__init__()
        self.value = check_positive_float("temperature", value)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, *, standardized: bool = False) -> float:
        return self.value

    def extra_repr(self) -> str:
        return f"value={self.value}"


def max_logit_temperature(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    source: Literal["both", "teacher"] = "both",
    absolute: bool = True,
    eps: float = 1e-7,
    unbiased: bool = True,
    min_temperature: float = 1e-3,
    standardized: bool = False,
) -> Tensor:
    r"""Adaptive per-sample temperature from the maximum standardized logit.

    From "Adaptive Temperature Based on Logits Correlation in Knowledge Distillation" (Matsuyama et al.):
    a second-order Taylor approximation of softmax converges when :math:`T > \frac{1+\sqrt3}{2}\max_k z_k`,
    so each sample gets

    .. math:: T_i = \frac{1+\sqrt{3}}{2} \, m_i

    where :math:`m_i` is the largest Z-score-standardized logit of sample :math:`i`. The released code takes
    :math:`m_i` as the largest *absolute* standardized logit over teacher *and* student (the default here);
    the paper's text reads as the maximum without absolute value (``absolute=False``) and its abstract as
    the teacher's alone (``source="teacher"``). The result is detached: no gradient flows through it.

    Args:
        student_logits: Student logits, shape (batch, classes).
        teacher_logits: Teacher logits, same shape.
        source: ``"both"`` takes the maximum over teacher and student, ``"teacher"`` the teacher's only.
        absolute: Use the largest absolute standardized logit.
        eps: Passed to :func:`~lightning_kd.logits.standardize`.
        unbiased: Passed to :func:`~lightning_kd.logits.standardize`.
        min_temperature: Lower clamp, keeping constant logit rows (all standardized logits 0) finite.
        standardized: The logits are already Z-score standardized (e.g. by the loss's pre-process): use them as
            they are, so they are standardized once, as in the released code.

    Returns:
        Temperatures of shape (batch, 1), detached, float32 for half-precision input.

    Raises:
        ValueError: On bad logits or an unknown ``source``.

    Example:
        >>> import torch
        >>> t = max_logit_temperature(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.0, 0.0, 9.0]]))
        >>> round(t.item(), 4)  # teacher's standardized max is 2/sqrt(3) = 1.1547
        1.5774
    """
    check_logits_pair(student_logits, teacher_logits)
    if source not in ("both", "teacher"):
        raise ValueError(f"Expected argument `source` to be 'both' or 'teacher', but got {source!r}.")
    with torch.no_grad(), full_precision(student_logits):

        def z(logits: Tensor) -> Tensor:
            return upcast(logits) if standardized else standardize(logits, eps=eps, unbiased=unbiased)

        z_teacher = z(teacher_logits)
        if absolute:
            z_teacher = z_teacher.abs()
        peak = z_teacher.amax(dim=1, keepdim=True)
        if source == "both":
            z_student = z(student_logits)
            if absolute:
                z_student = z_student.abs()
            peak = torch.maximum(peak, z_student.amax(dim=1, keepdim=True))
        return (MAX_LOGIT_FACTOR * peak).clamp_min(min_temperature)


class MaxLogitTemperature(TemperaturePolicy):
    """The max-logit adaptive temperature as a policy; see :func:`max_logit_temperature`.

    Example:
        >>> import torch
        >>> policy = MaxLogitTemperature()
        >>> policy(torch.randn(4, 10), torch.randn(4, 10)).shape
        torch.Size([4, 1])
    """

    def __init__(
        self,
        source: Literal["both", "teacher"] = "both",
        absolute: bool = True,
        eps: float = 1e-7,
        unbiased: bool = True,
    ) -> None:
        super().__init__()
        if source not in ("both", "teacher"):
            raise ValueError(f"Expected argument `source` to be 'both' or 'teacher', but got {source!r}.")
        self.source: Literal["both", "teacher"] = source
        self.absolute = absolute
        self.eps = eps
        self.unbiased = unbiased

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, *, standardized: bool = False) -> Tensor:
        return max_logit_temperature(
            student_logits,
            teacher_logits,
            source=self.source,
            absolute=self.absolute,
            eps=self.eps,
            unbiased=self.unbiased,
            standardized=standardized,
        )

    def extra_repr(self) -> str:
        return f"source={self.source!r}, absolute={self.absolute}"


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, lambda_: float) -> Tensor:
        ctx.lambda_ = lambda_
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return ctx.lambda_ * grad, None


def gradient_reversal(x: Tensor, lambda_: float) -> Tensor:
    """Identity in the forward pass; multiplies the gradient by ``lambda_`` in the backward pass.

    CTKD's gradient-reversal layer: with a negative ``lambda_`` the parameters before it ascend the loss
    that the rest of the network descends.

    Example:
        >>> import torch
        >>> x = torch.ones(2, requires_grad=True)
        >>> gradient_reversal(x, -0.5).sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000])
    """
    return _GradientReversal.apply(x, float(lambda_))


def cosine_lambda(epoch: int, *, lambda_max: float = 0.0, lambda_min: float = -1.0, decay_epochs: int = 10) -> float:
    r"""CTKD's cosine curriculum for the gradient-reversal strength.

    .. math:: \lambda(e) = \frac{\cos(\pi \min(e, L) / L) + 1}{2} (\lambda_{max} - \lambda_{min}) + \lambda_{min}

    with epochs :math:`e` counted from 1 and :math:`L` = ``decay_epochs``: :math:`\lambda` falls from
    ``lambda_max`` towards ``lambda_min``, reached at epoch :math:`L` and held after it.

    The direction is from 0 to -1 (the gradient reversal grows stronger: the curriculum goes from easy to
    hard), not the other way round. The official CTKD log of the CIFAR-100 runs prints, for epochs 1-4,
    lambda = -0.0245, -0.0955, -0.2061, -0.3455; this function gives the same values at its defaults.

    Example:
        >>> [round(cosine_lambda(e), 4) for e in (1, 2, 3, 4)]  # the official log's epochs 1-4
        [-0.0245, -0.0955, -0.2061, -0.3455]
        >>> [round(cosine_lambda(e), 4) for e in (5, 10, 20)]
        [-0.5, -1.0, -1.0]
    """
    if decay_epochs < 1:
        raise ValueError(f"Expected argument `decay_epochs` to be a positive integer, but got {decay_epochs}.")
    progress = min(max(epoch, 0), decay_epochs) / decay_epochs
    return (math.cos(math.pi * progress) + 1.0) / 2.0 * (lambda_max - lambda_min) + lambda_min


class TemperatureRunawayError(RuntimeError):
    """A learned temperature sat at a bound of its range, or became non-finite (``on_runaway="raise"``)."""


class _AdversarialTemperature(TemperaturePolicy):
    """Shared part of the CTKD policies: the curriculum, its epoch, the temperature's range and its guard."""

    epoch: Tensor

    def __init__(
        self,
        t_start: float,
        t_range: float,
        lambda_max: float,
        lambda_min: float,
        decay_epochs: int,
        patience: int = 5,
        on_runaway: Literal["warn", "raise"] = "warn",
    ) -> None:
        super().__init__()
        self.t_start = check_positive_float("t_start", t_start)
        self.t_range = check_non_negative_float("t_range", t_range)
        self.lambda_max = check_finite_float("lambda_max", lambda_max)
        self.lambda_min = check_finite_float("lambda_min", lambda_min)
        self.decay_epochs = check_positive_int("decay_epochs", decay_epochs)
        self.patience = check_positive_int("patience", patience)
        if on_runaway not in ("warn", "raise"):
            raise ValueError(f"Expected argument `on_runaway` to be 'warn' or 'raise', but got {on_runaway!r}.")
        self.on_runaway: Literal["warn", "raise"] = on_runaway
        self._at_bound = 0
        self._warned = False
        # A buffer, so the curriculum's position is saved in checkpoints and restored on resume; `_epoch` is its
        # value on the host, so reading lambda in every step reads nothing back from the device.
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self._epoch = 0
        self.register_load_state_dict_post_hook(_AdversarialTemperature._sync_epoch)

    @staticmethod
    def _sync_epoch(module: nn.Module, incompatible_keys: Any) -> None:
        if isinstance(module, _AdversarialTemperature):
            module._epoch = int(module.epoch)

    @property
    def lambda_(self) -> float:
        """The current gradient-reversal strength."""
        return cosine_lambda(
            self._epoch,
            lambda_max=self.lambda_max,
            lambda_min=self.lambda_min,
            decay_epochs=self.decay_epochs,
        )

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)
        self.epoch.fill_(self._epoch)

    def log_values(self) -> dict[str, float]:
        return {"lambda": self.lambda_}

    def observe(self, temperature: float | Tensor | None) -> None:
        """Warn once (or raise, ``on_runaway="raise"``) when the temperature runs away.

        Running away: the (mean) temperature within 1 % of the range's width of a bound of
        ``[t_start, t_start + t_range]`` for ``patience`` consecutive logging steps, or a non-finite
        temperature or parameter. CTKD users see it as a temperature pinned at its bound in the first epoch,
        and NaN losses with CTKD + DKD.
        """
        if temperature is None:
            return
        value = float(temperature.detach().float().mean()) if isinstance(temperature, Tensor) else float(temperature)
        finite = math.isfinite(value) and all(bool(torch.isfinite(p).all()) for p in self.parameters())
        low, high = self.t_start, self.t_start + self.t_range
        margin = 0.01 * self.t_range
        bound = "lower" if value <= low + margin else "upper" if value >= high - margin else None
        self._at_bound = self._at_bound + 1 if (finite and bound is not None) else 0
        if finite and self._at_bound < self.patience:
            return
        if not finite:
            what = f"The learned temperature became non-finite (T = {value}, lambda = {self.lambda_:.4g})."
        else:
            what = (
                f"The learned temperature has stayed within 1% of the {bound} bound of its range [{low:g}, {high:g}]"
                f" for {self._at_bound} consecutive logging steps (T = {value:.4g}, lambda = {self.lambda_:.4g})."
            )
        advice = (
            " The adversarial curriculum is pushing it away: try a `lambda_min` closer to 0 (e.g. -0.5, a milder"
            " gradient reversal), a smaller `t_range`, or a later end of the curriculum (`decay_epochs`)."
        )
        if self.on_runaway == "raise":
            raise TemperatureRunawayError(what + advice)
        if not self._warned:
            self._warned = True
            warnings.warn(what + advice, RuntimeWarning, stacklevel=2)

    def _squash(self, raw: Tensor) -> Tensor:
        return self.t_start + self.t_range * torch.sigmoid(gradient_reversal(raw, self.lambda_))


class CurriculumTemperature(_AdversarialTemperature):
    r"""CTKD's global curriculum temperature (Li et al., "Curriculum Temperature for Knowledge
    Distillation", AAAI 2023).

    A learnable scalar :math:`\theta` (initialised to ``init``) gives

    .. math:: T = t_{start} + t_{range} \cdot \mathrm{sigmoid}(\mathrm{GRL}(\theta, \lambda))

    (15.62 at the defaults). The gradient-reversal layer passes :math:`\lambda \cdot` grad backward, and
    :math:`\lambda` follows :func:`cosine_lambda` from ``lambda_max`` = 0 to ``lambda_min`` = -1 over
    ``decay_epochs`` epochs, so :math:`\theta` *ascends* the distillation loss with growing strength: the
    temperature is trained adversarially, easy to hard. :math:`\theta` belongs in the student's optimizer
    with the same learning rate and weight decay (as in the released code); the Lightning integration adds
    it there. Call :meth:`set_epoch` at the start of every epoch (the integration does).

    Args:
        t_start: The smallest temperature.
        t_range: The width of the temperature's range.
        lambda_max: :math:`\lambda` at epoch 0.
        lambda_min: :math:`\lambda` from epoch ``decay_epochs`` on.
        decay_epochs: Length of the cosine curriculum in epochs.
        init: Initial value of :math:`\theta`.
        patience: Logging steps the temperature may sit at a bound of its range before :meth:`observe` warns.
        on_runaway: ``"warn"`` once, or ``"raise"`` a :class:`TemperatureRunawayError`, when it runs away.

    Example:
        >>> import torch
        >>> ctkd = CurriculumTemperature()
        >>> round(ctkd(torch.zeros(2, 3), torch.zeros(2, 3)).item(), 2)
        15.62
    """

    def __init__(
        self,
        t_start: float = 1.0,
        t_range: float = 20.0,
        lambda_max: float = 0.0,
        lambda_min: float = -1.0,
        decay_epochs: int = 10,
        init: float = 1.0,
        patience: int = 5,
        on_runaway: Literal["warn", "raise"] = "warn",
    ) -> None:
        super().__init__(t_start, t_range, lambda_max, lambda_min, decay_epochs, patience, on_runaway)
        self.theta = nn.Parameter(torch.full((), float(init)))

    @property
    def value(self) -> Tensor:
        r"""The current temperature, :math:`t_{start} + t_{range}\,\mathrm{sigmoid}(\theta)` (detached).

        Example:
            >>> round(CurriculumTemperature().value.item(), 2)
            15.62
        """
        return (self.t_start + self.t_range * torch.sigmoid(self.theta)).detach()

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, *, standardized: bool = False) -> Tensor:
        return self._squash(self.theta)


class InstanceCurriculumTemperature(_AdversarialTemperature):
    r"""CTKD's instance-wise curriculum temperature: one learnable temperature per sample.

    The released CTKD code does not include this variant, so this is a documented design:

    * input: the teacher's and the student's softmax predictions (temperature 1), concatenated, shape
      (batch, 2C), **detached** — the reversed gradient trains only this module, never the student or the
      teacher through the temperature's input;
    * a two-layer MLP ``Linear(2C, hidden) -> ReLU -> Linear(hidden, 1)`` gives :math:`\theta_i`;
    * :math:`T_i = t_{start} + t_{range}\,\mathrm{sigmoid}(\mathrm{GRL}(\theta_i, \lambda))`, with the same
      gradient reversal and :func:`cosine_lambda` curriculum as :class:`CurriculumTemperature`;
    * the last layer starts at zero weight and bias ``init``, so every sample starts at the global variant's
      temperature (15.62 at the defaults) and the two variants begin identically.

    Args:
        num_classes: Number of classes C.
        hidden: Width of the hidden layer.
        t_start: The smallest temperature.
        t_range: The width of the temperature's range.
        lambda_max: :math:`\lambda` at epoch 0.
        lambda_min: :math:`\lambda` from epoch ``decay_epochs`` on.
        decay_epochs: Length of the cosine curriculum in epochs.
        init: Initial :math:`\theta_i` of every sample.
        patience: Logging steps the mean temperature may sit at a bound before :meth:`observe` warns.
        on_runaway: ``"warn"`` once, or ``"raise"`` a :class:`TemperatureRunawayError`, when it runs away.

    Example:
        >>> import torch
        >>> policy = InstanceCurriculumTemperature(num_classes=10)
        >>> t = policy(torch.randn(4, 10), torch.randn(4, 10))
        >>> t.shape, round(t[0].item(), 2)
        (torch.Size([4, 1]), 15.62)
    """

    def __init__(
        self,
        num_classes: int,
        hidden: int = 128,
        t_start: float = 1.0,
        t_range: float = 20.0,
        lambda_max: float = 0.0,
        lambda_min: float = -1.0,
        decay_epochs: int = 10,
        init: float = 1.0,
        patience: int = 5,
        on_runaway: Literal["warn", "raise"] = "warn",
    ) -> None:
        super().__init__(t_start, t_range, lambda_max, lambda_min, decay_epochs, patience, on_runaway)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Expected argument `num_classes` to be an integer >= 2, but got {num_classes!r}.")
        if hidden < 1:
            raise ValueError(f"Expected argument `hidden` to be a positive integer, but got {hidden}.")
        self.num_classes = num_classes
        first, last = nn.Linear(2 * num_classes, hidden), nn.Linear(hidden, 1)
        nn.init.zeros_(last.weight)
        nn.init.constant_(last.bias, float(init))
        self.mlp = nn.Sequential(first, nn.ReLU(), last)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, *, standardized: bool = False) -> Tensor:
        check_logits_pair(student_logits, teacher_logits)
        if student_logits.shape[1] != self.num_classes:
            raise ValueError(
                f"Expected argument `student_logits` to have {self.num_classes} classes (the policy's"
                f" `num_classes`), but got {student_logits.shape[1]}."
            )
        with full_precision(student_logits):
            features = torch.cat(
                [F.softmax(upcast(teacher_logits), dim=1), F.softmax(upcast(student_logits), dim=1)], dim=1
            ).detach()
            return self._squash(self.mlp(features.to(next(self.mlp.parameters()).dtype)))
