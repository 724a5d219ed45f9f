"""The divergence contract: what a divergence receives (:class:`DivergenceInputs`), what it declares
(:class:`Divergence`'s class attributes), and the registry of names (:func:`register_divergence`).

Every divergence is called the same way, so :class:`lightning_kd.DistillationLoss` composes any of them with
any pre-process and temperature policy::

    divergence(student_logits, teacher_logits, target=..., temperature=..., student_logits_strong=...,
               teacher_logits_strong=..., preprocess=..., check_finite=...) -> dict[str, Tensor]

The keywords are the fields of :class:`DivergenceInputs`: a new input is one new field there (and the
keyword of :meth:`Divergence.forward`, which a test keeps in step with it). A misspelt keyword is a
``TypeError`` naming it. Subclasses implement :meth:`Divergence.compute` on the inputs.

Adding a divergence: its function in :mod:`lightning_kd.losses.functional`, its module here-like in
:mod:`lightning_kd.losses.modules` with ``@register_divergence("name")``, and its naive reference in
``tests/losses/references.py``; the divergence test harness then checks it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from torch import Tensor, nn

from lightning_kd._validation import unknown_name_error

__all__ = [
    "DIVERGENCES",
    "RESERVED_PART_NAMES",
    "Divergence",
    "DivergenceInputs",
    "create_divergence",
    "register_divergence",
]

#: Names a divergence part may not take: the objective's own entries (``parts["ce"]``, the ``kd`` sum, the
#: total ``loss``) and the log keys built from them (``train/loss_ce``, ``train/loss_kd``, ``train/loss``).
RESERVED_PART_NAMES = frozenset({"ce", "kd", "loss"})


@dataclass(frozen=True)
class DivergenceInputs:
    """Everything a divergence may receive for one batch.

    Attributes:
        student_logits: Student logits (pre-processed unless the divergence applies the pre-process itself),
            shape (batch, classes).
        teacher_logits: Teacher logits, same shape.
        target: Ground-truth class indices, shape (batch,), or ``None``.
        temperature: The temperature: a float, or a scalar or (batch, 1) tensor.
        student_logits_strong: Student logits on a strongly augmented view (MLKD), raw.
        teacher_logits_strong: Teacher logits on the strong view, raw.
        preprocess: The pre-process of the objective, for divergences that apply it themselves
            (``applies_preprocess``, MLKD); ``None`` means raw logits.
        check_finite: Value checks of the functional core (see :mod:`lightning_kd.losses.functional`).
    """

    student_logits: Tensor
    teacher_logits: Tensor
    target: Tensor | None = None
    temperature: float | Tensor = 1.0
    student_logits_strong: Tensor | None = None
    teacher_logits_strong: Tensor | None = None
    preprocess: Callable[[Tensor], Tensor] | None = None
    check_finite: bool | None = None

    def replace(self, **changes: Any) -> DivergenceInputs:
        """A copy with some fields changed (a misspelt field name is a ``TypeError``)."""
        return dataclasses.replace(self, **changes)


class Divergence(nn.Module):
    """Base class of the divergences composed by :class:`lightning_kd.DistillationLoss`.

    Class attributes declare what a divergence needs: ``uses_temperature``, ``needs_target``, ``needs_views``
    (a weak and a strong augmented view, MLKD) and ``applies_preprocess`` (it applies the pre-process itself,
    receiving raw logits and ``inputs.preprocess``). ``parts`` names the parts :meth:`compute` returns.
    """

    uses_temperature: ClassVar[bool] = True
    needs_target: ClassVar[bool] = False
    needs_views: ClassVar[bool] = False
    applies_preprocess: ClassVar[bool] = False
    parts: ClassVar[tuple[str, ...]] = ()

    def forward(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        *,
        target: Tensor | None = None,
        temperature: float | Tensor = 1.0,
        student_logits_strong: Tensor | None = None,
        teacher_logits_strong: Tensor | None = None,
        preprocess: Callable[[Tensor], Tensor] | None = None,
        check_finite: bool | None = None,
    ) -> dict[str, Tensor]:
        """The divergence's named parts (see :class:`DivergenceInputs` for the arguments)."""
        return self.compute(
            DivergenceInputs(
                student_logits,
                teacher_logits,
                target=target,
                temperature=temperature,
                student_logits_strong=student_logits_strong,
                teacher_logits_strong=teacher_logits_strong,
                preprocess=preprocess,
                check_finite=check_finite,
            )
        )

    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """The named parts for ``inputs``; implemented by every divergence."""
        raise NotImplementedError(f"{type(self).__name__} does not implement `compute(inputs)`.")


