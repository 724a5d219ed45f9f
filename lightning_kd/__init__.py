"""lightning-kd: logit-based knowledge distillation for PyTorch Lightning.

The functional core (:mod:`lightning_kd.logits`, :mod:`lightning_kd.losses.functional`,
:mod:`lightning_kd.temperature`) is pure tensor math; :class:`DistillationLoss` composes a pre-process, a
temperature policy and a divergence. :class:`DistillationModule` (a LightningModule wrapping a student and a
frozen teacher) and the :class:`KnowledgeDistillation` callback (for an existing LightningModule) bring it to
Lightning.
"""

from lightning_kd.callback import KnowledgeDistillation
from lightning_kd.classifier import ClassifierModule
from lightning_kd.logits import standardize
from lightning_kd.losses import DIST, DKD, KD, MLKD, TTM, dist, dkd, kd_kl, mlkd, ttm
from lightning_kd.module import DistillationModule
from lightning_kd.objective import DistillationLoss, DistillationOutput
from lightning_kd.teacher import TeacherInputAdapter, load_teacher
from lightning_kd.temperature import (
    CurriculumTemperature,
    FixedTemperature,
    InstanceCurriculumTemperature,
    MaxLogitTemperature,
    max_logit_temperature,
)

__version__ = "0.1.0"

__all__ = [
    "DIST",
    "DKD",
    "KD",
    "MLKD",
    "TTM",
    "ClassifierModule",
    "CurriculumTemperature",
    "DistillationLoss",
    "DistillationModule",
    "DistillationOutput",
    "FixedTemperature",
    "InstanceCurriculumTemperature",
    "KnowledgeDistillation",
    "MaxLogitTemperature",
    "TeacherInputAdapter",
    "__version__",
    "dist",
    "dkd",
    "kd_kl",
    "load_teacher",
    "max_logit_temperature",
    "mlkd",
    "standardize",
    "ttm",
]
