"""Naive references of the divergences, written independently of the package (plain Python or plain torch).

``REFERENCES`` maps every registered divergence name to a reference on :class:`DivergenceInputs` and the
divergence's hyperparameters, and ``EXAMPLES`` to a module built with non-default hyperparameters: the
divergence test harness (``tests/losses/test_divergences.py``) runs every check over them. Adding a divergence:
its function, its registered module, and its entries here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from lightning_kd.losses import DIST, DKD, KD, MLKD, TTM, Divergence, DivergenceInputs


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) = sum_k p_k (log p_k - log q_k), with 0 log 0 = 0."""
    return sum(pk * (math.log(pk) - math.log(qk)) for pk, qk in zip(p, q, strict=True) if pk > 0)


def _naive_kd_per_sample(student: list[list[float]], teacher: list[list[float]], temps: list[float]) -> list[float]:
    out = []
    for s_row, t_row, temp in zip(student, teacher, temps, strict=True):
        p_t = _softmax([v / temp for v in t_row])
        p_s = _softmax([v / temp for v in s_row])
        out.append(temp**2 * _kl(p_t, p_s))
    return out


def _naive_dkd_per_sample(
    student: list[list[float]], teacher: list[list[float]], target: list[int], temps: list[float]
) -> tuple[list[float], list[float]]:
    """Per-sample (T^2 * TCKD, T^2 * NCKD)."""
    tckd, nckd = [], []
    for s_row, t_row, y, temp in zip(student, teacher, target, temps, strict=True):
        p_t = _softmax([v / temp for v in t_row])
        p_s = _softmax([v / temp for v in s_row])
        b_t, b_s = [p_t[y], 1 - p_t[y]], [p_s[y], 1 - p_s[y]]
        rest_t = [p / (1 - p_t[y]) for k, p in enumerate(p_t) if k != y]
        rest_s = [p / (1 - p_s[y]) for k, p in enumerate(p_s) if k != y]
        tckd.append(temp**2 * _kl(b_t, b_s))
        nckd.append(temp**2 * _kl(rest_t, rest_s))
    return tckd, nckd


# MLKD: the released code (official=True) and the paper (official=False)
MLKD_EXTRA = (3.0, 5.0, 2.0, 6.0)


def _zscore(x: torch.Tensor) -> torch.Tensor:
    # the released code's normalize(): sample std (torch.std default), eps added to the std
    mean = x.mean(dim=-1, keepdim=True)
    std = ((x - mean) ** 2).sum(dim=-1, keepdim=True).div(x.shape[-1] - 1).sqrt()
    return (x - mean) / (std + 1e-7)


def _ref_kd(s: torch.Tensor, t: torch.Tensor, temp: float | torch.Tensor) -> torch.Tensor:
    """Per-sample T^2 * KL(softmax(t/T) || softmax(s/T))."""
    p_t = torch.softmax(t / temp, dim=1)
    log_p_s = torch.log_softmax(s / temp, dim=1)
    weight = temp**2 if isinstance(temp, float) else (temp**2).reshape(-1)
    return (p_t * (torch.log(p_t) - log_p_s)).sum(dim=1) * weight


def _ref_gram(s: torch.Tensor, t: torch.Tensor, temp: float | torch.Tensor, *, over_batch: bool) -> torch.Tensor:
    """Squared entries of (teacher gram - student gram), the B x B or C x C matrix."""
    ps, pt = torch.softmax(s / temp, dim=1), torch.softmax(t / temp, dim=1)
    if over_batch:
        gs, gt = torch.einsum("ik,jk->ij", ps, ps), torch.einsum("ik,jk->ij", pt, pt)
    else:
        gs, gt = torch.einsum("ki,kj->ij", ps, ps), torch.einsum("ki,kj->ij", pt, pt)
    return (gt - gs) ** 2


