r"""``lightning-kd analyze``: the diagnostic figures of "Logit Standardization in Knowledge Distillation".

Given a teacher, a student and data, :func:`analyze` writes, as PNG, the figures Sun et al. (CVPR 2024) use
to show what distillation does to a student's logits, and the numbers behind each as CSV/JSON:

==========================  ===============================================================================
file                        content
==========================  ===============================================================================
``mean_std_hist.png``       bivariate histogram of per-sample logit mean vs. standard deviation, teacher and
                            student overlaid (the paper's Fig. 5); numbers in ``per_sample.csv``
``logit_bars.png``          one sample's logits as bars, raw and Z-score standardized, teacher beside
                            student (Fig. 3, 1st row); numbers in ``sample_logits.csv``
``logit_diff_heatmap.png``  class × class heatmaps of the mean absolute teacher–student logit difference,
                            raw and standardized (Fig. 3, 2nd row); ``logit_diff_raw.csv``,
                            ``logit_diff_zscore.csv``
``temperature_hist.png``    distribution of the per-sample max-logit temperature computed from the logits;
                            numbers in ``per_sample.csv``
``temperature_trajectory``  ``.png``/``.csv``: ``train/temperature`` and ``train/lambda`` over training
                            (CTKD), when a Lightning ``CSVLogger`` metrics file is given
``summary.json``            accuracies, teacher–student top-1 agreement, the heatmaps' mean and max, the
                            temperatures' statistics, the file list
==========================  ===============================================================================

The heatmap entry for true class :math:`i` and logit index :math:`j` is

.. math:: D_{ij} = \frac{1}{|\{n: y_n = i\}|} \sum_{n: y_n = i} \big|v_n^{(j)} - z_n^{(j)}\big|

with teacher logits :math:`v` and student logits :math:`z` (raw), or their Z-scores
(:func:`~lightning_kd.logits.standardize`, the pre-process of the loss). Per-sample standard deviations
use the sample (K - 1) estimator, as ``train/student_logit_std`` does.

From Python, :func:`analyze` takes ``nn.Module`` s and a DataLoader; :func:`analyze_logits` takes logits
already computed. From the shell::

    lightning-kd analyze --teacher teacher.pth --teacher-arch resnet32x4 \
        --student student.ckpt --student-arch resnet8x4 --data cifar100 --data-root data/ --out analysis/
    lightning-kd analyze --run lightning-kd-demo/          # every student of a demo run
    lightning-kd analyze --run runs/digits/kd_z/resnet20_resnet8/version_0   # a recipe's run
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor, nn

from lightning_kd import _plots
from lightning_kd._batch import extract_logits, split_batch
from lightning_kd.logits import standardize
from lightning_kd.temperature import max_logit_temperature

__all__ = [
    "analyze",
    "analyze_logits",
    "collect_logits",
    "logit_difference",
    "logit_moments",
    "main",
    "read_temperature_trajectory",
]

#: The figure files :func:`analyze_logits` always writes (the trajectory only with ``metrics``).
FIGURES = ("mean_std_hist.png", "logit_bars.png", "logit_diff_heatmap.png", "temperature_hist.png")
DATASETS = ("digits", "fashion_mnist", "cifar100")


# ----------------------------------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def collect_logits(
    teacher: nn.Module,
    student: nn.Module,
    dataloader: Iterable[Any],
    *,
    limit_batches: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run both models over a dataloader in eval mode, one pass, and gather their logits.

    Args:
        teacher: The teacher; its logits are taken from its output as by
            :class:`~lightning_kd.DistillationModule` (a tensor, the first item of a tuple, a dict's
            ``"logits"``).
        student: The student.
        dataloader: Yields ``(inputs, targets)`` batches (or ``((weak, strong), targets)``: the weak view is
            used).
        limit_batches: Use at most this many batches.
        device: Where to run the models (default: where the teacher's parameters are, else CPU).

    Returns:
        ``(teacher_logits, student_logits, target)`` on the CPU in float32, shapes (N, C), (N, C), (N,).

    Raises:
        ValueError: If a batch has no targets, the models disagree on the class count, or no batch came.
    """
    if device is None:
        first = next(iter(teacher.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    modes = (teacher.training, student.training)
    teacher.eval()
    student.eval()
    teacher_out, student_out, targets = [], [], []
    try:
        for index, batch in enumerate(dataloader):
            if limit_batches is not None and index >= limit_batches:
                break
            x, y = split_batch(batch)
            if isinstance(x, tuple):
                x = x[0]
            if y is None:
                raise ValueError("Expected (inputs, targets) batches, but a batch has no targets.")
            x = x.to(device)
            teacher_out.append(extract_logits(teacher(x)).float().cpu())
            student_out.append(extract_logits(student(x)).float().cpu())
            targets.append(y.long().cpu())
    finally:
        teacher.train(modes[0])
        student.train(modes[1])
    if not targets:
        raise ValueError("Expected the dataloader to yield at least one batch, but it yielded none.")
    teacher_logits, student_logits = torch.cat(teacher_out), torch.cat(student_out)
    if teacher_logits.shape[1] != student_logits.shape[1]:
        raise ValueError(
            "Expected the teacher and the student to predict the same number of classes, but the teacher"
            f" outputs {teacher_logits.shape[1]} and the student {student_logits.shape[1]}."
        )
    return teacher_logits, student_logits, torch.cat(targets)


def logit_moments(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample mean and standard deviation (sample estimator, K - 1) over the class dimension.

    Example:
        >>> mean, std = logit_moments(torch.tensor([[1.0, 2.0, 3.0]]))
        >>> mean.tolist(), std.tolist()
        ([2.0], [1.0])
    """
    return logits.mean(dim=1), logits.std(dim=1)


def logit_difference(
    teacher_logits: Tensor, student_logits: Tensor, target: Tensor, num_classes: int | None = None
) -> Tensor:
    r"""The class × class matrix of mean absolute teacher–student logit differences (Fig. 3, 2nd row).

    ``D[i, j]`` is the mean, over the samples of true class ``i``, of ``|teacher_logits[:, j] -
    student_logits[:, j]|``. Rows of classes without samples are NaN.

    Args:
        teacher_logits: Shape (N, C).
        student_logits: Shape (N, C).
        target: True classes, shape (N,).
        num_classes: Rows of the matrix (default: C).

    Returns:
        A float32 tensor of shape (num_classes, C).

    Example:
        >>> t = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        >>> s = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 3.0]])
        >>> logit_difference(t, s, torch.tensor([0, 1, 1]))
        tensor([[1., 0.],
                [0., 2.]])
    """
    if teacher_logits.shape != student_logits.shape or teacher_logits.ndim != 2:
        raise ValueError(
            "Expected arguments `teacher_logits` and `student_logits` to have the same shape (N, C), but got"
            f" {tuple(teacher_logits.shape)} and {tuple(student_logits.shape)}."
        )
    rows = num_classes or teacher_logits.shape[1]
    diff = (teacher_logits.float() - student_logits.float()).abs()
    sums = torch.zeros(rows, diff.shape[1]).index_add_(0, target.long(), diff)
    counts = torch.bincount(target.long(), minlength=rows).float().unsqueeze(1)
    return torch.where(counts > 0, sums / counts.clamp_min(1.0), torch.full_like(sums, float("nan")))


def read_temperature_trajectory(path: str | Path, *, by: str = "epoch") -> dict[str, Any]:
    """Read ``train/temperature`` and ``train/lambda`` from a Lightning ``CSVLogger`` metrics file.

    Works with the epoch-level columns of ``self.log(..., on_epoch=True)`` (``train/temperature_epoch``) and
    with step-level ones (``train/temperature_step`` or plain ``train/temperature``), whichever the run logged.

    Args:
        path: The ``metrics.csv``.
        by: ``"epoch"``: one value per epoch, counted from 1 as CTKD's curriculum counts (the epoch-level
            column, else the mean of the logged steps of each epoch); ``"step"``: one value per logged step.

    Returns:
        ``{"x": [...], "x_label": "epoch" | "step", "temperature": [...], "lambda": [...] | None,
        "columns": {"temperature": ..., "lambda": ...}}`` (NaN where a value is missing at some ``x``).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it has no temperature column, or ``by`` is not ``"epoch"``/``"step"``.
    """
    if by not in ("epoch", "step"):
        raise ValueError(f"Expected argument `by` to be 'epoch' or 'step', but got {by!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected argument `metrics` to be an existing CSV file, but {path} does not exist.")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0]) if rows else set()
    suffixes = ("_epoch", "_step", "") if by == "epoch" else ("_step", "", "_epoch")
    suffix = next((sfx for sfx in suffixes if f"train/temperature{sfx}" in columns), None)
    if suffix is None:
        raise ValueError(
            f"Expected the metrics file {path} to have a 'train/temperature' column (from a DistillationModule"
            f" with a CSVLogger), but its columns are {sorted(columns)[:20]}."
        )
    t_col = f"train/temperature{suffix}"
    l_col = next(
        (f"train/lambda{sfx}" for sfx in (suffix, "_step", "", "_epoch") if f"train/lambda{sfx}" in columns), None
    )
    x_key = "epoch" if by == "epoch" or suffix == "_epoch" else "step"
    sums: dict[str, dict[float, list[float]]] = {"t": {}, "l": {}}
    for row in rows:
        if not row.get(x_key):
            continue
        x = float(row[x_key]) + (1.0 if x_key == "epoch" else 0.0)
        for name, column in (("t", t_col), ("l", l_col)):
            if column and row.get(column):
                sums[name].setdefault(x, []).append(float(row[column]))
    xs = sorted(set(sums["t"]) | set(sums["l"]))

    def mean(values: list[float] | None) -> float:
        return sum(values) / len(values) if values else math.nan

    return {
        "x": xs,
        "x_label": x_key,
        "temperature": [mean(sums["t"].get(x)) for x in xs],
        "lambda": [mean(sums["l"].get(x)) for x in xs] if l_col else None,
        "columns": {"temperature": t_col, "lambda": l_col},
    }


# ----------------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------------
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

    Returns:
        The summary also written to ``summary.json``: ``num_samples``, ``num_classes``, ``teacher`` and
        ``student`` (``name``, ``accuracy``, ``logit_mean``, ``logit_std``), ``agreement``,
        ``logit_difference`` (``raw``/``zscore``: ``mean``, ``max``), ``temperature`` (statistics of the
        per-sample max-logit temperature), ``sample``, ``trajectory`` (or None) and ``files``.

    Raises:
        ValueError: On logits of different shapes or a ``sample_index`` out of range.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    teacher_logits, student_logits = teacher_logits.detach().float().cpu(), student_logits.detach().float().cpu()
    target = target.detach().long().cpu()
    num_samples, num_classes = teacher_logits.shape
    if student_logits.shape != teacher_logits.shape or target.shape != (num_samples,):
        raise ValueError(
            "Expected teacher logits (N, C), student logits (N, C) and target (N,), but got"
            f" {tuple(teacher_logits.shape)}, {tuple(student_logits.shape)} and {tuple(target.shape)}."
        )
    files: dict[str, str] = {}

    # per-sample numbers: predictions, moments, temperatures
    t_pred, s_pred = teacher_logits.argmax(1), student_logits.argmax(1)
    t_mean, t_std = logit_moments(teacher_logits)
    s_mean, s_std = logit_moments(student_logits)
    temperature = max_logit_temperature(student_logits, teacher_logits).squeeze(1)
    temperature_teacher = max_logit_temperature(student_logits, teacher_logits, source="teacher").squeeze(1)
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
    if sample_index is None:
        correct = (t_pred == target).nonzero()
        sample_index = int(correct[0]) if len(correct) else 0
    if not 0 <= sample_index < num_samples:
        raise ValueError(f"Expected argument `sample_index` to be in [0, {num_samples}), but got {sample_index}.")
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
        teacher, student, dataloader, limit_batches=limit_batches, device=device
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
    )


# ----------------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------------
def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 16}}', got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-kd analyze``."""
    parser = argparse.ArgumentParser(
        prog="lightning-kd analyze",
        description=(
            "Write the logit diagnostics of 'Logit Standardization in Knowledge Distillation' (CVPR 2024) for a"
            " teacher and a student: logit mean/std histogram (Fig. 5), one sample's logits and the class-wise"
            " logit-difference heatmaps, raw and standardized (Fig. 3), per-sample max-logit temperatures, the"
            " CTKD temperature trajectory (with --metrics), and accuracy/agreement as JSON."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    models = parser.add_argument_group("models (give --teacher/--student, or --run)")
    models.add_argument("--teacher", type=Path, help="teacher checkpoint (.ckpt, .pth {'model': ...}, state_dict)")
    models.add_argument("--teacher-arch", help="teacher architecture for lightning_kd.models.create_model")
    models.add_argument("--teacher-kwargs", type=_json_object, default=None, help="JSON kwargs for the teacher arch")
    models.add_argument("--student", type=Path, help="student checkpoint (same formats)")
    models.add_argument("--student-arch", help="student architecture for lightning_kd.models.create_model")
    models.add_argument("--student-kwargs", type=_json_object, default=None, help="JSON kwargs for the student arch")
    models.add_argument(
        "--run",
        type=Path,
        help="a `lightning-kd demo` output folder (its run.json), or a `lightning-kd fit` run folder of a"
        " DistillationModule (its config.yaml, student.pt or checkpoints, metrics.csv)",
    )
    models.add_argument(
        "--method", action="append", help="with --run: the student(s) to analyze (repeatable; default: all)"
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=DATASETS, default=None, help="the DataModule (default: digits)")
    data.add_argument("--data-root", type=Path, default=None, help="dataset folder (fashion_mnist, cifar100)")
    data.add_argument("--data-seed", type=int, default=None, help="digits: seed of the train/test split (0)")
    data.add_argument("--num-classes", type=_positive_int, default=None, help="default: the dataset's")
    data.add_argument("--in-chans", type=_positive_int, default=None, help="default: the dataset's")
    data.add_argument("--image-size", type=_positive_int, default=None, help="digits only: upsample to this size")
    data.add_argument("--batch-size", type=_positive_int, default=256)
    data.add_argument("--num-workers", type=int, default=0)
    data.add_argument("--limit-batches", type=_positive_int, default=None, help="use only this many test batches")
    parser.add_argument("--metrics", type=Path, default=None, help="CSVLogger metrics.csv with train/temperature")
    parser.add_argument("--sample-index", type=int, default=None, help="test sample of the bar plot")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', ...")
    parser.add_argument("--out", type=Path, default=Path("lightning-kd-analysis"), help="output folder")
    return parser


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


def _load_model(
    path: Path, arch: str | None, kwargs: Mapping[str, Any] | None, num_classes: int, in_chans: int
) -> nn.Module:
    from lightning_kd.teacher import load_teacher

    return load_teacher(path, arch=arch, num_classes=num_classes, in_chans=in_chans, arch_kwargs=kwargs)


def _print_summary(summary: Mapping[str, Any], out: Path) -> None:
    teacher, student = summary["teacher"], summary["student"]
    print(
        f"{student['name']} vs {teacher['name']} on {summary['num_samples']} samples:"
        f" teacher acc {100 * teacher['accuracy']:.2f}%, student acc {100 * student['accuracy']:.2f}%,"
        f" top-1 agreement {100 * summary['agreement']:.2f}%;"
        f" logit std teacher {teacher['logit_std']:.2f}, student {student['logit_std']:.2f};"
        f" mean |v - z| raw {summary['logit_difference']['raw']['mean']:.3f},"
        f" standardized {summary['logit_difference']['zscore']['mean']:.3f}"
    )
    print(f"  wrote {len(summary['files'])} files to {out}")


def _demo_jobs(args: argparse.Namespace, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Jobs for a ``lightning-kd demo`` folder: its teacher and each (or each chosen) student."""
    students = manifest["students"]
    wanted = args.method or list(students)
    unknown = [m for m in wanted if m not in students]
    if unknown:
        raise ValueError(f"Expected --method to be one of {sorted(students)}, but got {unknown}.")
    data = manifest.get("data", {})
    args.data = args.data or data.get("name", "digits")
    if args.data_seed is None:
        args.data_seed = data.get("seed", 0)
    if args.image_size is None and args.data == "digits":
        args.image_size = data.get("image_size")
    teacher = manifest["teacher"]
    jobs = []
    for method in wanted:
        student = students[method]
        metrics = args.metrics or (args.run / student["metrics"] if student.get("metrics") else None)
        jobs.append(
            {
                "teacher": (args.run / teacher["weights"], teacher["arch"], teacher.get("kwargs")),
                "student": (args.run / student["weights"], student["arch"], student.get("kwargs")),
                "names": ("teacher", student.get("label", method)),
                "metrics": metrics if metrics is not None and _has_temperature(Path(metrics)) else None,
                "out": args.out / method if args.method is None or len(wanted) > 1 else args.out,
            }
        )
    return jobs


def _has_temperature(path: Path) -> bool:
    """Whether ``path`` is a CSV file with a ``train/temperature...`` column."""
    if not path.is_file():
        return False
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    return any(column.startswith("train/temperature") for column in header)


def _recipe_jobs(args: argparse.Namespace, config_path: Path) -> list[dict[str, Any]]:
    """A job for a ``lightning-kd fit`` run folder (``config.yaml`` of a DistillationModule, student weights)."""
    import yaml

    run_dir = config_path.parent
    config = yaml.safe_load(config_path.read_text()) or {}
    model = config.get("model") or {}
    init = model.get("init_args") or {}
    if not str(model.get("class_path", "")).endswith("DistillationModule") or not isinstance(init.get("student"), str):
        raise ValueError(
            f"Expected {config_path} to configure a lightning_kd.DistillationModule with a student given by"
            f" name, but it has model {model.get('class_path')!r} with student {init.get('student')!r}. Give"
            " --teacher/--student (and their --*-arch) instead."
        )
    candidates = [run_dir / "student.pt", run_dir / "checkpoints" / "last.ckpt"]
    candidates += sorted(run_dir.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    weights = next((c for c in candidates if c.is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"Expected student weights (student.pt or a .ckpt) in {run_dir}, but found none.")
    teacher = Path(str(init.get("teacher"))).expanduser()
    if not teacher.is_file():
        raise FileNotFoundError(
            f"The run's teacher checkpoint {teacher} (model.init_args.teacher in {config_path}) does not exist"
            " here: run analyze from the folder the run was started in, or give --teacher/--student."
        )
    args.num_classes = args.num_classes or init.get("num_classes")
    args.in_chans = args.in_chans or init.get("in_chans")
    if args.data is None and isinstance(config.get("data"), Mapping):
        args.data_config = config["data"]
    metrics = args.metrics or run_dir / "metrics.csv"
    return [
        {
            "teacher": (teacher, init.get("teacher_arch"), init.get("teacher_kwargs")),
            "student": (weights, init["student"], init.get("student_kwargs")),
            "names": ("teacher", f"student ({init['student']})"),
            "metrics": metrics if _has_temperature(Path(metrics)) else None,
            "out": args.out,
        }
    ]


def _run_jobs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """Resolve the command line into jobs: (teacher, student, names, metrics, out) each."""
    if args.run is not None:
        if args.teacher or args.student:
            parser.error("give either --run or --teacher/--student, not both")
        if (args.run / "run.json").is_file():
            return _demo_jobs(args, json.loads((args.run / "run.json").read_text()))
        configs = [args.run / "config.yaml"] if (args.run / "config.yaml").is_file() else []
        configs += sorted(args.run.glob("version_*/config.yaml"), key=lambda p: p.stat().st_mtime, reverse=True)
        if not configs:
            raise FileNotFoundError(
                f"Expected --run to be a `lightning-kd demo` folder (with run.json) or a `lightning-kd fit` run"
                f" folder (with config.yaml, or version_*/config.yaml), but {args.run} holds neither."
            )
        return _recipe_jobs(args, configs[0])
    missing = [flag for flag, value in (("--teacher", args.teacher), ("--student", args.student)) if value is None]
    if missing:
        parser.error(f"the following arguments are required without --run: {', '.join(missing)}")
    return [
        {
            "teacher": (args.teacher, args.teacher_arch, args.teacher_kwargs),
            "student": (args.student, args.student_arch, args.student_kwargs),
            "names": ("teacher", "student"),
            "metrics": args.metrics,
            "out": args.out,
        }
    ]


def _configured_datamodule(config: Mapping[str, Any]) -> LightningDataModule:
    """Instantiate a ``{class_path, init_args}`` DataModule of a run's config."""
    import importlib

    class_path = str(config.get("class_path", ""))
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"Could not import the run's DataModule {class_path!r}: {error}") from error
    datamodule = cls(**dict(config.get("init_args") or {}))
    if not isinstance(datamodule, LightningDataModule):
        raise ValueError(f"Expected the run's data to be a LightningDataModule, but {class_path} is not one.")
    return datamodule


def main(argv: list[str] | None = None) -> int:
    """Run ``lightning-kd analyze``.

    Args:
        argv: The arguments after ``analyze`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on a missing file or a bad checkpoint/argument value, 2 on a usage
        error (as argparse).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        jobs = _run_jobs(args, parser)
    except SystemExit as exit_:  # --help, usage errors: return the status instead of exiting the caller
        return exit_.code if isinstance(exit_.code, int) else 1
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"lightning-kd analyze: error: {error}", file=sys.stderr)
        return 1
    try:
        if getattr(args, "data_config", None) is not None:
            datamodule = _configured_datamodule(args.data_config)
        else:
            datamodule = _datamodule(
                args.data or "digits",
                root=args.data_root,
                seed=0 if args.data_seed is None else args.data_seed,
                image_size=args.image_size,
                batch_size=args.batch_size,
                num_workers=args.num_workers,
            )
        datamodule.setup("test")
        num_classes = args.num_classes or int(getattr(datamodule, "num_classes", 0)) or None
        in_chans = args.in_chans or int(getattr(datamodule, "in_chans", 3))
        if num_classes is None:
            raise ValueError("Expected --num-classes: the DataModule does not say how many classes it has.")
        device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        for job in jobs:
            models = [
                _load_model(path, arch, kwargs, num_classes=num_classes, in_chans=in_chans).to(device)
                for path, arch, kwargs in (job["teacher"], job["student"])
            ]
            teacher, student = models
            summary = analyze(
                teacher,
                student,
                datamodule.test_dataloader(),
                job["out"],
                limit_batches=args.limit_batches,
                device=device,
                teacher_name=job["names"][0],
                student_name=job["names"][1],
                sample_index=args.sample_index,
                metrics=job["metrics"],
            )
            _print_summary(summary, job["out"])
    except (FileNotFoundError, ValueError) as error:
        print(f"lightning-kd analyze: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
