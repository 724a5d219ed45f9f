"""The files of ``lightning-kd analyze``: the paper's diagnostic figures (PNG) and the numbers behind each
(CSV, ``summary.json``), for logits already computed (:func:`analyze_logits`) or for two models and data
(:func:`analyze`).

Private module: the public names live in :mod:`lightning_kd.analyze`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lightning_kd import _plots
from lightning_kd.analyze._stats import (
    collect_logits,
    logit_difference,
    logit_moments,
    max_logit_temperatures,
    read_temperature_trajectory,
)
from lightning_kd.logits import standardize

__all__ = ["FIGURES", "analyze", "analyze_logits"]

#: The figure files :func:`analyze_logits` always writes (the trajectory only with ``metrics``).
FIGURES = ("mean_std_hist.png", "logit_bars.png", "logit_diff_heatmap.png", "temperature_hist.png")


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def _matrix_csv(path: Path, matrix: Tensor) -> Path:
    header = ["true_class", *[f"logit_{j}" for j in range(matrix.shape[1])]]
    return _write_csv(path, header, ([i, *map(_fmt, row)] for i, row in enumerate(matrix.tolist())))


def _nan_stats(matrix: Tensor) -> dict[str, float]:
    values = matrix[~torch.isnan(matrix)]
    return {"mean": float(values.mean()), "max": float(values.max())}


def analyze_logits(
    teacher_logits: Tensor,
    student_logits: Tensor,
    target: Tensor,
    out_dir: str | Path,
    *,
    teacher_name: str = "teacher",
    student_name: str = "student",
    sample_index: int | None = None,
    metrics: str | Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the diagnostic figures and their numbers for logits already computed.

    Args:
        teacher_logits: Shape (N, C).
        student_logits: Shape (N, C).
        target: True classes, shape (N,).
        out_dir: The folder to write to (created).
        teacher_name: The teacher's name in legends and titles.
        student_name: The student's name in legends and titles.
        sample_index: The sample of the bar plot (default: the first one the teacher classifies correctly).
        metrics: A Lightning ``CSVLogger`` ``metrics.csv`` with ``train/temperature`` (and ``train/lambda``)
            columns, for the temperature trajectory.
        extra: More entries for the summary (e.g. what ``lightning-kd analyze --run`` found out about the run:
            ``teacher_changed``, ``warnings``), written into ``summary.json`` with the rest.

    Returns:
        The summary also written to ``summary.json``: ``num_samples``, ``num_classes``, ``teacher`` and
        ``student`` (``name``, ``accuracy``, ``logit_mean``, ``logit_std``), ``agreement``,
        ``logit_difference`` (``raw``/``zscore``: ``mean``, ``max``), ``temperature`` (statistics of the
        per-sample max-logit temperature), ``sample``, ``trajectory`` (or None), the entries of ``extra``
        and ``files``.

    Raises:
        ValueError: On logits of different shapes or a ``sample_index`` out of range (before any file is written).

    Example:
        >>> import tempfile
        >>> teacher = torch.tensor([[4.0, 0.0, 0.0], [0.0, 3.0, 1.0]])
        >>> student = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 2.0]])
        >>> with tempfile.TemporaryDirectory() as out:
        ...     summary = analyze_logits(teacher, student, torch.tensor([0, 1]), out)
        >>> summary["teacher"]["accuracy"], summary["student"]["accuracy"], summary["agreement"]
        (1.0, 0.5, 0.5)
        >>> summary["logit_difference"]["raw"]  # class 0: |4-2|, |0-1|, |0-0|; class 1: |0-1|, |3-0|, |1-2|
        {'mean': 1.3333333730697632, 'max': 3.0}
    """
    teacher_logits, student_logits = teacher_logits.detach().float().cpu(), student_logits.detach().float().cpu()
    target = target.detach().long().cpu()
    if (
        teacher_logits.ndim != 2
        or student_logits.shape != teacher_logits.shape
        or target.shape != teacher_logits[:, 0].shape
    ):
        raise ValueError(
            "Expected teacher logits (N, C), student logits (N, C) and target (N,), but got"
            f" {tuple(teacher_logits.shape)}, {tuple(student_logits.shape)} and {tuple(target.shape)}."
        )
    num_samples, num_classes = teacher_logits.shape
    t_pred, s_pred = teacher_logits.argmax(1), student_logits.argmax(1)
    if sample_index is None:
        correct = (t_pred == target).nonzero()
        sample_index = int(correct[0]) if len(correct) else 0
    if not 0 <= sample_index < num_samples:
        raise ValueError(f"Expected argument `sample_index` to be in [0, {num_samples}), but got {sample_index}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}

    # per-sample numbers: predictions, moments, temperatures
    t_mean, t_std = logit_moments(teacher_logits)
    s_mean, s_std = logit_moments(student_logits)
    temperature, temperature_teacher = max_logit_temperatures(teacher_logits, student_logits)
    header = [
        "index",
        "target",
        "teacher_pred",
        "student_pred",
        "teacher_logit_mean",
        "teacher_logit_std",
        "student_logit_mean",
        "student_logit_std",
        "temperature",
        "temperature_teacher",
    ]
    columns = [t_mean, t_std, s_mean, s_std, temperature, temperature_teacher]
    rows = (
        [n, int(target[n]), int(t_pred[n]), int(s_pred[n]), *(_fmt(float(c[n])) for c in columns)]
        for n in range(num_samples)
    )
    files["per_sample.csv"] = str(_write_csv(out / "per_sample.csv", header, rows))

    # Fig. 5: logit mean vs std
    stats = {
        teacher_name: (t_mean.numpy(), t_std.numpy()),
        student_name: (s_mean.numpy(), s_std.numpy()),
    }
    path = _plots.plot_mean_std(
        stats, out / "mean_std_hist.png", title=f"Per-sample logit mean vs. std: {teacher_name} and {student_name}"
    )
    files["mean_std_hist.png"] = str(path)

    # Fig. 3, 1st row: one sample's logits
    z_teacher, z_student = standardize(teacher_logits), standardize(student_logits)
    n = sample_index
    sample_rows = (
        [j, *(_fmt(float(v[n, j])) for v in (teacher_logits, student_logits, z_teacher, z_student))]
        for j in range(num_classes)
    )
    files["sample_logits.csv"] = str(
        _write_csv(
            out / "sample_logits.csv",
            ["class", "teacher_raw", "student_raw", "teacher_zscore", "student_zscore"],
            sample_rows,
        )
    )
    path = _plots.plot_logit_bars(
        {teacher_name: teacher_logits[n].numpy(), student_name: student_logits[n].numpy()},
        {teacher_name: z_teacher[n].numpy(), student_name: z_student[n].numpy()},
        out / "logit_bars.png",
        target=int(target[n]),
        title=(
            f"Logits of test sample {n} (true class {int(target[n])}; predicted: {teacher_name}"
            f" {int(t_pred[n])}, {student_name} {int(s_pred[n])})"
        ),
    )
    files["logit_bars.png"] = str(path)

    # Fig. 3, 2nd row: class-wise mean absolute difference
    diff_raw = logit_difference(teacher_logits, student_logits, target, num_classes)
    diff_z = logit_difference(z_teacher, z_student, target, num_classes)
    files["logit_diff_raw.csv"] = str(_matrix_csv(out / "logit_diff_raw.csv", diff_raw))
    files["logit_diff_zscore.csv"] = str(_matrix_csv(out / "logit_diff_zscore.csv", diff_z))
    path = _plots.plot_logit_difference(
        [("raw logits", diff_raw.numpy()), ("standardized logits (Z-score)", diff_z.numpy())],
        out / "logit_diff_heatmap.png",
        title=f"Mean |{teacher_name} − {student_name}| logit difference per true class",
    )
    files["logit_diff_heatmap.png"] = str(path)

    # temperatures
    path = _plots.plot_temperature_hist(
        {
            f"max over {teacher_name} and {student_name}": temperature.numpy(),
            f"{teacher_name} only": temperature_teacher.numpy(),
        },
        out / "temperature_hist.png",
        title="Per-sample max-logit temperature T = (1 + √3)/2 · max |Z-score|",
    )
    files["temperature_hist.png"] = str(path)
    trajectory = None
    if metrics is not None:
        trajectory = read_temperature_trajectory(metrics)
        files["temperature_trajectory.csv"] = str(
            _write_csv(
                out / "temperature_trajectory.csv",
                [trajectory["x_label"], "temperature", "lambda"],
                (
                    [_fmt(x), _fmt(t), "" if trajectory["lambda"] is None else _fmt(trajectory["lambda"][k])]
                    for k, (x, t) in enumerate(zip(trajectory["x"], trajectory["temperature"], strict=True))
                ),
            )
        )
        path = _plots.plot_temperature_trajectory(
            np.asarray(trajectory["x"]),
            np.asarray(trajectory["temperature"]),
            None if trajectory["lambda"] is None else np.asarray(trajectory["lambda"]),
            out / "temperature_trajectory.png",
            x_label=trajectory["x_label"],
            title=f"{student_name}: temperature and λ during training",
        )
        files["temperature_trajectory.png"] = str(path)

    summary: dict[str, Any] = {
        "num_samples": num_samples,
        "num_classes": num_classes,
        "teacher": {
            "name": teacher_name,
            "accuracy": float((t_pred == target).float().mean()),
            "logit_mean": float(t_mean.mean()),
            "logit_std": float(t_std.mean()),
        },
        "student": {
            "name": student_name,
            "accuracy": float((s_pred == target).float().mean()),
            "logit_mean": float(s_mean.mean()),
            "logit_std": float(s_std.mean()),
        },
        "agreement": float((t_pred == s_pred).float().mean()),
        "logit_difference": {"raw": _nan_stats(diff_raw), "zscore": _nan_stats(diff_z)},
        "temperature": {
            "mean": float(temperature.mean()),
            "std": float(temperature.std()) if num_samples > 1 else 0.0,
            "min": float(temperature.min()),
            "median": float(temperature.median()),
            "max": float(temperature.max()),
            "teacher_only_mean": float(temperature_teacher.mean()),
        },
        "sample": {
            "index": n,
            "target": int(target[n]),
            "teacher_pred": int(t_pred[n]),
            "student_pred": int(s_pred[n]),
        },
        "trajectory": None
        if trajectory is None
        else {"metrics": str(metrics), "columns": trajectory["columns"], "points": len(trajectory["x"])},
        **dict(extra or {}),
        "files": files,
    }
    summary_path = out / "summary.json"
    files["summary.json"] = str(summary_path)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def analyze(
    teacher: nn.Module,
    student: nn.Module,
    dataloader: Iterable[Any],
    out_dir: str | Path,
    *,
    limit_batches: int | None = None,
    device: str | torch.device | None = None,
    teacher_name: str = "teacher",
    student_name: str = "student",
    sample_index: int | None = None,
    metrics: str | Path | None = None,
    extra: Mapping[str, Any] | None = None,
    logits_key: str | int | Callable[[Any], Tensor] | None = None,
) -> dict[str, Any]:
    """Write the paper's diagnostic figures (PNG) and their numbers (CSV/JSON) for a teacher and a student.

    Runs both models over ``dataloader`` (see :func:`collect_logits`), then :func:`analyze_logits`.

    Args:
        teacher: The teacher network.
        student: The student network.
        dataloader: ``(inputs, targets)`` batches, e.g. a DataModule's ``test_dataloader()``.
        out_dir: The folder to write to (created).
        limit_batches: Use at most this many batches.
        device: Where to run the models (default: where the teacher is).
        teacher_name: The teacher's name in legends and titles.
        student_name: The student's name in legends and titles.
        sample_index: The sample of the bar plot (default: the first one the teacher gets right).
        metrics: A ``CSVLogger`` ``metrics.csv`` of the student's training run, for the temperature trajectory.
        extra: More entries for ``summary.json`` (see :func:`analyze_logits`).
        logits_key: Where the logits are in the models' outputs (see :func:`collect_logits`).

    Returns:
        The summary (see :func:`analyze_logits`), also written to ``out_dir/summary.json``.

    Example:
        >>> import tempfile
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> _ = torch.manual_seed(0)
        >>> data = DataLoader(TensorDataset(torch.randn(40, 8), torch.arange(40) % 4), batch_size=16)
        >>> with tempfile.TemporaryDirectory() as out:
        ...     summary = analyze(nn.Linear(8, 4), nn.Linear(8, 4), data, out)
        >>> summary["num_samples"], sorted(summary["logit_difference"])
        (40, ['raw', 'zscore'])
    """
    teacher_logits, student_logits, target = collect_logits(
        teacher, student, dataloader, limit_batches=limit_batches, device=device, logits_key=logits_key
    )
    return analyze_logits(
        teacher_logits,
        student_logits,
        target,
        out_dir,
        teacher_name=teacher_name,
        student_name=student_name,
        sample_index=sample_index,
        metrics=metrics,
        extra=extra,
    )
