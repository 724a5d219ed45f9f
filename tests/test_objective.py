"""Tests of DistillationLoss: composition of pre-process, temperature policy and divergence, weighting, CE, errors."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_kd import (
    DKD,
    KD,
    MLKD,
    TTM,
    CurriculumTemperature,
    DistillationLoss,
    DistillationOutput,
    MaxLogitTemperature,
    max_logit_temperature,
    standardize,
)
from lightning_kd.losses.functional import dist, dkd, kd_kl, mlkd, ttm

INITIAL_T = 1 + 20 / (1 + math.exp(-1.0))  # CTKD's 1 + 20 * sigmoid(1)


def _logits(seed: int, batch: int = 6, classes: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, classes, generator=g, dtype=torch.float64) * 2


S, T, S2, T2 = (_logits(i) for i in range(4))
Y = torch.tensor([0, 4, 2, 1, 3, 0])


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy written out: mean of -log softmax at the target."""
    rows = []
    for row, y in zip(logits.tolist(), target.tolist(), strict=True):
        top = max(row)
        rows.append(-(row[y] - top - math.log(sum(math.exp(v - top) for v in row))))
    return torch.tensor(sum(rows) / len(rows), dtype=torch.float64)


def _assert_total(out: DistillationOutput) -> None:
    torch.testing.assert_close(out.loss, torch.stack(list(out.parts.values())).sum())
    kd_only = [v for k, v in out.parts.items() if k != "ce"]
    torch.testing.assert_close(out.kd, torch.stack(kd_only).sum())


# --------------------------------------------------------------------------------------------------------------
# composition equals the hand composition
# --------------------------------------------------------------------------------------------------------------


def test_zscore_kd_equals_hand_composition() -> None:
    loss = DistillationLoss("kd", preprocess="zscore", temperature=2.0, ce_weight=0.1, kd_weight=9.0)
    out = loss(S, T, Y)
    expected = 0.1 * _ce(S, Y) + 9.0 * kd_kl(standardize(S), standardize(T), temperature=2.0)
    torch.testing.assert_close(out.loss, expected, rtol=1e-10, atol=1e-12)
    assert sorted(out.parts) == ["ce", "kl"]
    torch.testing.assert_close(out.parts["ce"], 0.1 * _ce(S, Y), rtol=1e-10, atol=1e-12)
    assert out.temperature == 2.0
    _assert_total(out)


ZSCORE_CASES = {
    "kd": (
        {"divergence": "kd", "temperature": 3.0},
        lambda zs, zt: {"kl": kd_kl(zs, zt, temperature=3.0)},
    ),
    "dkd": (
        {"divergence": DKD(alpha=1.0, beta=8.0), "temperature": 4.0},
        lambda zs, zt: dkd(zs, zt, Y, alpha=1.0, beta=8.0, temperature=4.0),
    ),
    "mlkd": (
        {"divergence": "mlkd", "temperature": 4.0},
        # MLKD gets the raw logits and applies the Z-score itself (where the released code does)
        lambda zs, zt: mlkd(S, T, S2, T2, temperature=4.0, standardize_logits=True),
    ),
    "mlkd_paper": (
        {"divergence": MLKD(official=False), "temperature": 2.0},
        lambda zs, zt: mlkd(S, T, S2, T2, temperature=2.0, official=False, standardize_logits=True),
    ),
    "dist": (
        {"divergence": "dist", "temperature": 2.0},
        lambda zs, zt: dist(zs, zt, temperature=2.0),
    ),
    "ttm": (
        {"divergence": TTM(gamma=0.5), "temperature": None},
        lambda zs, zt: {"ttm": ttm(zs, zt, gamma=0.5)},
    ),
    "wttm": (
        {"divergence": "wttm", "temperature": None},
        lambda zs, zt: {"wttm": ttm(zs, zt, gamma=0.25, weighted=True)},
    ),
}


