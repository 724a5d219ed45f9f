"""What ``lightning-kd analyze`` evaluates: its command line resolved into jobs (a teacher, a student, data).

Three sources: ``--teacher``/``--student`` checkpoint files with a named dataset; ``--run`` on a
``lightning-kd demo`` folder (its ``run.json``); ``--run`` on a ``lightning-kd fit`` run folder (rebuilt by
:mod:`lightning_kd.analyze._recipe_run`). Each job carries the warnings found while resolving it: a teacher that
changed since the run, images of another size than the models were trained on.

Private module: used by :mod:`lightning_kd.analyze`'s command line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.core.saving import load_hparams_from_yaml
from torch import nn

from lightning_kd.analyze._recipe_run import analysis_teacher, find_run_config, load_recipe_run, teacher_identity
from lightning_kd.analyze._stats import has_temperature_column

__all__ = ["DATASETS", "Job", "expected_image_size", "resolve_jobs"]

DATASETS = ("digits", "fashion_mnist", "cifar100")
_DEFAULT_BATCH_SIZE = 256


@dataclass
class Job:
    """One teacher–student pair to analyze, on one DataModule's test split, into one folder."""

    teacher: nn.Module
    student: nn.Module
    datamodule: LightningDataModule
    out: Path
    teacher_name: str = "teacher"
    student_name: str = "student"
    metrics: Path | None = None
    logits_key: str | int | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _datamodule(
    name: str, *, root: Path | None, seed: int, image_size: int | None, batch_size: int, num_workers: int
) -> LightningDataModule:
    if name == "digits":
        from lightning_kd.data import DigitsDataModule

        return DigitsDataModule(
            batch_size=batch_size, seed=seed, image_size=image_size or 8, num_workers=num_workers, pin_memory=False
        )
    if image_size is not None:
        raise ValueError(f"Expected --image-size only with --data digits, but got it with --data {name}.")
    if name == "fashion_mnist":
        from lightning_kd.data import FashionMNISTDataModule

        return FashionMNISTDataModule(
            root=None if root is None else str(root), batch_size=batch_size, num_workers=num_workers
        )
    if root is None:
        raise ValueError("Expected --data-root with --data cifar100 (the folder holding cifar-100-python).")
    from lightning_kd.data import CIFAR100DataModule

    return CIFAR100DataModule(root=str(root), batch_size=batch_size, num_workers=num_workers)


def _set_up(datamodule: LightningDataModule, args: argparse.Namespace) -> tuple[int, int]:
    """``setup("test")`` and the class and channel counts (the command line's, else the DataModule's)."""
    datamodule.setup("test")
    num_classes = args.num_classes or int(getattr(datamodule, "num_classes", 0)) or None
    if num_classes is None:
        raise ValueError("Expected --num-classes: the DataModule does not say how many classes it has.")
    return num_classes, args.in_chans or int(getattr(datamodule, "in_chans", 3))


def _load(path: Path, arch: str | None, kwargs: Mapping[str, Any] | None, num_classes: int, in_chans: int) -> nn.Module:
    from lightning_kd.teacher import load_teacher

    return load_teacher(path, arch=arch, num_classes=num_classes, in_chans=in_chans, arch_kwargs=kwargs)


