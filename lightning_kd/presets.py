"""The named distillation methods as data: one definition of each method's settings.

A :class:`Preset` is a method's configuration of :class:`~lightning_kd.DistillationLoss` (divergence,
pre-process, temperature, weights) with its display name and the source of its values. The demo, the
benchmarks, the recipe generator, the ablation arms and the documentation's tables all read
:data:`PRESETS`, so a method's hyperparameters are written out once. The values are the CIFAR-100 settings
of the literature (the recipes change a few per teacher–student pair, e.g. DKD's ``beta``).

==============  ==================  ===========================================================================
name            display name        settings
==============  ==================  ===========================================================================
``kd``          KD                  T 4, CE 0.1, KD 0.9
``kd_z``        KD+Z                Z-score, base T 2, CE 0.1, KD 9
``ctkd``        CTKD                curriculum temperature, CE 0.1, KD 0.9
``ctkd_z``      CTKD+Z              Z-score, curriculum temperature, CE 0.1, KD 9
``dkd``         DKD                 alpha 1, beta 8, T 4, CE 1, KD 1, warm-up 20 epochs
``dkd_z``       DKD+Z               Z-score, alpha 9, beta 72, T 2, CE 1, KD 1, warm-up 20 epochs
``mlkd``        MLKD                T 4, CE 0.1, KD 0.9 (needs weak and strong views)
``mlkd_z``      MLKD+Z              Z-score, base T 2, CE 0.1, KD 9 (needs weak and strong views)
``maxlogit_z``  Max-logit+Z         Z-score, max-logit temperature, CE 0.1, KD 9
``dist``        DIST                beta 2, gamma 2, T 4, CE 1, KD 1
``dist_z``      DIST+Z              Z-score, beta 2, gamma 2, base T 2, CE 1, KD 9
``ttm``         TTM                 gamma 0.1 (no temperature), CE 1, KD 45
``wttm``        WTTM                gamma 0.2, weighted (no temperature), CE 1, KD 4
==============  ==================  ===========================================================================

Older spellings are accepted by :func:`get_preset` (``kd_zscore``, ``ctkd_zscore``, ``max_logit``,
``maxlogit``, ...).

Example:
    >>> loss = create_loss("kd_z")
    >>> loss.preprocess_name, loss.weights.kd_weight, loss.weights.ce_weight
    ('zscore', 9.0, 0.1)
    >>> get_preset("kd_zscore").name  # an older spelling
    'kd_z'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lightning_kd._validation import unknown_name_error

if TYPE_CHECKING:
    from lightning_kd.objective import DistillationLoss

__all__ = ["ALIASES", "PRESETS", "Preset", "create_loss", "get_preset"]

#: Temperature kinds of a preset besides a number and ``None``: their classes (``lightning_kd.<name>``).
TEMPERATURE_CLASSES = {"curriculum": "CurriculumTemperature", "max_logit": "MaxLogitTemperature"}

#: CTKD's curriculum as run for the CIFAR-100 tables: T = 1 + 20 sigmoid(theta), lambda 0 -> -1 over 10 epochs.
CURRICULUM: Mapping[str, Any] = MappingProxyType(
    {"t_start": 1.0, "t_range": 20.0, "lambda_max": 0.0, "lambda_min": -1.0, "decay_epochs": 10}
)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Preset:
    """One named method: its :class:`~lightning_kd.DistillationLoss` configuration and display name.

    Attributes:
        name: The method's name (``"kd_z"``), as in recipe folders and ``Arm(loss="kd_z")``.
        display_name: The name in tables and figures (``"KD+Z"``).
        divergence: A registered divergence name (see :data:`lightning_kd.losses.DIVERGENCES`).
        divergence_kwargs: The divergence's hyperparameters.
        preprocess: A pre-process name (``"none"``, ``"zscore"``, ``"center"``, ``"scale"``).
        temperature: A number, ``None`` (divergences without a temperature), ``"curriculum"`` (CTKD) or
            ``"max_logit"``.
        temperature_kwargs: Arguments of the temperature policy for ``"curriculum"``/``"max_logit"``.
        ce_weight: Weight of the cross-entropy.
        kd_weight: Weight of the distillation parts.
        kd_warmup_epochs: Linear warm-up of the distillation weight (DKD: 20 epochs).
        source: Where the values come from.
    """

    name: str
    display_name: str
    divergence: str
    divergence_kwargs: Mapping[str, Any] = field(default_factory=dict)
    preprocess: str = "none"
    temperature: float | str | None = 4.0
    temperature_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    kd_warmup_epochs: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "divergence_kwargs", _frozen(self.divergence_kwargs))
        object.__setattr__(self, "temperature_kwargs", _frozen(self.temperature_kwargs))
        if isinstance(self.temperature, str) and self.temperature not in TEMPERATURE_CLASSES:
            raise unknown_name_error("temperature", self.temperature, TEMPERATURE_CLASSES)

    @property
    def needs_views(self) -> bool:
        """Whether the method needs a weak and a strong view of each sample (MLKD)."""
        from lightning_kd.losses import DIVERGENCES

        return bool(getattr(DIVERGENCES[self.divergence], "needs_views", False))

    def replace(self, **changes: Any) -> Preset:
        """A copy with some fields changed (e.g. a recipe's per-pair ``divergence_kwargs``)."""
        return dataclasses.replace(self, **changes)

    def loss(self) -> DistillationLoss:
        """A new :class:`~lightning_kd.DistillationLoss` with these settings (a fresh temperature policy)."""
        from lightning_kd import temperature as policies
        from lightning_kd.objective import DistillationLoss

        temperature: Any = self.temperature
        if isinstance(temperature, str):
            temperature = getattr(policies, TEMPERATURE_CLASSES[temperature])(**self.temperature_kwargs)
        return DistillationLoss(
            self.divergence,
            divergence_kwargs=dict(self.divergence_kwargs),
            preprocess=self.preprocess,
            temperature=temperature,
            ce_weight=self.ce_weight,
            kd_weight=self.kd_weight,
            kd_warmup_epochs=self.kd_warmup_epochs,
        )

    def loss_config(self, *, warmup: bool = True) -> dict[str, Any]:
        """The loss in LightningCLI's ``class_path``/``init_args`` form, as a recipe holds it.

        Args:
            warmup: Include ``kd_warmup_epochs`` (recipes put it on the module instead: ``warmup=False``).
        """
        from lightning_kd.losses import DIVERGENCES

        divergence: Any = self.divergence
        args: dict[str, Any] = {}
        if self.divergence_kwargs:
            builder = DIVERGENCES[self.divergence]
            if isinstance(builder, type):
                divergence = {
                    "class_path": f"lightning_kd.{builder.__name__}",
                    "init_args": dict(self.divergence_kwargs),
                }
            else:  # registered with defaults (e.g. "wttm"): the name keeps them, the arguments go beside it
                args["divergence_kwargs"] = dict(self.divergence_kwargs)
        args = {"divergence": divergence, **args}
        if self.preprocess != "none":
            args["preprocess"] = self.preprocess
        temperature: Any = self.temperature
        if isinstance(temperature, str):
            temperature = {"class_path": f"lightning_kd.{TEMPERATURE_CLASSES[temperature]}"}
            if self.temperature_kwargs:
                temperature["init_args"] = dict(self.temperature_kwargs)
        args.update(temperature=temperature, ce_weight=self.ce_weight, kd_weight=self.kd_weight)
        if warmup and self.kd_warmup_epochs:
            args["kd_warmup_epochs"] = self.kd_warmup_epochs
        return {"class_path": "lightning_kd.DistillationLoss", "init_args": args}


_LS = "Sun et al., CVPR 2024 (logit standardization), released configs"
_PRESETS = [
    Preset("kd", "KD", "kd", temperature=4.0, ce_weight=0.1, kd_weight=0.9, source="[LS]/mdistiller KD baseline"),
    Preset("kd_z", "KD+Z", "kd", preprocess="zscore", temperature=2.0, ce_weight=0.1, kd_weight=9.0, source=_LS),
    Preset(
        "ctkd",
        "CTKD",
        "kd",
        temperature="curriculum",
        temperature_kwargs=CURRICULUM,
        ce_weight=0.1,
        kd_weight=0.9,
        source="CTKD (Li et al., AAAI 2023) as run by [LS]",
    ),
    Preset(
        "ctkd_z",
        "CTKD+Z",
        "kd",
        preprocess="zscore",
        temperature="curriculum",
        temperature_kwargs=CURRICULUM,
        ce_weight=0.1,
        kd_weight=9.0,
        source=_LS,
    ),
    Preset(
        "dkd",
        "DKD",
        "dkd",
        divergence_kwargs={"alpha": 1.0, "beta": 8.0},
        temperature=4.0,
        ce_weight=1.0,
        kd_weight=1.0,
        kd_warmup_epochs=20,
        source="mdistiller configs/cifar100/dkd",
    ),
    Preset(
        "dkd_z",
        "DKD+Z",
        "dkd",
        divergence_kwargs={"alpha": 9.0, "beta": 72.0},
        preprocess="zscore",
        temperature=2.0,
        ce_weight=1.0,
        kd_weight=1.0,
        kd_warmup_epochs=20,
        source="DKD's alpha 1 and beta 8 times [LS]'s KD weight 9, base T 2",
    ),
    Preset(
        "mlkd",
        "MLKD",
        "mlkd",
        divergence_kwargs={"official": True},
        temperature=4.0,
        ce_weight=0.1,
        kd_weight=0.9,
        source="Multi-Level-Logit-Distillation cfg.KD",
    ),
    Preset(
        "mlkd_z",
        "MLKD+Z",
        "mlkd",
        divergence_kwargs={"official": True},
        preprocess="zscore",
        temperature=2.0,
        ce_weight=0.1,
        kd_weight=9.0,
        source=_LS,
    ),
    Preset(
        "maxlogit_z",
        "Max-logit+Z",
        "kd",
        preprocess="zscore",
        temperature="max_logit",
        ce_weight=0.1,
        kd_weight=9.0,
        source="Matsuyama et al. Table 3 (zKD+Ours)",
    ),
    Preset(
        "dist",
        "DIST",
        "dist",
        divergence_kwargs={"beta": 2.0, "gamma": 2.0},
        temperature=4.0,
        ce_weight=1.0,
        kd_weight=1.0,
        source="DIST_KD classification_cifar dist_cifar.yaml",
    ),
    Preset(
        "dist_z",
        "DIST+Z",
        "dist",
        divergence_kwargs={"beta": 2.0, "gamma": 2.0},
        preprocess="zscore",
        temperature=2.0,
        ce_weight=1.0,
        kd_weight=9.0,
        source="chosen here: DIST's settings with [LS]'s Z-score, base T 2 and KD weight x9 (as for DKD+Z)",
    ),
    Preset(
        "ttm",
        "TTM",
        "ttm",
        divergence_kwargs={"gamma": 0.1, "weighted": False},
        temperature=None,
        ce_weight=1.0,
        kd_weight=45.0,
        source="TTM README example (vgg13 -> vgg8)",
    ),
    Preset(
        "wttm",
        "WTTM",
        "ttm",
        divergence_kwargs={"gamma": 0.2, "weighted": True},
        temperature=None,
        ce_weight=1.0,
        kd_weight=4.0,
        source="TTM README WTTM example",
    ),
]

#: The presets by name, in table order.
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _PRESETS})

#: Older spellings of preset names, still accepted.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "kd_zscore": "kd_z",
        "ctkd_zscore": "ctkd_z",
        "dkd_zscore": "dkd_z",
        "mlkd_zscore": "mlkd_z",
        "dist_zscore": "dist_z",
        "maxlogit": "maxlogit_z",
        "max_logit": "maxlogit_z",
        "max_logit_z": "maxlogit_z",
    }
)


def get_preset(name: str) -> Preset:
    """The preset of a method name (or an older spelling of it).

    Raises:
        ValueError: For an unknown name; the message lists the names and the closest ones.
    """
    preset = PRESETS.get(ALIASES.get(name, name))
    if preset is None:
        raise unknown_name_error("preset", name, PRESETS)
    return preset


def create_loss(name: str) -> DistillationLoss:
    """A new :class:`~lightning_kd.DistillationLoss` for a preset name: ``get_preset(name).loss()``."""
    return get_preset(name).loss()
