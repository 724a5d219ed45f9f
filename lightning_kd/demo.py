"""``lightning-kd demo``: teacher, baseline and four distilled students on the bundled digits, in about a minute.

Offline and on the CPU, on scikit-learn's 8x8 digits (:class:`~lightning_kd.data.DigitsDataModule`, no
download), the demo trains

1. a teacher: a small CNN (``demo_cnn``, about 14.5k parameters) with :class:`~lightning_kd.ClassifierModule`,
   on all 1,437 training images;
2. a student baseline without a teacher: a one-hidden-layer MLP with 8 hidden units (``demo_mlp``, 610
   parameters), also a ``ClassifierModule``, on a quarter of the training images (359, stratified, fixed:
   the *transfer set*; the setting where a teacher's soft labels carry what the student's few labels lack);
3. the same student (same initial weights, same transfer set) distilled with
   :class:`~lightning_kd.DistillationModule`:

   ==============================  ============================================================  ====  ====
   method                          loss                                                          CE    KD
   ==============================  ============================================================  ====  ====
   KD                              ``DistillationLoss("kd", temperature=4.0)``                   0.1   0.9
   KD + Z-score                    ``preprocess="zscore", temperature=2.0``                      0.1   9
   CTKD + Z-score                  ``preprocess="zscore", temperature=CurriculumTemperature()``  0.1   9
   max-logit T + Z-score           ``preprocess="zscore", temperature=MaxLogitTemperature()``    0.1   9
   ==============================  ============================================================  ====  ====

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
  KD + Z-score students) and Fig. 3 (one sample's logits and the class-wise logit-difference heatmaps);
* ``ctkd_temperature.png``: CTKD's learned temperature and λ over the epochs;
* ``analysis/kd/``, ``analysis/kd_zscore/``: everything :func:`lightning_kd.analyze.analyze_logits` writes;
* ``models/*.pt`` (plain state_dicts), ``logs/<method>/metrics.csv`` (CSVLogger) and ``run.json``, which
  ``lightning-kd analyze --run <out>`` reads.

Same ``--seed``, same numbers: every run starts from ``lightning.seed_everything(seed, workers=True)`` and
uses ``Trainer(deterministic=True)``.

The demo's architectures ``demo_cnn`` and ``demo_mlp`` are in the model zoo
(:mod:`lightning_kd.models.digits`), so their checkpoints load with ``load_teacher(path, arch=...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_kd import _plots
from lightning_kd.analyze import analyze_logits, collect_logits, logit_difference, read_temperature_trajectory
from lightning_kd.classifier import ClassifierModule
from lightning_kd.data import DigitsDataModule
from lightning_kd.logits import standardize
from lightning_kd.models.digits import demo_cnn, demo_mlp
from lightning_kd.module import DistillationModule
from lightning_kd.objective import DistillationLoss
from lightning_kd.temperature import CurriculumTemperature, MaxLogitTemperature, max_logit_temperature

__all__ = [
    "METHODS",
    "DemoConfig",
    "Method",
    "MethodResult",
    "main",
    "run_demo",
]

DEFAULT_OUT = Path("lightning-kd-demo")
TEACHER_ARCH = "demo_cnn"
STUDENT_ARCH = "demo_mlp"


# ----------------------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------------------
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
        methods: Keys of :data:`METHODS` to distill (the teacher and the baseline always run).
    """

    epochs: int = 30
    seed: int = 0
    batch_size: int = 64
    lr: float = 0.05
    teacher_width: int = 16
    student_hidden: int = 8
    student_fraction: float = 0.25
    methods: tuple[str, ...] = ("kd", "kd_zscore", "ctkd_zscore", "max_logit")

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"Expected argument `epochs` to be a positive integer, but got {self.epochs!r}.")
        if not 0.0 < self.student_fraction <= 1.0:
            raise ValueError(
                f"Expected argument `student_fraction` to be in (0, 1], but got {self.student_fraction!r}."
            )
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"Expected argument `methods` to be keys of {sorted(METHODS)}, but got {unknown}.")


