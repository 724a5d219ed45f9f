"""An arm of a paired ablation: one student, its objective, its weights, its optimizer and schedule."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from lightning_kd.classifier import OptimizerFactory, SchedulerFactory, build_model
from lightning_kd.objective import DistillationLoss, build_loss
from lightning_kd.presets import get_preset
from lightning_kd.weighting import LossWeights

__all__ = ["Arm", "BuiltArm", "build_arms"]

_NAME = re.compile(r"^[A-Za-z0-9_+-]+$")


@dataclass
class Arm:
    """One arm of an :class:`~lightning_kd.AblationModule`.

    Attributes:
        name: The arm's name: its metrics are logged under ``<name>/train/...``, ``<name>/val/acc1``.
            Letters, digits and ``_ + -``.
        student: A model name for :func:`lightning_kd.models.create_model` (e.g. ``"resnet8x4"``) or an
            ``nn.Module`` (copied: your module is not changed).
        loss: A preset name (``"kd_z"``, ``"dkd"``, ... of :data:`lightning_kd.presets.PRESETS`), a
            :class:`~lightning_kd.DistillationLoss` (copied, so arms never share a learned temperature), or
            ``None`` for the baseline without a teacher (cross-entropy only).
        ce_weight: Overrides the loss's cross-entropy weight (the baseline's default is 1).
        kd_weight: Overrides the loss's distillation weight.
        kd_warmup_epochs: Overrides the loss's warm-up.
        optimizer: A factory ``params -> Optimizer``; default SGD (lr 0.05, momentum 0.9, weight decay 5e-4).
        lr_scheduler: A factory ``optimizer -> LRScheduler``, stepped every epoch.
        student_kwargs: More arguments for ``create_model`` when ``student`` is a name.

    Example:
        >>> Arm("kd_z", "resnet8", loss="kd_z").name
        'kd_z'
    """

    name: str
    student: str | nn.Module
    loss: str | DistillationLoss | None = "kd"
    ce_weight: float | None = None
    kd_weight: float | None = None
    kd_warmup_epochs: int | None = None
    optimizer: OptimizerFactory | None = None
    lr_scheduler: SchedulerFactory | None = None
    student_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                "Expected argument `name` of an Arm to be made of letters, digits and '_', '+', '-', but got"
                f" {self.name!r}."
            )


@dataclass
class BuiltArm:
    """An arm ready to train: its student, its objective (``None`` for the baseline) and weights."""

    name: str
    student: nn.Module
    loss: DistillationLoss | None
    weights: LossWeights
    optimizer: OptimizerFactory | None
    lr_scheduler: SchedulerFactory | None
    architecture: str


def _architecture(arm: Arm, student: nn.Module) -> str:
    """What "the same architecture" means for paired initial weights: the name and kwargs, or the module's class
    and parameter shapes."""
    if isinstance(arm.student, str):
        return f"{arm.student}|{sorted((arm.student_kwargs or {}).items())!r}"
    shapes = [(k, tuple(v.shape)) for k, v in student.state_dict().items()]
    return f"{type(student).__qualname__}|{shapes!r}"


def build_arms(arms: list[Arm], *, num_classes: int | None, in_chans: int, paired_init: bool) -> list[BuiltArm]:
    """Build every arm's student and objective.

    With ``paired_init`` every arm whose architecture equals an earlier arm's starts from that arm's initial
    weights (a paired comparison); the first arm of each architecture draws them from the global random state
    (seeded by ``seed_everything`` / LightningCLI's ``seed_everything``).

    Raises:
        ValueError: For no arms, duplicate names, a loss name that is no preset, or bad weights.
    """
    if not arms:
        raise ValueError("Expected argument `arms` to hold at least one Arm, but got none.")
    names = [arm.name for arm in arms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Expected argument `arms` to have distinct names, but got {duplicates} more than once.")
    first_of: dict[str, nn.Module] = {}
    built = []
    for arm in arms:
        if not isinstance(arm, Arm):
            raise TypeError(f"Expected argument `arms` to hold lightning_kd.Arm objects, but got {type(arm).__name__}.")
        student = arm.student if isinstance(arm.student, str) else copy.deepcopy(arm.student)
        student = build_model(student, num_classes, in_chans, arm.student_kwargs)
        architecture = _architecture(arm, student)
        if paired_init:
            if architecture in first_of:
                student.load_state_dict(first_of[architecture].state_dict())
            else:
                first_of[architecture] = student
        loss: DistillationLoss | None
        if arm.loss is None:
            loss = None
            weights = LossWeights(ce_weight=1.0, kd_weight=0.0).override(ce_weight=arm.ce_weight)
        else:
            source = get_preset(arm.loss).loss() if isinstance(arm.loss, str) else copy.deepcopy(arm.loss)
            loss, weights = build_loss(
                source, ce_weight=arm.ce_weight, kd_weight=arm.kd_weight, kd_warmup_epochs=arm.kd_warmup_epochs
            )
        built.append(BuiltArm(arm.name, student, loss, weights, arm.optimizer, arm.lr_scheduler, architecture))
    return built
