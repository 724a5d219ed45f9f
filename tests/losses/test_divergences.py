"""The divergence test harness: every registered divergence, every check.

For each name in :data:`lightning_kd.losses.DIVERGENCES` (a divergence without an entry in
``tests/losses/references.py`` fails here): the naive reference on hand-made logits with a float and a per-sample
temperature, the module equal to its functional core and to the same divergence inside a
:class:`~lightning_kd.DistillationLoss`, gradcheck in float64, bf16 autocast returning float32, finite values and
gradients for constant rows, the contract's errors (a misspelt keyword, missing target or views, bad shapes) and the
reserved part names.
"""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import Any

import pytest
import torch

from lightning_kd import DistillationLoss
from lightning_kd.logits import standardize
from lightning_kd.losses import (
    DIVERGENCES,
    RESERVED_PART_NAMES,
    Divergence,
    DivergenceInputs,
    create_divergence,
    register_divergence,
)
from tests.losses.references import EXAMPLES, REFERENCES

NAMES = sorted(DIVERGENCES)
# DIST's Pearson correlation has an eps of 1e-8 in its denominator (as in the released code), the references none:
# agreement to about 1e-7 relative, hence rtol 1e-6.
B, C = 6, 5


def _logits(seed: int, dtype: torch.dtype = torch.float64, scale: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, C, generator=g) * scale).to(dtype)


def _inputs(module: Divergence, *, dtype: torch.dtype = torch.float64, **changes: Any) -> DivergenceInputs:
    """Inputs with everything a divergence may need (strong views only for those that use them)."""
    views = {}
    if module.needs_views:
        views = {"student_logits_strong": _logits(3, dtype), "teacher_logits_strong": _logits(4, dtype)}
    base = DivergenceInputs(
        _logits(1, dtype),
        _logits(2, dtype),
        target=torch.tensor([0, 4, 2, 1, 3, 0]),
        temperature=3.0 if module.uses_temperature else 1.0,
        **views,
    )
    return base.replace(**changes)


def _call(module: Divergence, inputs: DivergenceInputs) -> dict[str, torch.Tensor]:
    """The module called through its public keyword signature."""
    values = {f.name: getattr(inputs, f.name) for f in fields(inputs)}
    return module(values.pop("student_logits"), values.pop("teacher_logits"), **values)


def _as_tensors(parts: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, dtype=torch.float64) for k, v in parts.items()}


def test_every_registered_divergence_has_a_reference() -> None:
    assert set(REFERENCES) == set(DIVERGENCES) == set(EXAMPLES)


def test_forward_keywords_are_the_inputs_fields() -> None:
    """``Divergence.forward``'s keywords are exactly ``DivergenceInputs``'s fields: one contract."""
    params = list(inspect.signature(Divergence.forward).parameters)[1:]  # without self
    assert params == [f.name for f in fields(DivergenceInputs)]


@pytest.mark.parametrize("name", NAMES)
def test_reference_float_temperature(name: str) -> None:
    module = EXAMPLES[name]()
    inputs = _inputs(module)
    parts = _call(module, inputs)
    assert set(parts) == set(REFERENCES[name](inputs, module))
    torch.testing.assert_close(_as_tensors(parts), _as_tensors(REFERENCES[name](inputs, module)), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in NAMES if DIVERGENCES[n]().uses_temperature])
