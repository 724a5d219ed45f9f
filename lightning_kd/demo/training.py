"""The demo's runs: the teacher, the student alone and the distilled students, one after the other.

:func:`run_demo` trains them with Lightning (one ``Trainer`` each, seeded and deterministic), measures each on
the test set and hands the rows to :mod:`lightning_kd.demo.reporting`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

from lightning_kd.analyze import collect_logits
from lightning_kd.classifier import ClassifierModule
from lightning_kd.data import DigitsDataModule
from lightning_kd.demo import reporting
from lightning_kd.demo.config import DEFAULT_OUT, METHODS, DemoConfig, Method, MethodResult
from lightning_kd.models.digits import demo_cnn, demo_mlp
from lightning_kd.module import DistillationModule
from lightning_kd.objective import DistillationLoss

__all__ = ["STUDENT_ARCH", "TEACHER_ARCH", "run_demo"]

TEACHER_ARCH = "demo_cnn"
STUDENT_ARCH = "demo_mlp"


class _EpochProgress(pl.Callback):
    """Advance a rich progress bar by one per training epoch and show the run and its test accuracy."""

    def __init__(self, progress: Progress, task: TaskID, description: str, epochs: int) -> None:
        self.progress, self.task, self.description, self.epochs = progress, task, description, epochs

    def _show(self, trainer: pl.Trainer, advance: int) -> None:
        acc = trainer.callback_metrics.get("val/acc1")
        shown = f"  test acc {100 * float(acc):5.1f}%" if acc is not None else ""
        self.progress.update(
            self.task,
            advance=advance,
            description=f"{self.description}  epoch {trainer.current_epoch + 1}/{self.epochs}{shown}",
        )

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._show(trainer, 0)

    @override
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

    @override
    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    @override
    def val_dataloader(self) -> DataLoader:
        return self.digits.test_dataloader()


def _transfer_set(datamodule: DigitsDataModule, config: DemoConfig) -> _TransferSet:
    """The fixed, stratified ``student_fraction`` of the training images (split seed 0)."""
    train_x, train_y = datamodule.train_set.tensors  # type: ignore[union-attr]
    if config.student_fraction < 1.0:
        keep, _ = train_test_split(
            np.arange(len(train_y)), train_size=config.student_fraction, stratify=train_y.numpy(), random_state=0
        )
        index = torch.from_numpy(np.sort(keep))
        train_x, train_y = train_x[index], train_y[index]
    return _TransferSet(TensorDataset(train_x, train_y), datamodule, config.batch_size)


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


def _final_temperature(method: Method, loss: DistillationLoss, student_logits: Tensor, teacher_logits: Tensor) -> float:
    """The table's temperature: the policy's value (fixed, or CTKD's learned one), or max-logit's test-set mean."""
    if method.temperature_kind == "per-sample mean":
        assert loss.temperature is not None
        with torch.no_grad():
            return float(torch.as_tensor(loss.temperature(student_logits, teacher_logits)).mean())
    value = getattr(loss.temperature, "value", None)  # FixedTemperature.value, CurriculumTemperature.value
    if value is None:
        raise TypeError(f"Expected the temperature of {method.key!r} to have a `value`, but got {loss.temperature!r}.")
    return float(value)


def _module(
    key: str, config: DemoConfig, image_size: int, teacher: nn.Module | None
) -> tuple[ClassifierModule, DistillationLoss | None]:
    """The LightningModule of one row (and its loss, for a distilled student)."""
    optimizer, lr_scheduler = _optimizer(config), _scheduler(config)
    if key == "teacher":
        teacher_net = demo_cnn(num_classes=10, width=config.teacher_width)
        return ClassifierModule(teacher_net, optimizer=optimizer, lr_scheduler=lr_scheduler), None
    if key == "baseline":
        alone = demo_mlp(num_classes=10, image_size=image_size, hidden=config.student_hidden)
        return ClassifierModule(alone, optimizer=optimizer, lr_scheduler=lr_scheduler), None
    assert teacher is not None  # the teacher's row comes first
    loss = METHODS[key].loss(config)  # before the student, as the seeded runs always did
    student = demo_mlp(num_classes=10, image_size=image_size, hidden=config.student_hidden)
    return DistillationModule(student, teacher, loss, optimizer=optimizer, lr_scheduler=lr_scheduler), loss


def _description(key: str) -> tuple[str, str]:
    """The row's label and what the progress bar says it trains."""
    if key == "teacher":
        return "Teacher (CNN)", f"teacher ({TEACHER_ARCH})"
    if key == "baseline":
        return "Student alone", f"student ({STUDENT_ARCH}) without a teacher"
    label = METHODS[key].label
    return label, f"student distilled by {label}"


def run_demo(
    config: DemoConfig | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    *,
    figures: bool = True,
    console: Console | None = None,
) -> list[MethodResult]:
    """Train the teacher, the baseline and the distilled students; write the table, figures and models.

    Args:
        config: The settings (default :class:`~lightning_kd.demo.DemoConfig`).
        out_dir: The output folder (created; files of an earlier run there are replaced).
        figures: Also write the figures (``False`` writes the table, models, logs and ``run.json`` only).
        console: Where the progress bar goes (default: a new rich console on stdout).

    Returns:
        One :class:`~lightning_kd.demo.MethodResult` per row: teacher, baseline, then the methods in
        ``config.methods`` order.
    """
    config = config or DemoConfig()
    console = console or Console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_dir, model_dir = out / "logs", out / "models"
    datamodule = DigitsDataModule(batch_size=config.batch_size, seed=0, pin_memory=False)
    datamodule.setup("fit")
    student_data = _transfer_set(datamodule, config)
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
            module, loss = _module(key, config, datamodule.image_size, teacher)
            label, what = _description(key)
            bar = _EpochProgress(progress, task, f"[{index + 1}/{len(stages)}] {what}", config.epochs)
            _fit(module, datamodule if key == "teacher" else student_data, config, log_dir, key, bar)
            model = module.model.eval()
            if teacher is None:  # the first row
                teacher = model
            teacher_logits, student_logits, target = collect_logits(
                teacher, model, datamodule.test_dataloader(), device="cpu"
            )
            logits.setdefault("teacher", teacher_logits)
            logits[key] = student_logits
            method = METHODS.get(key)
            temperature = None
            if method is not None and loss is not None:
                temperature = _final_temperature(method, loss, student_logits, teacher_logits)
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

    reporting.write_table(results, out)
    reporting.write_manifest(
        results,
        out,
        config=config,
        data={"name": "digits", "seed": 0, "image_size": datamodule.image_size, "batch_size": config.batch_size},
        teacher={"arch": TEACHER_ARCH, "kwargs": {"width": config.teacher_width}},
        student={
            "arch": STUDENT_ARCH,
            "kwargs": {"image_size": datamodule.image_size, "hidden": config.student_hidden},
        },
    )
    if figures:
        reporting.write_figures(results, logits, target, out, log_dir)
    return results