@dataclass(frozen=True)
class Method:
    """A distillation method of the demo.

    Attributes:
        label: The name in the table and figures.
        loss: ``config -> DistillationLoss`` (CE and KD weights included).
        temperature_kind: How the table's temperature is read: ``"fixed"``, ``"learned"`` (CTKD's current
            value) or ``"per-sample mean"`` (mean over the test set).
    """

    label: str
    loss: Callable[[DemoConfig], DistillationLoss]
    temperature_kind: str


def _ctkd_decay_epochs(config: DemoConfig) -> int:
    return max(1, round(config.epochs / 4))


#: The distilled students, by key, in table order.
METHODS: dict[str, Method] = {
    "kd": Method("KD", lambda c: DistillationLoss("kd", temperature=4.0, ce_weight=0.1, kd_weight=0.9), "fixed"),
    "kd_zscore": Method(
        "KD + Z-score",
        lambda c: DistillationLoss("kd", preprocess="zscore", temperature=2.0, ce_weight=0.1, kd_weight=9.0),
        "fixed",
    ),
    "ctkd_zscore": Method(
        "CTKD + Z-score",
        lambda c: DistillationLoss(
            "kd",
            preprocess="zscore",
            temperature=CurriculumTemperature(decay_epochs=_ctkd_decay_epochs(c)),
            ce_weight=0.1,
            kd_weight=9.0,
        ),
        "learned",
    ),
    "max_logit": Method(
        "Max-logit T + Z-score",
        lambda c: DistillationLoss(
            "kd", preprocess="zscore", temperature=MaxLogitTemperature(), ce_weight=0.1, kd_weight=9.0
        ),
        "per-sample mean",
    ),
}


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


# ----------------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------------
class _EpochProgress(pl.Callback):
    """Advance a rich progress bar by one per training epoch and show the run and its test accuracy."""

    def __init__(self, progress: Progress, task: Any, description: str, epochs: int) -> None:
        self.progress, self.task, self.description, self.epochs = progress, task, description, epochs

    def _show(self, trainer: pl.Trainer, advance: int) -> None:
        acc = trainer.callback_metrics.get("val/acc1")
        shown = f"  test acc {100 * float(acc):5.1f}%" if acc is not None else ""
        self.progress.update(
            self.task,
            advance=advance,
            description=f"{self.description}  epoch {trainer.current_epoch + 1}/{self.epochs}{shown}",
        )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._show(trainer, 0)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._show(trainer, 1)


@contextlib.contextmanager
def _demo_environment() -> Iterator[None]:
    """One CPU thread, quiet Lightning; everything put back as it was afterwards.

    The demo's models are tiny: one intra-op thread is faster than several (which mostly wait on each other,
    and far more so on a busy machine). Lightning's GPU/TPU/seed messages and data-loader hints are silenced.
    ``Trainer(deterministic=True)`` switches on ``torch.use_deterministic_algorithms`` process-wide and
    ``seed_everything`` sets environment variables: both are restored.
    """
    threads = torch.get_num_threads()
    loggers = [logging.getLogger(name) for name in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    deterministic = torch.are_deterministic_algorithms_enabled()
    env = {key: os.environ.get(key) for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
            warnings.filterwarnings("ignore", message=r".*Experiment logs directory.*")
            warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
            yield
    finally:
        torch.set_num_threads(threads)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        torch.use_deterministic_algorithms(deterministic)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _TransferSet(pl.LightningDataModule):
    """The students' training images (a subset of the digits' training split) and the digits' test split."""

    def __init__(self, train_set: TensorDataset, digits: DigitsDataModule, batch_size: int) -> None:
        super().__init__()
        self.train_set, self.digits, self.batch_size = train_set, digits, batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.digits.test_dataloader()


def _optimizer(config: DemoConfig) -> Callable[[Any], torch.optim.Optimizer]:
    def build(params: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=5e-4)

    return build


def _scheduler(config: DemoConfig) -> Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]:
    def build(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)

    return build


def _fit(
    module: ClassifierModule,
    datamodule: pl.LightningDataModule,
    config: DemoConfig,
    log_dir: Path,
    key: str,
    progress: _EpochProgress,
) -> None:
    shutil.rmtree(log_dir / key, ignore_errors=True)
    trainer = pl.Trainer(
        max_epochs=config.epochs,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        logger=CSVLogger(log_dir, name=key, version=""),
        log_every_n_steps=5,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[progress],
    )
    trainer.fit(module, datamodule=datamodule)


def _final_temperature(method: Method, loss: DistillationLoss, per_sample: Tensor) -> float:
    if method.temperature_kind == "per-sample mean":
        return float(per_sample.mean())
    assert loss.temperature is not None
    with torch.no_grad():
        dummy = torch.zeros(1, 2)
        return float(loss.temperature(dummy, dummy))


def _write_table(results: Sequence[MethodResult], out: Path) -> None:
    with (out / "results.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "method",
                "key",
                "best_acc",
                "last_acc",
                "temperature",
                "temperature_kind",
                "logit_std",
                "agreement",
                "seconds",
            ]
        )
        for r in results:
            writer.writerow(
                [
                    r.label,
                    r.key,
                    f"{r.best_acc:.2f}",
                    f"{r.last_acc:.2f}",
                    "" if r.temperature is None else f"{r.temperature:.3f}",
                    r.temperature_kind,
                    f"{r.logit_std:.3f}",
                    f"{r.agreement:.2f}",
                    f"{r.seconds:.1f}",
                ]
            )
    lines = [
        "| Method | Best test acc (%) | Last test acc (%) | Final T | Logit std | Agreement w/ teacher (%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.best_acc:.2f} | {r.last_acc:.2f} | {_temperature_text(r)} | {r.logit_std:.2f}"
            f" | {r.agreement:.2f} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")


