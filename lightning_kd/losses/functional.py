r"""Logit distillation losses as pure functions of tensors.

Every function takes raw or pre-processed logits of shape (batch, classes), computes in float32 (float64
stays float64) with autocast disabled, and returns a scalar loss (or a dict of named scalar parts).
``temperature`` is a positive float or a per-sample tensor of shape (batch, 1); a per-sample temperature
softens each sample with its own :math:`T_i` and weights it by its own :math:`T_i^2`.

The Z-score pre-process of "Logit Standardization in Knowledge Distillation" is not a loss: apply
:func:`lightning_kd.logits.standardize` to both logits first, or let :class:`lightning_kd.DistillationLoss`
compose it with any of these.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_kd._precision import full_precision, upcast
from lightning_kd._validation import check_logits_pair, check_positive_float, check_target, check_temperature
from lightning_kd.logits import standardize

__all__ = ["dist", "dkd", "kd_kl", "mlkd", "ttm"]

Temperature = float | Tensor

#: Extra temperatures of MLKD's instance-, batch- and class-level terms, after the base temperature.
MLKD_TEMPERATURES = (3.0, 5.0, 2.0, 6.0)


def _per_sample(temperature: Temperature, batch_size: int, like: Tensor) -> Tensor:
    """Temperature as a (batch, 1) tensor on ``like``'s device and dtype."""
    if isinstance(temperature, Tensor):
        return upcast(temperature).to(device=like.device, dtype=like.dtype).reshape(-1, 1).expand(batch_size, 1)
    return like.new_full((batch_size, 1), float(temperature))