def test_reference_per_sample_temperature(name: str) -> None:
    module = EXAMPLES[name]()
    temperature = torch.tensor([[1.0], [2.0], [3.0], [0.5], [4.0], [1.5]], dtype=torch.float64)
    inputs = _inputs(module, temperature=temperature)
    torch.testing.assert_close(
        _as_tensors(_call(module, inputs)), _as_tensors(REFERENCES[name](inputs, module)), rtol=1e-6, atol=1e-10
    )
    # a (batch, 1) tensor of equal values is the float temperature
    same = _inputs(module, temperature=torch.full((B, 1), 3.0, dtype=torch.float64))
    torch.testing.assert_close(_call(module, same), _call(module, _inputs(module)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_module_equals_registry_and_objective(name: str) -> None:
    """The registry builds the same divergence, and DistillationLoss adds nothing but the weights."""
    module = EXAMPLES[name]()
    inputs = _inputs(module)
    by_name = create_divergence(name, **_hyperparameters(module))
    torch.testing.assert_close(_call(by_name, inputs), _call(module, inputs))
    loss = DistillationLoss(module, temperature=3.0 if module.uses_temperature else None, ce_weight=0.0, kd_weight=2.0)
    views = (
        {k: getattr(inputs, k) for k in ("student_logits_strong", "teacher_logits_strong")}
        if module.needs_views
        else {}
    )
    out = loss(inputs.student_logits, inputs.teacher_logits, inputs.target, **views)
    expected = {k: 2.0 * v for k, v in _call(module, inputs).items()}
    torch.testing.assert_close(out.parts, expected)
    torch.testing.assert_close(out.kd, sum(expected.values()))


def _hyperparameters(module: Divergence) -> dict[str, Any]:
    signature = inspect.signature(type(module).__init__)
    return {name: getattr(module, name) for name in list(signature.parameters)[1:] if hasattr(module, name)}


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name: str) -> None:
    module = EXAMPLES[name]()
    inputs = _inputs(module)

    def total(student: torch.Tensor) -> torch.Tensor:
        parts = module.compute(inputs.replace(student_logits=student))
        return torch.stack(list(parts.values())).sum()

    student = inputs.student_logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(total, (student,), fast_mode=module.needs_views)


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_returns_float32(name: str) -> None:
    module = EXAMPLES[name]()
    inputs16 = _inputs(module, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        parts = _call(module, inputs16)
    assert all(v.dtype == torch.float32 for v in parts.values())
    as32 = DivergenceInputs(
        **{
            f.name: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for f in fields(inputs16)
            for v in [getattr(inputs16, f.name)]
        }
    )
    torch.testing.assert_close(parts, _call(module, as32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("preprocess", [None, standardize])
def test_constant_rows_are_finite(name: str, preprocess: Any) -> None:
    module = EXAMPLES[name]()
    constant = torch.full((B, C), 2.5, dtype=torch.float64)
    views = {"student_logits_strong": constant, "teacher_logits_strong": constant} if module.needs_views else {}
    student = constant.clone().requires_grad_(True)
    pre = preprocess if preprocess is not None else (lambda x: x)
    inputs = _inputs(module, student_logits=pre(student), teacher_logits=pre(constant), preprocess=preprocess, **views)
    if module.applies_preprocess:
        inputs = inputs.replace(student_logits=student, teacher_logits=constant)
    parts = module.compute(inputs)
    total = torch.stack(list(parts.values())).sum()
    assert torch.isfinite(total)
    total.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_misspelt_keyword_is_a_type_error(name: str) -> None:
    module = EXAMPLES[name]()
    s, t = _logits(1), _logits(2)
    with pytest.raises(TypeError, match="temprature"):
        module(s, t, temprature=4.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="temprature"):
        _inputs(module).replace(temprature=4.0)


@pytest.mark.parametrize("name", NAMES)
def test_contract_errors(name: str) -> None:
    module = EXAMPLES[name]()
    inputs = _inputs(module)
    with pytest.raises(ValueError, match=r"`student_logits` and `teacher_logits` to have the same shape"):
        module.compute(inputs.replace(teacher_logits=_logits(2)[:, :4]))
    with pytest.raises(ValueError, match=r"2-D"):
        module.compute(inputs.replace(student_logits=_logits(1)[0]))
    if module.needs_target:
        with pytest.raises(ValueError, match=r"`target`"):
            module.compute(inputs.replace(target=None))
    if module.needs_views:
        with pytest.raises(ValueError, match=r"strong"):
            module.compute(inputs.replace(student_logits_strong=None))
    assert not RESERVED_PART_NAMES & set(_call(module, inputs))


@pytest.mark.parametrize("reserved", sorted(RESERVED_PART_NAMES))
def test_reserved_part_names_are_refused(reserved: str) -> None:
    """A part named like the objective's own entries would be counted twice: refused at registration and use."""

    class Clash(Divergence):
        def compute(self, inputs: DivergenceInputs) -> dict[str, torch.Tensor]:
            return {reserved: inputs.student_logits.sum() * 0}

    with pytest.raises(ValueError, match=rf"not to use the objective's names .*'{reserved}'"):
        DistillationLoss(Clash(), temperature=1.0)(_logits(1), _logits(2), torch.zeros(B, dtype=torch.long))

    class Declared(Clash):
        parts = (reserved,)

    with pytest.raises(ValueError, match=rf"divergence 'clash' not to use the objective's names .*'{reserved}'"):
        register_divergence("clash")(Declared)
    assert "clash" not in DIVERGENCES


def test_registry_refuses_duplicates_and_bad_names() -> None:
    with pytest.raises(ValueError, match=r"'kd' is already registered"):
        register_divergence("kd")(EXAMPLES["kd"]().__class__)
    with pytest.raises(ValueError, match=r"lower-case identifier, but got 'My KD'"):
        register_divergence("My KD")(EXAMPLES["kd"]().__class__)