def _temperature_text(result: MethodResult) -> str:
    if result.temperature is None:
        return "—"
    if result.temperature_kind == "fixed":
        return f"{result.temperature:g}"
    return f"{result.temperature:.2f} ({result.temperature_kind})"


def _rich_table(results: Sequence[MethodResult], config: DemoConfig) -> Table:
    table = Table(
        title=f"lightning-kd demo: digits, {config.epochs} epochs, seed {config.seed} (accuracy in %)",
        caption=(
            "Best/Last: test accuracy at the best/last epoch. T: the fixed temperature; CTKD: the learned one at"
            " the end; max-logit: mean of the per-sample T on the test set. Std: mean per-sample logit std on the"
            " test set. Agree: top-1 agreement with the teacher."
        ),
    )
    for name in ("Method", "Best", "Last", "T", "Std", "Agree", "Sec"):
        table.add_column(name, justify="left" if name == "Method" else "right")
    for r in results:
        table.add_row(
            r.label,
            f"{r.best_acc:.2f}",
            f"{r.last_acc:.2f}",
            "—" if r.temperature is None else f"{r.temperature:.3g}",
            f"{r.logit_std:.2f}",
            f"{r.agreement:.1f}",
            f"{r.seconds:.0f}",
        )
    return table


def _figures(
    results: Sequence[MethodResult],
    logits: dict[str, Tensor],
    target: Tensor,
    out: Path,
    log_dir: Path,
) -> None:
    labels = {r.key: r.label for r in results}
    students = [r for r in results if r.key != "teacher"]
    teacher = next(r for r in results if r.key == "teacher")
    _plots.plot_accuracy(
        [r.label for r in results], [r.best_acc for r in results], [r.last_acc for r in results], out / "accuracy.png"
    )
    _plots.plot_logit_std(
        [r.label for r in students],
        [r.logit_std for r in students],
        out / "logit_std.png",
        teacher_std=teacher.logit_std,
    )
    if "ctkd_zscore" in logits:
        trajectory = read_temperature_trajectory(log_dir / "ctkd_zscore" / "metrics.csv")
        _plots.plot_temperature_trajectory(
            np.asarray(trajectory["x"]),
            np.asarray(trajectory["temperature"]),
            None if trajectory["lambda"] is None else np.asarray(trajectory["lambda"]),
            out / "ctkd_temperature.png",
            x_label="epoch",
            title="CTKD + Z-score: learned temperature and λ (epoch means)",
        )
    compared = [k for k in ("kd", "kd_zscore") if k in logits]
    teacher_logits = logits["teacher"]
    for key in compared:
        analyze_logits(
            teacher_logits, logits[key], target, out / "analysis" / key, student_name=labels[key] + " student"
        )
    if len(compared) < 2:
        return
    moments = {"teacher": teacher_logits, **{labels[k]: logits[k] for k in compared}}
    _plots.plot_mean_std(
        {name: (v.mean(1).numpy(), v.std(1).numpy()) for name, v in moments.items()},
        out / "figure5_mean_std.png",
        title="Per-sample logit mean vs. std: teacher and students by KD and KD + Z-score (cf. Fig. 5b)",
    )
    kd, kdz = logits["kd"], logits["kd_zscore"]
    correct = ((teacher_logits.argmax(1) == target) & (kd.argmax(1) == target)).nonzero()
    n = int(correct[0]) if len(correct) else 0
    z_teacher, z_kdz = standardize(teacher_logits), standardize(kdz)
    panels = [
        (
            "(a) KD: raw logits",
            {"teacher": teacher_logits[n].numpy(), "KD student": kd[n].numpy()},
            logit_difference(teacher_logits, kd, target).numpy(),
        ),
        (
            "(b) KD + Z-score: raw logits",
            {"teacher": teacher_logits[n].numpy(), "KD+Z student": kdz[n].numpy()},
            logit_difference(teacher_logits, kdz, target).numpy(),
        ),
        (
            "(c) KD + Z-score: standardized logits",
            {"teacher": z_teacher[n].numpy(), "KD+Z student": z_kdz[n].numpy()},
            logit_difference(z_teacher, z_kdz, target).numpy(),
        ),
    ]
    _plots.plot_figure3(
        panels,
        out / "figure3_logits.png",
        target=int(target[n]),
        title=f"Test sample {n} (top) and mean |teacher − student| per true class (bottom), cf. Fig. 3",
    )


