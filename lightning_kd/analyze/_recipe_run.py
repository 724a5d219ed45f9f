"""A ``lightning-kd fit`` run folder, rebuilt for ``lightning-kd analyze --run``.

The run's model (student and teacher) and DataModule are instantiated by :class:`~lightning_kd.cli.KDLightningCLI`
from the run's own ``config.yaml``, so they are built exactly as the run built them; the trained student's
weights come from the run's ``student.pt`` (else its checkpoints). The teacher's identity
(:func:`~lightning_kd.teacher.state_dict_sha256`) is compared with the one the run recorded (``teacher_sha256``
in ``hparams.yaml`` or a checkpoint's ``hyper_parameters``).

Private module: used by :mod:`lightning_kd.analyze`'s command line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch import LightningDataModule
from lightning.pytorch.core.saving import load_hparams_from_yaml
from torch import nn

from lightning_kd.teacher import state_dict_sha256

__all__ = ["RecipeRun", "analysis_teacher", "find_run_config", "load_recipe_run", "teacher_identity"]

# The Trainer that KDLightningCLI builds along with the model and data: on the CPU, logging nothing. The run's own
# trainer settings (GPUs, strategy, logger) are not needed to evaluate its models and may not work here.
_TRAINER = {
    "accelerator": "cpu",
    "devices": 1,
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}
# The DataModule arguments that `lightning-kd analyze` options override: name -> (attribute of the parsed
# arguments, option, required): a required one is an error for a DataModule without that argument.
_DATA_OVERRIDES = {
    "image_size": ("image_size", "--image-size", True),
    "root": ("data_root", "--data-root", True),
    "seed": ("data_seed", "--data-seed", True),
    "batch_size": ("batch_size", "--batch-size", False),
    "num_workers": ("num_workers", "--num-workers", False),
}


@dataclass
class RecipeRun:
    """A rebuilt ``lightning-kd fit`` run of a :class:`~lightning_kd.DistillationModule`.

    Attributes:
        run_dir: The ``version_N`` folder.
        module: The DistillationModule, with the run's trained student weights and the teacher as its file is now.
        datamodule: The run's DataModule (with the command line's overrides).
        student_weights: The file the student's weights came from.
        teacher_file: The teacher file the module loaded (``None`` when the config gives no path).
        run_image_size: The run's ``data.init_args.image_size`` (``None`` when its data has none).
        metrics: The run's ``metrics.csv`` (may not exist).
    """

    run_dir: Path
    module: Any
    datamodule: LightningDataModule
    student_weights: Path
    teacher_file: Path | None
    run_image_size: int | None
    metrics: Path


def find_run_config(run: Path) -> Path | None:
    """The ``config.yaml`` of ``run``: its own, else that of its newest ``version_*`` folder."""
    if (run / "config.yaml").is_file():
        return run / "config.yaml"
    configs = sorted(run.glob("version_*/config.yaml"), key=lambda p: p.stat().st_mtime, reverse=True)
    return configs[0] if configs else None


def _start_folder(run_dir: Path, root: object) -> Path | None:
    """The folder the run was started in, when its ``default_root_dir`` was relative (``<start>/<root>/version_N``)."""
    if not isinstance(root, str) or Path(root).is_absolute():
        return None
    parts = Path(root).parts
    parent = run_dir.resolve().parent
    if parent.parts[-len(parts) :] != parts:
        return None
    return Path(*parent.parts[: -len(parts)])


def _resolve_teacher_path(teacher: object, run_dir: Path, config: Mapping[str, Any]) -> Path | None:
    """The teacher file: as the config says, or relative to the folder the run was started in."""
    if not isinstance(teacher, str):
        return None
    path = Path(teacher).expanduser()
    if path.is_absolute() or path.exists():
        return path
    start = _start_folder(run_dir, (config.get("trainer") or {}).get("default_root_dir"))
    if start is not None and (start / path).exists():
        return start / path
    return path


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info lines ("Seed set to", "GPU available") while the CLI builds the run's objects."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _instantiate(config: dict[str, Any], config_path: Path) -> tuple[Any, LightningDataModule]:
    from lightning_kd.cli import KDLightningCLI  # imported when needed: it loads all of LightningCLI

    try:
        with _quiet_lightning(), warnings.catch_warnings():
            # LightningCLI warns when it gets a config while sys.argv holds arguments too: here they are analyze's.
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
            cli = KDLightningCLI(
                args=config, run=False, save_config_callback=None, parser_kwargs={"exit_on_error": False}
            )
    except (Exception, SystemExit) as error:  # a config error (argparse's or the library's), or a bad file
        raise ValueError(f"Could not rebuild the run's model and data from {config_path}: {error}") from error
    return cli.model, cli.datamodule


def _student_weights(run_dir: Path) -> Path:
    candidates = [run_dir / "student.pt", run_dir / "checkpoints" / "last.ckpt"]
    candidates += sorted(run_dir.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    weights = next((c for c in candidates if c.is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"Expected student weights (student.pt or a .ckpt) in {run_dir}, but found none.")
    return weights


def _load_student(module: Any, weights: Path) -> None:
    """Put the run's trained weights into the rebuilt module's student (``strict``: every key must fit)."""
    try:
        loaded = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a truncated, corrupt or non-checkpoint file
        size = weights.stat().st_size
        raise ValueError(f"Could not read the student weights {weights} ({size} bytes): {error}") from error
    try:
        if weights.suffix == ".ckpt":
            module.load_state_dict(loaded["state_dict"])
        else:
            module.student.load_state_dict(loaded)
    except (KeyError, TypeError, RuntimeError) as error:
        raise ValueError(f"The student weights in {weights} do not fit the run's student: {error}") from error


def load_recipe_run(config_path: Path, args: argparse.Namespace) -> RecipeRun:
    """Rebuild the run whose LightningCLI ``config.yaml`` is ``config_path``, with the command line's overrides.

    Raises:
        FileNotFoundError: If the run has no student weights, or its teacher file is not there.
        ValueError: If the config does not rebuild, is not a DistillationModule's, or an override does not apply.
    """
    from lightning_kd.module import DistillationModule

    run_dir = config_path.parent
    # Only the model, data and seed sections: without a subcommand (run=False) the CLI does not accept the
    # subcommand's own keys that LightningCLI saves with them (ckpt_path, ...), and the run's trainer is not needed.
    saved = yaml.safe_load(config_path.read_text()) or {}
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict) or not saved.get("data"):
        raise ValueError(
            f"Expected {config_path} to be LightningCLI's config of a run, with `model` and `data` sections."
        )
    config: dict[str, Any] = {key: saved[key] for key in ("seed_everything", "model", "data") if key in saved}
    config["trainer"] = dict(_TRAINER)
    model_args = config["model"].setdefault("init_args", {})
    teacher_file = _resolve_teacher_path(model_args.get("teacher"), run_dir, saved)
    if teacher_file is not None:
        if not teacher_file.is_file():
            raise FileNotFoundError(
                f"The run's teacher checkpoint {teacher_file} (model.init_args.teacher in {config_path}) does not"
                " exist here: run analyze from the folder the run was started in, or give --teacher/--student."
            )
        model_args["teacher"] = str(teacher_file)
    data_args = config["data"].setdefault("init_args", {}) if isinstance(config["data"], dict) else {}
    run_image_size = data_args.get("image_size")
    for name, (attribute, option, required) in _DATA_OVERRIDES.items():
        value = getattr(args, attribute, None)
        if value is None or (name not in data_args and not required):
            continue
        if name not in data_args:
            raise ValueError(
                f"Expected {option} only for a run whose DataModule takes `{name}`, but the run's data"
                f" ({config['data'].get('class_path')}) has no such argument."
            )
        data_args[name] = str(value) if name == "root" else value

    module, datamodule = _instantiate(config, config_path)
    if not isinstance(module, DistillationModule):
        raise ValueError(
            f"Expected {config_path} to configure a lightning_kd.DistillationModule (a teacher and a student), but"
            f" its model is a {type(module).__name__}. Give --teacher/--student (and their --*-arch) instead."
        )
    weights = _student_weights(run_dir)
    _load_student(module, weights)
    return RecipeRun(
        run_dir=run_dir,
        module=module,
        datamodule=datamodule,
        student_weights=weights,
        teacher_file=teacher_file,
        run_image_size=run_image_size if isinstance(run_image_size, int) else None,
        metrics=run_dir / "metrics.csv",
    )


def _recorded_teacher_sha256(run: RecipeRun) -> tuple[str | None, str | None]:
    """``(digest, where)`` of the teacher identity the run recorded: ``hparams.yaml``, else a checkpoint's."""
    hparams = run.run_dir / "hparams.yaml"
    if hparams.is_file():
        recorded = (load_hparams_from_yaml(hparams, use_omegaconf=False) or {}).get("teacher_sha256")
        if isinstance(recorded, str):
            return recorded, str(hparams)
    checkpoints = [run.student_weights] if run.student_weights.suffix == ".ckpt" else []
    checkpoints += sorted((run.run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for checkpoint in checkpoints:
        try:
            loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception:  # an unreadable checkpoint records nothing; the next one may
            continue
        recorded = (loaded.get("hyper_parameters") or {}).get("teacher_sha256") if isinstance(loaded, dict) else None
        if isinstance(recorded, str):
            return recorded, f"{checkpoint} (hyper_parameters)"
    return None, None


def teacher_identity(run: RecipeRun) -> tuple[dict[str, Any], str | None]:
    """Compare the teacher in use with the one the run recorded.

    Returns:
        ``(entries, warning)``: the summary's ``teacher_changed`` (``True``/``False``, ``None`` when the run
        recorded no identity) and ``teacher_sha256`` (``recorded``, ``current``, ``file``, ``recorded_in``), and
        the warning to show (``None`` when the teacher is the run's).
    """
    current = state_dict_sha256(run.module.teacher)
    recorded, where = _recorded_teacher_sha256(run)
    file = str(run.teacher_file) if run.teacher_file is not None else "the configured teacher"
    entries: dict[str, Any] = {
        "teacher_changed": None if recorded is None else recorded != current,
        "teacher_sha256": {"recorded": recorded, "current": current, "file": file, "recorded_in": where},
    }
    if recorded is None:
        warning = (
            f"teacher identity not recorded: the run {run.run_dir} has no `teacher_sha256` (made before lightning-kd"
            f" recorded it), so analyze cannot tell whether the teacher file {file} (SHA-256 {current}) is the"
            " teacher this student was distilled from."
        )
    elif recorded != current:
        warning = (
            "THE TEACHER CHANGED since this run.\n"
            f"  The run recorded its teacher's SHA-256 {recorded}\n"
            f"    (in {where}),\n"
            f"  but the teacher file {file} now holds weights with SHA-256 {current}.\n"
            "  The teacher's accuracy and every teacher-student comparison below are about another teacher than"
            " the one this student was distilled from. Restore the run's teacher file to analyze the run as it was."
        )
    else:
        warning = None
    return entries, warning


def analysis_teacher(module: Any) -> nn.Module:
    """The teacher as the run ran it: with the module's ``teacher_input`` adapter in front, when it has one."""
    adapter = getattr(module, "teacher_input", None)
    return module.teacher if adapter is None else nn.Sequential(adapter, module.teacher).eval()
