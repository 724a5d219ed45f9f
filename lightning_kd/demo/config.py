"""The demo's settings: :class:`DemoConfig`, its distilled students (:data:`METHODS`) and a table row.

The students' losses are the package's presets (:data:`lightning_kd.presets.PRESETS`): the demo writes out no
hyperparameter of its own, and changes one setting for its short runs: CTKD's curriculum is stretched to a
quarter of the run (:func:`ctkd_decay_epochs`), so that it shows.

Example:
    >>> config = DemoConfig(epochs=8, methods=("kd", "kd_zscore"))  # an older spelling is accepted
    >>> config.methods
    ('kd', 'kd_z')
    >>> [METHODS[key].label for key in config.methods]
    ['KD', 'KD+Z']
    >>> METHODS["ctkd_z"].loss(config).temperature.decay_epochs
    2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lightning_kd._validation import (
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
    unknown_name_error,
)
from lightning_kd.presets import PRESETS, Preset, get_preset

if TYPE_CHECKING:
    from lightning_kd.objective import DistillationLoss

__all__ = ["DEFAULT_OUT", "METHODS", "DemoConfig", "Method", "MethodResult", "ctkd_decay_epochs", "method_key"]

#: Where ``lightning-kd demo`` writes by default.
DEFAULT_OUT = Path("lightning-kd-demo")

#: How the table reads a preset's temperature, by its kind (a number is ``"fixed"``).
TEMPERATURE_KINDS: Mapping[str, str] = MappingProxyType({"curriculum": "learned", "max_logit": "per-sample mean"})


def ctkd_decay_epochs(epochs: int) -> int:
    """CTKD's curriculum length in the demo: a quarter of the run (10 of 240 epochs in its paper).

    Example:
        >>> ctkd_decay_epochs(30), ctkd_decay_epochs(2)
        (8, 1)
    """
    return max(1, round(epochs / 4))


@dataclass(frozen=True)
class Method:
    """A distilled student of the demo: a preset, adapted to the demo's short runs.

    Attributes:
        preset: The method's :class:`~lightning_kd.presets.Preset`.
    """

    preset: Preset

    @property
    def key(self) -> str:
        """The preset's name: the row's key and the name of its files (``models/<key>.pt``)."""
        return self.preset.name

    @property
    def label(self) -> str:
        """The name in the table and the figures: the preset's display name."""
        return self.preset.display_name

    @property
    def temperature_kind(self) -> str:
        """How the table's temperature is read: ``"fixed"``, ``"learned"`` (CTKD's final value) or
        ``"per-sample mean"`` (the max-logit temperature's mean over the test set)."""
        temperature = self.preset.temperature
        return TEMPERATURE_KINDS[temperature] if isinstance(temperature, str) else "fixed"

    def loss(self, config: DemoConfig) -> DistillationLoss:
        """A new loss of the preset; a curriculum temperature ends after :func:`ctkd_decay_epochs` epochs."""
        preset = self.preset
        if preset.temperature == "curriculum":
            stretched = {**preset.temperature_kwargs, "decay_epochs": ctkd_decay_epochs(config.epochs)}
            preset = preset.replace(temperature_kwargs=stretched)
        return preset.loss()


#: The distilled students, by preset name, in table order.
METHODS: Mapping[str, Method] = MappingProxyType(
    {name: Method(PRESETS[name]) for name in ("kd", "kd_z", "ctkd_z", "maxlogit_z")}
)


def method_key(name: str) -> str:
    """The key in :data:`METHODS` of a method name or an older spelling of it (``"kd_zscore"`` -> ``"kd_z"``).

    Raises:
        ValueError: For a name that is not one of the demo's methods; the message lists them.

    Example:
        >>> method_key("max_logit")
        'maxlogit_z'
    """
    try:
        key = get_preset(name).name
    except ValueError:  # not a preset at all: reported below against the demo's methods
        key = name
    if key not in METHODS:
        raise unknown_name_error("methods", name, METHODS)
    return key


@dataclass(frozen=True)
class DemoConfig:
    """Settings of a demo run.

    Attributes:
        epochs: Training epochs of every run.
        seed: Seed of every run (initial weights, batch order); the digits split always uses seed 0.
        batch_size: Samples per batch.
        lr: SGD's initial learning rate (cosine-annealed to 0 over ``epochs``).
        teacher_width: ``width`` of ``demo_cnn``.
        student_hidden: ``hidden`` of ``demo_mlp``.
        student_fraction: Fraction of the labelled training images the students learn from (the transfer set,
            stratified, fixed); the teacher learns from all of them.
        methods: Keys of :data:`METHODS` to distill (the teacher and the baseline always run); older spellings
            of the preset names are accepted and stored as the keys.

    Raises:
        ValueError: For a setting out of its range or an unknown or repeated method, before anything trains.
    """

    epochs: int = 30
    seed: int = 0
    batch_size: int = 64
    lr: float = 0.05
    teacher_width: int = 16
    student_hidden: int = 8
    student_fraction: float = 0.25
    methods: tuple[str, ...] = tuple(METHODS)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "teacher_width", "student_hidden"):
            check_positive_int(name, getattr(self, name))
        check_non_negative_int("seed", self.seed)
        check_positive_float("lr", self.lr)
        if isinstance(self.student_fraction, bool) or not (
            isinstance(self.student_fraction, (int, float)) and 0.0 < self.student_fraction <= 1.0
        ):
            raise ValueError(
                f"Expected argument `student_fraction` to be in (0, 1], but got {self.student_fraction!r}."
            )
        if isinstance(self.methods, str) or not all(isinstance(m, str) for m in self.methods):
            raise TypeError(f"Expected argument `methods` to be a sequence of method names, but got {self.methods!r}.")
        keys = tuple(method_key(m) for m in self.methods)
        if len(set(keys)) != len(keys):
            raise ValueError(f"Expected argument `methods` to name each method once, but got {list(self.methods)}.")
        object.__setattr__(self, "methods", keys)  # frozen: the keys, whatever spelling was given


@dataclass
class MethodResult:
    """One row of the demo's table.

    Attributes:
        key: ``"teacher"``, ``"baseline"`` or a key of :data:`METHODS`.
        label: The row's name.
        best_acc: Best test accuracy over the epochs, in %.
        last_acc: Test accuracy after the last epoch, in %.
        temperature: The final temperature (None for the teacher and the baseline).
        temperature_kind: ``"fixed"``, ``"learned"``, ``"per-sample mean"`` or ``""``.
        logit_std: Mean over the test set of the per-sample logit standard deviation.
        agreement: Top-1 agreement with the teacher on the test set, in %.
        seconds: Wall time of the run (not part of the reproducible numbers).
    """

    key: str
    label: str
    best_acc: float
    last_acc: float
    temperature: float | None
    temperature_kind: str
    logit_std: float
    agreement: float
    seconds: float = field(default=0.0, compare=False)

    def numbers(self) -> tuple[Any, ...]:
        """The reproducible numbers (all but the wall time)."""
        return (self.key, self.best_acc, self.last_acc, self.temperature, self.logit_std, self.agreement)
