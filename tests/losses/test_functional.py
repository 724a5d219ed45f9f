"""Tests of the functional losses against naive references written here, and against known identities."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from lightning_kd.logits import standardize
from lightning_kd.losses.functional import dist, dkd, kd_kl, mlkd, ttm
from tests.losses.references import (
    _kl,
    _naive_dkd_per_sample,
    _naive_kd_per_sample,
    _ref_dist,
    _ref_masks,
    _ref_mlkd_official,
    _ref_mlkd_paper,
    _softmax,
)


def _tolist(x: torch.Tensor) -> list[list[float]]:
    return x.double().tolist()


def _randn(*shape: int, seed: int, scale: float = 2.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


# --------------------------------------------------------------------------------------------------------------
# kd_kl
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_zero_when_student_equals_teacher(temperature: float) -> None:
    t = _randn(5, 7, seed=0)
    assert float(kd_kl(t.clone(), t, temperature=temperature)) == pytest.approx(0.0, abs=1e-12)
    # and positive otherwise
    assert float(kd_kl(_randn(5, 7, seed=1), t, temperature=temperature)) > 1e-3


HAND_STUDENT = [[1.0, 0.0, -1.0, 0.5], [2.0, 2.5, 0.0, -3.0], [0.0, 0.0, 0.0, 1.0]]
HAND_TEACHER = [[3.0, 0.5, -1.0, 0.0], [-1.0, 4.0, 1.0, 0.0], [2.0, -2.0, 1.0, 1.0]]


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kd_matches_naive_float_temperature(temperature: float) -> None:
    expected = _naive_kd_per_sample(HAND_STUDENT, HAND_TEACHER, [temperature] * 3)
    got = kd_kl(
        torch.tensor(HAND_STUDENT, dtype=torch.float64),
        torch.tensor(HAND_TEACHER, dtype=torch.float64),
        temperature=temperature,
    )
    assert float(got) == pytest.approx(sum(expected) / 3, rel=1e-10)


def test_kd_matches_naive_per_sample_temperature() -> None:
    temps = [1.0, 3.0, 0.5]
    expected = _naive_kd_per_sample(HAND_STUDENT, HAND_TEACHER, temps)
    s = torch.tensor(HAND_STUDENT, dtype=torch.float64)
    t = torch.tensor(HAND_TEACHER, dtype=torch.float64)
    temp = torch.tensor(temps, dtype=torch.float64).unsqueeze(1)
    per_sample = kd_kl(s, t, temperature=temp, reduction="none")
    torch.testing.assert_close(per_sample, torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=1e-12)
    assert float(kd_kl(s, t, temperature=temp)) == pytest.approx(sum(expected) / 3, rel=1e-10)
    # each sample is weighted by its own T^2, not by a shared one: differs from every float temperature
    for shared in temps:
        assert float(kd_kl(s, t, temperature=shared)) != pytest.approx(sum(expected) / 3, rel=1e-3)


def test_kd_scalar_tensor_temperature_equals_float() -> None:
    s, t = _randn(4, 6, seed=2), _randn(4, 6, seed=3)
    ref = kd_kl(s, t, temperature=3.0)
    for temp in (torch.tensor(3.0), torch.tensor([3.0]), torch.tensor([[3.0]]), torch.full((4, 1), 3.0)):
        torch.testing.assert_close(kd_kl(s, t, temperature=temp), ref)


def test_kd_reductions() -> None:
    s = torch.tensor(HAND_STUDENT, dtype=torch.float64)
    t = torch.tensor(HAND_TEACHER, dtype=torch.float64)
    expected = torch.tensor(_naive_kd_per_sample(HAND_STUDENT, HAND_TEACHER, [2.0] * 3), dtype=torch.float64)
    none = kd_kl(s, t, temperature=2.0, reduction="none")
    assert none.shape == (3,)
    torch.testing.assert_close(none, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(kd_kl(s, t, temperature=2.0, reduction="sum"), expected.sum(), rtol=1e-10, atol=0)
    torch.testing.assert_close(kd_kl(s, t, temperature=2.0, reduction="mean"), expected.mean(), rtol=1e-10, atol=0)
    assert kd_kl(s, t, temperature=2.0).shape == ()


def test_kd_docstring_value() -> None:
    # zeros student vs teacher [2, 1, 0] at T=1: log(3) - H(softmax(teacher))
    p = _softmax([2.0, 1.0, 0.0])
    expected = math.log(3) + sum(pk * math.log(pk) for pk in p)
    got = kd_kl(
        torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64), temperature=1.0
    )
    assert float(got) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------------------------------
# dkd
# --------------------------------------------------------------------------------------------------------------

DKD_TARGET = [0, 1, 3]


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_dkd_matches_naive(temperature: float) -> None:
    tckd, nckd = _naive_dkd_per_sample(HAND_STUDENT, HAND_TEACHER, DKD_TARGET, [temperature] * 3)
    parts = dkd(
        torch.tensor(HAND_STUDENT, dtype=torch.float64),
        torch.tensor(HAND_TEACHER, dtype=torch.float64),
        torch.tensor(DKD_TARGET),
        alpha=0.7,
        beta=8.0,
        temperature=temperature,
    )
    assert set(parts) == {"tckd", "nckd"}
    assert float(parts["tckd"]) == pytest.approx(0.7 * sum(tckd) / 3, rel=1e-10)
    assert float(parts["nckd"]) == pytest.approx(8.0 * sum(nckd) / 3, rel=1e-10)


def test_dkd_matches_naive_per_sample_temperature() -> None:
    temps = [1.0, 3.0, 0.5]
    tckd, nckd = _naive_dkd_per_sample(HAND_STUDENT, HAND_TEACHER, DKD_TARGET, temps)
    parts = dkd(
        torch.tensor(HAND_STUDENT, dtype=torch.float64),
        torch.tensor(HAND_TEACHER, dtype=torch.float64),
        torch.tensor(DKD_TARGET),
        alpha=1.0,
        beta=2.0,
        temperature=torch.tensor(temps, dtype=torch.float64).unsqueeze(1),
    )
    assert float(parts["tckd"]) == pytest.approx(sum(tckd) / 3, rel=1e-10)
    assert float(parts["nckd"]) == pytest.approx(2.0 * sum(nckd) / 3, rel=1e-10)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_dkd_identity_kd_equals_tckd_plus_weighted_nckd(temperature: float) -> None:
    s, t = _randn(5, 6, seed=10), _randn(5, 6, seed=11)
    target = torch.tensor([0, 5, 2, 2, 4])
    for i in range(5):
        si, ti, yi = s[i : i + 1], t[i : i + 1], target[i : i + 1]
        p_target = _softmax([v / temperature for v in ti[0].tolist()])[int(yi)]
        parts = dkd(si, ti, yi, alpha=1.0, beta=1.0 - p_target, temperature=temperature)
        kd = kd_kl(si, ti, temperature=temperature)
        torch.testing.assert_close(parts["tckd"] + parts["nckd"], kd, rtol=1e-10, atol=1e-12)


def test_dkd_int32_target_accepted() -> None:
    s, t = _randn(3, 4, seed=12), _randn(3, 4, seed=13)
    ref = dkd(s, t, torch.tensor([0, 1, 3]), alpha=1.0, beta=8.0, temperature=4.0)
    got = dkd(s, t, torch.tensor([0, 1, 3], dtype=torch.int32), alpha=1.0, beta=8.0, temperature=4.0)
    torch.testing.assert_close(got, ref)


def test_dkd_two_classes_raises() -> None:
    with pytest.raises(ValueError, match=r"at least 3 classes for DKD .* but got 2"):
        dkd(torch.randn(4, 2), torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), alpha=1.0, beta=8.0, temperature=4.0)


# --------------------------------------------------------------------------------------------------------------
# mlkd: naive references of the released code (official=True) and of the paper (official=False)
# --------------------------------------------------------------------------------------------------------------


def _mlkd_inputs(batch: int = 6, classes: int = 5, seed: int = 20) -> tuple[torch.Tensor, ...]:
    return tuple(_randn(batch, classes, seed=seed + i) for i in range(4))


@pytest.mark.parametrize("zscore", [False, True])
@pytest.mark.parametrize("temperature", [4.0, 1.5])
@pytest.mark.parametrize("official", [True, False])
def test_mlkd_matches_reference(official: bool, temperature: float, zscore: bool) -> None:
    s, t, s2, t2 = _mlkd_inputs()
    ref_fn = _ref_mlkd_official if official else _ref_mlkd_paper
    expected = ref_fn(s, t, s2, t2, temperature, zscore)
    got = mlkd(s, t, s2, t2, temperature=temperature, official=official, standardize_logits=zscore)
    assert set(got) == {"kd_weak", "kd_strong", "batch", "class"}
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-9, atol=1e-12, msg=key)


@pytest.mark.parametrize("official", [True, False])
def test_mlkd_per_sample_base_temperature(official: bool) -> None:
    s, t, s2, t2 = _mlkd_inputs(seed=30)
    temp = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]], dtype=torch.float64)
    ref_fn = _ref_mlkd_official if official else _ref_mlkd_paper
    expected = ref_fn(s, t, s2, t2, temp, False)
    got = mlkd(s, t, s2, t2, temperature=temp, official=official)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-9, atol=1e-12, msg=key)


def test_mlkd_median_uses_linear_interpolation() -> None:
    # an even batch: the median lies between two confidences, so "<= median" keeps exactly half the samples
    _, t, _, _ = _mlkd_inputs(batch=4, seed=40)
    mask, _ = _ref_masks(t)
    assert float(mask.sum()) == 2.0
    confidence = torch.softmax(t, dim=1).max(dim=1).values
    assert float(torch.quantile(confidence, 0.5)) == pytest.approx(float(np.percentile(confidence.numpy(), 50)))


@pytest.mark.parametrize("official", [True, False])
def test_mlkd_odd_batch_keeps_the_median_sample(official: bool) -> None:
    # an odd batch: the median is one sample's confidence, and "<=" keeps it (3 of 5 samples)
    s, t, s2, t2 = _mlkd_inputs(batch=5, classes=4, seed=45)
    mask, class_mask = _ref_masks(t)
    assert float(mask.sum()) == 3.0 and float(class_mask.sum()) == 2.0
    expected = (_ref_mlkd_official if official else _ref_mlkd_paper)(s, t, s2, t2, 3.0, False)
    got = mlkd(s, t, s2, t2, temperature=3.0, official=official)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-9, atol=1e-12, msg=key)


@pytest.mark.parametrize("zscore", [False, True])
def test_mlkd_official_and_paper_differ(zscore: bool) -> None:
    s, t, s2, t2 = _mlkd_inputs(seed=50)
    official = mlkd(s, t, s2, t2, temperature=4.0, official=True, standardize_logits=zscore)
    paper = mlkd(s, t, s2, t2, temperature=4.0, official=False, standardize_logits=zscore)
    for key in ("kd_weak", "kd_strong", "batch", "class"):
        assert not torch.allclose(official[key], paper[key], rtol=1e-4), key


def test_mlkd_zero_when_student_equals_teacher() -> None:
    s, _, s2, _ = _mlkd_inputs(seed=60)
    for official in (True, False):
        parts = mlkd(s, s.clone(), s2, s2.clone(), temperature=4.0, official=official)
        for key, value in parts.items():
            assert float(value) == pytest.approx(0.0, abs=1e-10), key


def test_mlkd_weak_strong_shape_mismatch_raises() -> None:
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    with pytest.raises(ValueError, match=r"`student_logits_strong` and `student_logits` to have the same shape"):
        mlkd(s, t, torch.randn(3, 5), torch.randn(3, 5), temperature=4.0)


# --------------------------------------------------------------------------------------------------------------
# dist
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("beta", "gamma", "temperature"), [(1.0, 1.0, 1.0), (2.0, 0.5, 4.0), (1.0, 0.0, 2.0)])
def test_dist_matches_naive_pearson(beta: float, gamma: float, temperature: float) -> None:
    s, t = _randn(5, 6, seed=70), _randn(5, 6, seed=71)
    inter, intra = _ref_dist(s, t, [temperature] * 5, beta, gamma)
    parts = dist(s, t, beta=beta, gamma=gamma, temperature=temperature)
    assert set(parts) == {"inter", "intra"}
    assert float(parts["inter"]) == pytest.approx(inter, rel=1e-5)
    assert float(parts["intra"]) == pytest.approx(intra, rel=1e-5, abs=1e-12)


def test_dist_per_sample_temperature() -> None:
    s, t = _randn(4, 6, seed=72), _randn(4, 6, seed=73)
    temps = [1.0, 2.0, 3.0, 4.0]
    inter, intra = _ref_dist(s, t, temps, 1.0, 1.0)
    parts = dist(s, t, temperature=torch.tensor(temps, dtype=torch.float64).unsqueeze(1))
    # the implementation adds eps=1e-8 to the product of norms (as DIST's released code): nearly uniform rows at
    # T=4 have small centred norms, so allow a relative 1e-5
    assert float(parts["inter"]) == pytest.approx(inter, rel=1e-5)
    assert float(parts["intra"]) == pytest.approx(intra, rel=1e-5)


def test_dist_batch_of_one() -> None:
    """A batch of one (the last batch of an epoch) has no intra-class correlation: the term is 0, not an error."""
    s, t = _randn(1, 5, seed=74), _randn(1, 5, seed=75)
    assert float(dist(s, t, gamma=1.0)["intra"]) == 0.0
    torch.testing.assert_close(dist(s, t, gamma=1.0)["inter"], dist(s, t, gamma=0.0)["inter"])
    parts = dist(s, t, gamma=0.0)
    inter, _ = _ref_dist(s, t, [1.0], 1.0, 0.0)
    assert float(parts["inter"]) == pytest.approx(inter, rel=1e-5)
    assert float(parts["intra"]) == 0.0


def test_dist_zero_for_identical_predictions() -> None:
    t = _randn(4, 5, seed=76)
    parts = dist(t.clone(), t, temperature=2.0)
    assert float(parts["inter"]) == pytest.approx(0.0, abs=1e-5)
    assert float(parts["intra"]) == pytest.approx(0.0, abs=1e-5)
    assert float(dist(-t, t, temperature=2.0)["inter"]) > 0.1


# --------------------------------------------------------------------------------------------------------------
# ttm / wttm
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_ttm_gamma_inverse_temperature_is_kd_without_student_temperature(temperature: float) -> None:
    s, t = _randn(4, 6, seed=80), _randn(4, 6, seed=81)
    expected = [
        _kl(_softmax([v / temperature for v in t_row]), _softmax(s_row))
        for s_row, t_row in zip(s.tolist(), t.tolist(), strict=True)
    ]
    got = ttm(s, t, gamma=1.0 / temperature)
    assert float(got) == pytest.approx(sum(expected) / 4, rel=1e-10)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 2.0])
def test_wttm_weight_is_sum_of_powered_teacher_probabilities(gamma: float) -> None:
    s, t = _randn(4, 6, seed=82), _randn(4, 6, seed=83)
    expected = []
    for s_row, t_row in zip(s.tolist(), t.tolist(), strict=True):
        powered = [p**gamma for p in _softmax(t_row)]
        weight = sum(powered)
        target = [p / weight for p in powered]
        expected.append(weight * _kl(target, _softmax(s_row)))
    assert float(ttm(s, t, gamma=gamma, weighted=True)) == pytest.approx(sum(expected) / 4, rel=1e-10)
    # the weight is > 1 for gamma < 1 (and < 1 for gamma > 1), so WTTM differs from TTM
    unweighted = float(ttm(s, t, gamma=gamma))
    weighted = float(ttm(s, t, gamma=gamma, weighted=True))
    assert (weighted > unweighted) if gamma < 1 else (weighted < unweighted)


def test_ttm_gamma_one_is_plain_kl() -> None:
    s, t = _randn(4, 6, seed=84), _randn(4, 6, seed=85)
    torch.testing.assert_close(ttm(s, t, gamma=1.0), kd_kl(s, t, temperature=1.0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, -1.0, True])
def test_ttm_non_positive_gamma_raises(gamma: float) -> None:
    with pytest.raises(ValueError, match=r"`gamma` to be a finite, positive float"):
        ttm(torch.randn(2, 3), torch.randn(2, 3), gamma=gamma)


# --------------------------------------------------------------------------------------------------------------
# gradcheck in float64 w.r.t. the student logits
# --------------------------------------------------------------------------------------------------------------

_TEACHER = _randn(4, 5, seed=90)
_TEACHER_STRONG = _randn(4, 5, seed=91)
_TARGET = torch.tensor([0, 2, 4, 1])
_PER_SAMPLE_T = torch.tensor([[1.0], [2.0], [3.0], [0.5]], dtype=torch.float64)


def _total(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(parts.values())).sum()


GRAD_CASES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "kd": lambda s: kd_kl(s, _TEACHER, temperature=3.0),
    "kd_per_sample": lambda s: kd_kl(s, _TEACHER, temperature=_PER_SAMPLE_T),
    "kd_zscore": lambda s: kd_kl(standardize(s), standardize(_TEACHER), temperature=2.0),
    "dkd": lambda s: _total(dkd(s, _TEACHER, _TARGET, alpha=1.0, beta=8.0, temperature=4.0)),
    "mlkd_official": lambda s: _total(mlkd(s, _TEACHER, s * 0.5, _TEACHER_STRONG, temperature=4.0)),
    "mlkd_official_z": lambda s: _total(
        mlkd(s, _TEACHER, s * 0.5, _TEACHER_STRONG, temperature=4.0, standardize_logits=True)
    ),
    "mlkd_paper": lambda s: _total(mlkd(s, _TEACHER, s * 0.5, _TEACHER_STRONG, temperature=4.0, official=False)),
    "mlkd_paper_z": lambda s: _total(
        mlkd(s, _TEACHER, s * 0.5, _TEACHER_STRONG, temperature=4.0, official=False, standardize_logits=True)
    ),
    "dist": lambda s: _total(dist(s, _TEACHER, temperature=2.0)),
    "ttm": lambda s: ttm(s, _TEACHER, gamma=0.25),
    "wttm": lambda s: ttm(s, _TEACHER, gamma=0.25, weighted=True),
    "standardize": lambda s: standardize(s),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradcheck_student_logits(name: str) -> None:
    student = _randn(4, 5, seed=92).requires_grad_(True)
    # MLKD's forward is costly (five temperatures, four terms): check it with gradcheck's random projections
    assert torch.autograd.gradcheck(GRAD_CASES[name], (student,), fast_mode=name.startswith("mlkd"))


def test_gradcheck_mlkd_strong_student_logits() -> None:
    weak = _randn(4, 5, seed=93)
    strong = _randn(4, 5, seed=94).requires_grad_(True)
    for official in (True, False):
        assert torch.autograd.gradcheck(
            lambda s2, official=official: _total(
                mlkd(weak, _TEACHER, s2, _TEACHER_STRONG, temperature=2.0, official=official)
            ),
            (strong,),
            fast_mode=True,
        )


# --------------------------------------------------------------------------------------------------------------
# mixed precision: bf16 logits under CPU autocast give a float32 loss equal to the float32 computation
# --------------------------------------------------------------------------------------------------------------

AMP_CASES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "kd": lambda s, t, s2, t2: kd_kl(s, t, temperature=4.0),
    "kd_zscore": lambda s, t, s2, t2: kd_kl(standardize(s), standardize(t), temperature=2.0),
    "dkd": lambda s, t, s2, t2: _total(
        dkd(s, t, torch.tensor([0, 3, 7, 9, 1, 2, 5, 4]), alpha=1, beta=8, temperature=4)
    ),
    "mlkd": lambda s, t, s2, t2: _total(mlkd(s, t, s2, t2, temperature=4.0)),
    "mlkd_paper_z": lambda s, t, s2, t2: _total(
        mlkd(s, t, s2, t2, temperature=4.0, official=False, standardize_logits=True)
    ),
    "dist": lambda s, t, s2, t2: _total(dist(s, t, temperature=2.0)),
    "ttm": lambda s, t, s2, t2: ttm(s, t, gamma=0.25),
    "wttm": lambda s, t, s2, t2: ttm(s, t, gamma=0.25, weighted=True),
}


@pytest.mark.parametrize("name", sorted(AMP_CASES))
def test_autocast_bf16_returns_float32(name: str) -> None:
    fn = AMP_CASES[name]
    inputs32 = [_randn(8, 10, seed=100 + i, dtype=torch.float32) for i in range(4)]
    inputs16 = [x.bfloat16() for x in inputs32]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fn(*inputs16)
    assert got.dtype == torch.float32
    # the same bf16 values computed in float32 without autocast: identical math
    torch.testing.assert_close(got, fn(*(x.float() for x in inputs16)), rtol=1e-5, atol=1e-6)
    # and close to the loss of the original float32 logits (only the inputs were rounded)
    torch.testing.assert_close(got, fn(*inputs32), rtol=1e-2, atol=1e-3)


# --------------------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------------------

_Y4 = torch.tensor([0, 1, 2, 3])

LOSSES: dict[str, Callable[..., object]] = {
    "kd": lambda s, t, **kw: kd_kl(s, t, temperature=kw.get("temperature", 4.0), **kw.get("extra", {})),
    "dkd": lambda s, t, **kw: dkd(
        s, t, kw.get("target", _Y4), alpha=1, beta=8, temperature=kw.get("temperature", 4.0), **kw.get("extra", {})
    ),
    "mlkd": lambda s, t, **kw: mlkd(s, t, s, t, temperature=kw.get("temperature", 4.0), **kw.get("extra", {})),
    "dist": lambda s, t, **kw: dist(s, t, temperature=kw.get("temperature", 1.0), **kw.get("extra", {})),
}
ALL_LOSSES: dict[str, Callable[..., object]] = {
    **LOSSES,
    "ttm": lambda s, t, **kw: ttm(s, t, gamma=0.5, **kw.get("extra", {})),
}


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_error_mismatched_batch(name: str) -> None:
    with pytest.raises(ValueError, match=r"to have the same shape \(batch, classes\), but got \(4, 5\) and \(3, 5\)"):
        ALL_LOSSES[name](torch.randn(4, 5), torch.randn(3, 5))


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_error_mismatched_classes(name: str) -> None:
    with pytest.raises(ValueError, match=r"to have the same shape \(batch, classes\), but got \(4, 5\) and \(4, 6\)"):
        ALL_LOSSES[name](torch.randn(4, 5), torch.randn(4, 6))


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_error_non_2d_logits(name: str) -> None:
    with pytest.raises(ValueError, match=r"`student_logits` to be 2-D \(batch, classes\), but got shape \(4, 5, 2\)"):
        ALL_LOSSES[name](torch.randn(4, 5, 2), torch.randn(4, 5, 2))
    with pytest.raises(ValueError, match=r"`teacher_logits` to be 2-D \(batch, classes\), but got shape \(5,\)"):
        ALL_LOSSES[name](torch.randn(4, 5), torch.randn(5))


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_error_fewer_than_two_classes(name: str) -> None:
    with pytest.raises(ValueError, match=r"`student_logits` to have at least 2 classes, but got 1"):
        ALL_LOSSES[name](torch.randn(4, 1), torch.randn(4, 1))


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("temperature", [0.0, -2.0, float("nan")])
def test_error_non_positive_float_temperature(name: str, temperature: float) -> None:
    with pytest.raises(ValueError, match=r"`temperature` to be a finite, positive float, but got"):
        LOSSES[name](torch.randn(4, 5), torch.randn(4, 5), temperature=temperature)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize(
    "temperature", [torch.tensor(0.0), torch.tensor([[1.0], [2.0], [-1.0], [3.0]]), torch.zeros(4, 1)]
)
def test_error_non_positive_tensor_temperature(name: str, temperature: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"`temperature` to be finite and positive, but got a tensor with values in"):
        LOSSES[name](torch.randn(4, 5), torch.randn(4, 5), temperature=temperature)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", [(4,), (3, 1), (4, 2), (1, 4)])
def test_error_wrong_temperature_shape(name: str, shape: tuple[int, ...]) -> None:
    bad = torch.full(shape, 2.0)
    with pytest.raises(ValueError, match=r"`temperature` to be a scalar or of shape \(4, 1\), but got shape"):
        LOSSES[name](torch.randn(4, 5), torch.randn(4, 5), temperature=bad)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_error_temperature_wrong_type(name: str) -> None:
    with pytest.raises(TypeError, match=r"`temperature` to be a positive float or a tensor"):
        LOSSES[name](torch.randn(4, 5), torch.randn(4, 5), temperature="4")


@pytest.mark.parametrize(
    "target", [torch.tensor([0, 1, 5, 2]), torch.tensor([0, -1, 2, 2])], ids=["too_large", "negative"]
)
def test_error_dkd_target_out_of_range(target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"`target` to be in \[0, 4\], but got values in"):
        LOSSES["dkd"](torch.randn(4, 5), torch.randn(4, 5), target=target)


@pytest.mark.parametrize("target", [torch.tensor([0, 1, 2]), torch.zeros(4, 1, dtype=torch.long)])
def test_error_dkd_target_wrong_shape(target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"`target` to have shape \(4,\) \(one class index per sample\)"):
        LOSSES["dkd"](torch.randn(4, 5), torch.randn(4, 5), target=target)


def test_error_dkd_float_target() -> None:
    with pytest.raises(TypeError, match=r"`target` to hold integer class indices"):
        LOSSES["dkd"](torch.randn(4, 5), torch.randn(4, 5), target=torch.zeros(4))


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_error_non_finite_logits_only_with_check_finite(name: str, bad: float) -> None:
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    student[1, 2] = bad
    with pytest.raises(ValueError, match=r"`student_logits` to be finite, but it contains NaN or Inf"):
        ALL_LOSSES[name](student, teacher, extra={"check_finite": True})
    ALL_LOSSES[name](student, teacher, extra={"check_finite": False})  # no error: the check is opt-in
    with pytest.raises(ValueError, match=r"`teacher_logits` to be finite"):
        ALL_LOSSES[name](teacher, student, extra={"check_finite": True})


def test_error_kd_unknown_reduction() -> None:
    with pytest.raises(ValueError, match=r"`reduction` to be 'mean', 'sum' or 'none', but got 'avg'"):
        kd_kl(torch.randn(2, 3), torch.randn(2, 3), temperature=1.0, reduction="avg")