# ----------------------------------------------------------------------------------------------------------
# image sizes
# ----------------------------------------------------------------------------------------------------------
def expected_image_size(path: Path, arch_kwargs: Mapping[str, Any] | None = None) -> tuple[int, str] | None:
    """The image size a model file was trained at, when something says so, with where that was read.

    Looked up, in order: an ``image_size``/``img_size`` architecture argument; a Lightning checkpoint's
    ``datamodule_hyper_parameters`` (written when the DataModule saves its hyperparameters, as the
    ``lightning_kd.data`` ones do); the ``hparams.yaml`` of the run folder the file is in (``student.pt``,
    ``checkpoints/*.ckpt``); the ``run.json`` of a ``lightning-kd demo`` folder (``models/*.pt``).

    Returns:
        ``(size, source)``, or ``None`` when nothing says.
    """
    for key in ("image_size", "img_size"):
        value = (arch_kwargs or {}).get(key)
        if isinstance(value, int):
            return value, f"its architecture argument `{key}`"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not readable here: load_teacher reports why when it loads the file
        checkpoint = None
    if isinstance(checkpoint, Mapping):
        value = (checkpoint.get("datamodule_hyper_parameters") or {}).get("image_size")
        if isinstance(value, int):
            return value, f"the datamodule_hyper_parameters of {path}"
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if (folder / "hparams.yaml").is_file():
        value = (load_hparams_from_yaml(folder / "hparams.yaml", use_omegaconf=False) or {}).get("image_size")
        if isinstance(value, int):
            return value, str(folder / "hparams.yaml")
    manifest = path.parent.parent / "run.json"
    if path.parent.name == "models" and manifest.is_file():
        value = (json.loads(manifest.read_text()).get("data") or {}).get("image_size")
        if isinstance(value, int):
            return value, str(manifest)
    return None


def _contradiction(given: int, trained: int, source: str) -> str:
    return (
        f"--image-size {given} contradicts the run: its models were trained on {trained}-px images ({source}),"
        f" so analyze evaluates them on inputs of another size than they were trained on. Leave --image-size out"
        " to use the run's."
    )


def _size_mismatch(role: str, path: Path, expected: tuple[int, str], data_size: int, fix: str) -> str:
    return (
        f"the {role} {path} was trained on {expected[0]}-px images ({expected[1]}), but the data gives it"
        f" {data_size}-px images: its accuracy and logits describe inputs it was not trained on.{fix}"
    )


# ----------------------------------------------------------------------------------------------------------
# the three sources
# ----------------------------------------------------------------------------------------------------------
def _file_job(args: argparse.Namespace) -> Job:
    """``--teacher``/``--student`` files on ``--data``."""
    expected = {
        "teacher": expected_image_size(args.teacher, args.teacher_kwargs),
        "student": expected_image_size(args.student, args.student_kwargs),
    }
    name = args.data or "digits"
    image_size, notes = args.image_size, []
    known = expected["student"] or expected["teacher"]
    if name == "digits" and image_size is None and known is not None:
        image_size = known[0]
        notes.append(f"image size {image_size} px, read from {known[1]} (--image-size to choose another)")
    datamodule = _datamodule(
        name,
        root=args.data_root,
        seed=0 if args.data_seed is None else args.data_seed,
        image_size=image_size,
        batch_size=args.batch_size or _DEFAULT_BATCH_SIZE,
        num_workers=args.num_workers or 0,
    )
    num_classes, in_chans = _set_up(datamodule, args)
    data_size = getattr(datamodule, "image_size", None)
    warnings = []
    sizes = {size[0] for size in expected.values() if size is not None}
    for role, path in (("teacher", args.teacher), ("student", args.student)):
        size = expected[role]
        if size is not None and isinstance(data_size, int) and size[0] != data_size:
            if len(sizes) > 1:
                fix = " The teacher and the student were trained on different sizes; both get the same images here."
            else:
                fix = f" Pass --image-size {size[0]}." if name == "digits" else ""
            warnings.append(_size_mismatch(role, path, size, data_size, fix))
    return Job(
        teacher=_load(args.teacher, args.teacher_arch, args.teacher_kwargs, num_classes, in_chans),
        student=_load(args.student, args.student_arch, args.student_kwargs, num_classes, in_chans),
        datamodule=datamodule,
        out=args.out,
        metrics=args.metrics,
        warnings=warnings,
        notes=notes,
    )