@pytest.mark.parametrize("name", sorted(ZSCORE_CASES))
def test_zscore_composes_with_every_divergence(name: str) -> None:
    kwargs, reference = ZSCORE_CASES[name]
    loss = DistillationLoss(preprocess="zscore", ce_weight=0.5, kd_weight=2.0, **kwargs)
    views = {"student_logits_strong": S2, "teacher_logits_strong": T2} if "mlkd" in name else {}
    out = loss(S, T, Y, **views)
    expected_parts = {k: 2.0 * v for k, v in reference(standardize(S), standardize(T)).items()}
    ce = _ce(S, Y) + (_ce(S2, Y) if "mlkd" in name else 0.0)
    expected_parts["ce"] = 0.5 * ce
    assert set(out.parts) == set(expected_parts)
    torch.testing.assert_close(out.parts, expected_parts, rtol=1e-9, atol=1e-12)
    _assert_total(out)
    # and the Z-score changes the result: the same objective without it differs
    raw = DistillationLoss(preprocess="none", ce_weight=0.5, kd_weight=2.0, **kwargs)
    raw_out = raw(S, T, Y, **views)
    assert not torch.allclose(raw_out.kd, out.kd)


def test_ctkd_with_kd() -> None:
    ctkd = CurriculumTemperature()
    loss = DistillationLoss("kd", temperature=ctkd, ce_weight=0.0)
    student = S.clone().requires_grad_(True)
    out = loss(student, T, Y)
    expected = kd_kl(S, T, temperature=INITIAL_T)
    torch.testing.assert_close(out.loss.detach(), expected, rtol=1e-6, atol=1e-9)
    assert isinstance(out.temperature, torch.Tensor) and not out.temperature.requires_grad
    assert out.temperature.item() == pytest.approx(INITIAL_T, rel=1e-6)
    assert out.extra == {"lambda": 0.0}
    assert any(p is ctkd.theta for p in loss.parameters())
    assert [name for name, _ in loss.named_parameters()] == ["temperature.theta"]


def test_ctkd_with_zscore() -> None:
    loss = DistillationLoss("kd", preprocess="zscore", temperature=CurriculumTemperature(), ce_weight=0.0)
    out = loss(S, T)
    expected = kd_kl(standardize(S), standardize(T), temperature=INITIAL_T)
    torch.testing.assert_close(out.loss.detach(), expected, rtol=1e-6, atol=1e-9)


def test_set_epoch_reaches_ctkd_and_reverses_gradient() -> None:
    ctkd = CurriculumTemperature()
    loss = DistillationLoss("kd", temperature=ctkd, ce_weight=1.0)
    loss.set_epoch(5)
    assert int(ctkd.epoch) == 5
    out = loss(S, T, Y)
    assert out.extra["lambda"] == pytest.approx(-0.5, abs=1e-12)
    out.loss.backward()
    # the true gradient of the KD part w.r.t. theta, with a plain T = 1 + 20 sigmoid(theta)
    theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    kd_kl(S, T, temperature=1 + 20 * torch.sigmoid(theta)).backward()
    assert ctkd.theta.grad is not None and theta.grad is not None
    assert float(ctkd.theta.grad) == pytest.approx(-0.5 * float(theta.grad), rel=1e-5)


def test_max_logit_with_zscore() -> None:
    loss = DistillationLoss("kd", preprocess="zscore", temperature=MaxLogitTemperature(), ce_weight=0.0)
    out = loss(S, T)
    # the paper's algorithm: standardize, T_i = (1 + sqrt 3) / 2 * max |z|, KD on z at T_i weighted by T_i^2
    zs, zt = standardize(S), standardize(T)
    peak = torch.maximum(zs.abs().amax(dim=1), zt.abs().amax(dim=1)).unsqueeze(1)
    temperature = (1 + math.sqrt(3)) / 2 * peak
    assert isinstance(out.temperature, torch.Tensor) and out.temperature.shape == (6, 1)
    torch.testing.assert_close(out.temperature, temperature, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out.loss, kd_kl(zs, zt, temperature=temperature), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out.temperature, max_logit_temperature(S, T), rtol=1e-6, atol=1e-9)


def test_custom_callable_preprocess() -> None:
    def double(x: torch.Tensor) -> torch.Tensor:
        return 2 * x

    out = DistillationLoss("kd", preprocess=double, temperature=2.0, ce_weight=0.0)(S, T)
    torch.testing.assert_close(out.loss, kd_kl(2 * S, 2 * T, temperature=2.0))


# --------------------------------------------------------------------------------------------------------------
# weights, parts and CE
# --------------------------------------------------------------------------------------------------------------


