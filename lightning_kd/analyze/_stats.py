"""The numbers of ``lightning-kd analyze``: logits of a teacher and a student, their moments, class-wise
differences and max-logit temperatures, and the temperature trajectory of a training run.

Private module: the public names live in :mod:`lightning_kd.analyze`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightning_kd._batch import extract_logits, split_batch
from lightning_kd.temperature import max_logit_temperature

__all__ = [
    "collect_logits",
    "logit_difference",
    "logit_moments",
    "max_logit_temperatures",
    "read_temperature_trajectory",
]


@torch.no_grad()
def collect_logits(
    teacher: nn.Module,
    student: nn.Module,
    dataloader: Iterable[Any],
    *,
    limit_batches: int | None = None,
    device: str | torch.device | None = None,
    logits_key: str | int | Callable[[Any], Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run both models over a dataloader in eval mode, one pass, and gather their logits.

    Args:
        teacher: The teacher; its logits are taken from its output as by
            :class:`~lightning_kd.DistillationModule` (a tensor, the first item of a tuple, a dict's
            ``"logits"``; see ``logits_key``).
        student: The student.
        dataloader: Yields ``(inputs, targets)`` batches (or ``((weak, strong), targets)``: the weak view is
            used).
        limit_batches: Use at most this many batches.
        device: Where to run the models (default: where the teacher's parameters are, else CPU).
        logits_key: Where the logits are in the models' outputs (as ``DistillationModule``'s ``logits_key``).

    Returns:
        ``(teacher_logits, student_logits, target)`` on the CPU in float32, shapes (N, C), (N, C), (N,).

    Raises:
        ValueError: If a batch has no targets, the models disagree on the class count, or no batch came.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> data = DataLoader(TensorDataset(torch.randn(10, 4), torch.arange(10) % 3), batch_size=4)
        >>> t, s, y = collect_logits(nn.Linear(4, 3), nn.Linear(4, 3), data)
        >>> t.shape, s.shape, y.tolist()
        (torch.Size([10, 3]), torch.Size([10, 3]), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
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
            teacher_out.append(extract_logits(teacher(x), logits_key).float().cpu())
            student_out.append(extract_logits(student(x), logits_key).float().cpu())
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


def max_logit_temperatures(teacher_logits: Tensor, student_logits: Tensor) -> tuple[Tensor, Tensor]:
    r"""The per-sample max-logit temperature in its two readings: over teacher and student, and the teacher's.

    :math:`T_i = \frac{1+\sqrt3}{2}\,m_i` with :math:`m_i` the largest absolute Z-score of sample :math:`i`
    (see :func:`~lightning_kd.temperature.max_logit_temperature`).

    Returns:
        ``(both, teacher_only)``, each of shape (N,).

    Example:
        >>> both, teacher_only = max_logit_temperatures(torch.tensor([[0.0, 0.0, 3.0]]), torch.zeros(1, 3))
        >>> round(both.item(), 4), round(teacher_only.item(), 4)  # (1 + √3)/2 · 2/√3 · (1 - 1e-7 ...)
        (1.5774, 1.5774)
    """
    both = max_logit_temperature(student_logits, teacher_logits).squeeze(1)
    teacher_only = max_logit_temperature(student_logits, teacher_logits, source="teacher").squeeze(1)
    return both, teacher_only


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


def has_temperature_column(path: Path) -> bool:
    """Whether ``path`` is a CSV file with a ``train/temperature...`` column."""
    if not path.is_file():
        return False
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    return any(column.startswith("train/temperature") for column in header)