def _demo_jobs(args: argparse.Namespace) -> list[Job]:
    """A ``lightning-kd demo`` folder: its teacher and each (or each chosen) student."""
    manifest = json.loads((args.run / "run.json").read_text())
    students = manifest["students"]
    wanted = args.method or list(students)
    unknown = [m for m in wanted if m not in students]
    if unknown:
        raise ValueError(f"Expected --method to be one of {sorted(students)}, but got {unknown}.")
    data = manifest.get("data", {})
    name = args.data or data.get("name", "digits")
    run_size = data.get("image_size")
    warnings = []
    if args.image_size is not None and isinstance(run_size, int) and args.image_size != run_size:
        warnings.append(_contradiction(args.image_size, run_size, str(args.run / "run.json")))
    datamodule = _datamodule(
        name,
        root=args.data_root,
        seed=data.get("seed", 0) if args.data_seed is None else args.data_seed,
        image_size=args.image_size or (run_size if name == "digits" else None),
        batch_size=args.batch_size or _DEFAULT_BATCH_SIZE,
        num_workers=args.num_workers or 0,
    )
    num_classes, in_chans = _set_up(datamodule, args)

    def load(spec: Mapping[str, Any]) -> nn.Module:
        return _load(args.run / spec["weights"], spec["arch"], spec.get("kwargs"), num_classes, in_chans)

    teacher = load(manifest["teacher"])
    jobs = []
    for method in wanted:
        student = students[method]
        metrics = args.metrics or (args.run / student["metrics"] if student.get("metrics") else None)
        jobs.append(
            Job(
                teacher=teacher,
                student=load(student),
                datamodule=datamodule,
                out=args.out / method if args.method is None or len(wanted) > 1 else args.out,
                student_name=student.get("label", method),
                metrics=metrics if metrics is not None and has_temperature_column(Path(metrics)) else None,
                warnings=list(warnings),
            )
        )
    return jobs


def _recipe_job(args: argparse.Namespace, config: Path) -> Job:
    """A ``lightning-kd fit`` run of a DistillationModule, rebuilt from its ``config.yaml``."""
    given = [flag for flag in ("data", "num_classes", "in_chans") if getattr(args, flag) is not None]
    if given:
        options = ", ".join("--" + flag.replace("_", "-") for flag in given)
        raise ValueError(
            f"Expected no {options} with a `lightning-kd fit` run: its model and data come from its {config}"
            " (change the data with --data-root, --data-seed, --image-size, --batch-size)."
        )
    run = load_recipe_run(config, args)
    identity, warning = teacher_identity(run)
    warnings = [] if warning is None else [warning]
    if args.image_size is not None and run.run_image_size is not None and args.image_size != run.run_image_size:
        warnings.append(_contradiction(args.image_size, run.run_image_size, f"data.init_args.image_size in {config}"))
    student = run.module.hparams.get("student")
    metrics = args.metrics or run.metrics
    return Job(
        teacher=analysis_teacher(run.module),
        student=run.module.student,
        datamodule=run.datamodule,
        out=args.out,
        student_name=f"student ({student if isinstance(student, str) else type(run.module.student).__name__})",
        metrics=metrics if has_temperature_column(Path(metrics)) else None,
        logits_key=run.module.hparams.get("logits_key"),
        warnings=warnings,
        extra={"run": str(run.run_dir), "student_weights": str(run.student_weights), **identity},
    )


def resolve_jobs(args: argparse.Namespace) -> list[Job]:
    """The jobs of a parsed command line (``--run`` or ``--teacher``/``--student``, checked by the caller).

    Raises:
        FileNotFoundError: On a missing file or run folder.
        ValueError: On a run or checkpoint that cannot be used, or options that do not apply to it.
    """
    if args.run is None:
        return [_file_job(args)]
    if (args.run / "run.json").is_file():
        return _demo_jobs(args)
    config = find_run_config(args.run)
    if config is None:
        raise FileNotFoundError(
            f"Expected --run to be a `lightning-kd demo` folder (with run.json) or a `lightning-kd fit` run"
            f" folder (with config.yaml, or version_*/config.yaml), but {args.run} holds neither."
        )
    job = _recipe_job(args, config)
    job.datamodule.setup("test")
    return [job]