def test_dkd_parts_and_sum() -> None:
    out = DistillationLoss("dkd", divergence_kwargs={"alpha": 2.0, "beta": 3.0}, temperature=4.0, kd_weight=0.5)(
        S, T, Y
    )
    assert sorted(out.parts) == ["ce", "nckd", "tckd"]
    ref = dkd(S, T, Y, alpha=2.0, beta=3.0, temperature=4.0)
    torch.testing.assert_close(out.parts["tckd"], 0.5 * ref["tckd"])
    torch.testing.assert_close(out.parts["nckd"], 0.5 * ref["nckd"])
    torch.testing.assert_close(out.loss, _ce(S, Y) + 0.5 * (ref["tckd"] + ref["nckd"]), rtol=1e-10, atol=1e-12)
    _assert_total(out)


def test_kd_scale_multiplies_only_kd_parts() -> None:
    loss = DistillationLoss("dkd", temperature=4.0, ce_weight=0.7, kd_weight=2.0)
    full = loss(S, T, Y)
    scaled = loss(S, T, Y, kd_scale=0.25)
    torch.testing.assert_close(scaled.parts["ce"], full.parts["ce"])
    for name in ("tckd", "nckd"):
        torch.testing.assert_close(scaled.parts[name], 0.25 * full.parts[name])
    torch.testing.assert_close(scaled.loss, full.parts["ce"] + 0.25 * full.kd)
    zero = loss(S, T, Y, kd_scale=0.0)
    torch.testing.assert_close(zero.loss, full.parts["ce"])


def test_ce_skipped_without_target_or_weight() -> None:
    kd_only = kd_kl(S, T, temperature=4.0)
    no_target = DistillationLoss("kd", temperature=4.0, ce_weight=1.0)(S, T)
    assert list(no_target.parts) == ["kl"]
    torch.testing.assert_close(no_target.loss, kd_only)
    no_weight = DistillationLoss("kd", temperature=4.0, ce_weight=0.0)(S, T, Y)
    assert list(no_weight.parts) == ["kl"]
    torch.testing.assert_close(no_weight.loss, kd_only)
    with_ce = DistillationLoss("kd", temperature=4.0, ce_weight=1.0)(S, T, Y)
    torch.testing.assert_close(with_ce.loss - kd_only, _ce(S, Y), rtol=1e-10, atol=1e-12)


def test_int32_target() -> None:
    loss = DistillationLoss("dkd", temperature=4.0)
    torch.testing.assert_close(loss(S, T, Y.int()).loss, loss(S, T, Y).loss)


def test_mlkd_needs_strong_views() -> None:
    loss = DistillationLoss("mlkd", temperature=4.0)
    assert loss.needs_views
    assert not DistillationLoss("kd").needs_views
    with pytest.raises(ValueError, match=r"`student_logits_strong` and `teacher_logits_strong` .* for MLKD"):
        loss(S, T, Y)


def test_mlkd_ce_on_both_views_and_parts() -> None:
    out = DistillationLoss("mlkd", temperature=4.0, ce_weight=0.3)(
        S, T, Y, student_logits_strong=S2, teacher_logits_strong=T2
    )
    assert sorted(out.parts) == ["batch", "ce", "class", "kd_strong", "kd_weak"]
    torch.testing.assert_close(out.parts["ce"], 0.3 * (_ce(S, Y) + _ce(S2, Y)), rtol=1e-10, atol=1e-12)
    ref = mlkd(S, T, S2, T2, temperature=4.0)
    for name, value in ref.items():
        torch.testing.assert_close(out.parts[name], value)
    _assert_total(out)


def test_ttm_temperature_rules() -> None:
    with pytest.raises(ValueError, match=r"`temperature` to be None for TTM, which takes no temperature, but got 4.0"):
        DistillationLoss("ttm", temperature=4.0)
    with pytest.raises(ValueError, match=r"`temperature` to be None for TTM"):
        DistillationLoss("wttm", temperature=CurriculumTemperature())
    out = DistillationLoss("ttm", temperature=None, ce_weight=0.0)(S, T)
    torch.testing.assert_close(out.loss, ttm(S, T, gamma=0.25))
    assert out.temperature is None and out.extra == {}
    with pytest.raises(
        ValueError, match=r"`temperature` to be a positive float or a TemperaturePolicy for KD, but got None"
    ):
        DistillationLoss("kd", temperature=None)


