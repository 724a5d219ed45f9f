"""``--ckpt_path last``: find the run to resume under ``default_root_dir``, and resume it in its own folder.

Lightning resolves ``ckpt_path="last"`` in the checkpoint folder of the *current* run; a CLI run gets a fresh
``version_<n>`` folder, so there is never a ``last.ckpt`` there and Lightning starts from scratch with a warning.
Here ``last`` means the newest ``last.ckpt`` under the run's ``default_root_dir``, and the resumed run logs into
the version folder that holds it: its ``metrics.csv`` goes on (the rows of the epochs the checkpoint covers are
kept, those of the interrupted epoch dropped), its checkpoints are replaced in place, and its resolved config is
saved next to the first one as ``config-resume-<k>.yaml``.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace

from lightning_kd._cli.loggers import first_logger, is_csv_logger

__all__ = [
    "MetricsRows",
    "find_last_checkpoint",
    "free_config_name",
    "plan_resume",
    "read_metrics_rows",
    "restore_unsaved_model_args",
    "run_version",
    "write_back_rows",
]

#: ``(metrics, step)`` rows of a ``metrics.csv``.
MetricsRows = list[tuple[dict[str, float | int], int]]

_VERSION = re.compile(r"^version_(\d+)$")


def find_last_checkpoint(root: str | Path) -> Path:
    """The newest (by modification time) ``last.ckpt`` under ``root``.

    Raises:
        FileNotFoundError: If there is none, naming ``root``.
    """
    folder = Path(root)
    found = sorted(folder.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"Expected a last.ckpt under {folder} (the run's trainer.default_root_dir) for `--ckpt_path last`,"
            " but there is none. Start the run without --ckpt_path, or pass the path of a checkpoint."
        )
    return found[-1]


def run_version(checkpoint: Path, save_dir: str | Path, name: str | None) -> int | None:
    """The ``N`` of ``<save_dir>/<name>/version_N/checkpoints/<file>``, or ``None`` if ``checkpoint`` is elsewhere.

    Example:
        >>> run_version(Path("runs/kd/version_3/checkpoints/last.ckpt"), "runs/kd", "")
        3
        >>> run_version(Path("elsewhere/version_3/checkpoints/last.ckpt"), "runs/kd", "")
        >>> run_version(Path("lightning_logs/version_0/checkpoints/last.ckpt"), ".", "lightning_logs")
        0
    """
    run_dir = checkpoint.parent.parent
    match = _VERSION.match(run_dir.name)
    if match is None or checkpoint.parent.name != "checkpoints":
        return None
    expected = Path(save_dir) / (name or "")
    if run_dir.parent.resolve() != expected.resolve():
        return None
    return int(match.group(1))


def free_config_name(run_dir: Path) -> str:
    """``config.yaml`` if free in ``run_dir``, else the first free ``config-resume-<k>.yaml``."""
    if not (run_dir / "config.yaml").exists():
        return "config.yaml"
    k = 1
    while (run_dir / f"config-resume-{k}.yaml").exists():
        k += 1
    return f"config-resume-{k}.yaml"


def plan_resume(trainer: Namespace, checkpoint: Path) -> tuple[str, MetricsRows | None] | None:
    """Point the first logger of ``trainer`` (a config) at the version folder that holds ``checkpoint``.

    Returns:
        The file name for the resumed run's config and the earlier ``metrics.csv`` rows to keep (``None`` for
        loggers other than CSV), or ``None`` when the checkpoint is not in a ``version_<n>`` folder of that
        logger (the run then resumes in a new folder).
    """
    logger = first_logger(trainer)
    init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
    if not isinstance(init_args, Namespace) or "version" not in init_args or init_args.get("save_dir") is None:
        return None
    version = run_version(checkpoint, str(init_args.save_dir), init_args.get("name"))
    if version is None:
        return None
    init_args.version = version
    run_dir = checkpoint.parent.parent
    rows = read_metrics_rows(run_dir / "metrics.csv", checkpoint) if is_csv_logger(logger) else None
    return free_config_name(run_dir), rows


def _number(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_metrics_rows(metrics_csv: Path, checkpoint: Path) -> MetricsRows:
    """The ``(metrics, step)`` rows of ``metrics_csv`` that the checkpoint covers (step < its ``global_step``).

    Rows of the interrupted epoch are dropped: the resumed run logs them again.
    """
    if not metrics_csv.is_file():
        return []
    global_step = int(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"])
    rows = []
    with open(metrics_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values = {k: _number(v) for k, v in row.items() if k and v not in ("", None)}
            step = values.pop("step", None)
            if step is not None and int(step) < global_step:
                rows.append((values, int(step)))
    return rows


def write_back_rows(logger: Any, rows: MetricsRows) -> None:
    """Give a resumed run's ``CSVLogger`` the earlier rows of its ``metrics.csv`` and write them out.

    Lightning's CSV writer deletes (2.4 and later) or misreads (earlier) an existing ``metrics.csv`` when it
    starts; the old file is moved aside until the rows are written back, so no crash in between loses them.
    """
    metrics_csv = Path(logger.log_dir) / "metrics.csv"
    aside = metrics_csv.with_name("metrics.csv.before-resume")
    if metrics_csv.is_file():
        metrics_csv.replace(aside)
    with warnings.catch_warnings():
        # "Experiment logs directory ... exists and is not empty. Previous log files ... will be deleted": the
        # earlier rows are the ones written back here.
        warnings.filterwarnings("ignore", message=r".*exists and is not empty")
        writer = logger.experiment
    for values, step in rows:
        writer.log_metrics(values, step)
    writer.save()
    aside.unlink(missing_ok=True)


def restore_unsaved_model_args(config: Namespace, before: Namespace) -> None:
    """Put back the model ``init_args`` that the checkpoint's hyperparameters reset to their defaults.

    ``config`` is the subcommand's config after LightningCLI applied the checkpoint's hyperparameters to it,
    ``before`` its ``model`` entry before that. Arguments the checkpoint holds keep the checkpoint's values; the
    others (the ones the module leaves out of its hyperparameters) get their configured values back.
    """
    after = config.get("model")
    ckpt_path = config.get("ckpt_path")
    if not isinstance(after, Namespace) or after.get("class_path") != before.get("class_path") or not ckpt_path:
        return
    saved = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True).get("hyper_parameters") or {}
    before_args, after_args = before.get("init_args"), after.get("init_args")
    if not isinstance(before_args, Namespace) or not isinstance(after_args, Namespace):
        return
    for key, value in vars(before_args).items():
        if key not in saved:
            after_args[key] = value