def run_demo(
    config: DemoConfig | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    *,
    figures: bool = True,
    console: Console | None = None,
) -> list[MethodResult]:
    """Train the teacher, the baseline and the distilled students; write the table, figures and models.

    Args:
        config: The settings (default :class:`DemoConfig`).
        out_dir: The output folder (created; files of an earlier run there are replaced).
        figures: Also write the figures (``False`` writes the table, models, logs and ``run.json`` only).
        console: Where the progress bar goes (default: a new rich console on stdout).

    Returns:
        One :class:`MethodResult` per row: teacher, baseline, then the methods in ``config.methods`` order.
    """
    config = config or DemoConfig()
    console = console or Console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_dir, model_dir = out / "logs", out / "models"
    datamodule = DigitsDataModule(batch_size=config.batch_size, seed=0, pin_memory=False)
    datamodule.setup("fit")
    train_x, train_y = datamodule.train_set.tensors  # type: ignore[union-attr]
    if config.student_fraction < 1.0:
        keep, _ = train_test_split(
            np.arange(len(train_y)), train_size=config.student_fraction, stratify=train_y.numpy(), random_state=0
        )
        keep = torch.from_numpy(np.sort(keep))
        train_x, train_y = train_x[keep], train_y[keep]
    student_data = _TransferSet(TensorDataset(train_x, train_y), datamodule, config.batch_size)
    student_kwargs = {"image_size": datamodule.image_size, "hidden": config.student_hidden}
    teacher_kwargs = {"width": config.teacher_width}
    stages = ["teacher", "baseline", *config.methods]
    results: list[MethodResult] = []
    logits: dict[str, Tensor] = {}
    target = torch.empty(0, dtype=torch.long)

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with _demo_environment(), Progress(*columns, console=console) as progress:
        task = progress.add_task("", total=len(stages) * config.epochs)
        teacher: nn.Module | None = None
        for index, key in enumerate(stages):
            start = time.perf_counter()
            pl.seed_everything(config.seed, workers=True, verbose=False)
            method = METHODS.get(key)
            loss: DistillationLoss | None = None
            module: ClassifierModule
            if key == "teacher":
                label, what = "Teacher (CNN)", f"teacher ({TEACHER_ARCH})"
                module = ClassifierModule(
                    demo_cnn(num_classes=10, **teacher_kwargs),
                    optimizer=_optimizer(config),
                    lr_scheduler=_scheduler(config),
                )
            elif key == "baseline":
                label, what = "Student alone", f"student ({STUDENT_ARCH}) without a teacher"
                module = ClassifierModule(
                    demo_mlp(num_classes=10, **student_kwargs),
                    optimizer=_optimizer(config),
                    lr_scheduler=_scheduler(config),
                )
            else:
                assert method is not None and teacher is not None
                label, what = method.label, f"student distilled by {method.label}"
                loss = method.loss(config)
                module = DistillationModule(
                    demo_mlp(num_classes=10, **student_kwargs),
                    teacher,
                    loss,
                    optimizer=_optimizer(config),
                    lr_scheduler=_scheduler(config),
                )
            description = f"[{index + 1}/{len(stages)}] {what}"
            data = datamodule if key == "teacher" else student_data
            _fit(module, data, config, log_dir, key, _EpochProgress(progress, task, description, config.epochs))
            model = module.model.eval()
            if key == "teacher":
                teacher = model
            assert teacher is not None
            teacher_logits, student_logits, target = collect_logits(
                teacher, model, datamodule.test_dataloader(), device="cpu"
            )
            logits.setdefault("teacher", teacher_logits)
            logits[key] = student_logits
            temperature = None
            if method is not None and loss is not None:
                per_sample = max_logit_temperature(student_logits, teacher_logits)
                temperature = _final_temperature(method, loss, per_sample)
            results.append(
                MethodResult(
                    key=key,
                    label=label,
                    best_acc=100 * float(module.val_acc1_best.compute()),
                    last_acc=100 * float((student_logits.argmax(1) == target).float().mean()),
                    temperature=temperature,
                    temperature_kind=method.temperature_kind if method is not None else "",
                    logit_std=float(student_logits.std(dim=1).mean()),
                    agreement=100 * float((student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean()),
                    seconds=time.perf_counter() - start,
                )
            )
            module.export(model_dir / f"{key}.pt")
        progress.update(task, description=f"trained {len(stages)} models")

    _write_table(results, out)
    manifest = {
        "config": asdict(config),
        "data": {"name": "digits", "seed": 0, "image_size": datamodule.image_size, "batch_size": config.batch_size},
        "teacher": {"arch": TEACHER_ARCH, "kwargs": teacher_kwargs, "weights": "models/teacher.pt"},
        "students": {
            r.key: {
                "label": r.label,
                "arch": STUDENT_ARCH,
                "kwargs": student_kwargs,
                "weights": f"models/{r.key}.pt",
                "metrics": f"logs/{r.key}/metrics.csv",
            }
            for r in results
            if r.key != "teacher"
        },
    }
    (out / "run.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if figures:
        _figures(results, logits, target, out, log_dir)
    return results


# ----------------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-kd demo``."""
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(
        prog="lightning-kd demo",
        description=(
            "On scikit-learn's digits (offline, CPU, under a minute): train a small CNN teacher on the training"
            " images, then a small MLP student on a quarter of them (the transfer set), alone and distilled by KD,"
            " KD + Z-score, CTKD + Z-score and the max-logit temperature; print and save the results table, the"
            " figures, the models and the logs."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs of every run")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of every run (same seed, same numbers)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=list(defaults.methods),
        help="distillation methods to run (the teacher and the baseline always run)",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures (table, models and logs only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``lightning-kd demo``.

    Args:
        argv: The arguments after ``demo`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on a usage error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.epochs < 1:
            parser.error(f"--epochs must be a positive integer, got {args.epochs}")
    except SystemExit as exit_:  # --help and usage errors: return the status instead of exiting the caller
        return exit_.code if isinstance(exit_.code, int) else 1
    config = DemoConfig(epochs=args.epochs, seed=args.seed, methods=tuple(args.methods))
    console = Console()
    start = time.perf_counter()
    results = run_demo(config, args.out, figures=not args.no_figures, console=console)
    console.print(_rich_table(results, config))
    elapsed = time.perf_counter() - start
    console.print(f"Done in {elapsed:.0f} s. Results, figures and models in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