def test_teacher_gets_no_gradient() -> None:
    for divergence, kwargs in [("kd", {}), ("dkd", {}), ("dist", {}), ("mlkd", {})]:
        student = S.clone().requires_grad_(True)
        teacher = T.clone().requires_grad_(True)
        student_strong = S2.clone().requires_grad_(True)
        teacher_strong = T2.clone().requires_grad_(True)
        loss = DistillationLoss(divergence, preprocess="zscore", temperature=MaxLogitTemperature(), **kwargs)
        views = {"student_logits_strong": student_strong, "teacher_logits_strong": teacher_strong}
        out = loss(student, teacher, Y, **(views if divergence == "mlkd" else {}))
        out.loss.backward()
        assert teacher.grad is None and teacher_strong.grad is None, divergence
        assert student.grad is not None and float(student.grad.abs().sum()) > 0, divergence


def test_autocast_bf16_loss_is_float32() -> None:
    loss = DistillationLoss("kd", preprocess="zscore", temperature=2.0, ce_weight=0.1, kd_weight=9.0)
    s16, t16 = S.bfloat16(), T.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(s16, t16, Y)
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, loss(s16.float(), t16.float(), Y).loss, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------------------


def test_unknown_divergence_name() -> None:
    with pytest.raises(
        ValueError,
        match=r"`divergence` to be one of 'dist', 'dkd', 'kd', 'mlkd', 'ttm', 'wttm', but got 'dkdd'\."
        r" Did you mean 'dkd'( or .*)?\?$",
    ):
        DistillationLoss("dkdd")


def test_unknown_preprocess_name() -> None:
    with pytest.raises(
        ValueError,
        match=r"`preprocess` to be one of 'center', 'none', 'scale', 'zscore', but got 'zscor'\. Did you mean"
        r" 'zscore'\?",
    ):
        DistillationLoss("kd", preprocess="zscor")


@pytest.mark.parametrize("name", ["ce_weight", "kd_weight"])
@pytest.mark.parametrize("value", [-0.1, -1])
def test_negative_weights(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"`{name}` to be a finite, non-negative float, but got {value}"):
        DistillationLoss("kd", **{name: value})


def test_non_positive_temperature() -> None:
    with pytest.raises(ValueError, match=r"`temperature` to be a finite, positive float, but got 0.0"):
        DistillationLoss("kd", temperature=0.0)
    with pytest.raises(ValueError, match=r"`temperature` to be a finite, positive float, but got -2"):
        DistillationLoss("kd", temperature=-2)


def test_divergence_kwargs_with_object() -> None:
    with pytest.raises(ValueError, match=r"`divergence_kwargs` to be empty when `divergence` is an object"):
        DistillationLoss(KD(), divergence_kwargs={"alpha": 1.0})


def test_callable_preprocess_reaches_mlkd() -> None:
    """MLKD receives the pre-process itself (a callable works as the named Z-score does)."""
    by_callable = DistillationLoss("mlkd", preprocess=standardize, temperature=4.0)
    by_name = DistillationLoss("mlkd", preprocess="zscore", temperature=4.0)
    views = {"student_logits_strong": S2, "teacher_logits_strong": T2}
    torch.testing.assert_close(by_callable(S, T, Y, **views).parts, by_name(S, T, Y, **views).parts)
    halved = DistillationLoss("mlkd", preprocess=lambda x: x / 2, temperature=4.0)(S, T, Y, **views)
    reference = mlkd(S, T, S2, T2, temperature=4.0, preprocess=lambda x: x / 2)
    torch.testing.assert_close({k: v for k, v in halved.parts.items() if k != "ce"}, reference)


def test_bad_divergence_type() -> None:
    with pytest.raises(TypeError, match=r"`divergence` to be a name or a lightning_kd.losses.Divergence, but got int"):
        DistillationLoss(3)  # type: ignore[arg-type]


def test_dkd_needs_target() -> None:
    with pytest.raises(ValueError, match=r"`target` to be a tensor of class indices for DKD, but got None"):
        DistillationLoss("dkd")(S, T)


