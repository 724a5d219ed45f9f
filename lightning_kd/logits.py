"""Logit pre-processes: the Z-score logit standardization of Sun et al. (CVPR 2024).

A pre-process maps raw logits to the logits a divergence sees. Standardization composes with every loss
in :mod:`lightning_kd.losses.functional`; the base temperature of the paper is the loss's ``temperature``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lightning_kd._precision import full_precision, upcast
from lightning_kd._validation import check_logits

__all__ = ["PREPROCESSES", "center", "identity", "scale", "standardize"]


def standardize(logits: Tensor, *, eps: float = 1e-7, unbiased: bool = True) -> Tensor:
    r"""Z-score logit standardization, per sample over the class dimension.

    From "Logit Standardization in Knowledge Distillation" (Sun et al., CVPR 2024):

    .. math:: \mathcal{Z}(x) = \frac{x - \bar{x}}{\epsilon + \sigma(x)}

    Dividing the result by a base temperature :math:`\tau` gives the paper's weighted Z-score
    :math:`\mathcal{Z}(x; \tau)`; the losses do that with their ``temperature`` argument. The standardized
    logits of teacher and student have zero mean and a fixed standard deviation, so the student is free to
    choose its own logit range and only the relations between logits are distilled.

    Two variants of the standard deviation exist:

    * ``unbiased=True`` (default): the sample standard deviation (divisor K - 1) with ``eps`` added to it,
      exactly as the authors' released code computes it; that code produced the published tables.
    * ``unbiased=False``: the population standard deviation (divisor K) of the paper's Algorithm 1, for
      which the output has standard deviation exactly 1 and lies in :math:`[-\sqrt{K-1}, \sqrt{K-1}]`.

    A constant row (zero standard deviation) maps to zeros, i.e. a uniform distribution after softmax, with
    finite values and gradients. Half-precision input is computed and returned in float32.

    Args:
        logits: Tensor of shape (batch, classes).
        eps: Added to the standard deviation before dividing.
        unbiased: Use the sample (K - 1) rather than the population (K) standard deviation.

    Returns:
        The standardized logits, same shape, float32 for half-precision input.

    Raises:
        ValueError: If ``logits`` is not 2-D with at least 2 classes, or ``eps`` is negative.

    Example:
        >>> import torch
        >>> z = standardize(torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]))
        >>> z.round(decimals=4).tolist()
        [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]
        >>> standardize(torch.tensor([[2.0, 2.0, 2.0]]))  # a constant row maps to zeros
        tensor([[0., 0., 0.]])
    """
    check_logits("logits", logits)
    if eps < 0:
        raise ValueError(f"Expected argument `eps` to be non-negative, but got {eps}.")
    with full_precision(logits):
        x = upcast(logits)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, correction=1 if unbiased else 0)
        # sqrt of a clamped variance equals torch.std wherever the std is non-zero, but keeps the gradient
        # of a constant row finite (torch.std's gradient there is 0/0).
        std = var.clamp_min(torch.finfo(var.dtype).tiny).sqrt()
        return (x - mean) / (std + eps)


def center(logits: Tensor) -> Tensor:
    r"""Centering only, the first half of the Z-score: :math:`x - \bar{x}` per sample.

    A partial pre-process of the paper's ablation (Table 4): it removes the logit shift but keeps the scale.

    Example:
        >>> import torch
        >>> center(torch.tensor([[1.0, 2.0, 3.0]]))
        tensor([[-1.,  0.,  1.]])
    """
    check_logits("logits", logits)
    with full_precision(logits):
        x = upcast(logits)
        return x - x.mean(dim=-1, keepdim=True)


def scale(logits: Tensor, *, eps: float = 1e-7, unbiased: bool = True) -> Tensor:
    r"""Scaling only, the second half of the Z-score: :math:`x / (\epsilon + \sigma(x))` per sample.

    A partial pre-process of the paper's ablation (Table 4): it normalizes the logit range but keeps the shift.
    The standard deviation is that of :func:`standardize`; a constant row is divided by ``eps`` only if it is
    zero (a constant non-zero row keeps finite values, its standard deviation is clamped like there).

    Example:
        >>> import torch
        >>> scale(torch.tensor([[1.0, 2.0, 3.0]])).round(decimals=4)
        tensor([[1., 2., 3.]])
    """
    check_logits("logits", logits)
    if eps < 0:
        raise ValueError(f"Expected argument `eps` to be non-negative, but got {eps}.")
    with full_precision(logits):
        x = upcast(logits)
        var = x.var(dim=-1, keepdim=True, correction=1 if unbiased else 0)
        return x / (var.clamp_min(torch.finfo(var.dtype).tiny).sqrt() + eps)


def identity(logits: Tensor) -> Tensor:
    """The no-op pre-process: return the logits unchanged.

    Example:
        >>> import torch
        >>> identity(torch.tensor([[1.0, 2.0]]))
        tensor([[1., 2.]])
    """
    return logits


#: Pre-processes by name, as :class:`lightning_kd.DistillationLoss` accepts them: the Z-score and, for the
#: paper's ablation, its two halves.
PREPROCESSES: dict[str, Callable[[Tensor], Tensor]] = {
    "none": identity,
    "zscore": standardize,
    "center": center,
    "scale": scale,
}