D = TypeVar("D", bound=Callable[..., Divergence])


class _Registry(Mapping[str, Callable[..., Divergence]]):
    """Divergence builders by name, filled by :func:`register_divergence` (read-only from outside)."""

    def __init__(self) -> None:
        self._builders: dict[str, Callable[..., Divergence]] = {}

    def __getitem__(self, name: str) -> Callable[..., Divergence]:
        return self._builders[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)

    def add(self, name: str, builder: Callable[..., Divergence]) -> None:
        if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
            raise ValueError(f"Expected a divergence name to be a lower-case identifier, but got {name!r}.")
        if name in self._builders:
            raise ValueError(f"Expected a new divergence name, but {name!r} is already registered.")
        self._builders[name] = builder

    def __repr__(self) -> str:
        return f"DIVERGENCES({sorted(self._builders)})"


#: Divergences by name: the names a recipe or ``DistillationLoss(divergence=...)`` accepts.
DIVERGENCES = _Registry()


def register_divergence(name: str, **defaults: Any) -> Callable[[D], D]:
    """Register a divergence class (or builder) under ``name``, optionally with default hyperparameters.

    The class's ``parts`` may not use the objective's own names (:data:`RESERVED_PART_NAMES`).

    Example:
        >>> import torch
        >>> @register_divergence("l2_probs")
        ... class L2Probs(Divergence):
        ...     parts = ("l2",)
        ...     def compute(self, inputs: DivergenceInputs) -> dict[str, torch.Tensor]:
        ...         diff = inputs.student_logits.softmax(1) - inputs.teacher_logits.softmax(1)
        ...         return {"l2": diff.pow(2).sum(1).mean()}
        >>> create_divergence("l2_probs")(torch.zeros(2, 3), torch.zeros(2, 3))
        {'l2': tensor(0.)}
        >>> _ = DIVERGENCES._builders.pop("l2_probs")  # (keep the doctest from changing the registry)
    """

    def decorate(builder: D) -> D:
        reserved = RESERVED_PART_NAMES & set(getattr(builder, "parts", ()))
        if reserved:
            raise ValueError(
                f"Expected the parts of divergence {name!r} not to use the objective's names"
                f" {sorted(RESERVED_PART_NAMES)}, but got {sorted(reserved)}."
            )
        if defaults:

            def build(**kwargs: Any) -> Divergence:
                return builder(**{**defaults, **kwargs})

            build.__name__ = getattr(builder, "__name__", name)
            build.__doc__ = getattr(builder, "__doc__", None)
            DIVERGENCES.add(name, build)
        else:
            DIVERGENCES.add(name, builder)
        return builder

    return decorate


def create_divergence(name: str, **kwargs: Any) -> Divergence:
    """Build a divergence by name with its hyperparameters.

    Example:
        >>> create_divergence("dkd", alpha=1.0, beta=8.0)
        DKD(alpha=1.0, beta=8.0)
        >>> create_divergence("kdd")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `divergence` to be one of ..., but got 'kdd'. Did you mean 'kd' or ...?
    """
    if name not in DIVERGENCES:
        raise unknown_name_error("divergence", name, DIVERGENCES)
    return DIVERGENCES[name](**kwargs)