@pytest.mark.parametrize(
    ("student", "teacher", "match"),
    [
        (S, T[:4], r"to have the same shape \(batch, classes\), but got \(6, 5\) and \(4, 5\)"),
        (S, T[:, :4], r"to have the same shape \(batch, classes\), but got \(6, 5\) and \(6, 4\)"),
        (S[0], T[0], r"`student_logits` to be 2-D \(batch, classes\), but got shape \(5,\)"),
        (S[:, :1], T[:, :1], r"`student_logits` to have at least 2 classes, but got 1"),
    ],
)
def test_bad_logits(student: torch.Tensor, teacher: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DistillationLoss("kd")(student, teacher)


@pytest.mark.parametrize(
    ("target", "match"),
    [
        (torch.tensor([0, 1, 2, 3, 4, 5]), r"`target` to be in \[0, 4\], but got values in \[0, 5\]"),
        (torch.tensor([0, 1, 2]), r"`target` to have shape \(6,\)"),
    ],
)
def test_bad_target(target: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DistillationLoss("kd")(S, T, target)


def test_non_finite_logits() -> None:
    student = S.clone()
    student[2, 1] = float("nan")
    loss = DistillationLoss("kd")
    with pytest.raises(ValueError, match=r"`student_logits` to be finite, but it contains NaN or Inf values"):
        loss(student, T, Y, check_finite=True)
    out = loss(student, T, Y, check_finite=False)
    assert not bool(torch.isfinite(out.loss))


# --------------------------------------------------------------------------------------------------------------
# contracts of the objective
# --------------------------------------------------------------------------------------------------------------


def test_build_loss_never_changes_the_callers_loss() -> None:
    """Two users of one loss object with other weights each get their own weights; the object keeps its own."""
    from lightning_kd.objective import build_loss

    shared = DistillationLoss("kd", temperature=4.0, ce_weight=1.0, kd_weight=1.0)
    first, first_weights = build_loss(shared, ce_weight=0.1, kd_weight=0.9)
    second, second_weights = build_loss(shared, ce_weight=0.5, kd_weight=3.0)
    assert first is second is shared
    assert (shared.ce_weight, shared.kd_weight) == (1.0, 1.0)
    assert (first_weights.ce_weight, first_weights.kd_weight) == (0.1, 0.9)
    assert (second_weights.ce_weight, second_weights.kd_weight) == (0.5, 3.0)
    out = shared(S, T, Y, weights=first_weights)
    torch.testing.assert_close(out.loss, 0.1 * _ce(S, Y) + 0.9 * kd_kl(S, T, temperature=4.0), rtol=1e-10, atol=1e-12)


def test_max_logit_with_zscore_standardizes_once() -> None:
    """With the Z-score pre-process the max-logit policy reads the standardized logits as they are (as the
    released code does), instead of standardizing them a second time: visible on rows with a tiny std."""
    from lightning_kd.temperature import MAX_LOGIT_FACTOR

    tiny_s, tiny_t = S * 1e-6, T * 1e-6  # std ~ 2e-6: standardizing twice would shrink the logits by ~eps / std
    loss = DistillationLoss("kd", preprocess="zscore", temperature=MaxLogitTemperature(), ce_weight=0.0)
    out = loss(tiny_s, tiny_t, Y)
    z_s, z_t = standardize(tiny_s), standardize(tiny_t)

    def peak(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return MAX_LOGIT_FACTOR * torch.maximum(a.abs().amax(1, keepdim=True), b.abs().amax(1, keepdim=True))

    assert isinstance(out.temperature, torch.Tensor)
    torch.testing.assert_close(out.temperature, peak(z_s, z_t), rtol=1e-12, atol=0)
    twice = peak(standardize(z_s), standardize(z_t))
    assert float(((twice - out.temperature).abs() / out.temperature).min()) > 1e-2


def test_strong_views_with_a_single_view_divergence_are_refused() -> None:
    """Strong-view logits with KD would add the strong view's cross-entropy silently: an error instead."""
    loss = DistillationLoss("kd", temperature=4.0)
    with pytest.raises(ValueError, match=r"Expected no strong-view logits for KD, which uses a single view"):
        loss(S, T, Y, student_logits_strong=S2, teacher_logits_strong=T2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": float("inf")}, r"`temperature` to be a finite, positive float, but got inf"),
        ({"ce_weight": float("nan")}, r"`ce_weight` to be a finite, non-negative float, but got nan"),
        ({"kd_weight": float("inf")}, r"`kd_weight` to be a finite, non-negative float, but got inf"),
        ({"kd_warmup_epochs": -1}, r"`kd_warmup_epochs` to be a non-negative integer, but got -1"),
    ],
)
def test_non_finite_hyperparameters_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DistillationLoss("kd", **kwargs)
