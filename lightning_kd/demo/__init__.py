"""``lightning-kd demo``: teacher, baseline and four distilled students on the bundled digits, in about a minute.

Offline and on the CPU, on scikit-learn's 8x8 digits (:class:`~lightning_kd.data.DigitsDataModule`, no
download), the demo trains

1. a teacher: a small CNN (``demo_cnn``, about 14.5k parameters) with :class:`~lightning_kd.ClassifierModule`,
   on all 1,437 training images;
2. a student baseline without a teacher: a one-hidden-layer MLP with 8 hidden units (``demo_mlp``, 610
   parameters), also a ``ClassifierModule``, on a quarter of the training images (359, stratified, fixed:
   the *transfer set*; the setting where a teacher's soft labels carry what the student's few labels lack);
3. the same student (same initial weights, same transfer set) distilled with
   :class:`~lightning_kd.DistillationModule` by four of the package's presets
   (:data:`lightning_kd.presets.PRESETS`, with the CIFAR-100 settings of the literature): ``kd`` (KD),
   ``kd_z`` (KD+Z), ``ctkd_z`` (CTKD+Z) and ``maxlogit_z`` (Max-logit+Z).

All runs use SGD (lr 0.05, momentum 0.9, weight decay 5e-4) with a cosine learning-rate schedule, batches of
64, the same number of epochs, and one CPU thread (faster than several for models this small). CTKD's
curriculum (λ from 0 to -1 over 10 of 240 epochs in its paper, well under one epoch here) is stretched to a
quarter of the run so that it shows. The digits' stratified hold-out split (360 images, split seed 0) is the
test set: "best" is the best test accuracy over the epochs (as the distillation literature reports it),
"last" the accuracy after the last epoch.

It prints a table (method, best and last test accuracy, final temperature, mean per-sample logit standard
deviation of the model on the test set, top-1 agreement with the teacher) and writes to ``--out``:

* ``results.csv``, ``results.md``: the table;
* ``accuracy.png``, ``logit_std.png``: accuracy and logit standard deviation per method;
* ``figure5_mean_std.png``, ``figure3_logits.png``: the paper's Fig. 5 (logit mean vs. std of teacher, KD and
  KD+Z students) and Fig. 3 (one sample's logits and the class-wise logit-difference heatmaps);
* ``ctkd_temperature.png``: CTKD's learned temperature and λ over the epochs;
* ``analysis/kd/``, ``analysis/kd_z/``: everything :func:`lightning_kd.analyze.analyze_logits` writes;
* ``models/<key>.pt`` (plain state_dicts), ``logs/<key>/metrics.csv`` (CSVLogger) and ``run.json``, which
  ``lightning-kd analyze --run <out>`` reads; the keys are ``teacher``, ``baseline`` and the preset names.

Same ``--seed``, same numbers: every run starts from ``lightning.seed_everything(seed, workers=True)`` and
uses ``Trainer(deterministic=True)``.

The demo's architectures ``demo_cnn`` and ``demo_mlp`` are in the model zoo
(:mod:`lightning_kd.models.digits`), so their checkpoints load with ``load_teacher(path, arch=...)``.

The package: :mod:`~lightning_kd.demo.config` (the settings and the methods), :mod:`~lightning_kd.demo.training`
(:func:`run_demo`), :mod:`~lightning_kd.demo.reporting` (the table, ``run.json`` and the figures) and
:mod:`~lightning_kd.demo.cli` (the command line). :func:`run_demo` is imported when first used (PEP 562), so
``lightning-kd demo --help`` does not load Lightning or matplotlib.

Example:
    >>> from lightning_kd.demo import METHODS, DemoConfig
    >>> list(METHODS), DemoConfig().epochs
    (['kd', 'kd_z', 'ctkd_z', 'maxlogit_z'], 30)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lightning_kd.demo.cli import build_parser, main
from lightning_kd.demo.config import DEFAULT_OUT, METHODS, DemoConfig, Method, MethodResult, method_key

__all__ = [
    "DEFAULT_OUT",
    "METHODS",
    "DemoConfig",
    "Method",
    "MethodResult",
    "build_parser",
    "main",
    "method_key",
    "run_demo",
]

#: Names imported when first used, and the module that defines them.
_LAZY = {"run_demo": "lightning_kd.demo.training"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightning_kd.demo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from lightning_kd.demo.training import run_demo
