"""Tests of the divergence modules: they validate hyperparameters, forward to the functions and name their parts."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from lightning_kd.logits import standardize
from lightning_kd.losses import DIST, DIVERGENCES, DKD, KD, MLKD, TTM, Divergence, create_divergence
from lightning_kd.losses import functional as LF


def _logits(seed: int, batch: int = 4, classes: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, classes, generator=g, dtype=torch.float64) * 2


S, T, S2, T2 = (_logits(i) for i in range(4))
Y = torch.tensor([0, 4, 2, 1])


def test_kd_module_forwards_to_function_and_names_part() -> None:
    parts = KD()(S, T, temperature=3.0)
    assert list(parts) == ["kl"]
    torch.testing.assert_close(parts["kl"], LF.kd_kl(S, T, temperature=3.0))
    # the hand value of KL at T=1 for one sample
    p = torch.softmax(T[0], 0)
    expected = float((p * (p.log() - torch.log_softmax(S[0], 0))).sum())
    assert float(KD()(S[:1], T[:1], temperature=1.0)["kl"]) == pytest.approx(expected, rel=1e-10)


def test_dkd_module() -> None:
    parts = DKD(alpha=2.0, beta=3.0)(S, T, target=Y, temperature=4.0)
    assert set(parts) == {"tckd", "nckd"}
    ref = LF.dkd(S, T, Y, alpha=2.0, beta=3.0, temperature=4.0)
    torch.testing.assert_close(parts, ref)
    # alpha and beta scale their own part only
    unit = DKD(alpha=1.0, beta=1.0)(S, T, target=Y, temperature=4.0)
    torch.testing.assert_close(parts["tckd"], 2.0 * unit["tckd"])
    torch.testing.assert_close(parts["nckd"], 3.0 * unit["nckd"])


def test_dkd_module_needs_target() -> None:
    assert DKD.needs_target
    with pytest.raises(ValueError, match=r"`target` to be a tensor of class indices for DKD, but got None"):
        DKD()(S, T, temperature=4.0)


@pytest.mark.parametrize("official", [True, False])
@pytest.mark.parametrize("zscore", [False, True])
def test_mlkd_module(official: bool, zscore: bool) -> None:
    module = MLKD(official=official)
    parts = module(
        S,
        T,
        student_logits_strong=S2,
        teacher_logits_strong=T2,
        temperature=4.0,
        preprocess=standardize if zscore else None,
    )
    assert set(parts) == {"kd_weak", "kd_strong", "batch", "class"}
    ref = LF.mlkd(S, T, S2, T2, temperature=4.0, official=official, standardize_logits=zscore)
    torch.testing.assert_close(parts, ref)
    assert MLKD.needs_views and MLKD.applies_preprocess


def test_mlkd_module_needs_strong_views() -> None:
    with pytest.raises(ValueError, match=r"`student_logits_strong` and `teacher_logits_strong` .* for MLKD"):
        MLKD()(S, T, temperature=4.0)
    with pytest.raises(ValueError, match=r"strongly augmented view"):
        MLKD()(S, T, student_logits_strong=S2, temperature=4.0)


def test_dist_module() -> None:
    parts = DIST(beta=2.0, gamma=0.5)(S, T, temperature=2.0)
    assert set(parts) == {"inter", "intra"}
    torch.testing.assert_close(parts, LF.dist(S, T, beta=2.0, gamma=0.5, temperature=2.0))


@pytest.mark.parametrize("weighted", [False, True])
def test_ttm_module(weighted: bool) -> None:
    parts = TTM(gamma=0.5, weighted=weighted)(S, T)
    assert list(parts) == ["wttm" if weighted else "ttm"]
    torch.testing.assert_close(next(iter(parts.values())), LF.ttm(S, T, gamma=0.5, weighted=weighted))
    assert not TTM.uses_temperature
    # a temperature passed by a caller is ignored: TTM has none
    torch.testing.assert_close(TTM(gamma=0.5, weighted=weighted)(S, T, temperature=7.0), parts)


def test_ttm_gamma_half_matches_softened_teacher() -> None:
    t = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    # the student matching softmax(t / 2) exactly gives 0
    assert float(TTM(gamma=0.5)(0.5 * t, t)["ttm"]) == pytest.approx(0.0, abs=1e-12)
    assert float(TTM(gamma=0.5)(t, t)["ttm"]) > 1e-3


def test_registry_and_create_divergence() -> None:
    assert set(DIVERGENCES) == {"kd", "dkd", "mlkd", "dist", "ttm", "wttm"}
    for name in DIVERGENCES:
        assert isinstance(create_divergence(name), Divergence)
    dkd = create_divergence("dkd", alpha=1.0, beta=8.0)
    assert isinstance(dkd, DKD) and (dkd.alpha, dkd.beta) == (1.0, 8.0)
    wttm = create_divergence("wttm", gamma=0.3)
    assert isinstance(wttm, TTM) and wttm.weighted and math.isclose(wttm.gamma, 0.3)
    assert not create_divergence("ttm").weighted


def test_unknown_divergence_lists_valid_names_and_closest() -> None:
    with pytest.raises(ValueError, match=r"one of 'dist', 'dkd', 'kd', 'mlkd', 'ttm', 'wttm', but got 'kdd'") as info:
        create_divergence("kdd")
    assert "Did you mean 'kd'" in str(info.value)
    with pytest.raises(ValueError, match=r"but got 'mlk'\. Did you mean 'mlkd'\?"):
        create_divergence("mlk")
    with pytest.raises(ValueError, match=r"but got 'zzzzzz'\.$"):  # nothing close: no hint
        create_divergence("zzzzzz")


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: DKD(alpha=-1.0), "alpha"),
        (lambda: DKD(beta=-0.5), "beta"),
        (lambda: DIST(beta=-1.0), "beta"),
        (lambda: DIST(gamma=-2.0), "gamma"),
    ],
)
def test_negative_weights_raise(factory: Callable[[], object], name: str) -> None:
    with pytest.raises(ValueError, match=rf"`{name}` to be a finite, non-negative float, but got -"):
        factory()


@pytest.mark.parametrize("gamma", [0.0, -0.25, True, "0.5"])
def test_ttm_bad_gamma_raises(gamma: object) -> None:
    with pytest.raises(ValueError, match=r"`gamma` to be a finite, positive float"):
        TTM(gamma=gamma)  # type: ignore[arg-type]


def test_zero_weights_allowed() -> None:
    parts = DKD(alpha=0.0, beta=0.0)(S, T, target=Y, temperature=4.0)
    assert float(parts["tckd"]) == 0.0 and float(parts["nckd"]) == 0.0
    assert float(DIST(beta=1.0, gamma=0.0)(S, T)["intra"]) == 0.0
