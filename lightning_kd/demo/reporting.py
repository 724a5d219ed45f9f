"""What the demo writes and prints: the table (CSV, Markdown, the terminal), ``run.json`` and the figures.

Every function takes the rows (:class:`~lightning_kd.demo.MethodResult`) of a finished run; the text files are
written atomically (a temporary file, then :func:`os.replace`), so an interrupted write leaves the earlier
file whole.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from torch import Tensor

from lightning_kd import _plots
from lightning_kd.analyze import analyze_logits, logit_difference, read_temperature_trajectory
from lightning_kd.demo.config import DemoConfig, MethodResult
from lightning_kd.logits import standardize

__all__ = ["CSV_COLUMNS", "rich_table", "temperature_text", "write_figures", "write_manifest", "write_table"]

#: The columns of ``results.csv``.
CSV_COLUMNS = (
    "method",
    "key",
    "best_acc",
    "last_acc",
    "temperature",
    "temperature_kind",
    "logit_std",
    "agreement",
    "seconds",
)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and :func:`os.replace`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def temperature_text(result: MethodResult) -> str:
    """The Markdown table's temperature cell: ``"4"``, ``"14.37 (learned)"`` or ``"—"``."""
    if result.temperature is None:
        return "—"
    if result.temperature_kind == "fixed":
        return f"{result.temperature:g}"
    return f"{result.temperature:.2f} ({result.temperature_kind})"


def write_table(results: Sequence[MethodResult], out: Path) -> None:
    """Write the table into ``out``: ``results.csv`` (with the keys and wall times) and ``results.md``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
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
    _write_text(out / "results.csv", buffer.getvalue())
    lines = [
        "| Method | Best test acc (%) | Last test acc (%) | Final T | Logit std | Agreement w/ teacher (%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.best_acc:.2f} | {r.last_acc:.2f} | {temperature_text(r)} | {r.logit_std:.2f}"
            f" | {r.agreement:.2f} |"
        )
    _write_text(out / "results.md", "\n".join(lines) + "\n")


def write_manifest(
    results: Sequence[MethodResult],
    out: Path,
    *,
    config: DemoConfig,
    data: Mapping[str, Any],
    teacher: Mapping[str, Any],
    student: Mapping[str, Any],
) -> None:
    """Write ``run.json``: the settings, the data, and each model's architecture, weights and metrics.

    ``lightning-kd analyze --run <out>`` reads it: ``"teacher"`` and one ``"students"`` entry per row but the
    teacher's (``label``, ``arch``, ``kwargs``, ``weights`` and ``metrics``, paths relative to ``out``).
    """
    manifest = {
        "config": asdict(config),
        "data": dict(data),
        "teacher": {**teacher, "weights": "models/teacher.pt"},
        "students": {
            r.key: {
                "label": r.label,
                **student,
                "weights": f"models/{r.key}.pt",
                "metrics": f"logs/{r.key}/metrics.csv",
            }
            for r in results
            if r.key != "teacher"
        },
    }
    _write_text(out / "run.json", json.dumps(manifest, indent=2) + "\n")


def rich_table(results: Sequence[MethodResult], config: DemoConfig) -> Table:
    """The table printed at the end of ``lightning-kd demo``."""
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


def write_figures(
    results: Sequence[MethodResult],
    logits: Mapping[str, Tensor],
    target: Tensor,
    out: Path,
    log_dir: Path,
) -> None:
    """Write the summary figures, CTKD's trajectory, and the KD and KD+Z students' analyses into ``out``.

    Args:
        results: The rows, the teacher's first.
        logits: Each row's test-set logits by key.
        target: The test labels.
        out: The output folder.
        log_dir: The folder of the runs' ``<key>/metrics.csv``.
    """
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
    if "ctkd_z" in logits:
        trajectory = read_temperature_trajectory(log_dir / "ctkd_z" / "metrics.csv")
        _plots.plot_temperature_trajectory(
            np.asarray(trajectory["x"]),
            np.asarray(trajectory["temperature"]),
            None if trajectory["lambda"] is None else np.asarray(trajectory["lambda"]),
            out / "ctkd_temperature.png",
            x_label="epoch",
            title=f"{labels['ctkd_z']}: learned temperature and λ (epoch means)",
        )
    compared = [k for k in ("kd", "kd_z") if k in logits]
    teacher_logits = logits["teacher"]
    for key in compared:
        analyze_logits(
            teacher_logits, logits[key], target, out / "analysis" / key, student_name=labels[key] + " student"
        )
    if len(compared) == 2:
        _paper_figures(teacher_logits, logits["kd"], logits["kd_z"], target, out, labels["kd"], labels["kd_z"])


def _paper_figures(
    teacher: Tensor, kd: Tensor, kdz: Tensor, target: Tensor, out: Path, kd_label: str, kdz_label: str
) -> None:
    """The paper's Fig. 5 (logit mean vs. std) and Fig. 3 (one sample's logits, class-wise differences)."""
    _plots.plot_mean_std(
        {
            name: (v.mean(1).numpy(), v.std(1).numpy())
            for name, v in {"teacher": teacher, kd_label: kd, kdz_label: kdz}.items()
        },
        out / "figure5_mean_std.png",
        title=f"Per-sample logit mean vs. std: teacher and students by {kd_label} and {kdz_label} (cf. Fig. 5b)",
    )
    correct = ((teacher.argmax(1) == target) & (kd.argmax(1) == target)).nonzero()
    n = int(correct[0]) if len(correct) else 0
    z_teacher, z_kdz = standardize(teacher), standardize(kdz)
    panels = [
        (
            f"(a) {kd_label}: raw logits",
            {"teacher": teacher[n].numpy(), f"{kd_label} student": kd[n].numpy()},
            logit_difference(teacher, kd, target).numpy(),
        ),
        (
            f"(b) {kdz_label}: raw logits",
            {"teacher": teacher[n].numpy(), f"{kdz_label} student": kdz[n].numpy()},
            logit_difference(teacher, kdz, target).numpy(),
        ),
        (
            f"(c) {kdz_label}: standardized logits",
            {"teacher": z_teacher[n].numpy(), f"{kdz_label} student": z_kdz[n].numpy()},
            logit_difference(z_teacher, z_kdz, target).numpy(),
        ),
    ]
    _plots.plot_figure3(
        panels,
        out / "figure3_logits.png",
        target=int(target[n]),
        title=f"Test sample {n} (top) and mean |teacher − student| per true class (bottom), cf. Fig. 3",
    )
