"""lightning-kd: logit-based knowledge distillation for PyTorch Lightning.

The functional core (:mod:`lightning_kd.logits`, :mod:`lightning_kd.losses.functional`,
:mod:`lightning_kd.temperature`) is pure tensor math; :class:`DistillationLoss` composes a pre-process, a
temperature policy and a divergence. :class:`DistillationModule` (a LightningModule wrapping a student and a
frozen teacher) and the :class:`KnowledgeDistillation` callback (for an existing LightningModule) bring it to
Lightning.

The names below are imported lazily (PEP 562): ``import lightning_kd.losses.functional`` loads torch only,
not Lightning, torchmetrics or matplotlib; ``lightning_kd.DistillationModule`` loads Lightning when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "AblationModule": "lightning_kd.ablation",
    "Arm": "lightning_kd.ablation",
    "NonFiniteError": "lightning_kd.guard",
    "ClassifierModule": "lightning_kd.classifier",
    "CurriculumTemperature": "lightning_kd.temperature",
    "DIST": "lightning_kd.losses.modules",
    "DKD": "lightning_kd.losses.modules",
    "DistillationLoss": "lightning_kd.objective",
    "DistillationModule": "lightning_kd.module",
    "DistillationOutput": "lightning_kd.objective",
    "Divergence": "lightning_kd.losses.base",
    "DivergenceInputs": "lightning_kd.losses.base",
    "FixedTemperature": "lightning_kd.temperature",
    "InstanceCurriculumTemperature": "lightning_kd.temperature",
    "KD": "lightning_kd.losses.modules",
    "KnowledgeDistillation": "lightning_kd.callback",
    "LossWeights": "lightning_kd.weighting",
    "MLKD": "lightning_kd.losses.modules",
    "MaxLogitTemperature": "lightning_kd.temperature",
    "Preset": "lightning_kd.presets",
    "TTM": "lightning_kd.losses.modules",
    "TeacherInputAdapter": "lightning_kd.teacher",
    "TeacherLogitCache": "lightning_kd.cache.store",
    "create_loss": "lightning_kd.presets",
    "dist": "lightning_kd.losses.functional",
    "dkd": "lightning_kd.losses.functional",
    "kd_kl": "lightning_kd.losses.functional",
    "load_teacher": "lightning_kd.teacher",
    "max_logit_temperature": "lightning_kd.temperature",
    "mlkd": "lightning_kd.losses.functional",
    "register_divergence": "lightning_kd.losses.base",
    "standardize": "lightning_kd.logits",
    "ttm": "lightning_kd.losses.functional",
}

__all__ = [
    "DIST",
    "DKD",
    "KD",
    "MLKD",
    "TTM",
    "AblationModule",
    "Arm",
    "ClassifierModule",
    "CurriculumTemperature",
    "DistillationLoss",
    "DistillationModule",
    "DistillationOutput",
    "Divergence",
    "DivergenceInputs",
    "FixedTemperature",
    "InstanceCurriculumTemperature",
    "KnowledgeDistillation",
    "LossWeights",
    "MaxLogitTemperature",
    "NonFiniteError",
    "Preset",
    "TeacherInputAdapter",
    "TeacherLogitCache",
    "__version__",
    "create_loss",
    "dist",
    "dkd",
    "kd_kl",
    "load_teacher",
    "max_logit_temperature",
    "mlkd",
    "register_divergence",
    "standardize",
    "ttm",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lightning_kd' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from lightning_kd.ablation import AblationModule, Arm
    from lightning_kd.cache.store import TeacherLogitCache
    from lightning_kd.callback import KnowledgeDistillation
    from lightning_kd.classifier import ClassifierModule
    from lightning_kd.guard import NonFiniteError
    from lightning_kd.logits import standardize
    from lightning_kd.losses.base import Divergence, DivergenceInputs, register_divergence
    from lightning_kd.losses.functional import dist, dkd, kd_kl, mlkd, ttm
    from lightning_kd.losses.modules import DIST, DKD, KD, MLKD, TTM
    from lightning_kd.module import DistillationModule
    from lightning_kd.objective import DistillationLoss, DistillationOutput
    from lightning_kd.presets import Preset, create_loss
    from lightning_kd.teacher import TeacherInputAdapter, load_teacher
    from lightning_kd.temperature import (
        CurriculumTemperature,
        FixedTemperature,
        InstanceCurriculumTemperature,
        MaxLogitTemperature,
        max_logit_temperature,
    )
    from lightning_kd.weighting import LossWeights
