"""Tests of the Z-score logit standardization against the paper's properties and a naive reference."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_kd.logits import PREPROCESSES, identity, standardize
from lightning_kd.losses.functional import kd_kl


def _naive_standardize(rows: list[list[float]], *, eps: float, unbiased: bool) -> list[list[float]]:
    """(x - mean) / (eps + std) with plain Python loops."""
    out = []
    for row in rows:
        k = len(row)
        mean = sum(row) / k
        var = sum((v - mean) ** 2 for v in row) / (k - 1 if unbiased else k)
        std = math.sqrt(var)
        out.append([(v - mean) / (eps + std) for v in row])
    return out


def _population_std(z: torch.Tensor) -> torch.Tensor:
    return z.var(dim=1, correction=0).sqrt()


@pytest.fixture
def logits() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 10, generator=g, dtype=torch.float64) * 3 + 1.5


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_zero_mean_and_unit_population_std(logits: torch.Tensor, tau: float) -> None:
    z = standardize(logits, unbiased=False) / tau
    torch.testing.assert_close(z.mean(dim=1), torch.zeros(6, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(_population_std(z), torch.full((6,), 1 / tau, dtype=torch.float64), atol=1e-6, rtol=0)


def test_unbiased_population_std_is_sqrt_k_minus_1_over_k(logits: torch.Tensor) -> None:
    k = logits.shape[1]
    z = standardize(logits)  # unbiased=True by default: divides by the sample std (K - 1)
    expected = math.sqrt((k - 1) / k)  # population std / sample std = sqrt((K-1)/K)
    torch.testing.assert_close(_population_std(z), torch.full((6,), expected, dtype=torch.float64), atol=1e-6, rtol=0)
    # and the sample std is 1
    torch.testing.assert_close(z.std(dim=1), torch.ones(6, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("unbiased", [True, False])
def test_monotonic_order_preserved(logits: torch.Tensor, unbiased: bool) -> None:
    z = standardize(logits, unbiased=unbiased)
    assert torch.equal(z.argsort(dim=1), logits.argsort(dim=1))
    # strictly increasing along the sorted order
    sorted_z = z.gather(1, logits.argsort(dim=1))
    assert bool((sorted_z.diff(dim=1) > 0).all())


@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_bounded_by_sqrt_k_minus_1(logits: torch.Tensor, tau: float) -> None:
    k = logits.shape[1]
    bound = math.sqrt(k - 1) / tau
    z = standardize(logits, unbiased=False) / tau
    assert float(z.abs().max()) <= bound + 1e-9
    # a one-hot-like row (one large logit, the rest equal) nearly reaches the bound
    extreme = torch.zeros(1, k, dtype=torch.float64)
    extreme[0, 3] = 1000.0
    z_extreme = standardize(extreme, unbiased=False) / tau
    assert float(z_extreme.max()) <= bound + 1e-9
    assert float(z_extreme.max()) == pytest.approx(bound, rel=1e-6)
    assert int(z_extreme.argmax()) == 3


@pytest.mark.parametrize("unbiased", [True, False])
def test_shift_and_positive_scale_invariance(logits: torch.Tensor, unbiased: bool) -> None:
    z = standardize(logits, unbiased=unbiased)
    torch.testing.assert_close(standardize(logits + 7.5, unbiased=unbiased), z, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(standardize(logits * 4.0, unbiased=unbiased), z, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(standardize(logits * 0.3 - 2.0, unbiased=unbiased), z, atol=1e-6, rtol=1e-6)
    # a negative scale reverses the order instead
    torch.testing.assert_close(standardize(-logits, unbiased=unbiased), -z, atol=1e-6, rtol=1e-6)


def test_per_row_independence() -> None:
    rows = torch.tensor([[1.0, 2.0, 3.0], [-5.0, 0.0, 100.0]])
    torch.testing.assert_close(standardize(rows)[0], standardize(rows[:1])[0])
    torch.testing.assert_close(standardize(rows)[1], standardize(rows[1:])[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_row_gives_zeros_and_finite_gradient(dtype: torch.dtype) -> None:
    student = torch.tensor([[2.0, 2.0, 2.0, 2.0], [1.0, -1.0, 0.5, 3.0]], dtype=dtype, requires_grad=True)
    teacher = torch.tensor([[-1.0, -1.0, -1.0, -1.0], [0.0, 1.0, 2.0, 3.0]], dtype=dtype)
    z = standardize(student)
    assert torch.equal(z[0], torch.zeros(4, dtype=dtype))
    assert torch.equal(standardize(teacher)[0], torch.zeros(4, dtype=dtype))
    loss = kd_kl(z, standardize(teacher), temperature=2.0) + z.square().sum()
    loss.backward()
    assert student.grad is not None
    assert bool(torch.isfinite(student.grad).all())
    assert bool(torch.isfinite(loss))


def test_hand_computed_example() -> None:
    # [1, 2, 3]: mean 2, sample std 1 -> [-1, 0, 1]; population std sqrt(2/3) -> [-1.2247, 0, 1.2247]
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(standardize(x, eps=0.0), torch.tensor([[-1.0, 0.0, 1.0]], dtype=torch.float64))
    s = math.sqrt(1.5)
    torch.testing.assert_close(
        standardize(x, eps=0.0, unbiased=False), torch.tensor([[-s, 0.0, s]], dtype=torch.float64)
    )


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("eps", [1e-7, 0.5])
def test_matches_naive_loop(unbiased: bool, eps: float) -> None:
    rows = [[0.5, -1.25, 3.0, 2.0, 0.0], [10.0, 10.5, 9.0, 12.0, 11.0], [-3.0, 4.0, 0.0, 0.0, 1.0]]
    expected = torch.tensor(_naive_standardize(rows, eps=eps, unbiased=unbiased), dtype=torch.float64)
    got = standardize(torch.tensor(rows, dtype=torch.float64), eps=eps, unbiased=unbiased)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


def test_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: standardize(v), (x,))
    assert torch.autograd.gradcheck(lambda v: standardize(v, unbiased=False), (x,))


def test_autocast_bf16_returns_float32() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 7, generator=g).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = standardize(x)
    assert z.dtype == torch.float32
    torch.testing.assert_close(z, standardize(x.float()), rtol=1e-5, atol=1e-6)


def test_float64_stays_float64() -> None:
    assert standardize(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64


def test_identity_and_registry() -> None:
    x = torch.randn(2, 3)
    assert identity(x) is x
    assert set(PREPROCESSES) == {"none", "zscore", "center", "scale"}
    assert PREPROCESSES["zscore"] is standardize


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (torch.randn(3), ValueError, r"`logits` to be 2-D \(batch, classes\), but got shape \(3,\)"),
        (torch.randn(2, 3, 4), ValueError, r"`logits` to be 2-D"),
        (torch.randn(4, 1), ValueError, r"`logits` to have at least 2 classes, but got 1"),
        (torch.ones(2, 3, dtype=torch.long), TypeError, r"`logits` to be a floating tensor"),
        ([[1.0, 2.0]], TypeError, r"`logits` to be a torch.Tensor, but got list"),
    ],
)
def test_invalid_logits_raise(bad: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        standardize(bad)  # type: ignore[arg-type]


def test_negative_eps_raises() -> None:
    with pytest.raises(ValueError, match=r"`eps` to be non-negative, but got -0.1"):
        standardize(torch.randn(2, 3), eps=-0.1)