def _kl_per_sample(student_logits: Tensor, teacher_logits: Tensor, temperature: Tensor) -> Tensor:
    """KL(teacher || student) of the softened distributions, summed over classes: shape (batch,)."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(dim=1)


def kd_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: Temperature,
    reduction: str = "mean",
    check_finite: bool | None = None,
) -> Tensor:
    r"""Hinton knowledge distillation: temperature-softened KL divergence, scaled by :math:`T^2`.

    From "Distilling the Knowledge in a Neural Network" (Hinton et al., 2015):

    .. math:: \mathcal{L}_{KD} = \frac{1}{B} \sum_i T_i^2 \,
        \mathrm{KL}\big(\mathrm{softmax}(v_i / T_i) \,\|\, \mathrm{softmax}(z_i / T_i)\big)

    with teacher logits :math:`v`, student logits :math:`z`, summed over classes.

    Args:
        student_logits: Student logits, shape (batch, classes).
        teacher_logits: Teacher logits, same shape.
        temperature: A positive float, or a per-sample tensor of shape (batch, 1).
        reduction: ``"mean"`` over the batch (default), ``"sum"``, or ``"none"`` for per-sample values.
        check_finite: ``True``: raise on NaN/Inf logits and read every value check (host synchronisations);
            ``None`` (default): check the temperature's values of CPU tensors only; ``False``: no value checks.

    Returns:
        The loss: a scalar, or shape (batch,) for ``reduction="none"``.

    Raises:
        ValueError: On mismatched or non-2-D logits, fewer than 2 classes, a non-positive temperature or an
            unknown reduction.

    Example:
        >>> import torch
        >>> teacher = torch.tensor([[2.0, 1.0, 0.0]])
        >>> kd_kl(teacher, teacher, temperature=4.0)
        tensor(0.)
        >>> round(kd_kl(torch.zeros(1, 3), teacher, temperature=1.0).item(), 4)  # log(3) - H(teacher)
        0.2662
    """
    check_logits_pair(student_logits, teacher_logits, check_finite=check_finite)
    check_temperature(temperature, student_logits.shape[0], check_values=check_finite)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"Expected argument `reduction` to be 'mean', 'sum' or 'none', but got {reduction!r}.")
    with full_precision(student_logits):
        student, teacher = upcast(student_logits), upcast(teacher_logits)
        t = _per_sample(temperature, student.shape[0], student)
        loss = _kl_per_sample(student, teacher, t) * t.squeeze(1) ** 2
        if reduction == "mean":
            return loss.mean()
        return loss.sum() if reduction == "sum" else loss


def _binary_and_non_target(logits: Tensor, target: Tensor, temperature: Tensor) -> tuple[Tensor, Tensor]:
    """DKD's two views of a distribution.

    Returns the log-probabilities of (target, all non-target classes together), shape (batch, 2), and the
    log-softmax over the non-target classes only, shape (batch, classes - 1).
    """
    scaled = logits / temperature
    log_p = F.log_softmax(scaled, dim=1)
    batch_size, num_classes = scaled.shape
    log_p_target = log_p.gather(1, target.unsqueeze(1))
    # The non-target classes of each row, in order: indices 0..C-2, shifted by one from the target on. A gather
    # (unlike masked_select, whose output size depends on the values) never reads the mask back to the host.
    offsets = torch.arange(num_classes - 1, device=scaled.device).expand(batch_size, -1)
    non_target_index = offsets + (offsets >= target.unsqueeze(1)).long()
    log_p_non_target = log_p.gather(1, non_target_index)
    # log(1 - p_target) computed as logsumexp over the non-target classes, stable where p_target -> 1
    log_p_rest = torch.logsumexp(log_p_non_target, dim=1, keepdim=True)
    non_target = scaled.gather(1, non_target_index)
    return torch.cat([log_p_target, log_p_rest], dim=1), F.log_softmax(non_target, dim=1)


def dkd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    *,
    alpha: float,
    beta: float,
    temperature: Temperature,
    check_finite: bool | None = None,
) -> dict[str, Tensor]:
    r"""Decoupled knowledge distillation (Zhao et al., CVPR 2022).

    KD splits into a target-class term (TCKD: KL of the binary distributions target vs. all other classes)
    and a non-target term (NCKD: KL of the distributions over the non-target classes, the target masked
    out); DKD weights them freely:

    .. math:: \mathcal{L}_{DKD} = \alpha \, T^2 \, \mathrm{TCKD} + \beta \, T^2 \, \mathrm{NCKD}

    With :math:`\alpha = 1` and :math:`\beta = 1 - p^T_t` it equals KD (the identity of the DKD paper).
    There is no warm-up here: warm-up is a weighting concern of whoever schedules the weights.

    Args:
        student_logits: Student logits, shape (batch, classes), at least 3 classes.
        teacher_logits: Teacher logits, same shape.
        target: Ground-truth class indices, shape (batch,).
        alpha: Weight of TCKD.
        beta: Weight of NCKD.
        temperature: A positive float, or a per-sample tensor of shape (batch, 1).
        check_finite: As for :func:`kd_kl`; the target's range is one of the value checks.

    Returns:
        ``{"tckd": alpha * T^2 * TCKD, "nckd": beta * T^2 * NCKD}``, each averaged over the batch.

    Raises:
        ValueError: On bad logits, a bad target, a non-positive temperature, or fewer than 3 classes (a single
            non-target class leaves NCKD undefined).

    Example:
        >>> import torch
        >>> s, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[3.0, 0.5, -1.0]])
        >>> parts = dkd(s, t, torch.tensor([0]), alpha=1.0, beta=8.0, temperature=4.0)
        >>> sorted(parts)
        ['nckd', 'tckd']
    """
    check_logits_pair(student_logits, teacher_logits, check_finite=check_finite)
    batch_size, num_classes = student_logits.shape
    if num_classes < 3:
        raise ValueError(
            "Expected argument `student_logits` to have at least 3 classes for DKD (NCKD needs two or more"
            f" non-target classes), but got {num_classes}."
        )
    check_target(target, batch_size, num_classes, check_values=check_finite)
    check_temperature(temperature, batch_size, check_values=check_finite)
    target = target.long()  # one_hot and gather need int64 indices; check_target accepts any integer dtype
    with full_precision(student_logits):
        student, teacher = upcast(student_logits), upcast(teacher_logits)
        t = _per_sample(temperature, batch_size, student)
        s_binary, s_rest = _binary_and_non_target(student, target, t)
        t_binary, t_rest = _binary_and_non_target(teacher, target, t)
        weight = t.squeeze(1) ** 2
        tckd = F.kl_div(s_binary, t_binary, reduction="none", log_target=True).sum(1)
        nckd = F.kl_div(s_rest, t_rest, reduction="none", log_target=True).sum(1)
        return {"tckd": alpha * (tckd * weight).mean(), "nckd": beta * (nckd * weight).mean()}


def _gram_loss(student_prob: Tensor, teacher_prob: Tensor, *, over_batch: bool) -> Tensor:
    """Squared difference of the B x B (``over_batch``) or C x C prediction-correlation matrices.

    Returns per-row sums (shape B or C); MLKD divides their total by the matrix size.
    """
    if over_batch:
        gram_s, gram_t = student_prob @ student_prob.T, teacher_prob @ teacher_prob.T
    else:
        gram_s, gram_t = student_prob.T @ student_prob, teacher_prob.T @ teacher_prob
    return ((gram_t - gram_s) ** 2).sum(dim=1)


def mlkd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    student_logits_strong: Tensor,
    teacher_logits_strong: Tensor,
    *,
    temperature: Temperature,
    official: bool = True,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    standardize_logits: bool = False,
    check_finite: bool | None = None,
) -> dict[str, Tensor]:
    r"""Multi-level logit distillation (Jin et al., CVPR 2023).

    Instance-level KD at several temperatures (the base temperature plus 3, 5, 2 and 6) on a weakly and a
    strongly augmented view, plus a batch-level loss (squared difference of the B x B prediction-correlation
    matrices) and a class-level loss (the C x C matrices), each summed over the same temperatures. Samples
    and classes are masked by the teacher's confidence on the weak view: a sample counts when its maximum
    probability is at most the batch median, a class when its summed probability is at most the median.

    ``official=True`` (default) reproduces the numerics of the released code, which produced the published
    MLKD and MLKD+Z numbers, with its quirks:

    * the masks multiply already-reduced scalars, so each masked term is scaled by the kept fraction (about
      0.5) instead of selecting samples;
    * two of the strong-view instance terms (T = 2 and T = 6) use the weak-view logits;
    * with a pre-process (``preprocess=standardize``, MLKD+Z) only the instance-level terms are pre-processed;
      the batch- and class-level terms and the masks use raw logits.

    ``official=False`` is the method as its paper describes it: per-sample and per-class masks, strong logits
    for every strong-view term, and the pre-process everywhere (the confidence masks are always taken from the
    teacher's raw weak-view probabilities, in both modes).

    Logits are passed raw: this function applies the pre-process itself, as the two modes differ in where.

    Args:
        student_logits: Student logits on the weak view, shape (batch, classes).
        teacher_logits: Teacher logits on the weak view.
        student_logits_strong: Student logits on the strong view.
        teacher_logits_strong: Teacher logits on the strong view.
        temperature: The base temperature, a positive float or a (batch, 1) tensor.
        official: Reproduce the released code (see above) or the paper.
        preprocess: The logit pre-process, e.g. :func:`lightning_kd.logits.standardize` (MLKD+Z); ``None`` for
            raw logits.
        standardize_logits: Shorthand for ``preprocess=standardize`` (kept for existing callers).
        check_finite: As for :func:`kd_kl`.

    Returns:
        ``{"kd_weak", "kd_strong", "batch", "class"}``: the instance-level terms on each view, and the batch-
        and class-level terms (weak view), each summed over the five temperatures.

    Raises:
        ValueError: On bad logits or temperature, weak and strong logits of different shapes, or both
            ``preprocess`` and ``standardize_logits``.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> s, t, s2, t2 = (torch.randn(4, 5, generator=g) for _ in range(4))
        >>> sorted(mlkd(s, t, s2, t2, temperature=4.0))
        ['batch', 'class', 'kd_strong', 'kd_weak']
    """
    check_logits_pair(student_logits, teacher_logits, check_finite=check_finite)
    check_logits_pair(student_logits_strong, teacher_logits_strong, check_finite=check_finite)
    if student_logits_strong.shape != student_logits.shape:
        raise ValueError(
            "Expected arguments `student_logits_strong` and `student_logits` to have the same shape, but got"
            f" {tuple(student_logits_strong.shape)} and {tuple(student_logits.shape)}."
        )
    batch_size = student_logits.shape[0]
    check_temperature(temperature, batch_size, check_values=check_finite)
    if standardize_logits:
        if preprocess is not None:
            raise ValueError(
                "Expected one of arguments `preprocess` and `standardize_logits`, but got both: pass"
                " `preprocess=standardize` alone."
            )
        preprocess = standardize
    pre: Callable[[Tensor], Tensor] = preprocess if preprocess is not None else (lambda x: x)
    with full_precision(student_logits):
        raw_s, raw_t = upcast(student_logits), upcast(teacher_logits)
        raw_s2, raw_t2 = upcast(student_logits_strong), upcast(teacher_logits_strong)
        s, t, s2, t2 = pre(raw_s), pre(raw_t), pre(raw_s2), pre(raw_t2)
        base = _per_sample(temperature, batch_size, raw_s)
        temperatures: list[Temperature] = [base, *(float(extra) for extra in MLKD_TEMPERATURES)]

        with torch.no_grad():
            p_teacher = F.softmax(raw_t, dim=1)
            confidence = p_teacher.amax(dim=1)
            sample_mask = (confidence <= torch.quantile(confidence, 0.5)).to(raw_s.dtype)
            class_confidence = p_teacher.sum(dim=0)
            class_mask = (class_confidence <= torch.quantile(class_confidence, 0.5)).to(raw_s.dtype)

        def kd(student: Tensor, teacher: Tensor, temp: Temperature) -> Tensor:
            tt = _per_sample(temp, batch_size, student)
            return _kl_per_sample(student, teacher, tt) * tt.squeeze(1) ** 2

        def probs(logits: Tensor, temp: Temperature) -> Tensor:
            return F.softmax(logits / _per_sample(temp, batch_size, logits), dim=1)

        kd_weak = kd_strong = batch = klass = raw_s.new_zeros(())
        if official:
            for i, temp in enumerate(temperatures):
                kd_weak = kd_weak + kd(s, t, temp).mean() * sample_mask.mean()
                strong_s, strong_t = (s2, t2) if i < 3 else (s, t)  # the released code's T=2, T=6 terms
                kd_strong = kd_strong + kd(strong_s, strong_t, temp).mean()
                ps, pt = probs(raw_s, temp), probs(raw_t, temp)
                klass = klass + _gram_loss(ps, pt, over_batch=False).sum() / ps.shape[1] * class_mask.mean()
                batch = batch + _gram_loss(ps, pt, over_batch=True).sum() / batch_size * sample_mask.mean()
        else:
            for temp in temperatures:
                kd_weak = kd_weak + (kd(s, t, temp) * sample_mask).mean()
                kd_strong = kd_strong + kd(s2, t2, temp).mean()
                ps, pt = probs(s, temp), probs(t, temp)
                klass = klass + (_gram_loss(ps, pt, over_batch=False) * class_mask).sum() / ps.shape[1]
                batch = batch + (_gram_loss(ps, pt, over_batch=True) * sample_mask).sum() / batch_size
        return {"kd_weak": kd_weak, "kd_strong": kd_strong, "batch": batch, "class": klass}


def _pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation of matching rows of ``a`` and ``b``: shape (rows,)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    beta: float = 1.0,
    gamma: float = 1.0,
    temperature: Temperature = 1.0,
    check_finite: bool | None = None,
) -> dict[str, Tensor]:
    r"""DIST: knowledge distillation from a stronger teacher (Huang et al., NeurIPS 2022).

    Matches relations instead of values: the Pearson correlation between the student's and the teacher's
    softened predictions, per sample across classes (inter-class) and per class across the batch
    (intra-class):

    .. math:: \mathcal{L} = T^2 \big(\beta (1 - \overline{\rho}_{inter}) + \gamma (1 - \overline{\rho}_{intra})\big)

    With a per-sample temperature the inter-class term weights each sample by its own :math:`T_i^2` and the
    intra-class term (which mixes samples) by the batch mean of :math:`T_i^2`.

    A correlation across one sample is undefined: for a batch of one (e.g. the last batch of an epoch when
    the dataset size leaves one sample over) the intra-class term is 0 and only the inter-class term counts.

    Args:
        student_logits: Student logits, shape (batch, classes).
        teacher_logits: Teacher logits, same shape.
        beta: Weight of the inter-class relation.
        gamma: Weight of the intra-class relation (0 for a batch of one sample, see above).
        temperature: A positive float, or a per-sample tensor of shape (batch, 1).
        check_finite: As for :func:`kd_kl`.

    Returns:
        ``{"inter": ..., "intra": ...}``, already weighted by ``beta``/``gamma`` and :math:`T^2`.

    Raises:
        ValueError: On bad logits or temperature.

    Example:
        >>> import torch
        >>> t = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
        >>> parts = dist(2 * t, t)
        >>> round(float(parts["inter"] + parts["intra"]), 3)
        0.007
    """
    check_logits_pair(student_logits, teacher_logits, check_finite=check_finite)
    batch_size = student_logits.shape[0]
    check_temperature(temperature, batch_size, check_values=check_finite)
    with full_precision(student_logits):
        student, teacher = upcast(student_logits), upcast(teacher_logits)
        t = _per_sample(temperature, batch_size, student)
        weight = t.squeeze(1) ** 2
        p_student, p_teacher = F.softmax(student / t, dim=1), F.softmax(teacher / t, dim=1)
        inter = (weight * (1 - _pearson(p_student, p_teacher))).mean()
        intra = student.new_zeros(())
        if gamma > 0 and batch_size > 1:
            intra = weight.mean() * (1 - _pearson(p_student.T, p_teacher.T).mean())
        return {"inter": beta * inter, "intra": gamma * intra}


def ttm(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    gamma: float,
    weighted: bool = False,
    check_finite: bool | None = None,
) -> Tensor:
    r"""Transformed teacher matching, TTM, and its weighted form WTTM (Zheng & Yang, ICLR 2024).

    The teacher's probabilities at temperature 1 are raised to the power :math:`\gamma` and renormalized
    (a Rényi-entropy view of temperature scaling: the result equals ``softmax(gamma * teacher_logits)``);
    the student is matched at temperature 1, with no :math:`T^2` factor:

    .. math:: \mathcal{L}_{TTM} = \frac{1}{B}\sum_i \mathrm{KL}\big(\tilde p^{\,T}_i \,\|\, p^S_i\big), \quad
        \tilde p^{\,T}_i = \frac{(p^T_i)^\gamma}{\sum_k (p^T_{ik})^\gamma}

    WTTM (``weighted=True``) weights each sample by :math:`\sum_k (p^T_{ik})^\gamma`, larger for the
    teacher's less confident samples. TTM with :math:`\gamma = 1/T` equals KD without the student's
    temperature and without the :math:`T^2` factor.

    Args:
        student_logits: Student logits, shape (batch, classes).
        teacher_logits: Teacher logits, same shape.
        gamma: The power applied to the teacher's probabilities, positive (the paper's gamma = 1/T).
        weighted: WTTM's per-sample weighting.
        check_finite: As for :func:`kd_kl`.

    Returns:
        The scalar loss.

    Raises:
        ValueError: On bad logits or a non-positive ``gamma``.

    Example:
        >>> import torch
        >>> t = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(ttm(0.5 * t, t, gamma=0.5).item(), 6)  # the student matches softmax(t / 2)
        0.0
    """
    check_logits_pair(student_logits, teacher_logits, check_finite=check_finite)
    gamma = check_positive_float("gamma", gamma)
    with full_precision(student_logits):
        student, teacher = upcast(student_logits), upcast(teacher_logits)
        powered_log = gamma * F.log_softmax(teacher, dim=1)  # log of p_teacher ** gamma
        log_target = F.log_softmax(powered_log, dim=1)  # renormalized
        kl = F.kl_div(F.log_softmax(student, dim=1), log_target, reduction="none", log_target=True).sum(1)
        if weighted:
            kl = kl * torch.logsumexp(powered_log, dim=1).exp()
        return kl.mean()
