"""The run's CSV logger: always there (first) unless ``trainer.logger`` is false, so every run has its folder.

``<default_root_dir>/version_<n>/`` holds ``metrics.csv`` (read by ``lightning-kd analyze``), the checkpoints
(``ModelCheckpoint`` writes into the first logger's folder) and the export. Other loggers given with
``--trainer.logger`` (TensorBoard, MLflow, W&B, ...) are added after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonargparse import Namespace

__all__ = ["CSV_LOGGER", "add_csv_logger", "first_logger", "is_csv_logger", "log_root"]

CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"


def is_csv_logger(entry: Any) -> bool:
    """Whether a logger config entry is a ``CSVLogger``."""
    return isinstance(entry, Namespace) and str(entry.get("class_path", "")).endswith(".CSVLogger")


def add_csv_logger(trainer: Namespace) -> None:
    """Put the default ``CSVLogger`` first in ``trainer.logger``, unless it is false or already has a CSV logger.

    Example:
        >>> trainer = Namespace(default_root_dir="runs/kd", logger=None)
        >>> add_csv_logger(trainer)
        >>> trainer.logger.init_args
        Namespace(save_dir='runs/kd', name='', version=None)
    """
    logger = trainer.get("logger")
    if logger is False:
        return
    root = trainer.get("default_root_dir")
    # In a recipe's own output folder, runs are <root>/version_<n>; else Lightning's usual ./lightning_logs/.
    save_dir, name = (str(root), "") if root else (".", "lightning_logs")
    csv = Namespace(class_path=CSV_LOGGER, init_args=Namespace(save_dir=save_dir, name=name, version=None))
    if logger in (None, True):
        trainer.logger = csv
        return
    entries = list(logger) if isinstance(logger, list) else [logger]
    if not any(is_csv_logger(entry) for entry in entries):
        trainer.logger = [csv, *entries]


def first_logger(trainer: Namespace) -> Any:
    """The first entry of ``trainer.logger`` (``None`` when there is none)."""
    logger = trainer.get("logger")
    if isinstance(logger, list):
        return logger[0] if logger else None
    return logger if logger not in (None, True, False) else None


def log_root(trainer: Namespace) -> Path:
    """Where the first logger puts its ``version_<n>`` folders (after :func:`add_csv_logger`)."""
    logger = first_logger(trainer)
    init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
    if isinstance(init_args, Namespace) and init_args.get("save_dir") is not None:
        return Path(str(init_args.save_dir)) / str(init_args.get("name") or "")
    return Path(trainer.get("default_root_dir") or ".")