def _ref_masks(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.softmax(t, dim=1)
    confidence = p.max(dim=1).values
    mask = confidence <= float(np.percentile(confidence.numpy(), 50))  # numpy's default: linear interpolation
    class_confidence = p.sum(dim=0)
    class_mask = class_confidence <= float(np.percentile(class_confidence.numpy(), 50))
    return mask.double(), class_mask.double()


def _ref_mlkd_official(
    s: torch.Tensor,
    t: torch.Tensor,
    s2: torch.Tensor,
    t2: torch.Tensor,
    temperature: float | torch.Tensor,
    zscore: bool,
) -> dict[str, torch.Tensor]:
    """The released MLKD code: masks multiply reduced scalars, strong T=2/T=6 on weak logits, raw gram terms."""
    mask, class_mask = _ref_masks(t)
    batch_size, num_classes = s.shape
    pre = _zscore if zscore else (lambda x: x)
    temps = [temperature, *MLKD_EXTRA]
    kd_weak = sum((_ref_kd(pre(s), pre(t), temp).mean() * mask).mean() for temp in temps)
    strong_views = [(s2, t2), (s2, t2), (s2, t2), (s, t), (s, t)]
    kd_strong = sum(_ref_kd(pre(a), pre(b), temp).mean() for (a, b), temp in zip(strong_views, temps, strict=True))
    klass = sum((_ref_gram(s, t, temp, over_batch=False).sum() / num_classes * class_mask).mean() for temp in temps)
    batch = sum((_ref_gram(s, t, temp, over_batch=True).sum() / batch_size * mask).mean() for temp in temps)
    return {"kd_weak": kd_weak, "kd_strong": kd_strong, "batch": batch, "class": klass}


def _ref_mlkd_paper(
    s: torch.Tensor,
    t: torch.Tensor,
    s2: torch.Tensor,
    t2: torch.Tensor,
    temperature: float | torch.Tensor,
    zscore: bool,
) -> dict[str, torch.Tensor]:
    """The paper: per-sample/per-class masks, strong logits for every strong term, Z-score everywhere."""
    mask, class_mask = _ref_masks(t)  # always from the raw weak teacher
    batch_size, num_classes = s.shape
    pre = _zscore if zscore else (lambda x: x)
    s, t, s2, t2 = pre(s), pre(t), pre(s2), pre(t2)
    temps = [temperature, *MLKD_EXTRA]
    kd_weak = sum((_ref_kd(s, t, temp) * mask).mean() for temp in temps)
    kd_strong = sum(_ref_kd(s2, t2, temp).mean() for temp in temps)
    klass = sum((_ref_gram(s, t, temp, over_batch=False).sum(dim=1) * class_mask).sum() / num_classes for temp in temps)
    batch = sum((_ref_gram(s, t, temp, over_batch=True).sum(dim=1) * mask).sum() / batch_size for temp in temps)
    return {"kd_weak": kd_weak, "kd_strong": kd_strong, "batch": batch, "class": klass}


def _ref_dist(s: torch.Tensor, t: torch.Tensor, temps: list[float], beta: float, gamma: float) -> tuple[float, float]:
    ps = np.array([_softmax([v / temp for v in row]) for row, temp in zip(s.tolist(), temps, strict=True)])
    pt = np.array([_softmax([v / temp for v in row]) for row, temp in zip(t.tolist(), temps, strict=True)])
    weights = [temp**2 for temp in temps]
    inter = [w * (1 - np.corrcoef(ps[i], pt[i])[0, 1]) for i, w in enumerate(weights)]
    intra = 0.0
    if gamma > 0:
        intra_corr = [np.corrcoef(ps[:, c], pt[:, c])[0, 1] for c in range(ps.shape[1])]
        intra = float(np.mean(weights)) * (1 - float(np.mean(intra_corr)))
    return beta * float(np.mean(inter)), gamma * intra


def _naive_ttm_per_sample(
    student: list[list[float]], teacher: list[list[float]], gamma: float
) -> list[tuple[float, float]]:
    """Per-sample (KL(p_t^gamma normalised || p_s), sum_k p_t^gamma)."""
    out = []
    for s_row, t_row in zip(student, teacher, strict=True):
        powered = [p**gamma for p in _softmax(t_row)]
        total = sum(powered)
        out.append((_kl([p / total for p in powered], _softmax(s_row)), total))
    return out


def _temperatures(inputs: DivergenceInputs) -> list[float]:
    batch = inputs.student_logits.shape[0]
    t = inputs.temperature
    if isinstance(t, torch.Tensor):
        return [float(v) for v in t.double().reshape(-1).expand(batch)] if t.numel() == 1 else t.reshape(-1).tolist()
    return [float(t)] * batch


def _rows(x: torch.Tensor | None) -> list[list[float]]:
    assert x is not None
    return x.double().tolist()


def _pre(inputs: DivergenceInputs) -> Callable[[torch.Tensor], torch.Tensor]:
    return inputs.preprocess if inputs.preprocess is not None else (lambda x: x)


def _ref_kd_module(inputs: DivergenceInputs, module: Divergence) -> dict[str, float]:
    per_sample = _naive_kd_per_sample(_rows(inputs.student_logits), _rows(inputs.teacher_logits), _temperatures(inputs))
    return {"kl": sum(per_sample) / len(per_sample)}


def _ref_dkd_module(inputs: DivergenceInputs, module: Divergence) -> dict[str, float]:
    assert isinstance(module, DKD) and inputs.target is not None
    tckd, nckd = _naive_dkd_per_sample(
        _rows(inputs.student_logits), _rows(inputs.teacher_logits), inputs.target.tolist(), _temperatures(inputs)
    )
    return {"tckd": module.alpha * sum(tckd) / len(tckd), "nckd": module.beta * sum(nckd) / len(nckd)}


def _ref_dist_module(inputs: DivergenceInputs, module: Divergence) -> dict[str, float]:
    assert isinstance(module, DIST)
    inter, intra = _ref_dist(
        inputs.student_logits.double(), inputs.teacher_logits.double(), _temperatures(inputs), module.beta, module.gamma
    )
    return {"inter": inter, "intra": intra}


def _ref_ttm_module(inputs: DivergenceInputs, module: Divergence) -> dict[str, float]:
    assert isinstance(module, TTM)
    per_sample = _naive_ttm_per_sample(_rows(inputs.student_logits), _rows(inputs.teacher_logits), module.gamma)
    values = [kl * weight if module.weighted else kl for kl, weight in per_sample]
    return {"wttm" if module.weighted else "ttm": sum(values) / len(values)}


def _ref_mlkd_module(inputs: DivergenceInputs, module: Divergence) -> dict[str, torch.Tensor]:
    assert isinstance(module, MLKD)
    assert inputs.student_logits_strong is not None and inputs.teacher_logits_strong is not None
    temperature = inputs.temperature
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.double().reshape(-1, 1) if temperature.numel() > 1 else float(temperature)
    reference = _ref_mlkd_official if module.official else _ref_mlkd_paper
    return reference(
        inputs.student_logits.double(),
        inputs.teacher_logits.double(),
        inputs.student_logits_strong.double(),
        inputs.teacher_logits_strong.double(),
        temperature,
        inputs.preprocess is not None,
    )


#: Registered name -> naive reference ``(inputs, module) -> {part: value}``.
REFERENCES: dict[str, Callable[[DivergenceInputs, Divergence], dict[str, float] | dict[str, torch.Tensor]]] = {
    "kd": _ref_kd_module,
    "dkd": _ref_dkd_module,
    "dist": _ref_dist_module,
    "ttm": _ref_ttm_module,
    "wttm": _ref_ttm_module,
    "mlkd": _ref_mlkd_module,
}

#: Registered name -> a module with non-default hyperparameters (and, for MLKD, both numerics are checked by
#: the functional tests; the harness takes the released code's).
EXAMPLES: dict[str, Callable[[], Divergence]] = {
    "kd": KD,
    "dkd": lambda: DKD(alpha=2.0, beta=3.0),
    "dist": lambda: DIST(beta=2.0, gamma=0.5),
    "ttm": lambda: TTM(gamma=0.4),
    "wttm": lambda: TTM(gamma=0.3, weighted=True),
    "mlkd": lambda: MLKD(official=True),
}
