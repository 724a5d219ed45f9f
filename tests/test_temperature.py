"""Tests of the temperature policies: max-logit, CTKD's global and instance-wise curriculum temperatures."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_kd.losses.functional import kd_kl
from lightning_kd.temperature import (
    CurriculumTemperature,
    FixedTemperature,
    InstanceCurriculumTemperature,
    MaxLogitTemperature,
    cosine_lambda,
    gradient_reversal,
    max_logit_temperature,
)

FACTOR = (1 + math.sqrt(3)) / 2
INITIAL_T = 1 + 20 / (1 + math.exp(-1.0))  # 1 + 20 * sigmoid(1) = 15.6212


def _logits(seed: int, batch: int = 4, classes: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, classes, generator=g) * 2


# --------------------------------------------------------------------------------------------------------------
# max-logit temperature
# --------------------------------------------------------------------------------------------------------------


def test_max_logit_hand_computed() -> None:
    # teacher [0, 0, 9]: mean 3, deviations (-3, -3, 6), sample std sqrt(54 / 2) = sqrt(27); max z = 6 / sqrt(27)
    # student [1, 2, 3]: z = (-1, 0, 1); the maximum over both is the teacher's 2 / sqrt(3)
    student, teacher = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.0, 0.0, 9.0]])
    expected = FACTOR * 6 / math.sqrt(27)
    assert expected == pytest.approx(1.5774, abs=1e-4)
    got = max_logit_temperature(student, teacher)
    assert got.shape == (1, 1)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # population std (the paper's Algorithm): sqrt(54 / 3) = sqrt(18), max z = 6 / sqrt(18) = sqrt(2) = sqrt(K - 1)
    assert float(max_logit_temperature(student, teacher, unbiased=False)) == pytest.approx(
        FACTOR * math.sqrt(2), rel=1e-5
    )


def test_max_logit_source_teacher_vs_both() -> None:
    # now the student has the larger standardized maximum (2 / sqrt(3)) and the teacher 1
    student, teacher = torch.tensor([[0.0, 0.0, 9.0]]), torch.tensor([[1.0, 2.0, 3.0]])
    both = max_logit_temperature(student, teacher, source="both")
    teacher_only = max_logit_temperature(student, teacher, source="teacher")
    assert float(both) == pytest.approx(FACTOR * 2 / math.sqrt(3), rel=1e-5)
    assert float(teacher_only) == pytest.approx(FACTOR * 1.0, rel=1e-5)


def test_max_logit_absolute_vs_signed() -> None:
    # teacher [-9, 0, 0]: z = (-2/sqrt(3), 1/sqrt(3), 1/sqrt(3)); the largest |z| is the negative one
    student, teacher = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[-9.0, 0.0, 0.0]])
    absolute = max_logit_temperature(student, teacher, source="teacher", absolute=True)
    signed = max_logit_temperature(student, teacher, source="teacher", absolute=False)
    assert float(absolute) == pytest.approx(FACTOR * 2 / math.sqrt(3), rel=1e-5)
    assert float(signed) == pytest.approx(FACTOR * 1 / math.sqrt(3), rel=1e-5)
    # with "both", the student's max z of 1 wins over the teacher's signed 0.577 but not its absolute 1.155
    assert float(max_logit_temperature(student, teacher, absolute=False)) == pytest.approx(FACTOR, rel=1e-5)
    assert float(max_logit_temperature(student, teacher, absolute=True)) == pytest.approx(
        FACTOR * 2 / math.sqrt(3), rel=1e-5
    )


def test_max_logit_per_sample_matches_loop() -> None:
    student, teacher = _logits(0, batch=5), _logits(1, batch=5)
    got = max_logit_temperature(student, teacher)
    assert got.shape == (5, 1)
    for i in range(5):
        peaks = []
        for row in (student[i].tolist(), teacher[i].tolist()):
            mean = sum(row) / len(row)
            std = math.sqrt(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
            peaks.append(max(abs(v - mean) / (std + 1e-7) for v in row))
        assert float(got[i, 0]) == pytest.approx(FACTOR * max(peaks), rel=1e-5)


def test_max_logit_detached() -> None:
    student = _logits(2).requires_grad_(True)
    teacher = _logits(3).requires_grad_(True)
    temperature = max_logit_temperature(student, teacher)
    assert not temperature.requires_grad
    assert temperature.grad_fn is None
    # the loss still has a gradient for the student, through the logits only
    kd_kl(student, teacher.detach(), temperature=temperature).backward()
    assert student.grad is not None and bool(torch.isfinite(student.grad).all())


def test_max_logit_constant_rows_finite_positive() -> None:
    constant = torch.full((3, 5), 2.5)
    temperature = max_logit_temperature(constant, constant.clone())
    assert temperature.shape == (3, 1)
    assert bool(torch.isfinite(temperature).all()) and bool((temperature > 0).all())
    # a constant teacher alone: with source="both" the student's z still drives it
    student = _logits(4, batch=3, classes=5)
    mixed = max_logit_temperature(student, constant)
    torch.testing.assert_close(mixed, max_logit_temperature(student, student.clone()))


def test_max_logit_policy_and_errors() -> None:
    student, teacher = _logits(5), _logits(6)
    policy = MaxLogitTemperature(source="teacher", absolute=False)
    torch.testing.assert_close(
        policy(student, teacher), max_logit_temperature(student, teacher, source="teacher", absolute=False)
    )
    with pytest.raises(ValueError, match=r"`source` to be 'both' or 'teacher', but got 'student'"):
        max_logit_temperature(student, teacher, source="student")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`source` to be 'both' or 'teacher'"):
        MaxLogitTemperature(source="student")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"the same shape"):
        max_logit_temperature(student, teacher[:, :3])


def test_max_logit_bf16_gives_float32() -> None:
    student, teacher = _logits(7).bfloat16(), _logits(8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        temperature = max_logit_temperature(student, teacher)
    assert temperature.dtype == torch.float32
    torch.testing.assert_close(temperature, max_logit_temperature(student.float(), teacher.float()))


def test_fixed_temperature() -> None:
    assert FixedTemperature(2.5)(torch.zeros(2, 3), torch.zeros(2, 3)) == 2.5
    for bad in (0.0, -1.0, True):
        with pytest.raises(ValueError, match=r"`temperature` to be a finite, positive float"):
            FixedTemperature(bad)


def test_gradient_reversal() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = gradient_reversal(x, -0.25)
    torch.testing.assert_close(y, x.detach())
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.25, -0.5, -0.75]))


# --------------------------------------------------------------------------------------------------------------
# CTKD: cosine curriculum and global temperature
# --------------------------------------------------------------------------------------------------------------


def _cosine(epoch: int, lam_max: float = 0.0, lam_min: float = -1.0, length: int = 10) -> float:
    return (math.cos(math.pi * min(epoch, length) / length) + 1) / 2 * (lam_max - lam_min) + lam_min


@pytest.mark.parametrize(("epoch", "expected"), [(0, 0.0), (1, -0.02447), (5, -0.5), (10, -1.0)])
def test_cosine_lambda_values(epoch: int, expected: float) -> None:
    assert _cosine(epoch) == pytest.approx(expected, abs=1e-5)
    assert cosine_lambda(epoch) == pytest.approx(_cosine(epoch), abs=1e-12)


@pytest.mark.parametrize("epoch", [11, 20, 1000])
def test_cosine_lambda_held_after_decay(epoch: int) -> None:
    assert cosine_lambda(epoch) == pytest.approx(-1.0, abs=1e-12)


def test_cosine_lambda_custom_range() -> None:
    for epoch in (0, 3, 7, 20):
        assert cosine_lambda(epoch, lambda_max=0.5, lambda_min=-2.0, decay_epochs=20) == pytest.approx(
            _cosine(epoch, 0.5, -2.0, 20), abs=1e-12
        )
    with pytest.raises(ValueError, match=r"`decay_epochs` to be a positive integer, but got 0"):
        cosine_lambda(1, decay_epochs=0)


def test_ctkd_initial_temperature() -> None:
    assert round(INITIAL_T, 2) == 15.62
    ctkd = CurriculumTemperature()
    temperature = ctkd(_logits(0), _logits(1))
    assert isinstance(temperature, torch.Tensor)
    assert temperature.item() == pytest.approx(INITIAL_T, rel=1e-6)
    assert [name for name, _ in ctkd.named_parameters()] == ["theta"]


def _true_theta_grad(theta_value: float, student: torch.Tensor, teacher: torch.Tensor) -> float:
    """d KD / d theta with a plain T = 1 + 20 sigmoid(theta), no gradient reversal."""
    theta = torch.tensor(theta_value, requires_grad=True)
    kd_kl(student, teacher, temperature=1 + 20 * torch.sigmoid(theta)).backward()
    assert theta.grad is not None
    return float(theta.grad)


@pytest.mark.parametrize("epoch", [1, 5, 10, 15])
def test_ctkd_gradient_reversal(epoch: int) -> None:
    student, teacher = _logits(10), _logits(11)
    ctkd = CurriculumTemperature()
    ctkd.set_epoch(epoch)
    assert ctkd.lambda_ == pytest.approx(_cosine(epoch), abs=1e-12)
    assert ctkd.log_values() == {"lambda": pytest.approx(_cosine(epoch), abs=1e-12)}
    temperature = ctkd(student, teacher)
    assert temperature.item() == pytest.approx(INITIAL_T, rel=1e-6)  # the GRL is the identity forwards
    kd_kl(student, teacher, temperature=temperature).backward()
    true_grad = _true_theta_grad(1.0, student, teacher)
    assert abs(true_grad) > 1e-6
    assert ctkd.theta.grad is not None
    assert float(ctkd.theta.grad) == pytest.approx(_cosine(epoch) * true_grad, rel=1e-5)
    # lambda < 0: the sign is reversed, theta ascends the KD loss
    assert float(ctkd.theta.grad) * true_grad < 0


def test_ctkd_epoch_zero_gives_no_gradient() -> None:
    student, teacher = _logits(12), _logits(13)
    ctkd = CurriculumTemperature()
    assert int(ctkd.epoch) == 0 and ctkd.lambda_ == 0.0
    kd_kl(student, teacher, temperature=ctkd(student, teacher)).backward()
    assert ctkd.theta.grad is not None
    assert float(ctkd.theta.grad) == 0.0


def test_ctkd_ascent_increases_kd_loss() -> None:
    student, teacher = _logits(14), _logits(15)
    ctkd = CurriculumTemperature()
    ctkd.set_epoch(10)
    before = kd_kl(student, teacher, temperature=ctkd(student, teacher)).item()
    optimizer = torch.optim.SGD(ctkd.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        kd_kl(student, teacher, temperature=ctkd(student, teacher)).backward()
        optimizer.step()
    after = kd_kl(student, teacher, temperature=ctkd(student, teacher)).item()
    assert after > before


def test_ctkd_epoch_in_state_dict() -> None:
    ctkd = CurriculumTemperature()
    ctkd.set_epoch(7)
    with torch.no_grad():
        ctkd.theta.fill_(-0.3)
    state = ctkd.state_dict()
    assert set(state) == {"epoch", "theta"}
    assert int(state["epoch"]) == 7
    restored = CurriculumTemperature()
    assert int(restored.epoch) == 0
    restored.load_state_dict(state)
    assert int(restored.epoch) == 7
    assert restored.lambda_ == pytest.approx(_cosine(7), abs=1e-12)
    assert restored.theta.item() == pytest.approx(-0.3)
    expected_t = 1 + 20 / (1 + math.exp(0.3))
    assert restored(_logits(0), _logits(1)).item() == pytest.approx(expected_t, rel=1e-6)


def test_ctkd_custom_range_and_errors() -> None:
    ctkd = CurriculumTemperature(t_start=2.0, t_range=4.0, init=0.0)
    assert ctkd(_logits(0), _logits(1)).item() == pytest.approx(4.0)  # 2 + 4 * sigmoid(0)
    with pytest.raises(ValueError, match=r"`t_start` to be a finite, positive float, but got 0"):
        CurriculumTemperature(t_start=0.0)
    with pytest.raises(ValueError, match=r"`t_range` to be a finite, non-negative float, but got -1"):
        CurriculumTemperature(t_range=-1.0)
    with pytest.raises(ValueError, match=r"`decay_epochs` to be a positive integer, but got 0"):
        CurriculumTemperature(decay_epochs=0)


# --------------------------------------------------------------------------------------------------------------
# CTKD: instance-wise temperature
# --------------------------------------------------------------------------------------------------------------


def test_instance_ctkd_shape_and_initial_values() -> None:
    policy = InstanceCurriculumTemperature(num_classes=6, hidden=8)
    temperature = policy(_logits(20), _logits(21))
    assert temperature.shape == (4, 1)
    torch.testing.assert_close(temperature.detach(), torch.full((4, 1), INITIAL_T), rtol=1e-6, atol=1e-6)


def _plain_instance_temperature(
    policy: InstanceCurriculumTemperature, student: torch.Tensor, teacher: torch.Tensor
) -> torch.Tensor:
    features = torch.cat([torch.softmax(teacher, dim=1), torch.softmax(student, dim=1)], dim=1)
    return 1 + 20 * torch.sigmoid(policy.mlp(features))


@pytest.mark.parametrize("epoch", [0, 5])
def test_instance_ctkd_gradient_reversal_on_mlp(epoch: int) -> None:
    torch.manual_seed(0)
    student, teacher = _logits(22), _logits(23)
    policy = InstanceCurriculumTemperature(num_classes=6, hidden=8)
    with torch.no_grad():  # a non-zero last layer, so that every parameter gets a gradient
        nn.init.normal_(policy.mlp[2].weight, std=0.5)
    policy.set_epoch(epoch)
    kd_kl(student, teacher, temperature=policy(student, teacher)).backward()
    reversed_grads = [p.grad.clone() for p in policy.parameters()]  # type: ignore[union-attr]
    policy.zero_grad()
    kd_kl(student, teacher, temperature=_plain_instance_temperature(policy, student, teacher)).backward()
    lam = _cosine(epoch)
    for got, param in zip(reversed_grads, policy.parameters(), strict=True):
        assert param.grad is not None and float(param.grad.abs().max()) > 0
        torch.testing.assert_close(got, lam * param.grad, rtol=1e-5, atol=1e-8)


def test_instance_ctkd_inputs_detached() -> None:
    student = _logits(24).requires_grad_(True)
    teacher = _logits(25).requires_grad_(True)
    policy = InstanceCurriculumTemperature(num_classes=6, hidden=8)
    with torch.no_grad():
        nn.init.normal_(policy.mlp[2].weight, std=0.5)
    policy.set_epoch(5)
    temperature = policy(student, teacher)
    temperature.sum().backward()
    assert student.grad is None and teacher.grad is None
    assert policy.mlp[0].weight.grad is not None
    # through a loss, the student's gradient is that of the loss at a constant temperature
    student.grad = None
    kd_kl(student, teacher.detach(), temperature=policy(student, teacher)).backward()
    reference = student.detach().clone().requires_grad_(True)
    kd_kl(reference, teacher.detach(), temperature=policy(student, teacher).detach()).backward()
    assert student.grad is not None
    torch.testing.assert_close(student.grad, reference.grad)


def test_instance_ctkd_errors() -> None:
    policy = InstanceCurriculumTemperature(num_classes=6)
    with pytest.raises(
        ValueError, match=r"`student_logits` to have 6 classes \(the policy's `num_classes`\), but got 5"
    ):
        policy(torch.randn(4, 5), torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"`num_classes` to be an integer >= 2, but got 1"):
        InstanceCurriculumTemperature(num_classes=1)
    with pytest.raises(ValueError, match=r"`hidden` to be a positive integer, but got 0"):
        InstanceCurriculumTemperature(num_classes=3, hidden=0)


def test_instance_ctkd_epoch_in_state_dict() -> None:
    policy = InstanceCurriculumTemperature(num_classes=3, hidden=4)
    policy.set_epoch(4)
    restored = InstanceCurriculumTemperature(num_classes=3, hidden=4)
    restored.load_state_dict(policy.state_dict())
    assert int(restored.epoch) == 4
    assert restored.lambda_ == pytest.approx(_cosine(4), abs=1e-12)


# ----------------------------------------------------------------------------------------------------------
# the runaway guard of the learned temperatures
def test_runaway_temperature_warns_once_after_patience_logging_steps() -> None:
    import warnings

    policy = CurriculumTemperature(init=50.0, patience=3)  # sigmoid(50) = 1: pinned at the upper bound 21
    at_bound = policy(torch.zeros(2, 3), torch.zeros(2, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            policy.observe(at_bound)
        assert not caught  # two steps at the bound are within the patience
        for _ in range(4):
            policy.observe(at_bound)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1  # once
    assert "upper bound of its range [1, 21] for 3 consecutive logging steps" in messages[0]
    assert "lambda_min" in messages[0] and "t_range" in messages[0]
    CurriculumTemperature().observe(torch.tensor(15.62))  # mid-range: nothing


def test_runaway_temperature_can_raise_and_catches_non_finite_theta() -> None:
    from lightning_kd.temperature import TemperatureRunawayError

    policy = CurriculumTemperature(init=-50.0, patience=2, on_runaway="raise")  # pinned at the lower bound 1
    at_bound = policy(torch.zeros(2, 3), torch.zeros(2, 3))
    policy.observe(at_bound)
    with pytest.raises(TemperatureRunawayError, match=r"within 1% of the lower bound"):
        policy.observe(at_bound)
    broken = CurriculumTemperature(on_runaway="raise")
    with torch.no_grad():
        broken.theta.fill_(float("nan"))
    with pytest.raises(TemperatureRunawayError, match=r"became non-finite"):
        broken.observe(broken(torch.zeros(2, 3), torch.zeros(2, 3)))
    with pytest.raises(ValueError, match=r"`on_runaway` to be 'warn' or 'raise', but got 'ignore'"):
        CurriculumTemperature(on_runaway="ignore")  # type: ignore[arg-type]


def test_runaway_guard_runs_in_training_on_logging_steps() -> None:
    """A real fit with a temperature forced to its bound raises on the patience-th logging step."""
    from functools import partial

    from lightning_kd import DistillationLoss, DistillationModule
    from lightning_kd.temperature import TemperatureRunawayError
    from tests.helpers import bn_teacher, loader, make_trainer, mlp, random_dataset

    policy = InstanceCurriculumTemperature(num_classes=10, init=50.0, patience=4, on_runaway="raise")
    module = DistillationModule(
        mlp(), bn_teacher(), DistillationLoss("kd", temperature=policy), optimizer=partial(torch.optim.SGD, lr=0.0)
    )
    trainer = make_trainer(max_epochs=1, log_every_n_steps=1)
    with pytest.raises(TemperatureRunawayError, match=r"for 4 consecutive logging steps"):
        trainer.fit(module, loader(random_dataset(64)))
    assert trainer.global_step == 3  # the 4th step's check raised before its optimizer step
